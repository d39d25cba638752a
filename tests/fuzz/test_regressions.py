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


def test_nul_in_a_dkim_signature_tag_is_not_stored(fuzz_listener, fuzz_bcc):
    """d= with a NUL went into the trigger's auth detail: PostgreSQL refused the INSERT, so the
    sender got 451 for ever (SQLite stored the NUL)."""
    raw = (
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.test\x00; s=s1; b=AAAA\r\n"
        b"From: Sam <sam@acme.test>\r\nTo: nul.tag@candidate.test\r\nSubject: Offer\r\n"
        b"Message-ID: <nul-tag-1@acme.test>\r\n\r\nHi\r\n"
    )
    outcome = Outcome()
    session = RawSession("127.0.0.1", fuzz_listener.port, outcome)
    session.cmd("EHLO fuzz.test")
    session.transaction("sam@acme.test", [fuzz_bcc["acme"]], raw)
    session.close()
    assert outcome.data_reply[0] == 250, outcome
    trigger = Trigger.objects.get(pk=outcome.trigger_ids[0])
    assert trigger.status == Trigger.Status.QUARANTINED
    assert "d=acme.test s=s1" in trigger.auth_detail and "\x00" not in trigger.auth_detail
