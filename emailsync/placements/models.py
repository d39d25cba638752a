"""Placements: who was placed where, by whom, and when — what a review is verified against.

A placement is the agency's own record (typed in, imported from its ATS as CSV, or added inline
while verifying). `external_ref` is the agency's reference for it (the ATS's id), unique per
agency when given; structured data in a trigger email names the same reference, which is how a
review arrives with its placement already known.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.review_requests.models import mailbox


class Placement(models.Model):
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="placements")
    external_ref = models.CharField(
        _("reference"),
        max_length=100,
        null=True,
        blank=True,
        help_text=_("Your ATS's reference for this placement (optional, unique)."),
    )
    candidate_name = models.CharField(_("candidate name"), max_length=120)
    candidate_email = models.EmailField(_("candidate email"), max_length=320, blank=True)
    client_company = models.CharField(_("client company"), max_length=160, blank=True)
    client_contact_name = models.CharField(_("client contact"), max_length=120, blank=True)
    client_contact_email = models.EmailField(_("client contact email"), max_length=320, blank=True)
    job_title = models.CharField(_("job title"), max_length=160, blank=True)
    start_date = models.DateField(_("start date"), null=True, blank=True)
    recruiter = models.ForeignKey(
        RecruiterProfile,
        verbose_name=_("recruiter"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="placements",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "external_ref"], name="placement_ref_unique_per_agency"
            )
        ]
        indexes = [
            models.Index(fields=["agency", "-start_date"], name="placement_agency_start"),
            models.Index(fields=["agency", "candidate_email"], name="placement_candidate_email"),
            models.Index(fields=["agency", "client_contact_email"], name="placement_client_email"),
        ]

    def __str__(self) -> str:
        parts = [self.candidate_name]
        if self.client_company:
            parts.append(f"@ {self.client_company}")
        if self.external_ref:
            parts.append(f"({self.external_ref})")
        return " ".join(parts)

    def save(self, *args, **kwargs):
        self.external_ref = (self.external_ref or "").strip() or None
        self.candidate_email = self.candidate_email.strip().lower()
        self.client_contact_email = self.client_contact_email.strip().lower()
        super().save(*args, **kwargs)

    def records_address(self, email: str) -> bool:
        """Whether `email` is this placement's candidate's or client contact's address: the
        same mailbox (case and plus tag aside)."""
        reviewer = mailbox(email) if email else ""
        return bool(reviewer) and reviewer in {
            mailbox(e) for e in (self.candidate_email, self.client_contact_email) if e
        }

    def names_someone_else(self, email: str) -> bool:
        """Whether this placement records its candidate's or client contact's address and
        `email` is neither: a reference alone then does not say the reviewer was part of it
        (whoever sent the trigger email chose both the reference and the recipient)."""
        recorded = bool(self.candidate_email or self.client_contact_email)
        return recorded and not self.records_address(email)


class VerificationSettings(models.Model):
    """How an agency verifies: today one switch, automatic verification on an exact reference."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="verification")
    auto_verify_exact_ref = models.BooleanField(
        _("verify automatically when the placement reference matches exactly"),
        default=False,
        help_text=_(
            "When an ATS email names a placement reference that exists in Placements, its "
            "review is verified against that placement without waiting for an admin, unless "
            "the placement records its candidate's or client's email and the reviewer has "
            "neither."
        ),
    )

    def __str__(self) -> str:
        return f"Verification settings for {self.agency}"

    @classmethod
    def for_agency(cls, agency) -> "VerificationSettings":
        row, _ = cls.objects.get_or_create(agency=agency)
        return row


class PlacementImport(models.Model):
    """One uploaded CSV file, processed by the worker in chunks so a page can show progress."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Finished")
        FAILED = "failed", _("Failed")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="placement_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=200, blank=True)
    content = models.TextField(help_text=_("The uploaded CSV; cleared once imported."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="placement_import_due")]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
