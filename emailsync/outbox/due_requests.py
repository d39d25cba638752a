"""Review requests that have fallen due get their email in the outbox, as a worker claims work.

A review request is made — by Email Sync, the setup test, the API or an admin — as one row with
the time it may go out. Its email joins the outbox only when that time comes, in the worker's
claiming transaction: a busy listener writes one row fewer per person asked (the row, its
indexes and two foreign-key checks were a sixth of the database's work per trigger email), and
an edit, a cancellation or "send now" made while the request waits changes one row, not two.

`queued_at` marks a request whose email exists. Two workers releasing at once cannot both queue
one request: on PostgreSQL each takes the rows it releases with `FOR UPDATE SKIP LOCKED` (one
that was released meanwhile no longer matches `queued_at IS NULL` when the lock is granted), and
on SQLite the claiming transaction holds the database's write lock. A request that already has
its email without `queued_at` (made by the previous release while it still ran beside this one
during an upgrade) is never queued again.

On PostgreSQL the release also takes its agencies `FOR KEY SHARE SKIP LOCKED`, the lock the
new rows' foreign keys take at COMMIT anyway: an agency being deleted (its row held FOR UPDATE
by `privacy.agencies.delete_agency`) is skipped, where taking that lock at COMMIT, while
holding requests the deletion waits for, would deadlock the two.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Exists, Min, OuterRef

from emailsync.agencies.models import Agency
from emailsync.review_requests.models import ReviewRequest

from .models import OutboundEmail, new_message_id

REQUEST_KIND = OutboundEmail.Kind.REVIEW_REQUEST
COLUMNS = ("id", "agency_id", "email", "name", "send_after")


def waiting(now: datetime):
    """Scheduled requests whose time has come and whose email is not queued yet."""
    queued = OutboundEmail.objects.filter(review_request=OuterRef("pk"), kind=REQUEST_KIND)
    return ReviewRequest.objects.filter(
        ~Exists(queued),
        status=ReviewRequest.Status.SCHEDULED,
        queued_at__isnull=True,
        send_after__lte=now,
    )


def release_due(now: datetime, limit: int) -> int:
    """Queue the emails of up to `limit` due requests, longest-waiting first; returns how many.
    Call it inside the transaction that then claims outbox rows, so they go out at once."""
    if connection.vendor == "postgresql":
        return release_due_postgresql(now, limit)
    # SQLite: the claiming transaction already holds the write lock.
    found = list(waiting(now).order_by("send_after", "id").values_list(*COLUMNS)[:limit])
    if not found:
        return 0
    OutboundEmail.objects.bulk_create(
        OutboundEmail(
            kind=REQUEST_KIND,
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


def release_due_postgresql(now: datetime, limit: int) -> int:
    """The same in one statement: lock the due requests with their agencies (see the module's
    docstring; Django locks only FOR UPDATE or FOR NO KEY UPDATE), mark them and insert their
    emails, which take the given Message-IDs in the requests' order."""
    quote = connection.ops.quote_name
    requests = quote(ReviewRequest._meta.db_table)
    emails = quote(OutboundEmail._meta.db_table)
    given = {
        "kind": ("%s", [REQUEST_KIND]),
        "template": ("%s", ["review_request"]),
        "agency_id": ("d.agency_id", []),
        "review_request_id": ("d.id", []),
        "to_email": ("d.email", []),
        "to_name": ("d.name", []),
        "send_after": ("d.send_after", []),  # its place in the queue is its own due time
        "message_id": ("ids.m", []),
        "created_at": ("%s", [now]),
    }
    columns, values, params = [], [], []
    for f in OutboundEmail._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(quote(f.column))
        value, value_params = given.get(f.attname) or (
            "%s",
            [f.get_db_prep_save(f.get_default(), connection)],
        )
        values.append(value)
        params.extend(value_params)
    statement = (
        "WITH due AS MATERIALIZED ("  # noqa: S608
        "SELECT r.id, r.agency_id, r.email, r.name, r.send_after "
        f"FROM {requests} r JOIN {quote(Agency._meta.db_table)} a ON a.id = r.agency_id "
        "WHERE r.status = %s AND r.queued_at IS NULL AND r.send_after <= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {emails} e "
        "WHERE e.review_request_id = r.id AND e.kind = %s) "
        "ORDER BY r.send_after, r.id LIMIT %s "
        "FOR UPDATE OF r SKIP LOCKED FOR KEY SHARE OF a SKIP LOCKED), "
        f"marked AS (UPDATE {requests} SET queued_at = %s FROM due WHERE {requests}.id = due.id), "
        "numbered AS (SELECT due.*, row_number() OVER (ORDER BY send_after, id) AS n FROM due) "
        f"INSERT INTO {emails} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM numbered d "
        "JOIN unnest(%s::text[]) WITH ORDINALITY AS ids(m, n) ON ids.n = d.n"
    )
    message_ids = [new_message_id() for _ in range(limit)]
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [ReviewRequest.Status.SCHEDULED, now, REQUEST_KIND, limit, now, *params, message_ids],
        )
        return cursor.rowcount


def oldest_waiting_age(now: datetime) -> timedelta | None:
    """How long the longest-waiting due request whose email is not queued yet has waited."""
    oldest = waiting(now).aggregate(oldest=Min("send_after"))["oldest"]
    return (now - oldest) if oldest else None
