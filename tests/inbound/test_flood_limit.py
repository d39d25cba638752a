"""An agency's hourly flood limit holds across listeners, not per listener process."""

import logging

import pytest

from emailsync.inbound import smtp as smtp_module
from emailsync.inbound.flood_limit import WINDOW, FloodLimit
from emailsync.inbound.models import Trigger
from emailsync.review_requests.models import EmailSyncSettings

from .listener import RunningListener
from .mail import build

REFUSED = (450, "4.7.1 Too many messages for this address, please try again later")


def test_room_counts_what_was_recorded_plus_what_this_process_took_since():
    limit = FloodLimit()
    assert limit.unread(7, now=100.0) and limit.due(7, now=100.0)
    limit.count(7, now=90.0)  # accepted before the reading: the reading includes it
    limit.reading_done(7, read_at=95.0, recorded=3)
    assert not limit.unread(7, now=100.0) and not limit.due(7, now=100.0)
    assert limit.has_room(7, share=10, limit=5, now=100.0)  # 3 recorded + 0 since
    limit.count(7, now=100.0)
    assert limit.has_room(7, share=10, limit=5, now=101.0)  # 3 + 1
    limit.count(7, now=101.0)
    assert not limit.has_room(7, share=10, limit=5, now=102.0)  # 3 + 2
    limit.refund(7)  # a deferred message gives its place back
    assert limit.has_room(7, share=10, limit=5, now=102.0)
    # This process's share still applies on its own, and other agencies are apart.
    assert not limit.has_room(7, share=2, limit=5, now=102.0)
    assert limit.has_room(8, share=2, limit=5, now=102.0)
    # A reading is refreshed after a few seconds and ignored once it is an hour old.
    assert limit.due(7, now=95.0 + limit.refresh_seconds)
    assert limit.unread(7, now=95.0 + WINDOW)


def test_a_reading_under_way_is_not_started_twice_and_a_failed_one_keeps_the_last():
    limit = FloodLimit()
    read_at = limit.reading_started(7)
    assert not limit.due(7)
    limit.reading_done(7, read_at, recorded=4)
    later = limit.reading_started(7)
    limit.reading_done(7, later, recorded=None)  # the database did not answer
    assert not limit.unread(7) and not limit.has_room(7, share=10, limit=4)


@pytest.fixture
def two_listeners(dns, transactional_db):
    """Two listeners on one database, as on two hosts behind the MX records."""
    first, second = RunningListener(dnsfunc=dns), RunningListener(dnsfunc=dns)
    yield first, second
    first.stop()
    second.stop()


def test_a_second_listener_counts_what_the_first_accepted(two_listeners, sync_agency, acme_key):
    first, second = two_listeners
    EmailSyncSettings.objects.filter(agency=sync_agency).update(rate_limit_per_hour=3)

    def message(n):
        return acme_key.sign(build(to=(f"person{n}@candidate.test",)))

    assert first.send(message(1), [sync_agency.bcc])[0] == 250
    assert first.send(message(2), [sync_agency.bcc])[0] == 250
    # Each listener alone has taken less than 3; together the hour is used up after one more.
    assert second.send(message(3), [sync_agency.bcc])[0] == 250
    assert second.send(message(4), [sync_agency.bcc]) == REFUSED
    assert Trigger.objects.count() == 3


def test_a_count_the_database_cannot_give_refuses_nothing(
    listener, sync_agency, acme_key, monkeypatch, caplog
):
    def unavailable(agency_id, limit):
        raise RuntimeError("database down")

    monkeypatch.setattr(smtp_module, "count_recorded", unavailable)
    with caplog.at_level(logging.WARNING, logger="emailsync.smtpd"):
        code, _ = listener.send(acme_key.sign(build()), [sync_agency.bcc])
    assert code == 250 and Trigger.objects.count() == 1
    assert "flood-limit count not read" in caplog.text


def test_a_failed_reading_is_not_waited_for_again_at_once():
    """With the database down, each RCPT would otherwise wait for a new reading to fail."""
    limit = FloodLimit(refresh_seconds=10.0)
    read_at = limit.reading_started(7)
    limit.reading_done(7, read_at, recorded=None)
    assert not limit.unread(7) and not limit.due(7)
    assert limit.has_room(7, share=10, limit=1)  # local counting only, meanwhile
    later = read_at + 11.0
    assert limit.unread(7, now=later) and limit.due(7, now=later)


@pytest.mark.django_db
def test_a_session_going_away_does_not_cancel_the_reading_others_wait_for(sync_agency, monkeypatch):
    """Sessions for an agency not yet read here share one reading; one client disconnecting
    (its handler cancelled) cancelled it under the others, and their connections dropped."""
    import asyncio
    import time

    from aiosmtpd.smtp import Envelope, Session

    from emailsync.inbound.addresses import parse_recipient
    from emailsync.inbound.smtp import AddressEntry, Handler, ListenerState

    def slow_count(agency_id, limit):
        time.sleep(0.3)
        return 0

    monkeypatch.setattr(smtp_module, "count_recorded", slow_count)

    async def two_sessions():
        state = ListenerState(address_ttl=60.0)
        token = parse_recipient(sync_agency.bcc).token
        entry = AddressEntry(sync_agency.pk, True, None, 600)
        state.addresses._cache[token] = (time.monotonic() + 60, entry)
        handler = Handler(state)
        loop = asyncio.get_running_loop()
        tasks = [
            asyncio.create_task(
                handler.handle_RCPT(None, Session(loop), Envelope(), sync_agency.bcc, [])
            )
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        tasks[0].cancel()
        try:
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            state.lookups.shutdown(wait=True)

    gone, waiting = asyncio.run(two_sessions())
    assert isinstance(gone, asyncio.CancelledError)
    assert waiting == "250 2.1.5 OK"
