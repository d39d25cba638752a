"""Someone asks a recipient between the batch's look at the dedupe ledger and its write.

On PostgreSQL the batch takes the ledger's entries inside its write statement, betting that no
one takes them meanwhile (batch_statement.py). Here another process does, on its own connection,
right after the batch has looked: the bet is lost, the batch is decided again, and that person
is not asked twice while the others still are.
"""

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from emailsync.inbound import ingest as ingest_module
from emailsync.inbound import recording
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.review_requests.models import AskedRecipient, ReviewRequest

from .mail import build

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="only PostgreSQL takes the ledger inside the write statement",
    ),
    pytest.mark.django_db(transaction=True),
]


def other_process_asks(agency_id: int, email: str) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute(
            f"INSERT INTO {AskedRecipient._meta.db_table} (agency_id, email, last_asked_at) "  # noqa: S608
            "VALUES (%s, %s, %s)",
            [agency_id, email, timezone.now()],
        )


def test_a_person_asked_meanwhile_is_not_asked_again(sync_agency, acme_key, dns, monkeypatch):
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",), cc=("clive@client.test",)))
    header, body = split_message(raw)
    evidence = gather_evidence(header, body, dns)
    real_read, writes = ingest_module.read_known, []

    def read_then_someone_asks(wanted):
        known = real_read(wanted)
        if not writes:  # only before the first attempt
            other_process_asks(sync_agency.pk, "cara@candidate.test")
        return known

    real_write = recording.write_in_one_statement

    def write(*args):
        writes.append(len(args[3]))  # how many ledger entries this attempt took with it
        return real_write(*args)

    monkeypatch.setattr(ingest_module, "read_known", read_then_someone_asks)
    monkeypatch.setattr(recording, "write_in_one_statement", write)
    [result] = ingest([sync_agency.bcc], header, body, evidence, "smtp")

    # The first attempt bet on both people and lost; the second took the ledger first.
    assert writes == [2, 0]
    assert Trigger.objects.get().pk == result.trigger_id
    outcomes = dict(TriggerRecipient.objects.values_list("email", "reason"))
    assert outcomes == {"cara@candidate.test": "recently_asked", "clive@client.test": ""}
    assert list(ReviewRequest.objects.values_list("email", flat=True)) == ["clive@client.test"]
    assert AskedRecipient.objects.count() == 2


def test_a_batch_that_wins_its_bet_takes_the_ledger_in_its_write(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",), cc=("clive@client.test",)))
    header, body = split_message(raw)
    [result] = ingest([sync_agency.bcc], header, body, gather_evidence(header, body, dns), "smtp")
    assert result.requests == 2
    assert set(AskedRecipient.objects.values_list("email", flat=True)) == {
        "cara@candidate.test",
        "clive@client.test",
    }
