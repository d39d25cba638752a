from django.db import models
from django.utils import timezone


class DevelopmentMessage(models.Model):
    """An email the platform would have sent, kept for the development outbox (/dev/outbox/).

    Only our own outgoing mail is kept here, and only when no mail server is configured with
    DEBUG on; trigger emails from agencies never come near this table.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sender = models.CharField(max_length=400)
    recipients = models.TextField()
    subject = models.CharField(max_length=400)
    raw = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.subject
