"""DNS that does not answer for the key of the signature that decides a trigger is an outage,
not a verdict: the sending server is asked to try again (451 4.4.3) and nothing is recorded,
for as long as the email is young (ingest.DNS_RETRY_WINDOW); then it is quarantined."""

import email.utils
from datetime import timedelta

import dkim
import pytest
from django.utils import timezone

from emailsync.inbound.models import Trigger
from emailsync.review_requests.models import ReviewRequest

from .listener import RunningListener
from .mail import FakeDns, SigningKey, build
from .test_ingest import run

pytestmark = pytest.mark.django_db


class OutageDns(FakeDns):
    """A resolver that times out (or says SERVFAIL) until `up` is set."""

    up = False

    def __call__(self, name: bytes, timeout: int = 5):
        if not self.up:
            raise dkim.DnsTimeoutError("SERVFAIL")
        return super().__call__(name, timeout)


def dated(hours_ago: float) -> str:
    moment = timezone.now() - timedelta(hours=hours_ago)
    return email.utils.format_datetime(moment)


def test_a_dns_outage_records_nothing_and_the_retry_goes_through(sync_agency, acme_key):
    dns = OutageDns(acme_key)
    raw = acme_key.sign(build(date=dated(0.1)))
    [result] = run(sync_agency, raw, dns)
    assert result.retry_later and result.trigger_id is None and not result.created
    assert not Trigger.objects.exists() and not ReviewRequest.objects.exists()

    dns.up = True
    [result] = run(sync_agency, raw, dns)
    assert result.created and result.status == "accepted"
    assert Trigger.objects.get().auth_method == "dkim_aligned"


def test_an_outage_outlasting_the_window_ends_in_quarantine(sync_agency, acme_key):
    raw = acme_key.sign(build(date=dated(13)))
    [result] = run(sync_agency, raw, OutageDns(acme_key))
    assert not result.retry_later and result.status == "quarantined"
    assert "(dns_error)" in Trigger.objects.get().auth_detail  # what the admin sees


def test_an_unreachable_key_that_would_not_count_anyway_is_no_reason_to_wait(sync_agency):
    other = SigningKey("newsletter-platform.test")  # not aligned with acme.test, not trusted
    raw = other.sign(build(date=dated(0.1)))
    [result] = run(sync_agency, raw, OutageDns(other))
    assert not result.retry_later and result.reason == "sender_unauthenticated"


def test_an_agency_that_trusts_its_from_domain_does_not_wait_for_dns(sync_agency, acme_key):
    sync_agency.email_sync.trust_from_domain = True
    sync_agency.email_sync.save()
    [result] = run(sync_agency, acme_key.sign(build(date=dated(0.1))), OutageDns(acme_key))
    assert result.created and result.status == "accepted"


@pytest.mark.django_db(transaction=True)
def test_the_listener_answers_451_4_4_3_then_250_once_dns_is_back(sync_agency, acme_key):
    dns = OutageDns(acme_key)
    listener = RunningListener(dnsfunc=dns)
    try:
        raw = acme_key.sign(build(date=dated(0.1)))
        code, text = listener.send(raw, [sync_agency.bcc])
        assert (code, text.split(" ", 1)[0]) == (451, "4.4.3"), text
        assert not Trigger.objects.exists()
        dns.up = True
        code, text = listener.send(raw, [sync_agency.bcc])
        assert code == 250 and "trigger" in text
    finally:
        listener.stop()
    assert Trigger.objects.get().status == "accepted"


def test_a_setup_test_is_never_deferred(sync_agency, acme_key):
    # By the retry its window would have closed, making the admin's test a real email.
    from emailsync.agencies.models import User

    admin = User.objects.create_user(
        email="ada@acme.test", password="x" * 12, full_name="Ada", agency=sync_agency,
        role=User.Role.ADMIN,
    )  # fmt: skip
    sync_agency.email_sync.setup_test_until = timezone.now() + timedelta(minutes=30)
    sync_agency.email_sync.save()
    raw = acme_key.sign(build(sender=f"Ada <{admin.email}>", date=dated(0.1)))
    [result] = run(sync_agency, raw, OutageDns(acme_key))
    assert not result.retry_later and result.status == "quarantined"
    assert Trigger.objects.get().is_setup_test and not ReviewRequest.objects.exists()


def test_a_date_in_the_future_is_not_deferred(sync_agency, acme_key):
    raw = acme_key.sign(build(date=dated(-24 * 30)))  # thirty days ahead
    [result] = run(sync_agency, raw, OutageDns(acme_key))
    assert not result.retry_later and result.status == "quarantined"


def test_a_selector_no_resolver_can_ask_for_is_no_outage(sync_agency, acme_key):
    # A 64-character label is refused before any query: a forger's junk, not DNS being down.
    from emailsync.inbound.authenticity import CachedTxtResolver

    junk = SigningKey("acme.test", selector="s" * 64)
    resolver = CachedTxtResolver(nameservers=["127.0.0.1:9"], timeout=1)
    [result] = run(sync_agency, junk.sign(build(date=dated(0.1))), resolver)
    assert not result.retry_later and result.status == "quarantined"
    assert "(key_not_found)" in Trigger.objects.get().auth_detail


@pytest.mark.django_db(transaction=True)
def test_deferred_attempts_do_not_use_up_the_agencys_hourly_limit(sync_agency, acme_key):
    sync_agency.email_sync.rate_limit_per_hour = 1
    sync_agency.email_sync.save()
    dns = OutageDns(acme_key)
    listener = RunningListener(dnsfunc=dns)
    try:
        raw = acme_key.sign(build(date=dated(0.1)))
        for _ in range(3):  # the sending server retrying through the outage
            code, text = listener.send(raw, [sync_agency.bcc])
            assert code == 451 and text.startswith("4.4.3"), text
        dns.up = True
        code, text = listener.send(raw, [sync_agency.bcc])
        assert code == 250, text
    finally:
        listener.stop()
