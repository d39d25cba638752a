"""An agency deleted while the listener is writing a batch for it is left with no rows.

The rows a batch writes carry no database constraint to their agency (recording.py says why):
the batch locks its agencies instead (known.py), and `delete_agency` takes that lock first.
Here a deletion has already removed the agency and everything it had, and has not yet
committed, when a trigger email for it is ingested on another connection.
"""

import threading
import time

import pytest
from django.db import connection

from emailsync.agencies.models import Agency
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.review_requests.models import AskedRecipient, ReviewRequest

from .concurrency import held_deletion, in_thread, waiting_on_a_lock
from .mail import build

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite lets one writer in at a time: a deletion and a batch cannot overlap",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_a_batch_for_an_agency_being_deleted_writes_nothing(sync_agency, acme_key, dns):
    agency_id = sync_agency.pk
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",), cc=("clive@client.test",)))
    header, body = split_message(raw)
    evidence = gather_evidence(header, body, dns)
    deleted, release = threading.Event(), threading.Event()

    delete = held_deletion(agency_id, deleted, release)
    deletions, batches = [], []
    deleter = in_thread(delete, deletions)
    assert deleted.wait(10), deletions
    writer = in_thread(lambda: ingest([sync_agency.bcc], header, body, evidence, "smtp"), batches)
    deadline = time.monotonic() + 5
    while writer.is_alive() and not waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    # The batch waits for the deletion rather than writing beside it.
    assert writer.is_alive()
    release.set()
    deleter.join(10)
    writer.join(10)

    assert not isinstance(deletions[0], Exception), deletions
    assert batches == [[]]  # the address is gone: the listener answers 550
    assert not Agency.objects.filter(pk=agency_id).exists()
    assert not Trigger.objects.filter(agency_id=agency_id).exists()
    assert not ReviewRequest.objects.filter(agency_id=agency_id).exists()
    assert not AskedRecipient.objects.filter(agency_id=agency_id).exists()
    assert not TriggerRecipient.objects.exists()


def test_the_hot_rows_have_no_foreign_key_checks_but_the_outbox_keeps_its_own():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, a.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
            "WHERE c.contype = 'f'"
        )
        checked = set(cursor.fetchall())
    assert (
        not {
            ("inbound_trigger", "agency_id"),
            ("inbound_triggerrecipient", "trigger_id"),
            ("inbound_triggerrecipient", "review_request_id"),
            ("review_requests_reviewrequest", "agency_id"),
            ("review_requests_askedrecipient", "agency_id"),
        }
        & checked
    )
    # Queued emails come from many places: the database still checks theirs.
    assert {
        ("outbox_outboundemail", "agency_id"),
        ("outbox_outboundemail", "review_request_id"),
        ("review_requests_reviewrequest", "recruiter_id"),
    } <= checked
