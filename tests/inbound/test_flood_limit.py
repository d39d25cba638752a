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
