"""Every email the platform sends is first a row here: the database is the queue.

A row is claimed by one worker under a lease, rendered from its template at send time (so an
edit to a scheduled request is what goes out), and marked. Rows outlive crashes: a worker that
dies mid-batch leaves leases that expire, and another worker takes the rows again.
"""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency


class OutboundEmail(models.Model):
    class Kind(models.TextChoices):
        REVIEW_REQUEST = "review_request", _("Review request")
        REMINDER = "reminder", _("Reminder")
        NOTIFICATION = "notification", _("Notification")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    template = models.CharField(max_length=60, help_text=_("emails/<template>/… files"))
    context = models.JSONField(default=dict, blank=True)
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="outbound_emails"
    )
    review_request = models.ForeignKey(
        "review_requests.ReviewRequest",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="emails",
    )
    to_email = models.EmailField(max_length=320)
    to_name = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    status_reason = models.CharField(max_length=300, blank=True)
    send_after = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text=_("After a transient failure: not before this moment.")
    )
    last_error = models.TextField(blank=True, help_text=_("The mail server's last reply."))
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    provider_message_id = models.CharField(
        max_length=200, blank=True, db_index=True, help_text=_("The ESP's id, for its webhooks.")
    )
    message_id = models.CharField(max_length=200, unique=True, editable=False)
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["send_after", "id"]
        indexes = [
            models.Index(fields=["status", "send_after"], name="outbox_due"),
            models.Index(fields=["status", "lease_until"], name="outbox_lease"),
            # /metrics: sends per minute over the last few minutes.
            models.Index(fields=["status", "sent_at"], name="outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to_email} ({self.status})"

    def save(self, *args, **kwargs):
        if not self.message_id:
            self.message_id = new_message_id()
        super().save(*args, **kwargs)


def new_message_id() -> str:
    """Stable per email: retries of the same row reuse it, so receivers can dedupe."""
    domain = settings.EMAILSYNC_FROM_EMAIL.rpartition("@")[2] or "emailsync.localhost"
    return f"<{secrets.token_hex(16)}@{domain}>"


def enqueue(
    kind: str,
    *,
    to_email: str,
    template: str,
    context: dict | None = None,
    agency=None,
    review_request=None,
    to_name: str = "",
    send_after=None,
    dedupe_key: str | None = None,
) -> OutboundEmail:
    """Queue an email; with a `dedupe_key`, queueing the same email twice queues it once."""
    fields = dict(
        kind=kind,
        to_email=to_email.strip().lower(),
        to_name=to_name[:120],
        template=template,
        context=context or {},
        agency=agency,
        review_request=review_request,
        send_after=send_after or timezone.now(),
    )
    if dedupe_key:
        row, _ = OutboundEmail.objects.get_or_create(dedupe_key=dedupe_key, defaults=fields)
        return row
    row = OutboundEmail(**fields)
    row.save()
    return row


def email_admins(agency, template: str, context: dict, dedupe_key: str, send_after=None) -> int:
    """Queue one notification to each of the agency's admins (never its recruiters); each
    admin's copy is deduplicated on `dedupe_key` plus their id. Returns how many were queued."""
    admins = list(agency.admins())
    for admin in admins:
        enqueue(
            OutboundEmail.Kind.NOTIFICATION,
            to_email=admin.email,
            to_name=admin.full_name,
            template=template,
            context=context,
            agency=agency,
            send_after=send_after,
            dedupe_key=f"{dedupe_key}:{admin.pk}",
        )
    return len(admins)


class PeriodicJob(models.Model):
    """A recurring task (reminders, expiry, purges), claimed like an email so that one worker
    runs each tick however many workers there are."""

    name = models.CharField(max_length=40, unique=True)
    next_run_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (next {self.next_run_at:%Y-%m-%d %H:%M})"


class WorkerHeartbeat(models.Model):
    """When each worker last went round its loop: `/health` and `/metrics` read the newest.

    One row per worker name, upserted at most every `HEARTBEAT_INTERVAL` seconds (one query).
    Rows of workers gone for a day are pruned when a worker starts.
    """

    worker = models.CharField(max_length=80, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.worker} (seen {self.seen_at:%Y-%m-%d %H:%M:%S})"
