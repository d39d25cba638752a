"""Periodic jobs with time travel: one reminder, expiry after 30 days, retention purges."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.outbox import jobs
from emailsync.outbox.models import OutboundEmail, PeriodicJob
from emailsync.outbox.worker import Worker
from emailsync.review_requests.models import EmailSyncSettings, Suppression

pytestmark = pytest.mark.django_db


def sent_at(request, when):
    Worker().run_once(now=when)
    request.refresh_from_db()
    assert request.status == "sent" and request.sent_at == when
    return request


def test_one_reminder_after_n_days_then_expiry(sink, acme, make_request):
    t0 = timezone.now()
    request = sent_at(make_request(acme, send_after=t0), t0)
    assert Worker().run_once(now=t0 + timedelta(days=4, hours=23)).sent == 0
    stats = Worker().run_once(now=t0 + timedelta(days=5, minutes=1))
    assert stats.jobs["reminders"] == {"queued": 1} and stats.sent == 1
    request.refresh_from_db()
    assert request.status == "reminded" and request.reminded_at == t0 + timedelta(days=5, minutes=1)
    reminder = sink.received[-1].message
    assert reminder["Subject"].startswith("A reminder")
    assert reminder["Message-ID"] != sink.received[0].message["Message-ID"]
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for days in (6, 10, 20):  # never a second reminder
        Worker().run_once(now=t0 + timedelta(days=days))
    assert len(sink.received) == 2
    Worker().run_once(now=t0 + timedelta(days=29, hours=23))
    request.refresh_from_db()
    assert request.status == "reminded"
    Worker().run_once(now=t0 + timedelta(days=30, minutes=1))
    request.refresh_from_db()
    assert request.status == "expired"


def test_reminder_days_is_per_agency_and_zero_means_none(sink, acme, make_request, make_agency):
    sync = EmailSyncSettings.objects.get(agency=acme)
    sync.reminder_days = 2
    sync.save()
    other = make_agency(name="No Reminders")
    EmailSyncSettings.objects.create(agency=other, enabled=True, business_days="", reminder_days=0)
    t0 = timezone.now()
    quick = sent_at(make_request(acme, "q@x.test", send_after=t0), t0)
    never = make_request(other, "n@x.test", send_after=t0, recruiter=None)
    Worker().run_once(now=t0)
    Worker().run_once(now=t0 + timedelta(days=2, minutes=1))
    quick.refresh_from_db()
    never.refresh_from_db()
    assert quick.status == "reminded" and never.status == "sent" and never.reminded_at is None
    Worker().run_once(now=t0 + timedelta(days=9))
    assert not OutboundEmail.objects.filter(review_request=never, kind="reminder").exists()


def test_no_reminder_after_unsubscribe_bounce_or_completion(sink, acme, make_request):
    t0 = timezone.now()
    make_request(acme, "u@x.test", send_after=t0)
    bounced = make_request(acme, "b@x.test", send_after=t0)
    completed = make_request(acme, "c@x.test", send_after=t0)
    Worker().run_once(now=t0)
    Suppression.add("u@x.test", Suppression.Reason.UNSUBSCRIBED)
    bounced.refresh_from_db()
    bounced.status = "bounced"
    bounced.save()
    completed.refresh_from_db()
    completed.status, completed.completed_at = "completed", t0 + timedelta(days=1)
    completed.save()
    Worker().run_once(now=t0 + timedelta(days=6))
    assert len(sink.received) == 3
    assert not OutboundEmail.objects.filter(kind="reminder", status="sent").exists()


def test_a_queued_reminder_is_dropped_if_they_unsubscribe_meanwhile(sink, acme, make_request):
    sync = EmailSyncSettings.objects.get(agency=acme)
    sync.business_days = "0,1,2,3,4"
    sync.save()
    t0 = timezone.now()
    request = sent_at(make_request(acme, send_after=t0), t0)
    # Run the reminder job on a Saturday: the reminder waits for Monday's business hours.
    saturday = t0 + timedelta(days=5)
    while saturday.weekday() != 5:
        saturday += timedelta(days=1)
    jobs.send_reminders(saturday)
    reminder = OutboundEmail.objects.get(kind="reminder")
    assert reminder.send_after > saturday and reminder.send_after.weekday() == 0
    Suppression.add(request.email, Suppression.Reason.UNSUBSCRIBED)
    Worker().run_once(now=reminder.send_after + timedelta(minutes=1))
    reminder.refresh_from_db()
    assert reminder.status == "skipped" and reminder.status_reason == "suppressed"
    assert len(sink.received) == 1


def test_retention_purges_triggers_and_blanks_setup_subjects(acme, settings):
    settings.EMAILSYNC_TRIGGER_RETENTION_DAYS = 90
    now = timezone.now()
    old = Trigger.objects.create(
        agency=acme,
        received_at=now - timedelta(days=91),
        message_id_hash="a" * 64,
        status="accepted",
    )
    TriggerRecipient.objects.create(trigger=old, email="x@y.test", outcome="invited")
    recent = Trigger.objects.create(
        agency=acme,
        received_at=now - timedelta(days=89),
        message_id_hash="b" * 64,
        status="accepted",
    )
    setup = Trigger.objects.create(
        agency=acme,
        received_at=now - timedelta(days=8),
        message_id_hash="c" * 64,
        status="accepted",
        is_setup_test=True,
        subject="Testing the BCC",
        subject_expires_at=now - timedelta(days=1),
    )
    fresh_setup = Trigger.objects.create(
        agency=acme,
        received_at=now,
        message_id_hash="d" * 64,
        status="accepted",
        is_setup_test=True,
        subject="Still visible",
        subject_expires_at=now + timedelta(days=7),
    )
    result = jobs.purge(now)
    assert result["triggers_purged"] == 1 and result["subjects_blanked"] == 1
    assert set(Trigger.objects.values_list("pk", flat=True)) == {
        recent.pk,
        setup.pk,
        fresh_setup.pk,
    }
    assert not TriggerRecipient.objects.exists()
    setup.refresh_from_db()
    fresh_setup.refresh_from_db()
    assert setup.subject == "" and fresh_setup.subject == "Still visible"


def test_each_job_runs_once_per_tick_whatever_the_number_of_workers(acme):
    now = timezone.now()
    first = jobs.run_due("w1", now, timedelta(minutes=5))
    second = jobs.run_due("w2", now, timedelta(minutes=5))
    assert {"reminders", "expiry", "retention"} <= set(first) == set(jobs.JOBS)
    assert second == {}
    # Six minutes on, exactly the jobs that run at least that often are due again.
    later = jobs.run_due("w2", now + timedelta(minutes=6), timedelta(minutes=5))
    assert set(later) == {n for n, job in jobs.JOBS.items() if job.every <= timedelta(minutes=6)}
    assert PeriodicJob.objects.get(name="reminders").runs == 2


def test_a_job_row_deleted_by_hand_comes_back_within_a_minute(acme):
    now = timezone.now()
    assert "reminders" in jobs.run_due("w1", now, timedelta(minutes=5))
    PeriodicJob.objects.filter(name="reminders").delete()
    later = now + timedelta(minutes=10)
    assert "reminders" not in jobs.run_due("w1", later, timedelta(minutes=5))
    jobs._rows_checked_at -= jobs.ROWS_RECHECK_SECONDS  # a minute on the process's clock
    assert "reminders" in jobs.run_due("w1", later, timedelta(minutes=5))
    assert PeriodicJob.objects.filter(name="reminders").count() == 1


def test_a_crashed_jobs_lease_expires_and_another_worker_runs_it(acme):
    now = timezone.now()
    jobs.ensure_rows(now)
    claimed = jobs.claim("dead", now, timedelta(minutes=5))
    assert claimed is not None
    others = jobs.run_due("alive", now + timedelta(minutes=1), timedelta(minutes=5))
    assert claimed.name not in others
    later = jobs.run_due("alive", now + timedelta(minutes=6), timedelta(minutes=5))
    assert claimed.name in later


def test_a_failing_job_does_not_stop_the_others(acme, monkeypatch):
    def broken(now):
        raise RuntimeError("boom")

    monkeypatch.setitem(jobs.JOBS, "expiry", jobs.Job(broken, timedelta(minutes=30)))
    results = jobs.run_due("w", timezone.now(), timedelta(minutes=5))
    assert results["expiry"] == {"error": "RuntimeError"} and "reminders" in results
    assert "boom" in PeriodicJob.objects.get(name="expiry").last_error


def test_retention_deletes_expired_sign_in_sessions(acme):
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from emailsync.outbox.jobs import purge

    now = timezone.now()
    expired, live = SessionStore(), SessionStore()
    for store in (expired, live):
        store["member"] = "x"
        store.create()
    Session.objects.filter(pk=expired.session_key).update(expire_date=now - timedelta(days=1))
    assert purge(now)["sessions_purged"] == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [live.session_key]
