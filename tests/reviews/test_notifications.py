"""How admins hear about new reviews: one email each, or a daily digest; and the email bodies."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import EmailSyncSettings
from emailsync.reviews import services
from emailsync.reviews.models import DisplayName, Review, shown_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def digest_agency(acme):
    sync = EmailSyncSettings.for_agency(acme)
    sync.review_notifications = EmailSyncSettings.ReviewNotifications.DIGEST
    sync.save()
    return acme


def submit(client, rr, answers, **changes):
    response = client.post(reverse("review-form", args=[rr.token]), answers(**changes))
    assert response.status_code == 302
    return Review.objects.get(review_request=rr)


def test_default_is_one_email_per_review(acme):
    assert EmailSyncSettings.for_agency(acme).review_notifications == "each"


def test_the_new_review_email_links_to_that_review(client, acme, sent_request, answers):
    review = submit(client, sent_request(), answers)
    row = OutboundEmail.objects.get(template="review_received")
    assert row.context["reviews_url"].endswith(reverse("review-verify", args=[review.pk]))


def test_digest_agencies_get_no_email_per_review(client, digest_agency, sent_request, answers):
    review = submit(client, sent_request(), answers)
    assert not OutboundEmail.objects.filter(agency=digest_agency).exists()
    assert review.admins_notified_at is None


def test_digest_gathers_the_day_s_reviews_once(client, digest_agency, sent_request, answers):
    submit(client, sent_request(email="a@people.test"), answers, rating="5")
    submit(client, sent_request(email="b@people.test"), answers, rating="2")
    now = timezone.now()
    result = services.send_due_digests(now)
    assert result == {"agencies": 1, "emails": 1, "reviews": 2}
    row = OutboundEmail.objects.get(template="review_digest")
    assert row.to_email == digest_agency.admins().get().email
    assert row.kind == OutboundEmail.Kind.NOTIFICATION
    assert row.context["count"] == 2
    assert [r["rating"] for r in row.context["reviews"]] == [5, 2]
    assert len(json.dumps(row.context)) < 2000  # ids and short strings, not whole reviews
    assert not Review.objects.filter(admins_notified_at__isnull=True).exists()

    # Run again at once: nothing new, nothing sent twice.
    assert services.send_due_digests(now)["emails"] == 0
    # A review arriving an hour later waits for tomorrow's digest …
    submit(client, sent_request(email="c@people.test"), answers)
    assert services.send_due_digests(now + timedelta(hours=1))["emails"] == 0
    # … which goes out a day after the last one.
    assert services.send_due_digests(now + timedelta(hours=24))["reviews"] == 1
    assert OutboundEmail.objects.filter(template="review_digest").count() == 2


def test_digest_ignores_unconfirmed_and_rejected_reviews(client, digest_agency, answers):
    link = reverse("recruiter-link", args=[digest_agency.slug, digest_agency.sam.slug])
    client.post(link, answers(email="u@people.test"))
    assert Review.objects.get().status == Review.Status.UNCONFIRMED
    assert services.send_due_digests()["emails"] == 0


def test_switching_back_to_each_flushes_what_the_digest_held(
    client, digest_agency, sent_request, answers
):
    submit(client, sent_request(), answers)
    services.send_due_digests()  # the first digest
    submit(client, sent_request(email="late@people.test"), answers)
    sync = EmailSyncSettings.for_agency(digest_agency)
    sync.review_notifications = "each"
    sync.save()
    assert services.send_due_digests()["reviews"] == 1


def test_send_digests_command(client, digest_agency, sent_request, answers):
    submit(client, sent_request(), answers)
    out = StringIO()
    call_command("reviews", "send-digests", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"agencies": 1, "emails": 1, "reviews": 1}
    out = StringIO()
    call_command("reviews", "send-digests", stdout=out)
    assert "Queued 0 digest email(s)" in out.getvalue()


def email_context(row: OutboundEmail) -> dict:
    # What the worker adds to every row's context at send time.
    return {**row.context, "agency": row.agency, "public_url": "http://127.0.0.1:8000"}


def test_new_review_email_renders_and_keeps_review_text_inert(client, sent_request, answers):
    text = "<script>alert('x')</script> Great recruiter, very responsive throughout."
    submit(client, sent_request(), answers, text=text)
    row = OutboundEmail.objects.get(template="review_received")
    context = email_context(row)
    subject = render_to_string("emails/review_received/subject.txt", context).strip()
    assert subject == "New 4-star review for Sam Carter"
    html = render_to_string("emails/review_received/body.html", context)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert row.context["reviews_url"] in html
    body = render_to_string("emails/review_received/body.txt", context)
    assert "★★★★☆" in body and "Cara C." in body
    # A notification is automatic mail: no out-of-office should answer it (RFC 3834).
    from emailsync.outbox.rendering import build_message

    assert build_message(row).extra_headers["Auto-Submitted"] == "auto-generated"


def test_digest_and_confirmation_emails_render(client, digest_agency, sent_request, answers):
    submit(client, sent_request(), answers)
    services.send_due_digests()
    row = OutboundEmail.objects.get(template="review_digest")
    context = email_context(row)
    assert render_to_string("emails/review_digest/subject.txt", context).strip() == (
        "1 new review to verify"
    )
    assert "Cara C." in render_to_string("emails/review_digest/body.html", context)

    link = reverse("recruiter-link", args=[digest_agency.slug, digest_agency.sam.slug])
    client.post(link, answers(email="rita@reviewer.test"))
    row = OutboundEmail.objects.get(template="review_confirm")
    context = email_context(row)
    assert (
        render_to_string("emails/review_confirm/subject.txt", context).strip()
        == "Confirm your review of Sam Carter"
    )
    assert row.context["confirm_url"] in render_to_string("emails/review_confirm/body.txt", context)


@pytest.mark.parametrize(
    ("name", "choice", "role", "shown"),
    [
        ("Cara Jane Candidate", DisplayName.FULL, "candidate", "Cara Jane Candidate"),
        ("Cara Jane Candidate", DisplayName.INITIAL, "candidate", "Cara C."),
        ("cara candidate", DisplayName.INITIAL, "client", "cara C."),
        ("Cher", DisplayName.INITIAL, "client", "Cher"),
        ("Cara Candidate", DisplayName.ANONYMOUS, "candidate", "Anonymous candidate"),
        ("Cara Candidate", DisplayName.ANONYMOUS, "client", "Anonymous client"),
        ("", DisplayName.FULL, "", "Anonymous"),
    ],
)
def test_display_name(name, choice, role, shown):
    assert shown_name(name, choice, role) == shown
