"""On PostgreSQL a batch's write is one statement in autocommit: the batch's whole transaction.

The listener makes two round trips per batch, its lookup and its write, rather than four with
a BEGIN and a COMMIT around them (docs/PERFORMANCE.md, stop 24). What the transaction used
to guarantee, the write statement now guarantees itself: it locks the batch's agencies before
writing (a deleted agency is left with no rows), takes the dedupe ledger with each agency's
own window, and fails whole when a ledger entry was taken meanwhile (test_ledger_race.py).
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from psycopg.pq import TransactionStatus

from emailsync.agencies.models import Agency
from emailsync.inbound import batch_statement, recording
from emailsync.inbound import ingest as ingest_module
from emailsync.inbound import known as known_module
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.facts import FACTS
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import Inbound, ingest, ingest_batch
from emailsync.inbound.models import InboundAddress, Trigger, TriggerRecipient, UnmappedSender
from emailsync.privacy.agencies import delete_agency
from emailsync.review_requests.models import AskedRecipient, EmailSyncSettings, ReviewRequest

from .concurrency import held_deletion, in_thread, waiting_on_a_lock
from .mail import build

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite writes a batch table by table, inside a transaction",
    ),
    pytest.mark.django_db(transaction=True),
]


def prepared(agency, raw, dns) -> Inbound:
    header, body = split_message(raw)
    address = InboundAddress.current_for(agency).address
    return Inbound((address,), header, body, gather_evidence(header, body, dns))


@pytest.fixture
def facts_cached(settings):
    """The listener's cache of each agency's facts, on as in production (tests turn it off)."""
    settings.EMAILSYNC_LISTENER_CACHE_SECONDS = 60
    yield
    FACTS.forget(list(FACTS._entries))


def test_a_batch_is_a_lookup_and_a_write_with_no_transaction_around_them(
    sync_agency, acme_key, dns, facts_cached
):
    ingest_batch([prepared(sync_agency, acme_key.sign(build()), dns)])  # the agency's facts cached
    seen = []

    def observe(execute, sql, params, many, context):
        seen.append((connection.connection.info.transaction_status, "FOR KEY SHARE" in sql))
        return execute(sql, params, many, context)

    batch = [
        prepared(sync_agency, acme_key.sign(build(to=(f"c{i}@candidate.test",))), dns)
        for i in range(3)
    ]
    with connection.execute_wrapper(observe):
        results = ingest_batch(batch)
    assert [r.requests for [r] in results] == [1, 1, 1]
    # psycopg opens a transaction with the first statement after a BEGIN is due: none was.
    # Only the write locks the agencies: a row lock would make the lookup a transaction that
    # writes, with a commit of its own to wait for.
    assert seen == [(TransactionStatus.IDLE, False), (TransactionStatus.IDLE, True)]
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert ReviewRequest.objects.count() == 4


def nothing_left(agency_id: int) -> None:
    assert not Agency.objects.filter(pk=agency_id).exists()
    assert not Trigger.objects.filter(agency_id=agency_id).exists()
    assert not ReviewRequest.objects.filter(agency_id=agency_id).exists()
    assert not AskedRecipient.objects.filter(agency_id=agency_id).exists()
    assert not TriggerRecipient.objects.exists()


@pytest.mark.parametrize("cached", [True, False], ids=["facts cached", "facts read"])
def test_an_agency_deleted_after_the_batch_looked_is_left_with_no_rows(
    sync_agency, acme_key, dns, monkeypatch, request, cached
):
    """Deleted between the lookup and the write: the write finds the agency gone when the
    agency's facts were cached, and reading its facts finds it gone when they were not."""
    agency_id = sync_agency.pk
    if cached:
        request.getfixturevalue("facts_cached")
        ingest_batch([prepared(sync_agency, acme_key.sign(build()), dns)])
    real_read = ingest_module.read_known
    deletions, reads = [], []

    def read_then_deleted(wanted):
        known = real_read(wanted)
        if not reads:  # before the first attempt's write, on another connection
            deleter = in_thread(lambda: delete_agency(Agency.objects.get(pk=agency_id)), deletions)
            deleter.join(10)
        reads.append(bool(known.addresses))
        return known

    monkeypatch.setattr(ingest_module, "read_known", read_then_deleted)
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",), cc=("clive@client.test",)))
    results = ingest_batch([prepared(sync_agency, raw, dns)])

    assert not isinstance(deletions[0], Exception), deletions
    # The first look found the agency; its write found it gone and wrote nothing; the second
    # look finds no address, so the listener answers 550.
    assert reads == [True, False]
    assert results == [[]]
    nothing_left(agency_id)


def test_a_write_waits_for_a_deletion_under_way_and_then_writes_nothing(
    sync_agency, acme_key, dns, monkeypatch, facts_cached
):
    agency_id = sync_agency.pk
    ingest_batch([prepared(sync_agency, acme_key.sign(build()), dns)])  # the agency's facts cached
    real_read = ingest_module.read_known
    deleted, release = threading.Event(), threading.Event()
    deletions, batches = [], []

    delete = held_deletion(agency_id, deleted, release)

    def read_then_deletion_starts(wanted):
        known = real_read(wanted)
        if not deletions and not deleted.is_set():
            in_thread(delete, deletions)
            assert deleted.wait(10)
        return known

    monkeypatch.setattr(ingest_module, "read_known", read_then_deletion_starts)
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",), cc=("clive@client.test",)))
    header, body = split_message(raw)
    evidence = gather_evidence(header, body, dns)
    writer = in_thread(lambda: ingest([sync_agency.bcc], header, body, evidence), batches)
    deadline = time.monotonic() + 5
    while not (deleted.is_set() and waiting_on_a_lock()) and time.monotonic() < deadline:
        time.sleep(0.02)
    # The write waits for the deletion rather than writing beside it.
    assert writer.is_alive()
    release.set()
    writer.join(10)

    assert deletions and not isinstance(deletions[0], Exception), deletions
    assert batches == [[]]
    nothing_left(agency_id)


def test_agencies_with_different_windows_take_the_ledger_in_the_one_write(
    sync_agency, acme_key, dns, make_agency, monkeypatch
):
    """Each ledger entry is won against its own agency's window: Acme keeps 90 days, Other
    30. Cara was asked by both 60 days ago, so only Other asks her again, in one write. Judged
    against the other agency's window, Acme's entry would be counted lost and the batch
    written twice."""
    other = make_agency(name="Other Recruitment", domains=["other.test"])
    settings = EmailSyncSettings.for_agency(other)
    settings.enabled, settings.trust_from_domain, settings.dedupe_days = True, True, 30
    settings.save()
    long_ago = timezone.now() - timedelta(days=60)
    for agency in (sync_agency, other):
        AskedRecipient.objects.create(
            agency=agency, email="cara@candidate.test", last_asked_at=long_ago
        )
    real_write, writes = recording.write_in_one_statement, []

    def write(*args, **kwargs):
        writes.append(sorted((a, e) for a, e, _ in args[3]))
        return real_write(*args, **kwargs)

    monkeypatch.setattr(recording, "write_in_one_statement", write)
    to = ("Cara <cara@candidate.test>", "Dan <dan@candidate.test>")
    results = ingest_batch(
        [
            prepared(sync_agency, acme_key.sign(build(to=to)), dns),
            prepared(other, build(sender="Olly <olly@other.test>", to=to), dns),
        ]
    )

    assert [r.requests for [r] in results] == [1, 2]
    assert writes == [
        sorted(
            [
                (sync_agency.pk, "dan@candidate.test"),
                (other.pk, "cara@candidate.test"),
                (other.pk, "dan@candidate.test"),
            ]
        )
    ]
    asked = dict(
        AskedRecipient.objects.filter(email="cara@candidate.test").values_list(
            "agency_id", "last_asked_at"
        )
    )
    assert asked[sync_agency.pk] == long_ago < asked[other.pk]


def test_one_agency_deleted_leaves_the_other_agencies_of_the_batch_written(
    sync_agency, acme_key, dns, make_agency, monkeypatch, facts_cached
):
    """Two agencies in one batch; Other is deleted after the lookup, in the middle of its
    setup test and with a sender it does not know yet. The write writes nothing at all, not
    even the unknown sender or the end of the test; decided again, Acme's email is written
    and Other's finds no address (550)."""
    other = make_agency(name="Other Recruitment", domains=["other.test"])
    settings = EmailSyncSettings.for_agency(other)
    settings.enabled, settings.trust_from_domain = True, True
    settings.setup_test_until = timezone.now() + timedelta(minutes=30)
    settings.save()
    admin = other.admins().get()
    FACTS.get_many([sync_agency.pk, other.pk])  # both agencies' facts cached
    batch = [
        prepared(sync_agency, acme_key.sign(build(to=("cara@candidate.test",))), dns),
        prepared(other, build(sender=f"Admin <{admin.email}>", to=("dan@candidate.test",)), dns),
        prepared(other, build(sender="New <new.hire@other.test>", to=("eve@candidate.test",)), dns),
    ]
    real_read, real_write = ingest_module.read_known, recording.write_in_one_statement
    deletions, writes = [], []

    def read_then_deleted(wanted):
        known = real_read(wanted)
        if not deletions:
            in_thread(lambda: delete_agency(Agency.objects.get(pk=other.pk)), deletions).join(10)
        return known

    def write(*args, **kwargs):
        writes.append(sorted({p.trigger.agency_id for p in args[0]}))
        return real_write(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "read_known", read_then_deleted)
    monkeypatch.setattr(recording, "write_in_one_statement", write)
    results = ingest_batch(batch)

    assert not isinstance(deletions[0], Exception), deletions
    assert writes == [sorted([sync_agency.pk, other.pk]), [sync_agency.pk]]
    assert results[0][0].requests == 1 and results[1:] == [[], []]
    nothing_left_of = {
        "triggers": Trigger.objects.filter(agency_id=other.pk).exists(),
        "requests": ReviewRequest.objects.filter(agency_id=other.pk).exists(),
        "unknown senders": UnmappedSender.objects.filter(agency_id=other.pk).exists(),
        "settings": EmailSyncSettings.objects.filter(agency_id=other.pk).exists(),
    }
    assert not any(nothing_left_of.values()), nothing_left_of


def test_a_lost_bet_undoes_the_whole_write_unknown_senders_included(
    sync_agency, acme_key, dns, monkeypatch
):
    """The first write counted an unknown sender and then found a ledger entry taken: the
    statement failed whole, so the second write counts that sender once, not twice. The
    decided-again lookup locks the agencies, as a batch inside a transaction must."""
    from .test_ledger_race import other_process_asks

    real_read, locks = ingest_module.read_known, []
    real_statement = known_module.one_statement

    def read_then_someone_asks(wanted):
        result = real_read(wanted)
        if len(locks) == 1:  # after the first attempt's lookup
            other_process_asks(sync_agency.pk, "cara@candidate.test")
        return result

    def statement(lock=True):
        locks.append(lock)
        return real_statement(lock=lock)

    monkeypatch.setattr(ingest_module, "read_known", read_then_someone_asks)
    monkeypatch.setattr(known_module, "one_statement", statement)
    raw = acme_key.sign(
        build(sender="New <new.hire@acme.test>", to=("cara@candidate.test", "dan@candidate.test"))
    )
    [[result]] = ingest_batch([prepared(sync_agency, raw, dns)])

    assert locks == [False, True]
    assert result.requests == 1
    assert UnmappedSender.objects.get().trigger_count == 1
    assert Trigger.objects.count() == 1
    assert list(ReviewRequest.objects.values_list("email", flat=True)) == ["dan@candidate.test"]


def test_the_batch_statements_are_short_enough_for_the_driver_to_convert_once():
    """psycopg converts a statement's placeholders on every call unless the statement fits
    its cache (4,096 bytes): over it, converting the write took twice as long."""
    from psycopg import _queries

    statements = [
        batch_statement.one_statement(),
        *(known_module.one_statement(lock) for lock in (0, 1)),
    ]
    assert max(len(s.encode()) for s in statements) <= _queries.MAX_CACHED_STATEMENT_LENGTH
