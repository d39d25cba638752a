"""A pending data request from the public form: the address, what was asked, and a hashed link.

The link's token is never stored, only its SHA-256, and the row is deleted when the link is used
or, once expired, by the next request (nothing else keeps it).
"""

import hashlib
import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

LINK_LIFETIME = timedelta(hours=24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DataRequest(models.Model):
    class Action(models.TextChoices):
        EXPORT = "export", _("Send me a copy of my data")
        ERASE = "erase", _("Erase my data")

    email = models.EmailField(max_length=320)
    action = models.CharField(max_length=10, choices=Action.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.action} request {self.pk}"

    @classmethod
    def open(cls, email: str, action: str, now=None) -> tuple["DataRequest", str]:
        now = now or timezone.now()
        cls.objects.filter(expires_at__lte=now).delete()
        token = secrets.token_urlsafe(32)
        row = cls.objects.create(
            email=email.strip().lower(),
            action=action,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
        return row, token

    @classmethod
    def find(cls, token: str, now=None) -> "DataRequest | None":
        now = now or timezone.now()
        return cls.objects.filter(token_hash=token_hash(token), expires_at__gt=now).first()
