"""Reviews: what a reviewer wrote, for which agency, recruiter and placement, and where it stands.

Every review hangs off exactly one `ReviewRequest` (a one-to-one key, so a request can never
collect two reviews, however many times its form is posted). A review given through a
recruiter's own link gets a request of its own (source `recruiter_link`) and waits, *unconfirmed*,
until the reviewer clicks the link we email them; only then does it join *Missing Verification*.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.review_requests.models import ReviewRequest, Role

EDIT_WINDOW = timedelta(hours=24)
TEXT_MIN = 30
TEXT_MAX = 5000


class DisplayName(models.TextChoices):
    FULL = "full", _("Full name")
    INITIAL = "initial", _("First name and initial")
    ANONYMOUS = "anonymous", _("Anonymous")


def shown_name(name: str, choice: str, role: str = "") -> str:
    """The name a review is published under, from what the reviewer typed and chose."""
    parts = name.split()
    if choice == DisplayName.FULL and parts:
        return " ".join(parts)
    if choice == DisplayName.INITIAL and parts:
        if len(parts) == 1:
            return parts[0]
        return f"{parts[0]} {parts[-1][0].upper()}."
    if role == Role.CANDIDATE:
        return str(_("Anonymous candidate"))
    if role == Role.CLIENT:
        return str(_("Anonymous client"))
    return str(_("Anonymous"))


class RejectReason(models.TextChoices):
    NOT_A_PLACEMENT = "not_a_placement", _("Not a real placement")
    SPAM = "spam", _("Spam")
    DUPLICATE = "duplicate", _("Duplicate")
    OTHER = "other", _("Other")


class ReviewQuerySet(models.QuerySet):
    def counted(self):
        """Reviews that count: confirmed and not rejected (what the agency's columns show)."""
        return self.filter(status__in=[Review.Status.MISSING_VERIFICATION, Review.Status.VERIFIED])


class Review(models.Model):
    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("Awaiting the reviewer's confirmation")
        MISSING_VERIFICATION = "missing_verification", _("Missing verification")
        VERIFIED = "verified", _("Verified")
        REJECTED = "rejected", _("Rejected")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="reviews")
    review_request = models.OneToOneField(
        ReviewRequest, on_delete=models.CASCADE, related_name="review"
    )
    recruiter = models.ForeignKey(
        RecruiterProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    placement_ref = models.CharField(max_length=100, blank=True)
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    text = models.TextField(max_length=TEXT_MAX)
    role = models.CharField(max_length=10, choices=Role.choices)
    reviewer_name = models.CharField(max_length=120, blank=True)
    display_name_choice = models.CharField(
        max_length=10, choices=DisplayName.choices, default=DisplayName.INITIAL
    )
    recommend = models.BooleanField()
    consent = models.BooleanField(default=False)
    # Never shown publicly: who wrote it, for verification and for data requests.
    reviewer_email = models.EmailField(max_length=320)
    status = models.CharField(max_length=24, choices=Status.choices)
    rejected_reason = models.CharField(max_length=300, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    editable_until = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    placement = models.ForeignKey(
        "placements.Placement",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviews",
        help_text=_("The placement an admin verified this review against."),
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Empty for automatic verification on an exact placement reference."),
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    admins_notified_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the agency's admins were told (email or digest).")
    )

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "status", "-submitted_at"], name="review_agency_status"),
            models.Index(fields=["recruiter", "status"], name="review_recruiter_status"),
            # The public pages' newest-first page of verified reviews: an ordered, limited index
            # scan per agency or recruiter, whatever the history's size.
            models.Index(
                fields=["agency", "-submitted_at", "-id"],
                condition=models.Q(status="verified"),
                name="review_public_agency",
            ),
            models.Index(
                fields=["recruiter", "-submitted_at", "-id"],
                condition=models.Q(status="verified"),
                name="review_public_recruiter",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ for {self.agency} ({self.get_status_display()})"

    @property
    def display_name(self) -> str:
        return shown_name(self.reviewer_name, self.display_name_choice, self.role)

    def editable(self, now=None) -> bool:
        return (
            self.status
            in (
                self.Status.UNCONFIRMED,
                self.Status.MISSING_VERIFICATION,
            )
            and (now or timezone.now()) < self.editable_until
        )

    @property
    def counts(self) -> bool:
        return self.status in (self.Status.MISSING_VERIFICATION, self.Status.VERIFIED)

    @property
    def rejected_reason_label(self) -> str:
        code, _sep, note = self.rejected_reason.partition(":")
        if code in RejectReason.values:
            label = str(RejectReason(code).label)
            return f"{label}: {note.strip()}" if note.strip() else label
        return self.rejected_reason

    # --- verification: only these three methods change it, each audited ------------------------

    def verify(self, placement, by) -> None:
        """Verify against `placement` (of the same agency); `by` is None when automatic."""
        if placement.agency_id != self.agency_id:
            raise ValidationError(_("That placement belongs to another agency."))
        with transaction.atomic():
            locked = Review.objects.select_for_update().get(pk=self.pk)
            if locked.status != self.Status.MISSING_VERIFICATION:
                raise ValidationError(_("Only a review missing verification can be verified."))
            now = timezone.now()
            self.status, self.placement, self.verified_at, self.verified_by = (
                self.Status.VERIFIED,
                placement,
                now,
                by,
            )
            self.updated_at = now
            self.save(
                update_fields=["status", "placement", "verified_at", "verified_by", "updated_at"]
            )
            self.agency.record(
                by,
                "review.verified" if by else "review.auto_verified",
                self.audit_subject(),
                review=self.pk,
                placement=placement.pk,
                placement_ref=placement.external_ref or "",
            )

    def reject(self, reason: str, by, note: str = "") -> None:
        if reason not in RejectReason.values:
            raise ValidationError(_("Choose why the review is rejected."))
        if reason == RejectReason.OTHER and not note.strip():
            raise ValidationError(_("Say why in a few words."))
        with transaction.atomic():
            locked = Review.objects.select_for_update().get(pk=self.pk)
            if locked.status != self.Status.MISSING_VERIFICATION:
                raise ValidationError(_("Only a review missing verification can be rejected."))
            now = timezone.now()
            text = f"{reason}: {note.strip()}" if note.strip() else reason
            self.status, self.rejected_reason = self.Status.REJECTED, text[:300]
            self.rejected_at, self.rejected_by, self.updated_at = now, by, now
            self.save(
                update_fields=[
                    "status",
                    "rejected_reason",
                    "rejected_at",
                    "rejected_by",
                    "updated_at",
                ]
            )
            self.agency.record(
                by,
                "review.rejected",
                self.audit_subject(),
                review=self.pk,
                reason=self.rejected_reason,
            )

    def undo(self, by) -> None:
        """Back to Missing Verification, from verified or from an admin's rejection."""
        with transaction.atomic():
            locked = Review.objects.select_for_update().get(pk=self.pk)
            if locked.status == self.Status.VERIFIED:
                action = "review.verification_undone"
                detail = {"placement": locked.placement_id}
            elif locked.status == self.Status.REJECTED and locked.rejected_at is not None:
                action = "review.rejection_undone"
                detail = {"reason": locked.rejected_reason}
            else:
                raise ValidationError(_("There is nothing to undo on this review."))
            self.status = self.Status.MISSING_VERIFICATION
            self.placement = self.verified_by = self.verified_at = None
            self.rejected_at = self.rejected_by = None
            self.rejected_reason = ""
            self.updated_at = timezone.now()
            self.save(
                update_fields=[
                    "status",
                    "placement",
                    "verified_by",
                    "verified_at",
                    "rejected_at",
                    "rejected_by",
                    "rejected_reason",
                    "updated_at",
                ]
            )
            self.agency.record(by, action, self.audit_subject(), review=self.pk, **detail)

    def audit_subject(self) -> str:
        return f"{self.rating}★ {self.display_name}"
