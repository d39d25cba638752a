"""An agency's domain covers its subdomains: `uk.acme.test` is Acme's own mail."""

import pytest
from django.urls import reverse

from emailsync.inbound.facts import OwnDomains
from emailsync.inbound.models import Trigger, UnmappedSender
from emailsync.review_requests.models import ReviewRequest

from .mail import build
from .test_ingest import reasons_by_recipient, run

pytestmark = pytest.mark.django_db


def test_a_colleague_at_an_office_subdomain_is_not_asked(sync_agency, acme_key, dns):
    raw = acme_key.sign(
        build(to=("Cara <cara@candidate.test>",), cc=("Priya <priya@uk.ACME.test>",))
    )
    [result] = run(sync_agency, raw, dns)
    assert reasons_by_recipient(result) == {
        "cara@candidate.test": "",
        "priya@uk.acme.test": "colleague",
    }
    assert list(ReviewRequest.objects.values_list("email", flat=True)) == ["cara@candidate.test"]


def test_a_sender_at_a_subdomain_signed_by_the_agency_is_the_agencys(sync_agency, acme_key, dns):
    raw = acme_key.sign(build(sender="Kim Office <kim@london.uk.acme.test>"))
    [result] = run(sync_agency, raw, dns)
    assert result.status == "accepted", result.reason
    assert Trigger.objects.get().auth_method == "dkim_aligned"
    # Not yet a known recruiter: an admin can map the address and the trigger is credited.
    assert UnmappedSender.objects.get().email == "kim@london.uk.acme.test"


@pytest.mark.parametrize(
    "lookalike", ["notacme.test", "acme.test.evil.example", "acme-test.example", "acme.tes"]
)
def test_a_lookalike_domain_is_not_the_agencys(sync_agency, acme_key, dns, lookalike):
    raw = acme_key.sign(build(to=(f"pat@{lookalike}",)))
    [result] = run(sync_agency, raw, dns)
    assert reasons_by_recipient(result) == {f"pat@{lookalike}": ""}

    stranger = acme_key.sign(build(sender=f"Mallory <mallory@{lookalike}>"))
    [result] = run(sync_agency, stranger, dns)
    assert result.status == "quarantined" and result.reason == "sender_not_agency"


def test_only_a_registrable_domain_covers_its_subdomains():
    own = OwnDomains({"acme.example", "co.uk", "github.io"})
    assert "acme.example" in own and "mail.acme.example" in own and "a.b.acme.example" in own
    assert "co.uk" in own  # as given, exactly
    # A public suffix an agency entered covers no one else's domain.
    assert "stranger.co.uk" not in own and "someone.github.io" not in own
    assert "example" not in own and "" not in own and None not in own
    assert "acme.example.evil.test" not in own


def test_microsoft_365s_shared_parent_domain_is_nobodys(admin_client, agency):
    # A tenant's own onmicrosoft.com domain is the agency's; the parent is every tenant's.
    from emailsync.agencies.models import AgencyDomain

    AgencyDomain.add(agency, "acmerecruit.onmicrosoft.com")
    refused = admin_client.post(reverse("add-domain"), {"domain": "onmicrosoft.com"})
    assert refused.status_code == 400 and b"public mailbox provider" in refused.content
    assert "onmicrosoft.com" not in agency.domain_names()
