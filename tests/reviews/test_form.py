"""The review form behind a request's link: opening, submitting once, editing, expiry, abuse."""

import re
from datetime import timedelta

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review

pytestmark = pytest.mark.django_db


def form_url(rr, **query):
    url = reverse("review-form", args=[rr.token])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def checked_values(html: str, name: str) -> list[str]:
    """Values of the checked inputs named `name` in the page."""
    found = []
    for tag in re.findall(r"<input[^>]*>", html):
        if f'name="{name}"' in tag and re.search(r"\schecked(\s|>|$)", tag):
            found.append(re.search(r'value="([^"]*)"', tag).group(1))
    return found


def without_csrf_token(content: bytes) -> bytes:
    return re.sub(rb'"X-CSRFToken": "[^"]*"', b'"X-CSRFToken": ""', content)


# Opening the link ------------------------------------------------------------------------------


def test_unknown_token_is_a_plain_404_like_any_missing_page(client, sent_request):
    sent_request()
    unknown = client.get("/review/" + "x" * 32 + "/")
    nowhere = client.get("/no-such-page/")
    assert unknown.status_code == 404
    assert nowhere.status_code == 404
    # The same page apart from the per-response CSRF token the site layout carries.
    assert without_csrf_token(unknown.content) == without_csrf_token(nowhere.content)
    assert b"find that page" in unknown.content
    for suffix in ("edit/", "thanks/", "confirm/"):
        assert client.get("/review/" + "x" * 32 + "/" + suffix).status_code == 404


def test_opening_the_link_marks_the_request_opened_once(client, sent_request):
    rr = sent_request()
    response = client.get(form_url(rr))
    assert response.status_code == 200
    rr.refresh_from_db()
    assert rr.status == ReviewRequest.Status.OPENED
    first_open = rr.opened_at
    assert first_open is not None
    client.get(form_url(rr))
    rr.refresh_from_db()
    assert rr.opened_at == first_open


def test_a_reminded_request_also_becomes_opened(client, sent_request):
    rr = sent_request(status=ReviewRequest.Status.REMINDED, reminded_at=timezone.now())
    client.get(form_url(rr))
    rr.refresh_from_db()
    assert rr.status == ReviewRequest.Status.OPENED


def test_form_names_the_recruiter_and_asks_every_question(client, sent_request):
    rr = sent_request()
    html = client.get(form_url(rr)).content.decode()
    assert "How was working with Sam Carter?" in html
    assert "Would you recommend Sam Carter?" in html
    for name in ("rating", "text", "role", "reviewer_name", "display_name_choice", "recommend"):
        assert f'name="{name}"' in html
    assert 'name="consent"' in html and 'type="checkbox"' in html
    assert 'name="email"' not in html  # the request link already knows who they are
    assert html.count('type="radio" name="rating"') == 5


def test_page_is_private_and_csp_clean(client, sent_request):
    rr = sent_request()
    response = client.get(form_url(rr))
    html = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]
    # Our CSP forbids inline script and style: every script is a file, no style attributes.
    assert "style=" not in html
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == []
    assert not re.search(r"<[^>]+\son[a-z]+=", html)


def test_rating_from_the_email_is_pre_filled(client, sent_request):
    rr = sent_request()
    assert checked_values(client.get(form_url(rr, rating=4)).content.decode(), "rating") == ["4"]
    assert checked_values(client.get(form_url(rr)).content.decode(), "rating") == []
    for nonsense in ("9", "0", "four", "-1"):
        html = client.get(form_url(rr, rating=nonsense)).content.decode()
        assert checked_values(html, "rating") == []


def test_role_is_pre_set_when_known(client, sent_request):
    client_rr = sent_request(email="hiring@client.test", role="client")
    unknown_rr = sent_request(email="someone@else.test", role="")
    assert checked_values(client.get(form_url(client_rr)).content.decode(), "role") == ["client"]
    assert checked_values(client.get(form_url(unknown_rr)).content.decode(), "role") == []


def test_name_from_the_email_is_offered_with_its_display_previews(client, sent_request):
    rr = sent_request(name="Cara Jane Candidate")
    html = client.get(form_url(rr)).content.decode()
    assert 'value="Cara Jane Candidate"' in html
    assert "Cara C." in html


def test_a_name_that_is_an_address_is_never_offered_for_publication(client, sent_request):
    """A request named by its address (an ATS with no name, a manual request typed so): the
    form must not suggest publishing the reviewer's address as their name."""
    rr = sent_request(name="cara@candidate.test")
    html = client.get(form_url(rr)).content.decode()
    assert "cara@candidate.test" not in html


# Submitting -----------------------------------------------------------------------------------


def test_a_submitted_review_lands_in_missing_verification(client, sent_request, answers):
    rr = sent_request(placement_ref="PL-1234")
    response = client.post(form_url(rr), answers())
    assert response.status_code == 302
    assert response["Location"] == reverse("review-thanks", args=[rr.token])
    review = Review.objects.get()
    assert review.review_request == rr
    assert review.agency == rr.agency and review.recruiter == rr.recruiter
    assert review.placement_ref == "PL-1234"
    assert review.status == Review.Status.MISSING_VERIFICATION
    assert review.rating == 4 and review.recommend is True and review.consent is True
    assert review.role == "candidate"
    assert review.reviewer_email == "cara@candidate.test"
    assert review.display_name == "Cara C."
    assert review.editable_until - review.submitted_at == timedelta(hours=24)
    rr.refresh_from_db()
    assert rr.status == ReviewRequest.Status.COMPLETED and rr.completed_at


def test_thank_you_page_says_what_happens_next_and_links_unsubscribe(client, sent_request, answers):
    rr = sent_request()
    client.post(form_url(rr), answers())
    html = client.get(reverse("review-thanks", args=[rr.token])).content.decode()
    assert "What happens next" in html
    assert "verify the placement" in html
    assert "Sam Carter's profile" in html and "Acme Recruitment's profile" in html
    assert "Cara C." in html
    assert "never shown publicly" in html
    try:
        unsubscribe = reverse("unsubscribe", args=[rr.token])
    except NoReverseMatch:  # the unsubscribe page belongs to another issue
        unsubscribe = None
    if unsubscribe:
        assert f'href="{unsubscribe}"' in html


def test_once_verified_the_thank_you_page_says_the_review_is_public(
    client, acme, sent_request, answers
):
    from emailsync.placements.models import Placement

    rr = sent_request()
    client.post(form_url(rr), answers())
    review = Review.objects.get(review_request=rr)
    review.verify(Placement.objects.create(agency=acme, candidate_name="Cara C"), by=None)
    html = client.get(reverse("review-thanks", args=[rr.token])).content.decode()
    assert "Acme Recruitment has verified your review." in html
    assert "It is on Sam Carter's profile" in html
    assert "What happens next" not in html and "verify the placement" not in html


def test_submission_is_single_use(client, sent_request, answers):
    rr = sent_request()
    client.post(form_url(rr), answers())
    different = answers(rating="1", text="A completely different review " * 2)
    again = client.post(form_url(rr), different)
    assert Review.objects.count() == 1
    review = Review.objects.get()
    assert review.rating == 4
    # What was typed the second time (another tab) is kept and offered as a change.
    assert again.status_code == 409
    html = again.content.decode()
    assert "You already sent a review from this link" in html
    assert "A completely different review" in html
    assert f'action="{reverse("review-edit", args=[rr.token])}"' in html
    # The same review sent twice (a double click) is simply thanked for.
    repeat = client.post(form_url(rr), answers())
    assert repeat.status_code == 302 and repeat.url == reverse("review-thanks", args=[rr.token])
    # The same words, but now anonymous: a change, offered to be saved, never thanked away.
    anonymous = client.post(form_url(rr), answers(display_name_choice="anonymous"))
    assert anonymous.status_code == 409
    assert Review.objects.get().display_name_choice == "initial"
    # Opened again, the link shows the review already given, not a fresh form.
    html = client.get(form_url(rr)).content.decode()
    assert "You have already sent this review" in html
    assert "Sam found me a great role" in html
    assert 'name="text"' not in html


def test_two_submissions_racing_create_one_review(sent_request, answers):
    from emailsync.reviews import services

    rr = sent_request()
    form_data = {
        "rating": 5,
        "text": "x" * 40,
        "role": "client",
        "reviewer_name": "",
        "display_name_choice": "anonymous",
        "recommend": True,
        "consent": True,
    }
    services.submit(rr, form_data)
    with pytest.raises(services.AlreadyReviewed):
        services.submit(rr, form_data)
    assert Review.objects.count() == 1


def test_bad_input_is_explained_beside_each_field_and_input_is_kept(client, sent_request, answers):
    rr = sent_request()
    response = client.post(
        form_url(rr),
        answers(
            rating=None,
            text="Too short <b>but kept</b>",
            recommend=None,
            consent=None,
            reviewer_name="Cara Candidate",
            display_name_choice="full",
            role="client",
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert Review.objects.count() == 0
    assert "Choose a rating from 1 to 5 stars." in html
    assert "Write at least 30 characters (you have 25)." in html
    assert "Answer yes or no." in html
    assert "Tick the box to agree to publication" in html
    # Each message sits with its field and is tied to it for screen readers.
    assert 'id="text-error"' in html
    assert 'aria-describedby="text-help text-count text-error"' in html
    assert 'id="rating-error"' in html and 'aria-describedby="rating-error"' in html
    # Everything typed is still there (escaped, not executed).
    assert "Too short &lt;b&gt;but kept&lt;/b&gt;</textarea>" in html
    assert 'value="Cara Candidate"' in html
    assert checked_values(html, "role") == ["client"]
    assert checked_values(html, "display_name_choice") == ["full"]
    rr.refresh_from_db()
    assert rr.status != ReviewRequest.Status.COMPLETED


def test_a_name_is_needed_unless_anonymous(client, sent_request, answers):
    rr = sent_request(name="")
    response = client.post(form_url(rr), answers(reviewer_name="", display_name_choice="full"))
    assert response.status_code == 400
    assert "Enter your name, or choose to be shown as anonymous." in response.content.decode()
    response = client.post(form_url(rr), answers(reviewer_name="", display_name_choice="anonymous"))
    assert response.status_code == 302
    assert Review.objects.get().display_name == "Anonymous candidate"


def test_review_text_with_html_and_script_is_inert(client, sent_request, answers):
    rr = sent_request()
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)> Honest review text here.'
    client.post(form_url(rr), answers(text=payload, reviewer_name='<b onmouseover="x">Eve</b>'))
    review = Review.objects.get()
    assert review.text == payload  # stored as typed
    for page in ("review-thanks", "review-form"):
        html = client.get(reverse(page, args=[rr.token])).content.decode()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
        assert "<b onmouseover" not in html


def test_text_is_measured_as_people_see_it(client, sent_request, answers):
    rr = sent_request()
    # 29 visible characters padded with spaces and blank lines does not pass the minimum.
    response = client.post(form_url(rr), answers(text="  " + "a" * 29 + "\r\n\r\n\r\n   "))
    assert response.status_code == 400
    text = "line one is here, fine\r\n\r\n\r\n\r\nline two"
    response = client.post(form_url(rr), answers(text=text))
    assert response.status_code == 302
    assert Review.objects.get().text == "line one is here, fine\n\nline two"


def test_too_long_text_is_refused(client, sent_request, answers):
    rr = sent_request()
    response = client.post(form_url(rr), answers(text="a" * 5001))
    assert response.status_code == 400
    assert "Keep it under 5000 characters" in response.content.decode()


# Edit window ----------------------------------------------------------------------------------


def test_review_can_be_changed_for_24_hours(client, sent_request, answers):
    rr = sent_request()
    client.post(form_url(rr), answers())
    edit = reverse("review-edit", args=[rr.token])
    page = client.get(edit).content.decode()
    assert "Change your review" in page
    assert checked_values(page, "rating") == ["4"]
    assert "Sam found me a great role" in page
    changed = answers(rating="5", text="Changed my mind: even better than I said.")
    response = client.post(edit, changed)
    assert response.status_code == 302
    review = Review.objects.get()
    assert review.rating == 5 and review.text.startswith("Changed my mind")
    assert Review.objects.count() == 1


def test_after_24_hours_the_review_is_read_only(client, sent_request, answers):
    rr = sent_request()
    client.post(form_url(rr), answers())
    Review.objects.update(editable_until=timezone.now() - timedelta(seconds=1))
    edit = reverse("review-edit", args=[rr.token])
    assert client.get(edit)["Location"] == form_url(rr)
    response = client.post(edit, answers(rating="1", text="Trying to change it after the window."))
    assert response.status_code == 302
    assert Review.objects.get().rating == 4
    html = client.get(form_url(rr)).content.decode()
    assert "It can no longer be changed here" in html
    assert reverse("review-edit", args=[rr.token]) not in html


def test_a_verified_review_cannot_be_changed_even_inside_the_window(client, sent_request, answers):
    rr = sent_request()
    client.post(form_url(rr), answers())
    html = client.get(form_url(rr)).content.decode()
    assert "until the agency verifies it" in html  # the window's other end, said up front
    Review.objects.update(status=Review.Status.VERIFIED)
    client.post(reverse("review-edit", args=[rr.token]), answers(rating="1"))
    assert Review.objects.get().rating == 4
    # The reviewer learns why: it has been verified and published.
    html = client.get(form_url(rr)).content.decode()
    assert "has verified it, and it is published" in html
    assert f'href="/agencies/{rr.agency.slug}/"' in html  # where it can be seen
    assert "It can no longer be changed here" in html


# Expiry and closed links ----------------------------------------------------------------------


def test_an_expired_link_explains_itself_and_offers_nothing_else(client, sent_request, answers):
    rr = sent_request(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(form_url(rr))
    assert response.status_code == 410
    html = response.content.decode()
    assert "This link has expired" in html
    assert "<form" not in html
    assert client.post(form_url(rr), answers()).status_code == 410
    assert Review.objects.count() == 0
    rr.refresh_from_db()
    assert rr.status == ReviewRequest.Status.SENT  # an expired link is not "opened"


def test_a_request_marked_expired_is_expired(client, sent_request):
    rr = sent_request(status=ReviewRequest.Status.EXPIRED, expires_at=None)
    assert client.get(form_url(rr)).status_code == 410


def test_a_cancelled_request_cannot_be_answered(client, sent_request, answers):
    rr = sent_request(status=ReviewRequest.Status.CANCELLED)
    response = client.get(form_url(rr))
    assert response.status_code == 410
    assert "no longer active" in response.content.decode()
    client.post(form_url(rr), answers())
    assert Review.objects.count() == 0


# Abuse ----------------------------------------------------------------------------------------


def test_honeypot_catches_form_filling_scripts(client, sent_request, answers):
    rr = sent_request()
    html = client.get(form_url(rr)).content.decode()
    assert 'name="leave_blank"' in html and 'class="rv-hp"' in html
    response = client.post(form_url(rr), answers(leave_blank="http://spam.example"))
    assert response.status_code == 400
    assert Review.objects.count() == 0


def test_posts_are_rate_limited_per_client_address(client, sent_request, answers, settings):
    settings.EMAILSYNC_REVIEW_POSTS_PER_IP = 3
    requests = [sent_request(email=f"p{n}@people.test") for n in range(5)]
    for rr in requests[:3]:
        assert client.post(form_url(rr), answers(), REMOTE_ADDR="203.0.113.7").status_code == 302
    blocked = client.post(form_url(requests[3]), answers(), REMOTE_ADDR="203.0.113.7")
    assert blocked.status_code == 429
    html = blocked.content.decode()
    assert "Please wait" in html
    assert "Sam found me a great role" in html  # what they wrote is kept
    assert Review.objects.count() == 3
    # Another address is not affected.
    other = client.post(form_url(requests[4]), answers(), REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 302


def test_behind_the_proxy_each_forwarded_client_has_its_own_bucket(
    client, acme, sent_request, answers, make_agency, settings
):
    """Behind nginx every request comes from 127.0.0.1: junk posted to a public recruiter link
    from one visitor must not lock out another agency's reviewer at a different address."""
    settings.EMAILSYNC_BEHIND_PROXY = True
    settings.EMAILSYNC_REVIEW_POSTS_PER_IP = 3
    link = reverse("recruiter-link", args=[acme.slug, acme.sam.slug])
    for _ in range(4):  # invalid posts count too; the last is over the limit
        last = client.post(
            link, {"rating": "9"}, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
    assert last.status_code == 429
    other = make_agency(name="Other Co", domains=["other.test"])
    rr = sent_request(agency=other, recruiter=None, email="val@people.test")
    response = client.post(
        form_url(rr), answers(), REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert response.status_code == 302
    # Only the right-most entry (the one nginx appended) counts: a forged left part does not
    # give the limited visitor a fresh bucket.
    forged = client.post(
        link,
        {"rating": "9"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.7",
    )
    assert forged.status_code == 429


def test_without_the_proxy_setting_x_forwarded_for_is_ignored(
    client, sent_request, answers, settings
):
    """Straight from the internet the header is the client's own words: a spoofer cycling it
    stays in one bucket (their real address)."""
    settings.EMAILSYNC_BEHIND_PROXY = False
    settings.EMAILSYNC_REVIEW_POSTS_PER_IP = 2
    requests = [sent_request(email=f"s{n}@people.test") for n in range(3)]
    codes = [
        client.post(
            form_url(rr), answers(), REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        ).status_code
        for n, rr in enumerate(requests)
    ]
    assert codes == [302, 302, 429]


# Admin notification ---------------------------------------------------------------------------


def test_admins_are_emailed_about_each_new_review(client, sent_request, answers, add_member):
    rr = sent_request()
    second_admin = add_member(rr.agency, role="admin")
    client.post(form_url(rr), answers(text="<b>Great</b> service from start to finish, thank you!"))
    rows = OutboundEmail.objects.filter(template="review_received")
    assert sorted(rows.values_list("to_email", flat=True)) == sorted(
        [rr.agency.admins().exclude(pk=second_admin.pk).get().email, second_admin.email]
    )
    row = rows.first()
    assert row.kind == OutboundEmail.Kind.NOTIFICATION
    assert row.agency == rr.agency
    assert row.context["rating"] == 4 and row.context["recruiter_name"] == "Sam Carter"
    assert row.context["reviewer"] == "Cara C."
    assert row.context["reviews_url"].startswith("http")
    assert Review.objects.get().admins_notified_at is not None
    # Nobody else (not the recruiter, not the reviewer) gets this email.
    assert not rows.filter(to_email__in=["sam@acme.test", "cara@candidate.test"]).exists()


def test_the_setup_test_link_previews_the_form_but_stores_nothing(
    client, acme, sent_request, answers
):
    """The setup test asks the admin who ran it: the form is a preview, and what they send is
    neither stored nor published (an agency may not review itself through it)."""
    from emailsync.review_requests.models import Source

    admin = acme.admins().get()
    rr = sent_request(source=Source.SETUP_TEST, email=admin.email, name="Admin", recruiter=None)
    preview = client.get(form_url(rr))
    assert preview.status_code == 200 and "Setup test preview" in preview.content.decode()
    response = client.post(form_url(rr), answers(rating="5"))
    assert response.status_code == 200
    assert "This was a setup test" in response.content.decode()
    assert "nothing was published" in response.content.decode()
    assert not Review.objects.exists()
    assert not OutboundEmail.objects.filter(template="review_received").exists()
    page = client.get(reverse("profiles-agency", args=[acme.slug]))
    assert "kept me informed throughout" not in page.content.decode()
