"""The demo agency's activity log follows the real recipient rules: every skip it shows is the
reason the rules in emailsync/inbound/recipients.py would give for that address."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from emailsync.agencies.models import Agency
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.inbound.recipients import COLLEAGUE, ROLE_ADDRESS, SENDER, exclusion
from emailsync.inbound.roles import is_role_address

RULE_REASONS = {SENDER, COLLEAGUE, ROLE_ADDRESS}


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"

    def seed() -> dict:
        out = StringIO()
        call_command("seed_demo", "--json", stdout=out)
        return json.loads(out.getvalue())

    seed()
    seed.agency = Agency.objects.get(slug="demo-recruitment")
    return seed


def test_every_role_address_skip_is_a_role_address_by_the_real_rules(demo):
    skipped = TriggerRecipient.objects.filter(trigger__agency=demo.agency, reason=ROLE_ADDRESS)
    emails = sorted(skipped.values_list("email", flat=True))
    assert emails  # the log shows the rule at work
    assert [e for e in emails if not is_role_address(e)] == []
    # hr@ is a person in a small company: the rules deliberately do not skip it.
    assert not is_role_address("hr@lumen-analytics.example")


def test_every_recipient_of_an_accepted_trigger_gets_the_reason_the_rules_give(demo, settings):
    agency = demo.agency
    members = {u.email.lower() for u in agency.members()}
    checked = 0
    for recipient in TriggerRecipient.objects.filter(
        trigger__agency=agency, trigger__status=Trigger.Status.ACCEPTED
    ).select_related("trigger"):
        if recipient.outcome == TriggerRecipient.Outcome.SKIPPED:
            assert recipient.reason in RULE_REASONS, recipient.reason
        elif recipient.outcome != TriggerRecipient.Outcome.INVITED:
            continue
        expected = recipient.reason if recipient.outcome == "skipped" else ""
        found = exclusion(
            recipient.email,
            sender=recipient.trigger.sender,
            inbound_domain=settings.EMAILSYNC_INBOUND_DOMAIN,
            agency_domains=agency.domain_names(),
            member_emails=members,
        )
        assert found == expected, (recipient.email, recipient.reason, found)
        checked += 1
    assert checked >= 10


def test_seeding_again_changes_nothing(demo):
    before = list(TriggerRecipient.objects.values_list("email", "outcome", "reason").order_by("id"))
    assert not any(demo()["created"].values())
    after = list(TriggerRecipient.objects.values_list("email", "outcome", "reason").order_by("id"))
    assert after == before
