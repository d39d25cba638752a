"""Defects the fuzzer found, each pinned end to end: over a socket to the listener, then the
database."""

from emailsync.inbound.models import Trigger, TriggerRecipient

from .client import Outcome, RawSession
from .messages import AGENCIES


def deliver(listener, bcc: str, raw: bytes) -> Outcome:
    outcome = Outcome()
    session = RawSession("127.0.0.1", listener.port, outcome)
    session.cmd("EHLO fuzz.test")
    session.transaction(AGENCIES["beta"].senders[0], [bcc], raw)
    session.close()
    return outcome


def test_unpaired_surrogate_in_structured_data_is_a_problem_code_not_a_451(fuzz_listener, fuzz_bcc):
    """A JSON block with "\\ud800" in placement_ref and a name used to fail the INSERT
    (UnicodeEncodeError): 451 for ever, and the whole batch retried one by one."""
    raw = (
        b"From: Kim <kim@beta.test>\r\nTo: Zoe <zoe.surrogate@candidate.test>\r\n"
        b"Subject: Offer\r\nMessage-ID: <surrogate-1@beta.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nHi\r\n"
        b"-----BEGIN EMAILSYNC-----\r\n"
        b'{"placement_ref": "PL\\ud800", "recipient_name": "Zo\\udcffe"}\r\n'
        b"-----END EMAILSYNC-----\r\n"
    )
    outcome = deliver(fuzz_listener, fuzz_bcc["beta"], raw)
    assert outcome.data_reply[0] == 250, outcome
    trigger = Trigger.objects.get(pk=outcome.trigger_ids[0])
    assert trigger.placement_ref == ""
    assert "structured_bad_placement_ref" in trigger.structured_problems
    asked = TriggerRecipient.objects.get(trigger=trigger, review_request__isnull=False)
    assert asked.review_request.name == "Zo\ufffde"
