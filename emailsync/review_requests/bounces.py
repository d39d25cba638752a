"""Bounces: every review request goes out with a return path that names it, so a delivery status
notification tells us which request failed without trusting anything the remote server says.

The return path is `bounce-<request id>-<mac>@<EMAILSYNC_INBOUND_DOMAIN>` (VERP). The MAC is an
HMAC of the id under SECRET_KEY, lower-case hex because mail systems may lower-case local parts,
so nobody can forge a bounce that suppresses someone else's address.

A hard bounce (RFC 3464 `Status: 5.x.x`) suppresses the address on the whole platform and marks
the request bounced; a soft one (4.x.x, or `Action: delayed`) is only noted on the outbound row.
An abuse report (RFC 5965 `feedback-report`) is a complaint: suppressed like a hard bounce.
"""

import email
import email.policy
import logging
import re
from email.message import Message

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .models import ReviewRequest, Suppression

log = logging.getLogger("emailsync.bounces")

MAC_LENGTH = 16  # hex digits: 64 bits
STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Request states after which a hard bounce changes nothing the reviewer can see.
FINAL = {ReviewRequest.Status.COMPLETED, ReviewRequest.Status.CANCELLED}


def signature(purpose: str, ident: int) -> str:
    digest = salted_hmac(f"emailsync.{purpose}", str(ident), algorithm="sha256").hexdigest()
    return digest[:MAC_LENGTH]


def signed_local_part(purpose: str, ident: int) -> str:
    return f"{purpose}-{ident}-{signature(purpose, ident)}"


def verify_local_part(purpose: str, local: str) -> int | None:
    """The id signed into `purpose-<id>-<mac>`, or None if it is not one of ours."""
    match = re.fullmatch(
        rf"{re.escape(purpose)}-(\d{{1,18}})-([0-9a-f]{{{MAC_LENGTH}}})", local.strip().lower()
    )
    if not match:
        return None
    ident = int(match.group(1))
    return ident if constant_time_compare(match.group(2), signature(purpose, ident)) else None


def request_id_of(request_or_outbound) -> int:
    """A ReviewRequest's id, or the id of the request an OutboundEmail belongs to."""
    request_id = getattr(request_or_outbound, "review_request_id", None)
    if request_id is not None:
        return request_id
    if isinstance(request_or_outbound, ReviewRequest):
        return request_or_outbound.pk
    raise ValueError("Only emails that belong to a review request carry a bounce address.")


def bounce_local_part(request_or_outbound) -> str:
    """`bounce-<request id>-<mac>`: the local part of the VERP return path."""
    return signed_local_part("bounce", request_id_of(request_or_outbound))


def verify_bounce_local(local: str) -> int | None:
    """The review request id in a bounce address's local part, or None if it is not genuine.

    Cheap and database-free, so the SMTP listener can answer RCPT with it.
    """
    return verify_local_part("bounce", local)


def delivery_status(message: Message) -> tuple[str, str, str]:
    """(status code, action, diagnostic) of the first recipient block of a DSN, or blanks."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if isinstance(blocks, str):  # some parsers leave it as text
            blocks = [email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", blocks)]
        for block in blocks[1:] or blocks:
            status = str(block.get("Status", "")).strip()
            action = str(block.get("Action", "")).strip().lower()
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            if status or action:
                match = STATUS_RE.search(status)
                return (match.group(0) if match else ""), action, diagnostic[:300]
    return "", "", ""


def is_feedback_report(message: Message) -> bool:
    return message.get_content_type() == "multipart/report" and (
        message.get_param("report-type", "").lower() == "feedback-report"
        or any(p.get_content_type() == "message/feedback-report" for p in message.walk())
    )


def process_bounce(local: str, raw: bytes) -> str:
    """Act on a message received at a bounce address; returns a short outcome for the logs.

    Outcomes: "hard-bounce", "soft-bounce", "complaint", "ignored: <why>", "rejected: <why>".
    Idempotent: a second copy of the same DSN changes nothing more.
    """
    request_id = verify_bounce_local(local)
    if request_id is None:
        return "rejected: bad signature"
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    request = ReviewRequest.objects.filter(pk=request_id).first()
    if request is None:
        return "ignored: unknown request"
    if is_feedback_report(message):
        return record_complaint(request)
    if message.get_content_type() != "multipart/report":
        # Out-of-office replies and other chatter sent to the return path.
        return "ignored: not a delivery status notification"
    status, action, diagnostic = delivery_status(message)
    if status.startswith("5") or (not status and action == "failed"):
        return record_hard_bounce(request, status or "5.0.0", diagnostic)
    if status.startswith("4") or action == "delayed":
        note_soft_bounce(request, status or "4.0.0", diagnostic)
        return "soft-bounce"
    if status.startswith("2") or action in {"delivered", "relayed", "expanded"}:
        return "ignored: delivered"
    return "ignored: no status"


def record_hard_bounce(request: ReviewRequest, status: str, diagnostic: str) -> str:
    reason = f"Hard bounce {status}" + (f": {diagnostic}" if diagnostic else "")
    with transaction.atomic():
        suppress_address(request.email, Suppression.Reason.BOUNCED)
        mark_request(request, ReviewRequest.Status.BOUNCED, reason)
    log.info("hard bounce for request %s (%s)", request.pk, status)
    return "hard-bounce"


def record_complaint(request: ReviewRequest, reason: str = "Marked as spam") -> str:
    with transaction.atomic():
        suppress_address(request.email, Suppression.Reason.COMPLAINED)
        cancel_pending(request, "complained")
        if request.status not in FINAL:
            request.status_reason = reason[:300]
            request.save(update_fields=["status_reason"])
    log.info("complaint for request %s", request.pk)
    return "complaint"


def note_soft_bounce(request: ReviewRequest, status: str, diagnostic: str) -> None:
    from emailsync.outbox.models import OutboundEmail

    note = f"Soft bounce {status}" + (f": {diagnostic}" if diagnostic else "")
    OutboundEmail.objects.filter(review_request=request, status=OutboundEmail.Status.SENT).update(
        last_error=note[:1000]
    )
    log.info("soft bounce for request %s (%s)", request.pk, status)


def mark_request(request: ReviewRequest, status: str, reason: str) -> None:
    """Set a terminal delivery state unless the person already completed the review."""
    cancel_pending(request, status)
    if request.status in FINAL:
        return
    request.status, request.status_reason = status, reason[:300]
    request.save(update_fields=["status", "status_reason"])


def cancel_pending(request: ReviewRequest, why: str) -> None:
    """No further email (a reminder, a retry) for this request."""
    from emailsync.outbox.models import OutboundEmail

    OutboundEmail.objects.filter(
        review_request=request,
        status__in=[OutboundEmail.Status.QUEUED],
    ).update(status=OutboundEmail.Status.SKIPPED, status_reason=why[:300], lease_until=None)


def suppress_address(email_address: str, reason: str, now=None) -> int:
    """Suppress an address everywhere and stop whatever is queued for it. Returns rows stopped."""
    from emailsync.outbox.models import OutboundEmail

    now = now or timezone.now()
    Suppression.add(email_address, reason)
    return OutboundEmail.objects.filter(
        to_email=email_address.strip().lower(),
        status=OutboundEmail.Status.QUEUED,
        kind__in=[OutboundEmail.Kind.REVIEW_REQUEST, OutboundEmail.Kind.REMINDER],
    ).update(status=OutboundEmail.Status.SKIPPED, status_reason="suppressed", lease_until=None)
