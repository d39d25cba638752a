"""The open API's data: the agency's choice of integration method, API keys, idempotency records,
and outgoing webhooks (endpoints, deliveries and each delivery attempt)."""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency
from emailsync.review_requests.models import EmailSyncSettings

KEY_PREFIX = "esk_"


class ApiSettings(models.Model):
    """How the agency collects: Email Sync, the API, or both. Agency-wide; only admins change it."""

    class Method(models.TextChoices):
        EMAIL_SYNC = "email_sync", _("Email Sync only")
        API = "api", _("ATS integration (API) only")
        BOTH = "both", _("Email Sync and the API")

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="api_settings")
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.EMAIL_SYNC)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "API settings"
        verbose_name_plural = "API settings"

    def __str__(self) -> str:
        return f"{self.agency}: {self.method}"

    @classmethod
    def for_agency(cls, agency_or_id) -> "ApiSettings":
        agency_id = getattr(agency_or_id, "pk", agency_or_id)
        row, _ = cls.objects.get_or_create(agency_id=agency_id)
        return row

    @property
    def api_enabled(self) -> bool:
        return self.method in (self.Method.API, self.Method.BOTH)

    @property
    def email_sync_allowed(self) -> bool:
        return self.method in (self.Method.EMAIL_SYNC, self.Method.BOTH)


@receiver(post_save, sender=EmailSyncSettings)
def keep_the_method_in_step(sender, instance: EmailSyncSettings, **kwargs) -> None:
    """The collection method is one agency-wide choice: an admin switching Email Sync on from
    its own page while the method says "API only" means the agency now collects both ways."""
    if instance.enabled:
        ApiSettings.objects.filter(
            agency_id=instance.agency_id, method=ApiSettings.Method.API
        ).update(method=ApiSettings.Method.BOTH, changed_at=timezone.now())


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    """A per-agency API key. Only a SHA-256 of the key is kept; `prefix` finds the row."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({KEY_PREFIX}{self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def display(self) -> str:
        return f"{KEY_PREFIX}{self.prefix}_…"

    @classmethod
    def issue(cls, agency, name: str, by=None) -> tuple["ApiKey", str]:
        """A new key; returns the row and the full key, which is shown once and never again."""
        prefix = secrets.token_hex(6)
        raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            agency=agency,
            name=name.strip()[:80],
            prefix=prefix,
            key_hash=hash_key(raw),
            created_by=by,
        )
        agency.record(by, "api.key_created", key.name, key=key.prefix)
        return key, raw

    @classmethod
    def lookup(cls, raw: str) -> "ApiKey | None":
        """The active key `raw` is, or None (unknown, malformed or revoked)."""
        if not raw.startswith(KEY_PREFIX):
            return None
        prefix, sep, _secret = raw[len(KEY_PREFIX) :].partition("_")
        if not sep or len(prefix) != 12:
            return None
        key = cls.objects.select_related("agency").filter(prefix=prefix).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
            return None
        return key if key.active else None

    def revoke(self, by=None) -> bool:
        updated = ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=by
        )
        if updated:
            self.agency.record(by, "api.key_revoked", self.name, key=self.prefix)
        self.refresh_from_db()
        return bool(updated)


class IdempotencyRecord(models.Model):
    """A POST made with an Idempotency-Key, and the response it got (replayed on a retry)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of method, path, body."))
    status_code = models.PositiveSmallIntegerField(default=0, help_text=_("0 while in progress."))
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_once_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"


class WebhookEndpoint(models.Model):
    """An HTTPS address the agency wants told about events, with its signing secret."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=120, blank=True)
    events = models.CharField(
        max_length=300, help_text=_("Comma-separated event types this endpoint receives.")
    )
    secret = models.CharField(max_length=80, editable=False)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def save(self, *args, **kwargs):
        if not self.secret:
            self.secret = new_webhook_secret()
        super().save(*args, **kwargs)

    def event_list(self) -> list[str]:
        return [e for e in self.events.split(",") if e]

    def wants(self, event: str) -> bool:
        return self.active and event in self.event_list()


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookDelivery(models.Model):
    """One event for one endpoint: queued, claimed by a worker under a lease, retried with
    backoff, then delivered or failed. The body is fixed when the event happens."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40, db_index=True)
    body = models.TextField(help_text=_("The exact JSON sent (and signed)."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
            models.Index(fields=["status", "lease_until"], name="webhook_lease"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_endpoint_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the delivery log the admin reads."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.response_status}"
