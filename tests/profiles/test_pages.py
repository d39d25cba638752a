"""The public pages show verified, unhidden reviews only, honestly counted, and nothing private."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.profiles.models import Moderation, ReviewReply

pytestmark = pytest.mark.django_db

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def agency_url(agency):
    return reverse("profiles-agency", args=[agency.slug])


def recruiter_url(agency, recruiter):
    return reverse("profiles-recruiter", args=[agency.slug, recruiter.slug])


def widget_url(agency, **params):
    url = reverse("profiles-widget", args=[agency.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


@pytest.fixture
def mixed(acme, make_review):
    """One review in each state; only `shown` may appear anywhere public."""
    r = {
        "shown": make_review(acme, acme.sam, text="SHOWN verified review about Sam, truly great."),
        "unconfirmed": make_review(acme, acme.sam, "unconfirmed", text="UNCONFIRMED-TEXT " * 3),
        "missing": make_review(acme, acme.sam, "missing_verification", text="MISSING-TEXT " * 4),
        "rejected": make_review(acme, acme.sam, "rejected", text="REJECTED-TEXT " * 4),
        "hidden": make_review(acme, acme.sam, text="HIDDEN-TEXT verified but hidden by us " * 2),
    }
    Moderation.objects.create(review=r["hidden"], hidden_reason="Abusive")
    return r


def public_bodies(client, acme, review):
    urls = [
        agency_url(acme),
        recruiter_url(acme, acme.sam),
        widget_url(acme, reviews=10),
        widget_url(acme, recruiter=acme.sam.slug, reviews=10),
        reverse("profiles-directory"),
        reverse("profiles-sitemap"),
        reverse("profiles-sitemap-section", args=["agencies", 1]),
        reverse("profiles-sitemap-section", args=["recruiters", 1]),
    ]
    bodies = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies[url] = response.content.decode()
    return bodies


def test_only_verified_unhidden_reviews_appear_anywhere_public(client, acme, mixed):
    for url, body in public_bodies(client, acme, mixed).items():
        for hidden in ("UNCONFIRMED-TEXT", "MISSING-TEXT", "REJECTED-TEXT", "HIDDEN-TEXT"):
            assert hidden not in body, (url, hidden)
        for review in mixed.values():
            assert review.reviewer_email not in body, url
    agency_page = client.get(agency_url(acme)).content.decode()
    assert "SHOWN verified review" in agency_page
    assert "1 verified review" in agency_page
    # Report links only for the public review; the others are 404 to report.
    assert (
        client.get(reverse("profiles-report", args=[acme.slug, mixed["shown"].pk])).status_code
        == 200
    )
    for key in ("unconfirmed", "missing", "rejected", "hidden"):
        url = reverse("profiles-report", args=[acme.slug, mixed[key].pk])
        assert client.get(url).status_code == 404, key


def test_reviews_show_rating_name_role_date_recruiter_and_reply(client, acme, make_review):
    review = make_review(
        acme,
        acme.sam,
        rating=4,
        role="client",
        reviewer_name="Priya Shah",
        display_name_choice="full",
        text="Sam understood our hiring needs and filled the role in a fortnight.",
    )
    ReviewReply.objects.create(
        review=review, text="Thank you, Priya — a pleasure working with you."
    )
    body = client.get(agency_url(acme)).content.decode()
    assert "Priya Shah" in body and "Client" in body
    assert 'aria-label="4 out of 5 stars"' in body
    assert review.submitted_at.strftime("%Y-%m-%d") in body
    assert f'href="{recruiter_url(acme, acme.sam)}"' in body
    assert "Reply from Acme Recruitment" in body and "a pleasure working with you" in body
    assert "priya" not in body.lower().replace("priya shah", "").replace("priya —", "")


def test_a_name_that_is_an_email_address_is_never_shown(client, acme, make_review):
    make_review(acme, acme.sam, reviewer_name="cara@home.test", display_name_choice="full")
    for body in public_bodies(client, acme, None).values():
        assert "cara@home.test" not in body
    assert "Anonymous candidate" in client.get(agency_url(acme)).content.decode()


def test_newest_first_and_paginated(client, acme, make_review):
    now = timezone.now()
    for i in range(12):
        make_review(
            acme,
            acme.sam,
            text=f"Review number {i:02d} was written a while back.",
            submitted_at=now - timedelta(days=i),
        )
    first = client.get(agency_url(acme)).content.decode()
    order = [int(n) for n in re.findall(r"pf-text\" dir=\"auto\">Review number (\d\d)", first)]
    assert order == list(range(10))
    assert "Page 1 of 2" in first
    second = client.get(agency_url(acme) + "?page=2").content.decode()
    assert [int(n) for n in re.findall(r"pf-text\" dir=\"auto\">Review number (\d\d)", second)] == [
        10,
        11,
    ]
    assert client.get(agency_url(acme) + "?page=3").status_code == 404
    assert client.get(agency_url(acme) + "?page=x").status_code == 404


def test_summary_average_spread_and_split(client, acme, make_review):
    for rating, role in ((5, "candidate"), (4, "candidate"), (4, "client"), (2, "client")):
        make_review(acme, acme.riya, rating=rating, role=role)
    body = client.get(agency_url(acme)).content.decode()
    assert '<span class="pf-big">3.8</span>' in body  # 15 / 4 = 3.75 → 3.8
    assert "4 verified reviews" in body
    assert re.search(r'<rect class="pf-bar-fill"[^>]*width="50"', body)  # 4 stars: 2 of 4
    assert "From candidates</dt><dd>2 · 4.5" in body
    assert "From clients</dt><dd>2 · 3.0" in body
    riya = client.get(recruiter_url(acme, acme.riya)).content.decode()
    assert '<span class="pf-big">3.8</span>' in riya
    sam = client.get(recruiter_url(acme, acme.sam)).content.decode()
    assert "No verified reviews yet." in sam


def test_agency_page_lists_its_recruiters_with_their_ratings(client, acme, make_review):
    make_review(acme, acme.sam, rating=5)
    make_review(acme, acme.sam, rating=4)
    body = client.get(agency_url(acme)).content.decode()
    assert re.search(r"Sam Carter</a>\s*<span class=\"pf-mini\">4.5 ★ · 2 reviews", body)
    assert "Riya Patel" in body and "No reviews yet" in body
    # Their admin has no reviews and is not a recruiter: not listed.
    assert acme.admins().get().full_name not in body


def test_recruiter_page_has_photo_title_bio_specialisms(client, acme):
    body = client.get(recruiter_url(acme, acme.sam)).content.decode()
    assert "Senior Recruiter" in body and "Ten years placing engineers" in body
    assert "<li>DevOps</li>" in body


def test_a_recruiter_named_in_another_script_has_a_recruiter_address(client, acme):
    """A name with no Latin letters slugifies to nothing: the page was at
    .../recruiters/agency/ (then agency-2), as if it were the agency's."""
    from emailsync.agencies.models import User

    nadia = User.objects.create_user(
        email="nadia@acme.test", full_name="نادية أولجر", agency=acme, role="recruiter"
    ).profile
    wei = User.objects.create_user(
        email="wei@acme.test", full_name="王伟", agency=acme, role="recruiter"
    ).profile
    assert (nadia.slug, wei.slug) == ("recruiter", "recruiter-2")
    assert "نادية أولجر" in client.get(recruiter_url(acme, nadia)).content.decode()


def test_a_member_who_left_has_no_public_page(client, acme, make_review):
    make_review(acme, acme.riya, text="Riya was brilliant, thorough and honest with me throughout.")
    user = acme.riya.user
    user.is_active = False
    user.save()
    assert client.get(recruiter_url(acme, acme.riya)).status_code == 404
    body = client.get(agency_url(acme)).content.decode()
    assert "Riya was brilliant" in body  # the review still counts for the agency
    assert recruiter_url(acme, acme.riya) not in body


def test_unknown_agency_and_recruiter_are_404(client, acme):
    assert client.get(reverse("profiles-agency", args=["nobody"])).status_code == 404
    assert client.get(reverse("profiles-recruiter", args=[acme.slug, "nobody"])).status_code == 404
    assert client.get(reverse("profiles-widget", args=["nobody"])).status_code == 404
    assert client.get(widget_url(acme, recruiter="nobody")).status_code == 404


def test_html_and_script_in_text_and_names_are_inert_everywhere(client, acme, make_review):
    review = make_review(
        acme,
        acme.sam,
        text=EVIL + " and a lot more words to pass the minimum length of a review.",
        reviewer_name=EVIL,
        display_name_choice="full",
    )
    ReviewReply.objects.create(review=review, text=EVIL)
    acme.sam.bio = EVIL
    acme.sam.specialisms = EVIL
    acme.sam.job_title = "</script><script>alert(2)</script>"
    acme.sam.save()
    acme.location = EVIL
    acme.save()
    urls = [
        agency_url(acme),
        recruiter_url(acme, acme.sam),
        widget_url(acme),
        reverse("profiles-report", args=[acme.slug, review.pk]),
    ]
    for url in urls:
        body = client.get(url).content.decode()
        assert "<script>alert" not in body, url
        assert "<img src=x" not in body, url
        assert "</script><script>" not in body, url
        # Every <script> element is ours: a static file or the JSON-LD block.
        for tag in re.findall(r"<script[^>]*>", body):
            assert 'type="application/ld+json"' in tag or 'src="/static/' in tag, (url, tag)


def test_directory_search_and_ranking(client, make_agency, make_review):
    one_five = make_agency(name="Solo Stars")
    many_good = make_agency(name="Steady Hands")
    many_good.location = "Manchester"
    many_good.save()
    make_agency(name="No Reviews Yet")
    make_review(one_five, rating=5)
    for rating in (5, 5, 4, 5, 4, 5, 5, 4, 5, 5):
        make_review(many_good, rating=rating)
    body = client.get(reverse("profiles-directory")).content.decode()
    assert body.index("Steady Hands") < body.index("Solo Stars")
    assert "No Reviews Yet" not in body
    found = client.get(reverse("profiles-directory") + "?q=solo").content.decode()
    assert "Solo Stars" in found and "Steady Hands" not in found
    found = client.get(reverse("profiles-directory") + "?location=manch").content.decode()
    assert "Steady Hands" in found and "Solo Stars" not in found


def test_recency_moves_an_agency_down(client, make_agency, make_review):
    old = make_agency(name="Old Glory")
    fresh = make_agency(name="Fresh Face")
    long_ago = timezone.now() - timedelta(days=800)
    for _ in range(6):
        make_review(old, rating=5, submitted_at=long_ago)
        make_review(fresh, rating=5)
    make_review(old, rating=5, submitted_at=long_ago)  # more reviews, but all old
    body = client.get(reverse("profiles-directory")).content.decode()
    assert body.index("Fresh Face") < body.index("Old Glory")


def test_sitemap_lists_only_public_things(client, acme, make_agency, make_review):
    make_review(acme, acme.sam)
    quiet = make_agency(name="Quiet Agency")
    make_review(quiet, status="missing_verification")
    index = client.get(reverse("profiles-sitemap"))
    assert index["Content-Type"].startswith("application/xml")
    assert "/sitemaps/agencies-1.xml" in index.content.decode()
    agencies = client.get(
        reverse("profiles-sitemap-section", args=["agencies", 1])
    ).content.decode()
    assert agency_url(acme) in agencies and agency_url(quiet) not in agencies
    assert "<lastmod>" in agencies
    recruiters = client.get(
        reverse("profiles-sitemap-section", args=["recruiters", 1])
    ).content.decode()
    assert recruiter_url(acme, acme.sam) in recruiters
    assert recruiter_url(acme, acme.riya) not in recruiters  # no public review yet
    assert client.get(reverse("profiles-sitemap-section", args=["other", 1])).status_code == 404


@pytest.mark.parametrize("page", ["0", "2", "99999999999999999999"])
@pytest.mark.parametrize("section", ["agencies", "recruiters"])
def test_a_sitemap_page_that_does_not_exist_is_a_404_not_a_server_error(
    client, acme, make_review, section, page
):
    """Page 0 sliced from a negative offset, and a page number past what the database takes
    as an OFFSET failed the query: anyone could make the public site answer 500."""
    make_review(acme, acme.sam)
    client.raise_request_exception = False
    assert client.get(f"/sitemaps/{section}-{page}.xml").status_code == 404


def test_open_graph_and_canonical(client, acme, make_review, settings):
    settings.EMAILSYNC_PUBLIC_URL = "https://reviews.example"
    make_review(acme, acme.sam, rating=5)
    body = client.get(agency_url(acme)).content.decode()
    assert f'<link rel="canonical" href="https://reviews.example{agency_url(acme)}">' in body
    assert '<meta property="og:title" content="Acme Recruitment">' in body
    assert '<meta property="og:description" content="5.0 out of 5 from 1 verified review.">' in body
    assert '<meta property="og:type" content="website">' in body
    body = client.get(recruiter_url(acme, acme.sam)).content.decode()
    assert '<meta property="og:type" content="profile">' in body
    assert '<meta property="og:title" content="Sam Carter">' in body


def test_robots_txt_points_search_engines_at_the_sitemap_and_away_from_private_pages(client):
    """There was no /robots.txt: nothing told a search engine where the sitemap is, or to stay
    out of review links and the agency app."""
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Sitemap: " in body and body.split("Sitemap: ")[1].strip().endswith("/sitemap.xml")
    for private in ("/app/", "/accounts/", "/api/"):
        assert f"Disallow: {private}" in body
    # A review link says noindex itself: a crawler kept out would never read it.
    assert "Disallow: /review/" not in body and "Disallow: /agencies/" not in body
    assert not response.cookies
