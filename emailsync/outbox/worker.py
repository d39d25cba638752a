"""The worker: claim due outbox rows, check them again, render, send over one connection, mark.

Delivery is at-least-once with a stable Message-ID per row:

1. **Claim** a batch in one short transaction, which first queues the emails of review requests
   that have just fallen due (due_requests.py): `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL
   (workers never wait for each other), the IMMEDIATE write lock on SQLite (claims serialise).
   Claimed rows become `sending` with a lease. Rows whose lease ran out (a worker died) are due
   again, so nothing is lost.
2. **Check again**: suppression, cancellation, dedupe, Email Sync still on. Otherwise skipped with
   a reason.
3. **Send** the batch over one connection of whatever Django email backend is configured.
4. **Mark** each outcome: sent rows are marked in small groups (`mark_every`), so a worker killed
   with SIGKILL can cause at most that many duplicates when its lease expires; transient errors
   retry with exponential backoff and jitter, permanent ones fail with the server's reply.
"""

import logging
import os
import random
import re
import secrets
import signal
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.dispatch import Signal
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone

from emailsync.operations.outages import database_unavailable, first_line
from emailsync.review_requests.models import (
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
)

from . import jobs
from .due_requests import oldest_waiting_age, release_due, waiting
from .models import OutboundEmail, WorkerHeartbeat
from .rendering import EXPIRY, REQUEST_KINDS, UndeliverableAddress, build_message

log = logging.getLogger("emailsync.worker")

# Sent inside the marking transaction with the ids of review requests that just became `sent`
# (the API app queues its `request.sent` webhooks from it).
requests_sent = Signal()

MAX_ATTEMPTS = 10
BACKOFF_BASE = 60.0  # seconds before the first retry
BACKOFF_CAP = 2 * 60 * 60.0
DEFAULT_LEASE = timedelta(minutes=5)
REAP_INTERVAL = 5.0  # seconds between looks for rows whose lease expired
OUTAGE_LOG_SECONDS = 60.0  # a database outage is logged once a minute while it lasts
HEARTBEAT_INTERVAL = 5.0  # seconds between heartbeat writes (one upsert each)
HEARTBEAT_STALE = timedelta(seconds=60)  # /health calls a worker stale after this
HEARTBEAT_PRUNE = timedelta(days=1)  # rows of workers gone this long are deleted at start
Status = OutboundEmail.Status
RStatus = ReviewRequest.Status

SKIP_REASONS = {
    "suppressed": "The person unsubscribed, or mail to them bounced or was marked as spam.",
    "cancelled": "Cancelled before it was sent.",
    "email_sync_off": "Email Sync was switched off for the agency before sending.",
    "recently_asked": "The agency asked this person within its dedupe window.",
    "not_pending": "The request was no longer waiting to be sent.",
    "not_remindable": "The request was completed, expired, bounced or unsubscribed.",
    "changed": "The request's address was changed after this email was queued.",
}


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with full jitter in the upper half so retries spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling / 2 + random.random() * ceiling / 2)


@dataclass
class Failure:
    permanent: bool
    reply: str
    reconnect: bool = False


def classify(exc: Exception) -> Failure:
    """Whether a send error is worth retrying, and the server's reply to keep."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (450, b""))
        return Failure(code >= 500, f"{code} {_text(text)}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure(
            exc.smtp_code >= 500,
            f"{exc.smtp_code} {_text(exc.smtp_error)}",
            reconnect=exc.smtp_code in (421,),
        )
    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
        return Failure(False, f"connection: {exc}", reconnect=True)
    try:  # ESPs through django-anymail
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:  # pragma: no cover - anymail is a dependency
        AnymailAPIError = AnymailRecipientsRefused = ()  # noqa: N806
    if isinstance(exc, AnymailRecipientsRefused):
        return Failure(True, f"refused: {exc}"[:1000])
    if isinstance(exc, AnymailAPIError):
        code = getattr(exc, "status_code", None) or 0
        return Failure(400 <= code < 500 and code not in (408, 429), f"{code} {exc}"[:1000])
    return Failure(False, f"{type(exc).__name__}: {exc}"[:1000])


# An SMTP server's reply often quotes the recipient ("550 5.1.1 <cara@…>: no such user"). The
# row's last_error keeps it for operators; the log, shipped wherever the host's logs go, does not.
ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")


def redact(reply: str) -> str:
    """`reply` with every email address replaced by [address]."""
    return ADDRESS.sub("[address]", reply)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    batches: int = 0
    jobs: dict = field(default_factory=dict)

    def add(self, other: "Stats") -> None:
        for name in ("claimed", "sent", "retried", "failed", "skipped", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.jobs.update(other.jobs)

    def as_dict(self) -> dict:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "skipped": self.skipped,
            "batches": self.batches,
            "jobs": self.jobs,
        }


def uses_esp(conn) -> bool:
    return type(conn).__module__.startswith("anymail.")


class Worker:
    def __init__(
        self,
        *,
        batch_size: int = 100,
        lease: timedelta = DEFAULT_LEASE,
        mark_every: int = 25,
        name: str | None = None,
        run_jobs: bool = True,
    ):
        self.batch_size = max(1, batch_size)
        self.lease = lease
        self.mark_every = max(1, mark_every)
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.run_jobs = run_jobs
        self.stopping = False
        self._wake = threading.Event()
        self._next_reap = 0.0
        self._next_beat = 0.0
        self._started_at = timezone.now()

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self, *_args) -> None:
        """Finish the batch in hand, then return (SIGTERM / SIGINT)."""
        self.stopping = True
        self._wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def beat(self, force: bool = False) -> bool:
        """Record that this worker is alive: at most every HEARTBEAT_INTERVAL seconds, one
        upsert. Returns whether it wrote."""
        if not force and time.monotonic() < self._next_beat:
            return False
        self._next_beat = time.monotonic() + HEARTBEAT_INTERVAL
        WorkerHeartbeat.objects.bulk_create(
            [
                WorkerHeartbeat(
                    worker=self.name, started_at=self._started_at, seen_at=timezone.now()
                )
            ],
            update_conflicts=True,
            unique_fields=["worker"],
            update_fields=["seen_at"],
        )
        return True

    def run_forever(self, poll: float = 1.0) -> Stats:
        total = Stats()
        log.info("worker %s started (batch %s)", self.name, self.batch_size)
        try:
            WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - HEARTBEAT_PRUNE).delete()
        except Exception:  # the loop below logs and retries database trouble
            log.warning("pruning old worker heartbeats failed", exc_info=True)
        outage_logged: float | None = None  # when the current outage was last logged
        while not self.stopping:
            try:
                stats = self.tick()
                if outage_logged is not None:
                    log.info("database reachable again; worker resumed")
                    outage_logged = None
            except Exception as exc:  # a database outage must not kill the worker: log, wait, retry
                if not database_unavailable(exc):
                    log.exception("worker tick failed")
                elif (
                    outage_logged is None or time.monotonic() - outage_logged >= OUTAGE_LOG_SECONDS
                ):
                    # One line a minute while it lasts, not a traceback every few seconds.
                    log.warning("database unavailable; retrying (%s)", first_line(exc))
                    outage_logged = time.monotonic()
                # A connection the server dropped (a restart, a failover) stays broken until it
                # is closed; Django only closes one inside a failed transaction or around a web
                # request, and the worker has neither. Close it so the next tick reconnects.
                close_old_connections()
                stats = Stats()
                self._wake.wait(min(30.0, poll * 5))
            total.add(stats)
            if not stats.claimed and not self.stopping:
                self._wake.wait(poll)
        log.info("worker %s stopped", self.name)
        return total

    def run_once(self, now: datetime | None = None) -> Stats:
        """Run due jobs and send everything due now, then return (tests and cron)."""
        total = Stats()
        self.beat()
        if self.run_jobs:
            total.jobs = jobs.run_due(self.name, now or timezone.now(), self.lease)
        while not self.stopping:
            stats = self.process_batch(now)
            total.add(stats)
            if not stats.claimed:
                break
        return total

    def tick(self) -> Stats:
        stats = Stats()
        self.beat()
        if self.run_jobs:
            stats.jobs = jobs.run_due(self.name, timezone.now(), self.lease)
        stats.add(self.process_batch())
        return stats

    # -- one batch ---------------------------------------------------------------------------

    def claim(self, now: datetime, fixed: bool = True) -> list[int]:
        # Two index-friendly queries rather than one OR: rows whose lease ran out (a worker
        # died) first, then due rows in send_after order (the outbox_due index).
        expired = OutboundEmail.objects.filter(status=Status.SENDING, lease_until__lt=now)
        due = OutboundEmail.objects.filter(status=Status.QUEUED, send_after__lte=now).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
        skip_locked = connection.features.has_select_for_update_skip_locked
        queries = [due.order_by("send_after", "id")]
        if fixed or time.monotonic() >= self._next_reap:
            # Expired leases are rare; look for them every few seconds, not every batch.
            queries.insert(0, expired.order_by("lease_until", "id"))
            self._next_reap = time.monotonic() + REAP_INTERVAL
        with transaction.atomic():
            self.release(now)
            ids: list[int] = []
            for rows in queries:
                if skip_locked:
                    rows = rows.select_for_update(skip_locked=True)
                ids += rows.values_list("id", flat=True)[: self.batch_size - len(ids)]
                if len(ids) >= self.batch_size:
                    break
            if ids:
                OutboundEmail.objects.filter(id__in=ids).update(
                    status=Status.SENDING,
                    lease_until=now + self.lease,
                    claimed_by=self.name,
                    attempts=F("attempts") + 1,
                )
        return ids

    def release(self, now: datetime) -> None:
        """Queue the emails of requests that fell due, in a savepoint: if that fails (a deadlock,
        a row it cannot write), what is already queued — other requests, notifications,
        password resets — still goes out this tick, and the release is tried again next tick."""
        try:
            with transaction.atomic():
                release_due(now, self.batch_size)
        except DatabaseError:
            log.exception("queueing due review requests failed; sending what is queued")

    def load(self, ids: list[int]) -> list[OutboundEmail]:
        return list(
            OutboundEmail.objects.filter(id__in=ids)
            .select_related(
                "agency",
                "review_request__agency__email_sync",
                "review_request__recruiter__user",
            )
            .prefetch_related("review_request__recruiter__senders")
            .order_by("send_after", "id")
        )

    def process_batch(self, now: datetime | None = None) -> Stats:
        fixed_now = now
        now = now or timezone.now()
        stats = Stats()
        ids = self.claim(now, fixed=fixed_now is not None)
        if not ids:
            return stats
        stats.claimed, stats.batches = len(ids), 1
        started = time.monotonic()
        rows = self.load(ids)
        skips = recheck(rows, now)
        skips.update(changed_since_queued(rows, skips))
        to_send = []
        for row in rows:
            if row.pk in skips:
                self.mark_skipped(row, skips[row.pk])
                stats.skipped += 1
            else:
                to_send.append(row)
        if to_send:
            self.send(to_send, stats, fixed_now)
        log.info(
            "batch of %s: sent %s, retry %s, failed %s, skipped %s in %.2fs",
            stats.claimed,
            stats.sent,
            stats.retried,
            stats.failed,
            stats.skipped,
            time.monotonic() - started,
        )
        return stats

    def send(self, rows: list[OutboundEmail], stats: Stats, fixed_now) -> None:
        admin_emails = agency_admin_emails(
            {r.review_request.agency_id for r in rows if r.review_request_id}
        )
        pending: list[tuple[OutboundEmail, str]] = []  # sent, not yet marked
        conn = get_connection(fail_silently=False)
        esp = uses_esp(conn)
        try:
            conn.open()
        except Exception as exc:  # the server is down: the whole batch retries later
            failure = classify(exc)
            for row in rows:
                self.mark_failure(row, Failure(False, failure.reply), fixed_now or timezone.now())
            stats.retried += len(rows)
            return
        try:
            for row in rows:
                try:
                    message = build_message(row, admin_emails=admin_emails, esp=esp)
                except (TemplateDoesNotExist, TemplateSyntaxError, ValueError) as exc:
                    # An address we cannot send to (it needs SMTPUTF8) explains itself.
                    why = exc if isinstance(exc, UndeliverableAddress) else f"cannot render: {exc}"
                    self.mark_failure(
                        row,
                        Failure(True, f"{why}"[:1000]),
                        fixed_now or timezone.now(),
                    )
                    stats.failed += 1
                    continue
                try:
                    conn.send_messages([message])
                except Exception as exc:
                    failure = classify(exc)
                    self.flush(pending, fixed_now)
                    if self.mark_failure(row, failure, fixed_now or timezone.now()):
                        stats.failed += 1
                    else:
                        stats.retried += 1
                    if failure.reconnect:
                        reopen(conn)
                    continue
                provider_id = getattr(getattr(message, "anymail_status", None), "message_id", None)
                pending.append((row, "" if provider_id is None else str(provider_id)))
                stats.sent += 1
                if len(pending) >= self.mark_every:
                    self.flush(pending, fixed_now)
        finally:
            self.flush(pending, fixed_now)
            try:
                conn.close()
            except Exception:  # closing a dead connection may fail; the mail is already out
                log.debug("closing the mail connection failed", exc_info=True)

    # -- marking -------------------------------------------------------------------------------

    def flush(self, pending: list[tuple[OutboundEmail, str]], fixed_now) -> None:
        if not pending:
            return
        now = fixed_now or timezone.now()
        ids = [row.pk for row, _ in pending]
        requests = [
            r.review_request_id
            for r, _ in pending
            if r.kind == OutboundEmail.Kind.REVIEW_REQUEST and r.review_request_id
        ]
        reminders = [
            r.review_request_id
            for r, _ in pending
            if r.kind == OutboundEmail.Kind.REMINDER and r.review_request_id
        ]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Marks need not wait for the disk: a mark lost in a database crash only means
                # the row is sent again after its lease (at-least-once, same Message-ID).
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            marked = OutboundEmail.objects.filter(id__in=ids, claimed_by=self.name).update(
                status=Status.SENT,
                sent_at=now,
                lease_until=None,
                last_error="",
                next_attempt_at=None,
            )
            for row, provider_id in pending:
                if provider_id:
                    OutboundEmail.objects.filter(pk=row.pk).update(
                        provider_message_id=provider_id[:200]
                    )
            if requests:
                scheduled = ReviewRequest.objects.filter(id__in=requests, status=RStatus.SCHEDULED)
                if requests_sent.has_listeners():
                    requests = list(scheduled.values_list("id", flat=True))
                    scheduled = scheduled.filter(id__in=requests)
                scheduled.update(
                    status=RStatus.SENT, sent_at=now, expires_at=now + EXPIRY, status_reason=""
                )
                if requests and requests_sent.has_listeners():
                    try:  # a receiver's failure must never unmark sent mail (duplicates)
                        with transaction.atomic():
                            requests_sent.send(sender=type(self), request_ids=requests, now=now)
                    except Exception:
                        log.exception("requests_sent receivers failed")
            if reminders:
                ReviewRequest.objects.filter(id__in=reminders).update(reminded_at=now)
                ReviewRequest.objects.filter(id__in=reminders, status=RStatus.SENT).update(
                    status=RStatus.REMINDED
                )
        if marked != len(ids):
            log.warning("%s of %s sent rows had lost their lease", len(ids) - marked, len(ids))
        pending.clear()

    def mark_failure(self, row: OutboundEmail, failure: Failure, now) -> bool:
        """Retry later or fail for good; returns True if the row failed permanently."""
        permanent = failure.permanent or row.attempts >= MAX_ATTEMPTS
        reply = failure.reply[:1000]
        mine = OutboundEmail.objects.filter(pk=row.pk, claimed_by=self.name)
        if permanent:
            with transaction.atomic():
                mine.update(
                    status=Status.FAILED,
                    status_reason=reply[:300],
                    last_error=reply,
                    lease_until=None,
                )
                if row.kind == OutboundEmail.Kind.REVIEW_REQUEST and row.review_request_id:
                    ReviewRequest.objects.filter(
                        pk=row.review_request_id, status=RStatus.SCHEDULED
                    ).update(status=RStatus.FAILED, status_reason=reply[:300])
            log.warning("outbox %s failed: %s", row.pk, redact(reply))
        else:
            mine.update(
                status=Status.QUEUED,
                next_attempt_at=now + backoff(row.attempts),
                last_error=reply,
                lease_until=None,
            )
            log.info("outbox %s will retry (attempt %s): %s", row.pk, row.attempts, redact(reply))
        return permanent

    def mark_skipped(self, row: OutboundEmail, code: str) -> None:
        reason = SKIP_REASONS.get(code, code)
        status = Status.CANCELLED if code == "cancelled" else Status.SKIPPED
        with transaction.atomic():
            OutboundEmail.objects.filter(pk=row.pk, claimed_by=self.name).update(
                status=status, status_reason=code, lease_until=None
            )
            if row.kind == OutboundEmail.Kind.REVIEW_REQUEST and row.review_request_id:
                ReviewRequest.objects.filter(
                    pk=row.review_request_id, status=RStatus.SCHEDULED
                ).update(status=RStatus.SKIPPED, status_reason=reason[:300])


def reopen(conn) -> None:
    try:
        conn.close()
    except Exception:  # already broken
        log.debug("close before reconnect failed", exc_info=True)
    try:
        conn.open()
    except Exception:  # the next send fails and retries; nothing more to do here
        log.warning("reconnecting to the mail server failed", exc_info=True)


def agency_admin_emails(agency_ids) -> dict[int, str]:
    from emailsync.agencies.models import User

    found: dict[int, str] = {}
    rows = (
        User.objects.filter(agency_id__in=agency_ids, role=User.Role.ADMIN, is_active=True)
        .order_by("id")
        .values_list("agency_id", "email")
    )
    for agency_id, email in rows:
        found.setdefault(agency_id, email)
    return found


def sync_settings(request: ReviewRequest) -> EmailSyncSettings | None:
    try:
        return request.agency.email_sync
    except EmailSyncSettings.DoesNotExist:
        return None


def recheck(rows: list[OutboundEmail], now: datetime) -> dict[int, str]:
    """Rows that must not go out now, with the reason code. A few queries per batch."""
    skips: dict[int, str] = {}
    request_rows = [r for r in rows if r.kind in REQUEST_KINDS and r.review_request_id]
    if not request_rows:
        return skips
    suppressed = Suppression.suppressed({r.to_email for r in request_rows})
    firsts = [r for r in request_rows if r.kind == OutboundEmail.Kind.REVIEW_REQUEST]
    asked = recently_sent(firsts, now)
    for row in request_rows:
        request = row.review_request
        sync = sync_settings(request)
        if row.to_email in suppressed or request.email in suppressed:
            skips[row.pk] = "suppressed"
        elif request.status == RStatus.CANCELLED:
            skips[row.pk] = "cancelled"
        elif request.source in (Source.EMAIL_SYNC, Source.SETUP_TEST) and not (
            sync and sync.enabled
        ):
            skips[row.pk] = "email_sync_off"
        elif row.kind == OutboundEmail.Kind.REVIEW_REQUEST:
            if request.status != RStatus.SCHEDULED:
                skips[row.pk] = "not_pending"
            elif request.pk in asked:
                skips[row.pk] = "recently_asked"
        elif not remindable(request, now):
            skips[row.pk] = "not_remindable"
    return skips


def changed_since_queued(rows: list[OutboundEmail], skips: dict[int, str]) -> dict[int, str]:
    """Read the requests again, locked, just before sending (one query per batch): an admin's
    cancel or edit that committed after the rows were loaded must win over the loaded copy."""
    request_rows = [
        r for r in rows if r.kind in REQUEST_KINDS and r.review_request_id and r.pk not in skips
    ]
    if not request_rows:
        return {}
    with transaction.atomic():
        current = {
            pk: (status, email)
            for pk, status, email in ReviewRequest.objects.select_for_update()
            .filter(id__in={r.review_request_id for r in request_rows})
            .values_list("id", "status", "email")
        }
    found: dict[int, str] = {}
    for row in request_rows:
        status, email = current.get(row.review_request_id, (RStatus.CANCELLED, ""))
        if status == RStatus.CANCELLED:
            found[row.pk] = "cancelled"
        elif row.kind == OutboundEmail.Kind.REVIEW_REQUEST and status != RStatus.SCHEDULED:
            found[row.pk] = "not_pending"
        elif email.lower() != row.to_email.lower():
            found[row.pk] = "changed"
    return found


def remindable(request: ReviewRequest, now: datetime) -> bool:
    if request.status not in (RStatus.SENT, RStatus.OPENED) or request.completed_at:
        return False
    return not (request.expires_at and request.expires_at <= now)


def recently_sent(rows: list[OutboundEmail], now: datetime) -> set[int]:
    """Requests whose address the same agency already emailed within its dedupe window."""
    requests = [r.review_request for r in rows if r.review_request.source != Source.SETUP_TEST]
    if not requests:
        return set()
    windows = {}
    for request in requests:
        sync = sync_settings(request)
        windows[request.agency_id] = timedelta(days=sync.dedupe_days if sync else 90)
    earliest = now - max(windows.values())
    previous = (
        ReviewRequest.objects.filter(
            agency_id__in=windows,
            email__in={r.email for r in requests},
            sent_at__gte=earliest,
        )
        .exclude(source=Source.SETUP_TEST)
        .exclude(id__in=[r.pk for r in requests])
        .values_list("agency_id", "email", "sent_at")
    )
    last_sent: dict[tuple[int, str], datetime] = {}
    for agency_id, email, sent_at in previous:
        key = (agency_id, email)
        last_sent[key] = max(sent_at, last_sent.get(key, sent_at))
    return {
        r.pk
        for r in requests
        if (r.agency_id, r.email) in last_sent
        and last_sent[(r.agency_id, r.email)] >= now - windows[r.agency_id]
    }


# -- what the operator watches ----------------------------------------------------------------


def oldest_due_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest due-but-unsent review request or reminder has been waiting.

    The 72-hour promise holds while this stays small; it is the figure to alert on.
    """
    now = now or timezone.now()
    oldest = OutboundEmail.objects.filter(
        status__in=[Status.QUEUED, Status.SENDING],
        kind__in=list(REQUEST_KINDS),
        send_after__lte=now,
    ).aggregate(oldest=Min("send_after"))["oldest"]
    ages = [now - oldest if oldest else None, oldest_waiting_age(now)]
    return max((age for age in ages if age is not None), default=None)


def heartbeat_age(now: datetime | None = None) -> timedelta | None:
    """How long ago the most recently seen worker went round its loop (None: never). One query."""
    now = now or timezone.now()
    seen = WorkerHeartbeat.objects.aggregate(seen=Max("seen_at"))["seen"]
    return max(timedelta(0), now - seen) if seen else None


def queue_status(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    age = oldest_due_age(now)
    counts = dict.fromkeys(Status.values, 0)
    for status, n in OutboundEmail.objects.order_by().values_list("status").annotate(n=Count("id")):
        counts[status] = n
    due = OutboundEmail.objects.filter(status=Status.QUEUED, send_after__lte=now).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    overdue = ReviewRequest.objects.filter(status=RStatus.SCHEDULED, deadline__lt=now)
    return {
        "now": now.isoformat(),
        "oldest_due_seconds": round(age.total_seconds()) if age is not None else None,
        # A due request's email is queued as a worker claims work: count those too.
        "due": due.count() + waiting(now).count(),
        "retrying": OutboundEmail.objects.filter(
            status=Status.QUEUED, next_attempt_at__gt=now
        ).count(),
        "counts": counts,
        # Scheduled requests whose email is not in the outbox yet (it is queued when due).
        "waiting_requests": ReviewRequest.objects.filter(
            status=RStatus.SCHEDULED, queued_at__isnull=True
        ).count(),
        "failed_last_24h": OutboundEmail.objects.filter(
            status=Status.FAILED, created_at__gte=now - timedelta(days=1)
        ).count(),
        "scheduled_past_72h_deadline": overdue.count(),
        "jobs": jobs.job_status(),
        "email_backend": settings.EMAIL_BACKEND,
    }
