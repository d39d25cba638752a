"""Outgoing webhooks: events from where things happen, signed deliveries that verify with the
documented recipe, retries with backoff that stop, the delivery log, and no SSRF."""

import hashlib
import hmac
import json
import shutil
import subprocess
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from emailsync.api import webhooks
from emailsync.api.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from emailsync.outbox.worker import Worker
from emailsync.placements.models import Placement
from emailsync.review_requests.bounces import record_hard_bounce
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews import services
from tests.api.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def endpoint(acme, receiver):
    return WebhookEndpoint.objects.create(
        agency=acme, url=receiver.url, events=",".join(webhooks.EVENTS)
    )


def verify_like_the_docs(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """docs/API.md's Python recipe, verbatim."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    timestamp, signature = fields["t"], fields["v1"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, signature)


def schedule(api, email="cara@people.test"):
    response = api.post(
        "/api/v1/review-requests", {"recipients": [{"email": email}], "send_now": True}
    )
    return ReviewRequest.objects.get(pk=response.json()["recipients"][0]["review_request"]["id"])


def events_sent(receiver):
    return [json.loads(body)["type"] for _headers, body in receiver.requests]


def review_data():
    return {
        "rating": 4,
        "text": "Helpful and quick, kept me informed all along the way.",
        "role": "candidate",
        "reviewer_name": "Cara C",
        "display_name_choice": "initial",
        "recommend": True,
        "consent": True,
    }


def test_every_event_is_delivered_signed(api, acme, endpoint, receiver, mailoutbox):
    rr = schedule(api)
    Worker(run_jobs=False).run_once(now=timezone.now() + timedelta(seconds=1))  # request.sent
    review = services.submit(rr, review_data())  # review.submitted
    placement = Placement.objects.create(agency=acme, candidate_name="Cara")
    review.verify(placement, by=acme.admins().get())  # review.verified
    bounced = schedule(api, "bob@people.test")
    record_hard_bounce(bounced, "5.1.1", "no such user")  # request.bounced
    other = schedule(api, "dan@people.test")
    rejected = services.submit(other, review_data())
    rejected.reject("spam", by=acme.admins().get())  # review.rejected

    webhooks.deliver_due()
    assert events_sent(receiver) == [
        "request.sent",
        "review.submitted",
        "review.verified",
        "request.bounced",
        "review.submitted",
        "review.rejected",
    ]
    for headers, body in receiver.requests:
        assert headers["Content-Type"] == "application/json"
        assert verify_like_the_docs(endpoint.secret, headers["EmailSync-Signature"], body)
        assert not verify_like_the_docs("whsec_wrong", headers["EmailSync-Signature"], body)
        assert not verify_like_the_docs(
            endpoint.secret, headers["EmailSync-Signature"], body + b" "
        )
        payload = json.loads(body)
        assert payload["agency"]["id"] == acme.pk and payload["id"] == headers["EmailSync-Event-Id"]
    verified = json.loads(receiver.requests[2][1])["data"]
    assert verified["status"] == "verified" and verified["placement_id"] == placement.pk
    assert WebhookDelivery.objects.filter(status="delivered").count() == 6
    assert WebhookAttempt.objects.filter(response_status=200).count() == 6


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_documented_shell_recipe_verifies(api, endpoint, receiver):
    webhooks.deliver_due(only=[webhooks.queue_test(endpoint).pk])
    headers, body = receiver.requests[0]
    t = headers["EmailSync-Signature"].split(",")[0].removeprefix("t=")
    v1 = headers["EmailSync-Signature"].split("v1=")[1]
    # docs/API.md: printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret" -hex
    out = subprocess.run(
        ["sh", "-c", 'printf \'%s.%s\' "$t" "$body" | openssl dgst -sha256 -hmac "$secret" -hex'],
        env={"t": t, "body": body.decode(), "secret": endpoint.secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().split()[-1] == v1


def test_only_subscribed_active_endpoints_get_events(api, acme, receiver):
    WebhookEndpoint.objects.create(agency=acme, url=receiver.url, events="review.verified")
    WebhookEndpoint.objects.create(
        agency=acme, url=receiver.url, events="request.bounced", active=False
    )
    rr = schedule(api)
    record_hard_bounce(rr, "5.1.1", "")
    assert not WebhookDelivery.objects.exists()


def test_failed_deliveries_retry_with_backoff_then_stop(acme, endpoint, receiver):
    receiver.status, receiver.body = 500, b"boom: database down " * 100
    delivery = webhooks.queue_test(endpoint)
    moment, waits = timezone.now(), []
    for _ in range(webhooks.MAX_ATTEMPTS + 3):
        webhooks.deliver_due(now=moment)
        delivery.refresh_from_db()
        if delivery.status == WebhookDelivery.Status.FAILED:
            break
        assert delivery.status == WebhookDelivery.Status.QUEUED
        assert webhooks.deliver_due(now=moment) == {"delivered": 0, "failed_attempts": 0}
        waits.append((delivery.next_attempt_at - moment).total_seconds())
        moment = delivery.next_attempt_at + timedelta(seconds=1)
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == webhooks.MAX_ATTEMPTS == len(receiver.requests)
    assert waits == sorted(waits) and waits[-1] > 8 * waits[0]
    assert delivery.response_status == 500 and delivery.response_excerpt.startswith("boom")
    assert len(delivery.response_excerpt) <= 500
    assert delivery.log.count() == webhooks.MAX_ATTEMPTS
    webhooks.deliver_due(now=moment + timedelta(days=2))
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS  # stopped for good


def test_a_crashed_workers_lease_expires_and_the_delivery_is_sent(endpoint, receiver):
    delivery = webhooks.queue_test(endpoint)
    now = timezone.now()
    assert webhooks.claim("dead-worker", now) == [delivery.pk]
    assert webhooks.claim("other", now) == []
    webhooks.deliver_due(now=now + webhooks.LEASE + timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and len(receiver.requests) == 1


def test_worker_runs_webhooks_as_a_periodic_job(endpoint, receiver):
    webhooks.queue_test(endpoint)
    stats = Worker().run_once()
    assert stats.jobs["webhooks"]["delivered"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://ats.example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://localhost./hook",
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 for 127.0.0.1
        "https://[2002:7f00:1::]/hook",  # 6to4 for 127.0.0.1
        "https://[2002:a9fe:a9fe::]/hook",  # 6to4 for 169.254.169.254
        "https://[::ffff:10.0.0.1]/hook",
        "https://db.internal/hook",
        "https://user:pw@ats.example.com/hook",
        "ftp://ats.example.com/",
    ],
)
def test_production_refuses_plain_http_and_private_addresses(settings, url):
    settings.EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError):
        webhooks.validate_url(url)


def test_ipv6_forms_of_a_public_ipv4_address_are_allowed(settings):
    settings.EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.address_allowed("64:ff9b::808:808")  # NAT64 for 8.8.8.8
    assert webhooks.address_allowed("2002:808:808::1")  # 6to4 for 8.8.8.8
    assert not webhooks.address_allowed("64:ff9b::a00:1")  # 10.0.0.1


def test_production_allows_public_https(settings):
    settings.EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.validate_url(" https://ats.example.com/hooks?x=1 ") == (
        "https://ats.example.com/hooks?x=1"
    )


def test_delivery_never_connects_to_a_private_address(settings, endpoint, receiver):
    """Even when a stored URL (or DNS) points inside, the connection is refused before sending."""
    settings.EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.BlockedAddress):
        webhooks._connect("localhost", 443, 2)
    delivery = webhooks.queue_test(endpoint)
    webhooks.deliver_due(only=[delivery.pk])
    delivery.refresh_from_db()
    assert receiver.requests == [] and delivery.status == "queued"
    assert "refused" in delivery.last_error
