"""ESP events through django-anymail's tracking webhooks (`/anymail/<esp>/tracking/`).

A hard bounce, a complaint or an unsubscribe reported by the ESP has the same effect as our own
DSN parsing and unsubscribe page: the address is suppressed platform-wide, queued mail to it
stops, and the request is marked; a soft bounce is only noted, as a 4.x.x DSN is. The row is
found by the metadata we attach (`outbound_id`), else by the ESP's message id, else only the
address is suppressed.
"""

import logging

from anymail.signals import EventType, tracking
from django.db import DatabaseError
from django.dispatch import receiver

from emailsync.operations.outages import NotRecorded
from emailsync.review_requests.bounces import mark_request, note_soft_bounce, suppress_address
from emailsync.review_requests.models import ReviewRequest, Suppression

from .models import OutboundEmail

log = logging.getLogger("emailsync.tracking")

HARD_REJECTS = {"bounced", "invalid"}

# SparkPost's soft bounce classes (Soft Bounce, DNS Failure, Mailbox Full, Too Large, Timeout,
# Generic Bounce, Transient Failure).
SPARKPOST_SOFT_CLASSES = {"20", "21", "22", "23", "24", "40", "70"}


def is_temporary_bounce(event) -> bool:
    """Whether a "bounced" event is one the ESP itself calls temporary.

    anymail reports several ESPs' soft bounces (a full mailbox, a greylisting block) as
    "bounced", the same as a non-existent mailbox; suppressing on those would stop every
    agency from ever asking the person again, where our own DSN parsing only notes a 4.x.x.
    Each ESP says which it is in its own field of the payload.
    """
    esp = event.esp_event
    if not isinstance(esp, dict):
        return False
    if "RecordType" in esp:  # Postmark
        return esp.get("Type") == "SoftBounce"
    if isinstance(esp.get("bounce"), dict) and "bounceType" in esp["bounce"]:  # Amazon SES
        return esp["bounce"]["bounceType"] != "Permanent"
    if isinstance(esp.get("data"), dict):  # Resend (its bounce types are SES's)
        bounce = esp["data"].get("bounce") or {}
        return isinstance(bounce, dict) and bounce.get("type", "Permanent") != "Permanent"
    if isinstance(esp.get("msys"), dict):  # SparkPost
        for body in esp["msys"].values():
            if isinstance(body, dict) and "bounce_class" in body:
                return str(body["bounce_class"]) in SPARKPOST_SOFT_CLASSES
        return False
    kind = esp.get("event")
    if kind == "soft_bounce":  # Brevo
        return True
    if kind == "bounce" and "hard_bounce" in esp:  # Mailjet
        return not esp["hard_bounce"]
    if kind == "bounce":  # SendGrid: "blocked" is its temporary kind, "bounce" the permanent
        return esp.get("type") == "blocked"
    return False


def find_row(event) -> OutboundEmail | None:
    metadata = getattr(event, "metadata", None) or {}
    outbound_id = str(metadata.get("outbound_id", ""))
    rows = OutboundEmail.objects.select_related("review_request")
    if outbound_id.isdigit():
        row = rows.filter(pk=int(outbound_id)).first()
        if row is not None:
            return row
    if event.message_id:
        return rows.filter(provider_message_id=str(event.message_id)[:200]).first()
    return None


def handle_event(event) -> str:
    """Apply one normalised anymail tracking event; returns what was done."""
    kind = event.event_type
    row = find_row(event)
    address = (event.recipient or (row.to_email if row else "")).strip().lower()
    request: ReviewRequest | None = row.review_request if row else None
    reject = (getattr(event, "reject_reason", "") or "").lower()
    if kind == EventType.BOUNCED and is_temporary_bounce(event):
        kind = EventType.DEFERRED
    if kind == EventType.BOUNCED or (kind == EventType.REJECTED and reject in HARD_REJECTS):
        outcome, reason, status = (
            "bounced",
            Suppression.Reason.BOUNCED,
            ReviewRequest.Status.BOUNCED,
        )
    elif kind == EventType.COMPLAINED or (kind == EventType.REJECTED and reject == "spam"):
        outcome, reason, status = "complained", Suppression.Reason.COMPLAINED, None
    elif kind == EventType.UNSUBSCRIBED or (
        kind == EventType.REJECTED and reject == "unsubscribed"
    ):
        outcome, reason, status = "unsubscribed", Suppression.Reason.UNSUBSCRIBED, None
    elif kind == EventType.DEFERRED and request is not None:
        note_soft_bounce(request, "4.0.0", (event.description or "")[:200])
        return "soft-bounce"
    else:
        return "ignored"
    if not address:
        return "ignored: no recipient"
    suppress_address(address, reason)
    if request is not None:
        if status:
            detail = event.description or event.mta_response or ""
            mark_request(request, status, f"ESP bounce: {detail}".strip(": "))
        else:
            note = "Marked as spam" if outcome == "complained" else "Unsubscribed"
            request.status_reason = note
            request.save(update_fields=["status_reason"])
    log.info("esp %s event for outbound %s", outcome, row.pk if row else "-")
    return outcome


@receiver(tracking, dispatch_uid="emailsync.outbox.tracking")
def on_tracking(sender, event, esp_name, **kwargs):
    try:
        handle_event(event)
    except DatabaseError:
        raise  # answered 503: the ESP retries later
    except Exception as exc:  # a fault of ours: a 5xx, so the bounce is not lost
        raise NotRecorded(f"{esp_name} event not recorded") from exc
