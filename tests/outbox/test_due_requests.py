"""A review request's email joins the outbox when the request falls due, once."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from emailsync.outbox.due_requests import release_due
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker, oldest_due_age, queue_status
from emailsync.review_requests.models import ReviewRequest, Source

pytestmark = pytest.mark.django_db


def waiting_request(agency, email="cara@candidate.test", *, due_in=timedelta(hours=2), **fields):
    """A scheduled request as every way of asking makes it: no email yet."""
    now = timezone.now()
    return ReviewRequest.objects.create(
        agency=agency,
        source=Source.EMAIL_SYNC,
        email=email,
        name="Cara Candidate",
        recruiter=agency.sam,
        created_at=now,
        send_after=now + due_in,
        deadline=now + timedelta(hours=72),
        **fields,
    )


def test_the_email_is_queued_when_the_request_falls_due_and_only_once(sink, acme):
    request = waiting_request(acme)
    now = timezone.now()
    assert Worker().run_once(now=now).claimed == 0
    assert not OutboundEmail.objects.exists()
    request.refresh_from_db()
    assert request.queued_at is None

    due = request.send_after + timedelta(seconds=1)
    stats = Worker().run_once(now=due)
    assert stats.sent == 1 and [m.rcpt_tos for m in sink.received] == [["cara@candidate.test"]]
    email = request.emails.get()
    assert (email.kind, email.status, email.send_after) == (
        "review_request",
        "sent",
        request.send_after,
    )
    request.refresh_from_db()
    assert request.status == "sent" and request.queued_at == due

    assert Worker().run_once(now=due + timedelta(hours=1)).claimed == 0
    assert OutboundEmail.objects.count() == 1 and len(sink.received) == 1


def test_changes_made_while_a_request_waits_are_what_goes_out(sink, acme):
    moved = waiting_request(acme, "old@candidate.test")
    cancelled = waiting_request(acme, "gone@candidate.test")
    ReviewRequest.objects.filter(pk=moved.pk).update(email="new@candidate.test", name="Nia New")
    ReviewRequest.objects.filter(pk=cancelled.pk).update(status=ReviewRequest.Status.CANCELLED)

    stats = Worker().run_once(now=moved.send_after + timedelta(seconds=1))
    assert stats.sent == 1 and stats.skipped == 0
    assert [m.rcpt_tos for m in sink.received] == [["new@candidate.test"]]
    assert moved.emails.get().to_name == "Nia New"
    assert not cancelled.emails.exists()


def test_a_request_waiting_for_its_email_counts_in_the_promise_figures(acme, capsys):
    request = waiting_request(acme, due_in=-timedelta(minutes=30))  # due, no worker since
    now = timezone.now()
    assert timedelta(minutes=29) < oldest_due_age(now) < timedelta(minutes=31)
    assert queue_status(now)["due"] == 1
    call_command("worker", "--status", "--json")
    assert '"due": 1' in capsys.readouterr().out
    assert not request.emails.exists()


def test_a_batch_queues_no_more_than_it_can_claim(acme):
    for i in range(5):
        waiting_request(acme, f"p{i}@candidate.test", due_in=-timedelta(minutes=5 - i))
    worker = Worker(batch_size=3)
    claimed = worker.claim(timezone.now())
    assert len(claimed) == 3
    queued = OutboundEmail.objects.order_by("send_after").values_list("to_email", flat=True)
    assert list(queued) == ["p0@candidate.test", "p1@candidate.test", "p2@candidate.test"]


needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SKIP LOCKED is PostgreSQL's; on SQLite the write lock serialises claims",
)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_releasing_at_once_queue_each_request_once(acme):
    for i in range(4):
        waiting_request(acme, f"p{i}@candidate.test", due_in=-timedelta(minutes=1))
    now = timezone.now()
    holding, finish = threading.Event(), threading.Event()
    first: list[int] = []

    def first_worker():
        try:
            with transaction.atomic():
                first.append(release_due(now, 2))
                holding.set()
                finish.wait(10)  # its rows stay locked until it commits
        finally:
            connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    assert holding.wait(10)
    with transaction.atomic():
        second = release_due(now, 10)  # skips the two the first worker holds
    finish.set()
    thread.join(10)
    with transaction.atomic():
        third = release_due(now, 10)  # the first worker's two are queued now
    assert (first, second, third) == ([2], 2, 0)
    per_request = OutboundEmail.objects.values_list("review_request_id", flat=True)
    assert sorted(per_request) == sorted(ReviewRequest.objects.values_list("id", flat=True))


def test_a_request_whose_email_an_older_release_queued_is_not_queued_again(sink, acme):
    """During an upgrade the previous release still runs beside this one, writing a request
    and its email together and leaving `queued_at` empty: it must go out once, not twice."""
    request = waiting_request(acme, due_in=-timedelta(minutes=1))
    OutboundEmail.objects.create(
        kind="review_request",
        template="review_request",
        agency=acme,
        review_request=request,
        to_email=request.email,
        to_name=request.name,
        send_after=request.send_after,
    )
    assert oldest_due_age(timezone.now()) is not None  # counted once, through its email
    stats = Worker(run_jobs=False).run_once()
    assert stats.sent == 1 and len(sink.received) == 1
    assert request.emails.count() == 1


def hold_in_thread(hold, ready, finish):
    """Run `hold()` in a transaction on another connection, keep it open until `finish`."""

    def run():
        try:
            with transaction.atomic():
                hold()
                ready.set()
                finish.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_agency_being_deleted_is_skipped_not_deadlocked(acme, make_agency):
    from emailsync.agencies.models import Agency

    other = make_agency(name="Other", domains=["other.test"])
    other.sam = acme.sam
    waiting_request(acme, "a@candidate.test", due_in=-timedelta(minutes=2))
    waiting_request(other, "b@candidate.test", due_in=-timedelta(minutes=1))
    ready, finish = threading.Event(), threading.Event()
    # What privacy.agencies.delete_agency takes first.
    thread = hold_in_thread(
        lambda: Agency.objects.select_for_update().get(pk=acme.pk), ready, finish
    )
    try:
        assert ready.wait(10)
        with transaction.atomic():
            assert release_due(timezone.now(), 10) == 1  # the other agency's, without waiting
    finally:
        finish.set()
        thread.join(10)
    assert list(OutboundEmail.objects.values_list("to_email", flat=True)) == ["b@candidate.test"]
    with transaction.atomic():
        assert release_due(timezone.now(), 10) == 1  # and acme's, once the lock is gone


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_erasing_a_person_while_a_worker_queues_their_email_leaves_nothing(acme):
    from emailsync.privacy.people import erase_person

    waiting_request(acme, "cara@candidate.test", due_in=-timedelta(minutes=1))
    ready, finish = threading.Event(), threading.Event()
    released: list[int] = []
    thread = hold_in_thread(lambda: released.append(release_due(timezone.now(), 10)), ready, finish)
    errors: list[Exception] = []

    def erase():
        try:
            erase_person("cara@candidate.test")
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            errors.append(exc)
        finally:
            connection.close()

    eraser = threading.Thread(target=erase)
    try:
        assert ready.wait(10)
        eraser.start()
        for _ in range(500):  # until the erasure waits for the worker's lock on the request
            if someone_waits_for_a_lock():
                break
            time.sleep(0.01)
        else:
            pytest.fail("the erasure never waited for the worker's lock")
    finally:
        finish.set()
        thread.join(10)
    eraser.join(20)
    assert released == [1] and errors == []
    assert not OutboundEmail.objects.filter(to_email="cara@candidate.test").exists()
    assert not ReviewRequest.objects.filter(email="cara@candidate.test").exists()


def test_a_failing_release_does_not_hold_up_what_is_already_queued(sink, acme, monkeypatch, caplog):
    from django.db import DatabaseError

    from emailsync.outbox import worker as worker_module
    from emailsync.outbox.models import enqueue

    waiting_request(acme, due_in=-timedelta(minutes=1))
    enqueue(
        OutboundEmail.Kind.NOTIFICATION,
        to_email="admin@acme.test",
        template="review_digest",
        context={"agency": acme.name, "count": 1},
        agency=acme,
    )

    def broken(now, limit):
        OutboundEmail.objects.filter(kind="notification").update(to_name="changed, then undone")
        raise DatabaseError("deadlock detected")

    monkeypatch.setattr(worker_module, "release_due", broken)
    ids = Worker(run_jobs=False).claim(timezone.now())
    assert [OutboundEmail.objects.get(pk=pk).kind for pk in ids] == ["notification"]
    # What the failed release wrote is undone (a savepoint), the rest of the claim stands.
    assert OutboundEmail.objects.get(pk=ids[0]).to_name == ""
    assert "queueing due review requests failed" in caplog.text
    monkeypatch.undo()
    assert Worker(run_jobs=False).run_once().sent == 1  # the next tick queues the request
    assert [m.rcpt_tos for m in sink.received] == [["cara@candidate.test"]]
