import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import InboundAddress

from .mail import build

pytestmark = pytest.mark.django_db


def run_json(*args):
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_agency_create_and_show_include_the_bcc_address():
    created = run_json(
        "agency", "create", "--name", "Bright Hire", "--admin-email", "b@bright.test"
    )
    address = created["bcc_address"]
    local, domain = address.split("@")
    assert domain == "in.emailsync.localhost" and local.startswith("bright-hire-")
    token = local.rsplit("-", 1)[1]
    assert len(token) == 16 and token.isalnum() and token == token.lower()
    shown = run_json("agency", "show", "bright-hire")
    assert shown["bcc_address"] == address


def test_show_reports_the_grace_period_after_rotation(sync_agency):
    old = sync_agency.bcc
    InboundAddress.rotate(sync_agency)
    shown = run_json("agency", "show", sync_agency.slug)
    assert shown["bcc_address"] != old and "previous_bcc_address_accepted_until" in shown


def test_an_operator_rotates_a_leaked_address_with_no_grace(sync_agency):
    """An address that leaked overnight, with the agency's admin out of reach: the operator
    gives the agency a new one, and with --grace-days 0 the old one is refused at once."""
    old = sync_agency.bcc
    rotated = run_json("agency", "rotate-address", sync_agency.slug, "--grace-days", "0")
    assert rotated["previous_bcc_address"] == old and rotated["bcc_address"] != old
    assert rotated["previous_accepted_until"] is None
    by_address = {a.address: a for a in InboundAddress.objects.filter(agency=sync_agency)}
    assert not by_address[old].accepts_mail()
    assert by_address[rotated["bcc_address"]].accepts_mail()
    assert sync_agency.audit_entries.filter(action="email_sync.address_rotated").exists()
    kept = run_json("agency", "rotate-address", sync_agency.slug)  # the usual 14 days
    assert kept["previous_accepted_until"]
    previous = InboundAddress.objects.get(
        agency=sync_agency, token=by_address[rotated["bcc_address"]].token
    )
    assert previous.retired_at and previous.accepts_mail()
    # A leak found now: every old address, the one still in its grace period too, ends at once.
    run_json("agency", "rotate-address", sync_agency.slug, "--grace-days", "0")
    old_ones = InboundAddress.objects.filter(agency=sync_agency, retired_at__isnull=False)
    assert old_ones.count() == 3 and not any(a.accepts_mail() for a in old_ones)
    with pytest.raises(CommandError, match="between 0 and 365"):
        call_command("agency", "rotate-address", sync_agency.slug, "--grace-days", "-1")


def test_tokens_are_unique_and_random(make_agency):
    tokens = {InboundAddress.current_for(make_agency()).token for _ in range(30)}
    assert len(tokens) == 30


def test_triggers_and_requests_explain_every_outcome(sync_agency, acme_key, dns):
    from emailsync.inbound.evidence import gather_evidence
    from emailsync.inbound.headers import split_message

    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>", "noreply@client.test")))
    header, body = split_message(raw)
    ingest([sync_agency.bcc], header, body, gather_evidence(header, body, dns))
    [trigger] = run_json("triggers", sync_agency.slug)
    assert trigger["status"] == "accepted" and trigger["sender"] == "sam@acme.test"
    assert trigger["auth"]["method"] == "dkim_aligned" and trigger["subject"] is None
    assert {(r["email"], r["outcome"], r["reason"]) for r in trigger["recipients"]} == {
        ("cara@candidate.test", "invited", ""),
        ("noreply@client.test", "skipped", "role_address"),
    }
    [request] = run_json("requests", sync_agency.slug)
    assert request["email"] == "cara@candidate.test" and request["status"] == "scheduled"
    assert request["recruiter"] == "Sam Carter" and request["source"] == "email_sync"


def test_unknown_slug_is_an_error():
    with pytest.raises(CommandError, match="No agency"):
        call_command("triggers", "nope")
    with pytest.raises(CommandError, match="No agency"):
        call_command("requests", "nope")


def test_triggers_list_structured_data_problems_never_the_data(sync_agency, acme_key, dns):
    from emailsync.inbound.evidence import gather_evidence
    from emailsync.inbound.headers import split_message

    block = "-----BEGIN EMAILSYNC-----\n{{{}}}\n-----END EMAILSYNC-----\n"
    emails = {
        "cara@candidate.test": build(
            to=("cara@candidate.test",),
            body="Hi Cara\n" + block.format('"placement_ref": "PL-SECRET-1",'),  # bad JSON
        ),
        "dan@candidate.test": build(
            to=("dan@candidate.test",),
            body="Hi Dan\n" + block.format('"placement_ref": "PL-SECRET-2"'),
            extra_headers=[("X-EmailSync-Placement", "PL-7")],  # disagrees with the body
        ),
        "eve@candidate.test": build(to=("eve@candidate.test",)),
    }
    for raw in emails.values():
        header, body = split_message(acme_key.sign(raw))
        ingest([sync_agency.bcc], header, body, gather_evidence(header, body, dns))
    out = StringIO()
    call_command("triggers", sync_agency.slug, "--json", stdout=out)
    problems = {
        t["recipients"][0]["email"]: t["structured_problems"] for t in json.loads(out.getvalue())
    }
    assert problems == {
        "cara@candidate.test": ["structured_invalid_json"],
        "dan@candidate.test": ["structured_conflict"],
        "eve@candidate.test": [],
    }
    assert "SECRET" not in out.getvalue() and "Hi Cara" not in out.getvalue()
    text = StringIO()
    call_command("triggers", sync_agency.slug, stdout=text)
    assert "structured data: structured_invalid_json" in text.getvalue()


def test_triggers_say_which_header_could_not_be_read_never_what_it_said(sync_agency, acme_key, dns):
    from emailsync.inbound.evidence import gather_evidence
    from emailsync.inbound.headers import split_message

    raw = acme_key.sign(build(to=("cara@candidate.test",)))
    raw = raw.replace(b"To: cara@candidate.test", b'To: "Cara-Secret-Name <cara@candidate.test')
    header, body = split_message(raw)
    [result] = ingest([sync_agency.bcc], header, body, gather_evidence(header, body, dns))
    assert result.reason == "header_defects"
    [trigger] = run_json("triggers", sync_agency.slug)
    assert trigger["header_defects"] == ["to_parse_defect", "to_no_domain"]
    text = StringIO()
    call_command("triggers", sync_agency.slug, stdout=text)
    assert "unreadable headers: to_parse_defect, to_no_domain" in text.getvalue()
    assert "Secret" not in json.dumps(trigger) + text.getvalue()


@pytest.mark.parametrize("command", ["triggers", "requests"])
def test_a_negative_limit_is_a_one_line_error_not_a_traceback(sync_agency, command):
    with pytest.raises(CommandError, match="--limit"):
        call_command(command, sync_agency.slug, "--limit", "-1")
