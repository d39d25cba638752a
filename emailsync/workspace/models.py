"""What the agency app keeps of its own: requests for help sent to the operators."""

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
