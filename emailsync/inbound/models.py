"""What the SMTP listener keeps: the agency's BCC addresses and a small record per trigger email.

A trigger keeps who sent it, who it went to and what we decided for each of them — never its body,
and its subject only for a setup test (deleted after seven days). That record is the agency's
fairness audit: it shows that everyone the rules allowed was asked.
"""

import math
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.review_requests.models import ReviewRequest

TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_LENGTH = 16  # 16 symbols of 36 = 82.7 bits, above the 80 the spec asks for
ROTATION_GRACE = timedelta(days=14)
SETUP_SUBJECT_DAYS = 7


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


class InboundAddress(models.Model):
    """An agency's BCC address. The slug in front is cosmetic; the token identifies the agency."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="inbound_addresses")
    token = models.CharField(max_length=TOKEN_LENGTH, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    accept_until = models.DateTimeField(
        null=True, blank=True, help_text=_("A rotated-out address still works until then.")
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "inbound addresses"

    def __str__(self) -> str:
        return self.redacted

    @property
    def address(self) -> str:
        return f"{self.agency.slug}-{self.token}@{settings.EMAILSYNC_INBOUND_DOMAIN}"

    @property
    def whole_days_left(self) -> int:
        """Days until a retired address is refused, as people count them: rounded up, so a fresh
        14-day grace period reads "14 days", not "1 week, 6 days". 0 once under a day is left."""
        if self.accept_until is None:
            return 0
        left = (self.accept_until - timezone.now()).total_seconds()
        return 0 if left < 86400 else math.ceil(left / 86400)

    @property
    def redacted(self) -> str:
        """For logs: enough to tell addresses apart, not enough to send to."""
        return f"{self.agency.slug}-{self.token[:3]}…@{settings.EMAILSYNC_INBOUND_DOMAIN}"

    def accepts_mail(self, now=None) -> bool:
        now = now or timezone.now()
        return self.retired_at is None or (
            self.accept_until is not None and now < self.accept_until
        )

    @classmethod
    def current_for(cls, agency: Agency) -> "InboundAddress":
        address = cls.objects.filter(agency=agency, retired_at=None).first()
        return address or cls.objects.create(agency=agency, token=new_token())

    @classmethod
    def rotate(cls, agency: Agency, by=None, grace: timedelta = ROTATION_GRACE) -> "InboundAddress":
        """A new address now; the old one keeps working for `grace`, then is refused. So does
        any earlier one still in its own grace period, for no longer: a rotation because an
        address leaked (a grace of 0) ends every old address at once."""
        now = timezone.now()
        for old in cls.objects.filter(agency=agency, retired_at=None):
            old.retired_at, old.accept_until = now, now + grace
            old.save(update_fields=["retired_at", "accept_until"])
        cls.objects.filter(agency=agency, accept_until__gt=now + grace).update(
            accept_until=now + grace
        )
        new = cls.objects.create(agency=agency, token=new_token())
        agency.record(
            by,
            "email_sync.address_rotated",
            new.redacted,
            old_accepted_until=(now + grace).isoformat(),
        )
        return new


class Trigger(models.Model):
    """One email received at an agency's BCC address, and what we made of it."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Requests scheduled")
        SKIPPED = "skipped", _("Skipped")
        QUARANTINED = "quarantined", _("Quarantined")
        RELEASED = "released", _("Released from quarantine")
        BLOCKED = "blocked", _("Sender blocked")

    # No index of its own: the composite keys below begin with the agency and serve every
    # lookup by it (a busy listener writes these rows, and each index is written too). No
    # database constraint either: see recording.py, "Why the hot rows carry no foreign keys".
    agency = models.ForeignKey(
        Agency,
        on_delete=models.CASCADE,
        related_name="triggers",
        db_index=False,
        db_constraint=False,
    )
    received_at = models.DateTimeField(default=timezone.now)
    message_id_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=30, default="smtp")
    sender = models.EmailField(max_length=320, blank=True)
    recruiter = models.ForeignKey(
        RecruiterProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="triggers"
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=40, blank=True)
    auth_method = models.CharField(max_length=30, blank=True)
    auth_detail = models.CharField(max_length=300, blank=True)
    placement_ref = models.CharField(max_length=100, blank=True)
    structured_problems = models.CharField(max_length=200, blank=True)
    # For a trigger skipped as `header_defects`: the codes of what could not be read (headers.py,
    # e.g. `to_no_domain`), so support can say which header; never what the header said. The
    # database default lets the version before it, still running while migrations apply
    # (docs/DEPLOY.md), keep inserting triggers.
    header_defects = models.CharField(max_length=200, blank=True, default="", db_default="")
    is_setup_test = models.BooleanField(default=False)
    subject = models.CharField(
        max_length=300, blank=True, help_text=_("Kept only for setup tests, for seven days.")
    )
    subject_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "message_id_hash"], name="trigger_once")
        ]
        indexes = [models.Index(fields=["agency", "-received_at"], name="trigger_recent")]

    def __str__(self) -> str:
        return f"Trigger {self.pk} ({self.status})"

    # A manual request and an API call are recorded as triggers too (their people and outcomes
    # go in the same activity log), but no email arrived for them.
    ASKED_DIRECTLY = ("manual", "api")

    @classmethod
    def emails(cls, agency):
        """The agency's triggers that were emails (BCC'd to the listener or through an ESP)."""
        return cls.objects.filter(agency=agency).exclude(source__in=cls.ASKED_DIRECTLY)


class TriggerRecipient(models.Model):
    """One To/Cc address of a trigger and whether it was invited, with the reason if not."""

    class Outcome(models.TextChoices):
        INVITED = "invited", _("Invited")
        SKIPPED = "skipped", _("Skipped")
        HELD = "held", _("Held in quarantine")

    # Written only with their trigger and request, in the same statement (batch_statement.py):
    # no database constraints to check on every row.
    trigger = models.ForeignKey(
        Trigger, on_delete=models.CASCADE, related_name="recipients", db_constraint=False
    )
    email = models.EmailField(max_length=320)
    name = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=10, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.CharField(max_length=40, blank=True)
    review_request = models.ForeignKey(
        ReviewRequest,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="trigger_recipients",
        db_constraint=False,
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.email}: {self.outcome} {self.reason}"


class UnmappedSender(models.Model):
    """An address on the agency's domain that sent triggers but belongs to no known member."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="unmapped_senders")
    email = models.EmailField(max_length=320)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    trigger_count = models.PositiveIntegerField(default=0)
    mapped_to = models.ForeignKey(
        RecruiterProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "email"], name="unmapped_sender_once")
        ]

    def __str__(self) -> str:
        return self.email

    @transaction.atomic
    def map_to(self, profile: RecruiterProfile, by=None) -> int:
        """Make this address one of the recruiter's (moving it if another recruiter had it:
        the admin's latest word on whose it is) and credit them with what it already sent.
        Returns how many review requests were credited."""
        from emailsync.agencies.models import SenderAddress

        if profile.agency_id != self.agency_id:
            raise ValueError("A sender can only be mapped to a recruiter of the same agency.")
        had = (
            SenderAddress.objects.filter(agency_id=self.agency_id, email=self.email.lower())
            .exclude(profile=profile)
            .select_related("profile")
            .first()
        )
        SenderAddress.objects.update_or_create(
            agency_id=self.agency_id, email=self.email.lower(), defaults={"profile": profile}
        )
        credited, reviews = credit_earlier(self.agency_id, self.email, profile)
        self.mapped_to = profile
        self.save(update_fields=["mapped_to"])
        self.agency.record(
            by,
            "email_sync.sender_mapped",
            self.email,
            recruiter=profile.display_name,
            requests=credited,
            reviews=reviews,
            **({"previous": had.profile.display_name} if had else {}),
        )
        return credited


@transaction.atomic
def credit_earlier(agency_id: int, email: str, profile: RecruiterProfile) -> tuple[int, int]:
    """Credit `profile` with what `email` sent before it was known to be theirs: its triggers
    that credit no one, their review requests and the reviews already given for those (the
    recruiter's public rating is recomputed). Returns (requests, reviews) credited."""
    from emailsync.profiles import aggregates
    from emailsync.reviews.models import Review

    # The address with any plus tag, as the listener matches senders (jo+ats@ is jo@).
    local, _, domain = email.rpartition("@")
    tagged = Q(sender__istartswith=f"{local}+", sender__iendswith=f"@{domain}")
    triggers = Trigger.objects.filter(
        Q(sender__iexact=email) | tagged, agency_id=agency_id, recruiter__isnull=True
    )
    request_ids = TriggerRecipient.objects.filter(
        trigger__in=triggers, review_request__isnull=False
    ).values_list("review_request_id", flat=True)
    uncredited = list(
        ReviewRequest.objects.select_for_update()
        .filter(pk__in=list(request_ids), recruiter__isnull=True)
        .values_list("pk", flat=True)
    )
    credited = ReviewRequest.objects.filter(pk__in=uncredited, recruiter__isnull=True).update(
        recruiter=profile
    )
    # A queryset update sends no signals: the aggregates are refreshed here.
    reviews = Review.objects.filter(
        review_request_id__in=uncredited, recruiter__isnull=True
    ).update(recruiter=profile)
    if reviews:
        aggregates.refresh(agency_id, {profile.pk})
    triggers.update(recruiter=profile)
    return credited, reviews


class BlockedSender(models.Model):
    """A sender whose triggers an admin refused: their emails never ask anyone."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="blocked_senders")
    email = models.EmailField(max_length=320)
    blocked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agency", "email"], name="blocked_once")]

    def __str__(self) -> str:
        return self.email
