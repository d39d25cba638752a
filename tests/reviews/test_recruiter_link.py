"""A recruiter's own link: the same form plus the reviewer's email, confirmed before it counts,
with one dedupe window shared with every other way of asking."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.agencies.models import User
from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import (
    AskedRecipient,
    ReviewRequest,
    Source,
    Suppression,
)
from emailsync.reviews.models import Review

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(acme):
    return reverse("recruiter-link", args=[acme.slug, acme.sam.slug])


@pytest.fixture
def link_answers(answers):
    def make(**changes):
        defaults = {"email": "Rita@Reviewer.test", "reviewer_name": "Rita Reviewer"}
        return answers(**{**defaults, **changes})

    return make


def confirmation_url(email="rita@reviewer.test") -> str:
    row = OutboundEmail.objects.get(template="review_confirm", to_email=email)
    return row.context["confirm_url"]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_link_shows_the_form_with_an_email_field(client, acme, link):
    assert link == f"/r/{acme.slug}/{acme.sam.slug}/"
    response = client.get(link + "?rating=5")
    assert response.status_code == 200
    html = response.content.decode()
    assert "How was working with Sam Carter?" in html
    assert 'name="email"' in html and 'autocomplete="email"' in html
    assert 'value="5" checked' in html


def test_unknown_or_departed_recruiters_have_no_link(client, acme, make_agency):
    assert client.get(f"/r/{acme.slug}/nobody/").status_code == 404
    assert client.get(f"/r/no-agency/{acme.sam.slug}/").status_code == 404
    other = make_agency(name="Other Agency", domains=["other.test"])
    # Another agency's slug with this recruiter's slug is not this recruiter.
    assert client.get(f"/r/{other.slug}/{acme.sam.slug}/").status_code == 404
    User.objects.filter(pk=acme.sam.user_id).update(is_active=False)
    assert client.get(f"/r/{acme.slug}/{acme.sam.slug}/").status_code == 404


def test_submission_waits_unconfirmed_and_emails_a_confirmation_link(
    client, acme, link, link_answers
):
    response = client.post(link, link_answers())
    assert response.status_code == 302
    assert response["Location"] == reverse("recruiter-link-sent", args=[acme.slug, acme.sam.slug])
    assert "check your email" in client.get(response["Location"]).content.decode()

    rr = ReviewRequest.objects.get()
    assert rr.source == Source.RECRUITER_LINK
    assert rr.email == "rita@reviewer.test" and rr.recruiter == acme.sam and rr.agency == acme
    review = Review.objects.get()
    assert review.status == Review.Status.UNCONFIRMED
    assert review.reviewer_email == "rita@reviewer.test"
    assert not Review.objects.counted().exists()
    # Not counted yet: no admin email, and the dedupe ledger is untouched.
    assert not OutboundEmail.objects.filter(template="review_received").exists()
    assert not AskedRecipient.objects.exists()

    row = OutboundEmail.objects.get(template="review_confirm")
    assert row.to_email == "rita@reviewer.test"
    assert row.kind == OutboundEmail.Kind.NOTIFICATION and row.review_request == rr
    assert row.context["confirm_url"].endswith(reverse("review-confirm", args=[rr.token]))
    # The browser that submitted never learns the token: only the mailbox owner can confirm.
    assert rr.token not in client.get(response["Location"]).content.decode()


def test_confirming_makes_the_review_count(client, acme, link, link_answers):
    client.post(link, link_answers())
    url = path_of(confirmation_url())
    page = client.get(url)
    assert page.status_code == 200
    assert "Confirm my review" in page.content.decode()
    assert Review.objects.get().status == Review.Status.UNCONFIRMED  # a GET (link scanner) alone

    response = client.post(url)
    rr = ReviewRequest.objects.get()
    assert response["Location"] == reverse("review-thanks", args=[rr.token])
    review = Review.objects.get()
    assert review.status == Review.Status.MISSING_VERIFICATION and review.confirmed_at
    assert rr.status == ReviewRequest.Status.COMPLETED
    assert OutboundEmail.objects.filter(template="review_received").count() == 1
    assert AskedRecipient.objects.filter(agency=acme, email="rita@reviewer.test").exists()
    # Clicking again is harmless.
    assert client.post(url).status_code == 302
    assert OutboundEmail.objects.filter(template="review_received").count() == 1
    # Thanks page works for the confirmed review.
    assert "What happens next" in client.get(response["Location"]).content.decode()


def test_a_confirmation_link_expires(client, acme, link, link_answers):
    client.post(link, link_answers())
    ReviewRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    url = path_of(confirmation_url())
    assert client.get(url).status_code == 410
    assert client.post(url).status_code == 410
    assert Review.objects.get().status == Review.Status.UNCONFIRMED


def test_request_links_cannot_be_used_as_confirmation_links(client, sent_request):
    rr = sent_request()
    assert client.get(reverse("review-confirm", args=[rr.token])).status_code == 404


def test_dedupe_someone_asked_by_email_sync_cannot_add_a_second_review_by_link(
    client, acme, link, link_answers
):
    # Email Sync asked Rita last month (the ingest records every ask in the shared ledger).
    assert AskedRecipient.claim(
        acme.pk, "rita@reviewer.test", timezone.now() - timedelta(days=30), timedelta(days=90)
    )
    client.post(link, link_answers())
    response = client.post(path_of(confirmation_url()))
    assert response.status_code == 200
    assert "can't be counted" in response.content.decode()
    review = Review.objects.get()
    assert review.status == Review.Status.REJECTED and "dedupe" in review.rejected_reason
    assert not Review.objects.counted().exists()
    assert not OutboundEmail.objects.filter(template="review_received").exists()
    rr = ReviewRequest.objects.get(source=Source.RECRUITER_LINK)
    assert rr.status == ReviewRequest.Status.SKIPPED
    # The emailed link keeps explaining why, rather than showing a review that won't appear.
    for page in ("review-confirm", "review-form"):
        html = client.get(reverse(page, args=[rr.token]), follow=True).content.decode()
        assert "can't be counted" in html


def test_dedupe_a_confirmed_link_review_stops_email_sync_asking_again(
    client, acme, link, link_answers
):
    client.post(link, link_answers())
    client.post(path_of(confirmation_url()))
    now = timezone.now()
    window = timedelta(days=90)
    # What the ingest checks before inviting anyone, and the claim it makes when it does.
    assert AskedRecipient.recently_asked(acme.pk, ["rita@reviewer.test"], now, window) == {
        "rita@reviewer.test"
    }
    assert not AskedRecipient.claim(acme.pk, "rita@reviewer.test", now, window)


def test_dedupe_one_review_by_link_per_window(client, acme, link, link_answers):
    client.post(link, link_answers())
    client.post(path_of(confirmation_url()))
    client.post(link, link_answers(text="Second helping of the same praise, more words here."))
    second = ReviewRequest.objects.filter(source=Source.RECRUITER_LINK).order_by("-id").first()
    client.post(reverse("review-confirm", args=[second.token]))
    assert Review.objects.counted().count() == 1


def test_dedupe_window_outside_is_fine(client, acme, link, link_answers):
    AskedRecipient.claim(
        acme.pk, "rita@reviewer.test", timezone.now() - timedelta(days=120), timedelta(days=90)
    )
    client.post(link, link_answers())
    client.post(path_of(confirmation_url()))
    assert Review.objects.get().status == Review.Status.MISSING_VERIFICATION


def test_confirmation_emails_to_one_address_are_limited(client, acme, link, link_answers):
    for _ in range(5):
        assert client.post(link, link_answers()).status_code == 302
    assert OutboundEmail.objects.filter(template="review_confirm").count() == 3
    assert ReviewRequest.objects.count() == 3


def test_no_confirmation_to_an_address_that_bounced(client, acme, link, link_answers):
    Suppression.add("rita@reviewer.test", Suppression.Reason.BOUNCED)
    client.post(link, link_answers())
    assert not OutboundEmail.objects.filter(template="review_confirm").exists()


def test_bad_input_keeps_everything_including_the_email(client, link, link_answers):
    response = client.post(link, link_answers(email="not-an-email", text="short"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter an email address like name@example.com." in html
    assert 'value="not-an-email"' in html
    assert ">short</textarea>" in html
    assert Review.objects.count() == 0


def test_honeypot_on_the_public_link_discards_silently(client, acme, link, link_answers):
    response = client.post(link, link_answers(leave_blank="buy now"))
    assert response.status_code == 302  # the script learns nothing
    assert Review.objects.count() == 0
    assert not OutboundEmail.objects.exists()


def test_public_link_is_rate_limited(client, acme, link, link_answers, settings):
    settings.EMAILSYNC_REVIEW_POSTS_PER_IP = 2
    for n in range(2):
        client.post(link, link_answers(email=f"r{n}@reviewer.test"))
    response = client.post(link, link_answers(email="r9@reviewer.test"))
    assert response.status_code == 429
    assert Review.objects.count() == 2


@pytest.mark.parametrize("email", ["sam@acme.test", "someone.else@acme.test", "Sam+me@Acme.test"])
def test_a_member_or_agency_address_cannot_confirm_a_review(
    client, acme, link, link_answers, email
):
    """A recruiter (or anyone on the agency's domain) reviewing themselves through their own
    link: the confirmation is refused with a clear page and the review never counts."""
    assert client.post(link, link_answers(email=email, rating="5")).status_code == 302
    rr = ReviewRequest.objects.get(agency=acme, source=Source.RECRUITER_LINK)
    page = client.post(reverse("review-confirm", args=[rr.token]))
    assert page.status_code == 200
    assert "belongs to Acme Recruitment" in page.content.decode()
    review = Review.objects.get(review_request=rr)
    rr.refresh_from_db()
    assert review.status == Review.Status.REJECTED and not review.counts
    assert (rr.status, rr.status_reason) == (ReviewRequest.Status.SKIPPED, "colleague")
    assert not OutboundEmail.objects.filter(template="review_received").exists()
    # Opening the links again shows the same explanation.
    again = client.get(reverse("review-confirm", args=[rr.token]))
    assert "belongs to Acme Recruitment" in again.content.decode()
