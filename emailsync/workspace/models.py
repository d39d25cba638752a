"""What the agency app keeps of its own: requests for help sent to the operators, and alerts
about a BCC address used by someone outside the agency."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from emailsync.agencies.models import Agency


class HelpRequest(models.Model):
    """An admin's "get help" message, with the agency's Email Sync diagnostics (never content)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="help_requests")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    message = models.TextField(max_length=4000)
    diagnostics = models.JSONField(default=dict, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Help for {self.agency} ({self.created_at:%Y-%m-%d %H:%M})"


class LeakAlert(models.Model):
    """Someone outside the agency used its BCC address. One per address: the admins are emailed
    when it is created and never again for that address; a rotated (new) address can have its
    own. The Email Sync page and the dashboard show it until it is dismissed or the address is
    rotated. Only the stranger's address and the time are kept, never anything of the email."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="leak_alerts")
    address = models.OneToOneField(
        "inbound.InboundAddress", on_delete=models.CASCADE, related_name="leak_alert"
    )
    trigger = models.ForeignKey(
        "inbound.Trigger", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender = models.EmailField(max_length=320, blank=True)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Leak alert for {self.agency} ({self.received_at:%Y-%m-%d %H:%M})"
