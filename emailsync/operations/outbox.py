"""The development outbox: an email backend that keeps messages in the database to read in a
browser at /dev/outbox/, so `make run` walks the whole journey without a mail server."""

import email
import email.header
import email.policy

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

from .models import DevelopmentMessage


class DevelopmentOutboxBackend(BaseEmailBackend):
    def __init__(self, *args, **kwargs):
        if not settings.DEBUG and not getattr(settings, "TESTING", False):
            raise ImproperlyConfigured("The development outbox cannot be used with DEBUG off.")
        super().__init__(*args, **kwargs)

    def send_messages(self, email_messages):
        rows = []
        for message in email_messages:
            mime = message.message()
            rows.append(
                DevelopmentMessage(
                    sender=readable(mime.get("From", message.from_email)),
                    recipients=", ".join(readable(r) for r in message.recipients()),
                    subject=readable(mime.get("Subject", ""))[:400],
                    raw=mime.as_string(),
                )
            )
        DevelopmentMessage.objects.bulk_create(rows)
        return len(rows)


def readable(value) -> str:
    """A header as a person reads it: RFC 2047 words (`=?utf-8?b?…?=`) decoded."""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError):  # a malformed or unknown charset: show it as it is
        return str(value)


def parts(message: DevelopmentMessage) -> dict[str, str]:
    """The text and HTML bodies of a kept message, decoded."""
    # Parsed from bytes: 8-bit UTF-8 parts parsed from a str come back with \uXXXX escapes.
    parsed = email.message_from_bytes(message.raw.encode("utf-8"), policy=email.policy.default)
    found = {}
    for part in parsed.walk():
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html") and kind not in found and not part.is_attachment():
            found[kind] = part.get_content()
    return found
