"""Review requests that have fallen due get their email in the outbox, as a worker claims work.

A review request is made — by Email Sync, the setup test, the API or an admin — as one row with
the time it may go out. Its email joins the outbox only when that time comes, in the worker's
claiming transaction: a busy listener writes one row fewer per person asked (the row, its
indexes and two foreign-key checks were a sixth of the database's work per trigger email), and
an edit, a cancellation or "send now" made while the request waits changes one row, not two.

`queued_at` marks a request whose email exists. Two workers releasing at once cannot both queue
one request: on PostgreSQL each takes the rows it releases with `FOR UPDATE SKIP LOCKED` (one
that was released meanwhile no longer matches `queued_at IS NULL` when the lock is granted), and
on SQLite the claiming transaction holds the database's write lock.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Min

from emailsync.review_requests.models import ReviewRequest

from .models import OutboundEmail, new_message_id


def waiting(now: datetime):
    """Scheduled requests whose time has come and whose email is not queued yet."""
    return ReviewRequest.objects.filter(
        status=ReviewRequest.Status.SCHEDULED, queued_at__isnull=True, send_after__lte=now
    )


def release_due(now: datetime, limit: int) -> int:
    """Queue the emails of up to `limit` due requests, longest-waiting first; returns how many.
    Call it inside the transaction that then claims outbox rows, so they go out at once."""
    due = waiting(now).order_by("send_after", "id")
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    found = list(due.values_list("id", "agency_id", "email", "name", "send_after")[:limit])
    if not found:
        return 0
    OutboundEmail.objects.bulk_create(
        OutboundEmail(
            kind=OutboundEmail.Kind.REVIEW_REQUEST,
            template="review_request",
            agency_id=agency_id,
            review_request_id=pk,
            to_email=email,
            to_name=name,
            send_after=send_after,  # its place in the queue is its own due time
            message_id=new_message_id(),
            created_at=now,
        )
        for pk, agency_id, email, name, send_after in found
    )
    ReviewRequest.objects.filter(id__in=[row[0] for row in found]).update(queued_at=now)
    return len(found)


def oldest_waiting_age(now: datetime) -> timedelta | None:
    """How long the longest-waiting due request whose email is not queued yet has waited."""
    oldest = waiting(now).aggregate(oldest=Min("send_after"))["oldest"]
    return (now - oldest) if oldest else None
