"""Periodic jobs: reminders, expiry and retention purges.

Each job is a row in `PeriodicJob`, claimed like an email (SKIP LOCKED on PostgreSQL, the write
lock on SQLite) under a lease, so each tick runs once however many workers are running, and a
crashed worker's job runs again once its lease expires. Every job takes `now`, so tests can travel
in time instead of sleeping.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source, Suppression
from emailsync.review_requests.scheduling import next_business_moment

from .models import OutboundEmail, PeriodicJob, enqueue

log = logging.getLogger("emailsync.jobs")

RStatus = ReviewRequest.Status
REMINDABLE = [RStatus.SENT, RStatus.OPENED]
LIVE_LINKS = [RStatus.SENT, RStatus.OPENED, RStatus.REMINDED]
REQUEST_EXPIRY = timedelta(days=30)
CHUNK = 500


def send_reminders(now: datetime, limit: int = 2000) -> dict:
    """Queue one reminder per request not completed `reminder_days` after it was sent.

    Never for a request that bounced, was unsubscribed, expired or completed; never twice (the
    reminder's dedupe key is the request); inside the agency's business hours.
    """
    default_days = EmailSyncSettings._meta.get_field("reminder_days").default
    day_values = set(EmailSyncSettings.objects.values_list("reminder_days", flat=True).distinct())
    day_values.add(default_days)  # agencies without a settings row use the default
    queued = 0
    for days in sorted(d for d in day_values if d > 0):
        in_group = Q(agency__email_sync__reminder_days=days)
        if days == default_days:
            in_group |= Q(agency__email_sync__isnull=True)
        candidates = list(
            ReviewRequest.objects.filter(in_group)
            .filter(
                status__in=REMINDABLE,
                reminded_at__isnull=True,
                completed_at__isnull=True,
                sent_at__lte=now - timedelta(days=days),
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .exclude(source=Source.SETUP_TEST)
            .exclude(emails__kind=OutboundEmail.Kind.REMINDER)
            .select_related("agency__email_sync")
            .order_by("sent_at")[: limit - queued]
        )
        suppressed = Suppression.suppressed({r.email for r in candidates})
        for request in candidates:
            if request.email in suppressed:
                continue
            enqueue(
                OutboundEmail.Kind.REMINDER,
                to_email=request.email,
                to_name=request.name,
                template="reminder",
                agency=request.agency,
                review_request=request,
                send_after=reminder_time(request, now),
                dedupe_key=f"reminder:{request.pk}",
            )
            queued += 1
        if queued >= limit:
            break
    return {"queued": queued}


def reminder_time(request: ReviewRequest, now: datetime) -> datetime:
    try:
        sync = request.agency.email_sync
    except EmailSyncSettings.DoesNotExist:
        return now
    days = sync.business_day_numbers()
    if not days:
        return now
    from zoneinfo import ZoneInfo

    return next_business_moment(
        now, days, sync.business_start, sync.business_end, ZoneInfo(request.agency.time_zone)
    )


def expire_requests(now: datetime) -> dict:
    """Links stop working 30 days after the request went out; pending reminders are dropped."""
    stale = Q(expires_at__lte=now) | Q(expires_at__isnull=True, sent_at__lte=now - REQUEST_EXPIRY)
    expired = ReviewRequest.objects.filter(stale, status__in=LIVE_LINKS).update(
        status=RStatus.EXPIRED
    )
    dropped = OutboundEmail.objects.filter(
        kind=OutboundEmail.Kind.REMINDER,
        status=OutboundEmail.Status.QUEUED,
        review_request__status=RStatus.EXPIRED,
    ).update(status=OutboundEmail.Status.SKIPPED, status_reason="expired")
    return {"expired": expired, "reminders_dropped": dropped}


def purge_in_chunks(queryset) -> int:
    total = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return total
        with transaction.atomic():
            queryset.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def purge(now: datetime) -> dict:
    """Retention: trigger records after EMAILSYNC_TRIGGER_RETENTION_DAYS, setup-test subjects
    after seven days, finished outbox rows after the same retention, and members' expired
    sign-in sessions (Django leaves them in the database until something deletes them)."""
    from django.contrib.sessions.models import Session

    from emailsync.inbound.models import Trigger

    days = getattr(settings, "EMAILSYNC_TRIGGER_RETENTION_DAYS", 90)
    cutoff = now - timedelta(days=days)
    subjects = (
        Trigger.objects.filter(subject_expires_at__lte=now)
        .exclude(subject="")
        .update(subject="", subject_expires_at=None)
    )
    triggers = purge_in_chunks(Trigger.objects.filter(received_at__lt=cutoff))
    finished = [
        OutboundEmail.Status.SENT,
        OutboundEmail.Status.FAILED,
        OutboundEmail.Status.SKIPPED,
        OutboundEmail.Status.CANCELLED,
    ]
    emails = purge_in_chunks(
        OutboundEmail.objects.filter(status__in=finished, created_at__lt=cutoff)
    )
    sessions = 0
    if settings.SESSION_ENGINE in DATABASE_SESSIONS:
        sessions = purge_in_chunks(Session.objects.filter(expire_date__lt=now))
    return {
        "subjects_blanked": subjects,
        "triggers_purged": triggers,
        "emails_purged": emails,
        "sessions_purged": sessions,
    }


DATABASE_SESSIONS = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}


@dataclass(frozen=True)
class Job:
    run: Callable[[datetime], dict]
    every: timedelta


JOBS: dict[str, Job] = {
    "reminders": Job(send_reminders, timedelta(minutes=5)),
    "expiry": Job(expire_requests, timedelta(minutes=30)),
    "retention": Job(purge, timedelta(hours=1)),
}

# When this process last made sure every job has its row. Checked again each minute, so a row
# deleted by hand (in the admin, or by a restore) comes back without restarting the workers.
_rows_checked_at: float | None = None
ROWS_RECHECK_SECONDS = 60.0


def ensure_rows(now: datetime) -> None:
    global _rows_checked_at
    checked = time.monotonic()
    if _rows_checked_at is not None and checked - _rows_checked_at < ROWS_RECHECK_SECONDS:
        return
    existing = set(PeriodicJob.objects.values_list("name", flat=True))
    for name in JOBS.keys() - existing:
        try:
            with transaction.atomic():
                PeriodicJob.objects.create(name=name, next_run_at=now)
        except IntegrityError:  # another worker created it first
            pass
    _rows_checked_at = checked


def claim(worker: str, now: datetime, lease: timedelta) -> PeriodicJob | None:
    with transaction.atomic():
        due = PeriodicJob.objects.filter(name__in=JOBS, next_run_at__lte=now).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        job = due.order_by("next_run_at").first()
        if job is None:
            return None
        job.lease_until, job.claimed_by, job.last_started_at = now + lease, worker, now
        job.save(update_fields=["lease_until", "claimed_by", "last_started_at"])
    return job


def run_due(worker: str, now: datetime, lease: timedelta) -> dict:
    """Run every job that is due (each at most once); returns {name: result}."""
    ensure_rows(now)
    results = {}
    for _ in range(len(JOBS)):
        job = claim(worker, now, lease)
        if job is None:
            break
        spec = JOBS[job.name]
        try:
            result, error = spec.run(now), ""
        except Exception as exc:  # one failing job must not stop the others or the sending
            log.exception("periodic job %s failed", job.name)
            result, error = {"error": type(exc).__name__}, f"{type(exc).__name__}: {exc}"[:1000]
        PeriodicJob.objects.filter(pk=job.pk, claimed_by=worker).update(
            next_run_at=now + spec.every,
            lease_until=None,
            last_finished_at=now,
            last_result=result,
            last_error=error,
            runs=job.runs + 1,
        )
        results[job.name] = result
        if result and not error and any(result.values()):
            log.info("job %s: %s", job.name, result)
    return results


def job_status() -> list[dict]:
    return [
        {
            "name": j.name,
            "next_run_at": j.next_run_at.isoformat(),
            "last_finished_at": j.last_finished_at.isoformat() if j.last_finished_at else None,
            "last_result": j.last_result,
            "last_error": j.last_error,
            "running": j.lease_until is not None,
        }
        for j in PeriodicJob.objects.all()
    ]
