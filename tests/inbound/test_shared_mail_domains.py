"""A public mailbox provider kept as an agency domain from before they were refused counts
for nothing: its strangers are neither colleagues nor the agency's senders."""

import pytest
from django.urls import reverse

from emailsync.agencies.models import AgencyDomain

from .mail import build
from .test_ingest import reasons_by_recipient, run

pytestmark = pytest.mark.django_db


def legacy_domain(agency, domain="gmail.com"):
    # As it was stored before the rule: saved without the model's validation.
    return AgencyDomain.objects.create(agency=agency, domain=domain)


def test_a_candidate_on_a_legacy_mailbox_provider_domain_is_asked(sync_agency, acme_key, dns):
    legacy_domain(sync_agency)
    raw = acme_key.sign(build(to=("Cara <cara@gmail.com>",), cc=("Priya <priya@acme.test>",)))
    [result] = run(sync_agency, raw, dns)
    assert reasons_by_recipient(result) == {"cara@gmail.com": "", "priya@acme.test": "colleague"}


def test_a_stranger_on_a_legacy_mailbox_provider_domain_is_not_the_agency(
    sync_agency, acme_key, dns
):
    legacy_domain(sync_agency)
    sync_agency.email_sync.trust_from_domain = True  # the setting that made it dangerous
    sync_agency.email_sync.save()
    [result] = run(sync_agency, build(sender="Mallory <mallory@gmail.com>"), dns)
    assert result.status == "quarantined" and result.reason == "sender_not_agency"


def test_the_pages_tell_the_admin_to_remove_it(admin_client, agency):
    legacy_domain(agency)
    settings_page = admin_client.get(reverse("agency-settings")).content.decode()
    assert "gmail.com is a public mailbox provider" in settings_page
    assert "Email Sync ignores it" in settings_page
    email_sync = admin_client.get(reverse("email-sync")).content.decode()
    assert "a public mailbox provider: ignored, remove it" in email_sync
    # The agency's real domain carries no such warning.
    assert email_sync.count("public mailbox provider") == 1
