"""The public data-request form: confirmation by email, POST-only action, honeypot, limits."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.rendering import render_parts
from emailsync.privacy.models import DataRequest
from emailsync.review_requests.models import ReviewRequest, Suppression
from emailsync.reviews.models import Review
from tests.profiles.conftest import request_for, review_for

URL = "/privacy/"
PERSON = "pat@people.test"


@pytest.fixture
def person(make_agency):
    agency = make_agency()
    rr = request_for(agency, email=PERSON)
    rr.save()
    review_for(agency, rr, status="missing_verification").save()
    return agency


def ask(client, email=PERSON, action="export", **extra):
    return client.post(URL, {"email": email, "action": action, "website": "", **extra})


def link_from_outbox() -> str:
    row = OutboundEmail.objects.get(template="privacy_confirm")
    assert row.kind == "notification"
    subject, text, html = render_parts(row.template, row.context)
    assert subject.strip() and html
    return re.search(r"https?://\S+/privacy/confirm/\S+/", text).group(0)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_form_renders(client, db):
    response = client.get(URL)
    assert response.status_code == 200
    assert b'name="website"' in response.content and b"csrfmiddlewaretoken" in response.content
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_export_by_confirmed_link(client, person):
    response = ask(client)
    assert response.status_code == 200 and b"Check your inbox" in response.content
    link = path_of(link_from_outbox())
    assert not DataRequest.objects.filter(token_hash=link.split("/")[-2]).exists()  # hashed
    # GET only shows a button: mail scanners that follow links change nothing.
    page = client.get(link)
    assert page.status_code == 200 and b"Download my data" in page.content
    response = client.post(link)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["email"] == PERSON and len(data["reviews"]) == 1
    # Single use.
    assert client.post(link).status_code == 404


def test_erase_by_confirmed_link(client, person):
    ask(client, action="erase")
    link = path_of(link_from_outbox())
    assert Review.objects.exists()
    client.get(link)
    assert Review.objects.exists()  # GET does nothing
    response = client.post(link)
    assert response.status_code == 200 and b"erased" in response.content
    assert not Review.objects.exists() and not ReviewRequest.objects.exists()
    assert Suppression.suppressed([PERSON]) == {PERSON}
    assert not OutboundEmail.objects.filter(to_email=PERSON).exists()


def test_the_page_does_not_say_whether_an_address_is_known(client, person):
    known = ask(client, PERSON)
    unknown = ask(client, "stranger@nowhere.test")
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    # Both get the same email: only the owner of the address learns anything, after clicking.
    assert OutboundEmail.objects.filter(template="privacy_confirm").count() == 2


def test_links_expire_after_24_hours(client, person):
    ask(client)
    link = path_of(link_from_outbox())
    DataRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404
    assert client.post("/privacy/confirm/guessed-token/").status_code == 404


def test_honeypot_sends_nothing_and_looks_the_same(client, person):
    response = ask(client, website="http://spam.test")
    assert response.status_code == 200 and b"Check your inbox" in response.content
    assert not OutboundEmail.objects.exists() and not DataRequest.objects.exists()


def test_rate_limited_per_client_address(client, db, settings):
    settings.EMAILSYNC_PRIVACY_REQUESTS_PER_IP = 2
    assert ask(client, "a@x.test").status_code == 200
    assert ask(client, "b@x.test").status_code == 200
    limited = ask(client, "c@x.test")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert OutboundEmail.objects.count() == 2
    # Another client is not affected.
    other = client.post(URL, {"email": "d@x.test", "action": "export"}, REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 200


def test_one_address_gets_only_a_few_links_a_day(client, db, settings):
    settings.EMAILSYNC_PRIVACY_LINKS_PER_ADDRESS = 2
    for n in range(4):
        client.post(URL, {"email": PERSON, "action": "export"}, REMOTE_ADDR=f"198.51.100.{n}")
    assert OutboundEmail.objects.filter(to_email=PERSON).count() == 2


def test_invalid_input_keeps_what_was_typed(client, db):
    response = client.post(URL, {"email": "not-an-address", "action": "erase"})
    assert response.status_code == 400 and b"not-an-address" in response.content
    assert not OutboundEmail.objects.exists()


def test_reviewer_and_public_pages_link_to_the_form(client, db):
    assert reverse("privacy-request") == URL
    for path in (reverse("review-terms"), reverse("profiles-directory")):
        assert f'href="{URL}"'.encode() in client.get(path).content, path


def test_the_confirmation_email_says_who_we_are(client, person):
    # The person may never have heard of Email Sync: only of the agency that asked them.
    ask(client)
    row = OutboundEmail.objects.get(template="privacy_confirm")
    _subject, text, html = render_parts(row.template, row.context)
    for part in (text, html):
        assert "Email Sync collects reviews for recruitment agencies" in part
