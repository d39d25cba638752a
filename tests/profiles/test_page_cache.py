"""Rendered public pages are cached, and every change that shows on a page shows at once.

The cache key carries the agency's and recruiter's rating rows' `changed_at`, which the signals
bump in the same transaction as the change; each test fills the cache first, changes one thing
through the code path the product uses, and reads the page again.
"""

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from emailsync.placements.models import Placement
from emailsync.profiles.models import Moderation, ReviewReply
from emailsync.reviews.models import RejectReason

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def acme_admin(acme):
    return acme.admins().get()


def agency_url(agency):
    return reverse("profiles-agency", args=[agency.slug])


def recruiter_url(agency, recruiter):
    return reverse("profiles-recruiter", args=[agency.slug, recruiter.slug])


def pages(agency, recruiter):
    return [agency_url(agency), recruiter_url(agency, recruiter), reverse("profiles-directory")]


def read(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def read_all(client, urls) -> list[str]:
    return [read(client, url) for url in urls]


def test_a_cached_page_costs_one_query_and_is_the_same_page(client, acme, make_review):
    make_review(acme, acme.sam, text="Cached review text, shown twice the same.")
    for url in pages(acme, acme.sam):
        first = client.get(url)
        with CaptureQueriesContext(connection) as queries:
            second = client.get(url)
        assert len(queries) == 1, (url, [q["sql"] for q in queries])  # the ETag's lookup
        assert second.content == first.content
        assert second["Cache-Control"] == first["Cache-Control"]
        assert second["ETag"] == first["ETag"]
        assert "csrftoken" not in second.cookies and "sessionid" not in second.cookies


def test_verifying_a_review_shows_it_at_once(client, acme, make_review, acme_admin):
    make_review(acme, acme.sam, text="An earlier verified review keeps the pages listed.")
    review = make_review(
        acme, acme.sam, "missing_verification", text="JUST-VERIFIED review about Sam."
    )
    urls = pages(acme, acme.sam)[:2]
    for body in read_all(client, urls):
        assert "JUST-VERIFIED" not in body
    placement = Placement.objects.create(agency=acme, candidate_name="Cara Candidate")
    review.verify(placement, by=acme_admin)
    for url, body in zip(urls, read_all(client, urls), strict=True):
        assert "JUST-VERIFIED" in body, url
        assert "2 verified reviews" in body, url


def test_a_new_agency_enters_the_directory_at_once(client, acme, make_review, acme_admin):
    directory = reverse("profiles-directory")
    assert "Acme Recruitment" not in read(client, directory)
    review = make_review(acme, acme.sam, "missing_verification")
    review.verify(Placement.objects.create(agency=acme, candidate_name="C"), by=acme_admin)
    assert "Acme Recruitment" in read(client, directory)


def test_undoing_a_verification_removes_it_at_once(client, acme, make_review, acme_admin):
    make_review(acme, acme.sam, text="A review that stays on the page throughout.")
    review = make_review(acme, acme.sam, "missing_verification", text="UNDONE-LATER review.")
    review.verify(Placement.objects.create(agency=acme, candidate_name="C"), by=acme_admin)
    urls = pages(acme, acme.sam)[:2]
    assert all("UNDONE-LATER" in body for body in read_all(client, urls))
    review.undo(by=acme_admin)
    for url, body in zip(urls, read_all(client, urls), strict=True):
        assert "UNDONE-LATER" not in body, url
        assert "1 verified review" in body, url


def test_hiding_a_review_removes_it_at_once_and_unhiding_shows_it(client, acme, make_review):
    make_review(acme, acme.sam, text="A review that stays on the page throughout.")
    review = make_review(acme, acme.sam, text="HIDDEN-SOON review about Sam.")
    urls = pages(acme, acme.sam)[:2]
    assert all("HIDDEN-SOON" in body for body in read_all(client, urls))
    moderation = Moderation.objects.create(review=review, hidden_reason="Abusive")
    assert all("HIDDEN-SOON" not in body for body in read_all(client, urls))
    moderation.delete()
    assert all("HIDDEN-SOON" in body for body in read_all(client, urls))


def test_a_rejected_review_never_appears(client, acme, make_review, acme_admin):
    make_review(acme, acme.sam, text="A review that stays on the page throughout.")
    review = make_review(acme, acme.sam, "missing_verification", text="REJECTED-ONE review.")
    urls = pages(acme, acme.sam)[:2]
    read_all(client, urls)
    review.reject(RejectReason.OTHER, by=acme_admin, note="Not ours")
    assert all("REJECTED-ONE" not in body for body in read_all(client, urls))


def test_a_reply_added_edited_and_removed_shows_at_once(client, acme, make_review):
    review = make_review(acme, acme.sam, text="A review the agency replies to.")
    urls = pages(acme, acme.sam)[:2]
    read_all(client, urls)
    reply = ReviewReply.objects.create(review=review, text="FIRST-REPLY from Acme.")
    assert all("FIRST-REPLY" in body for body in read_all(client, urls))
    reply.text = "EDITED-REPLY from Acme."
    reply.save()
    for body in read_all(client, urls):
        assert "EDITED-REPLY" in body and "FIRST-REPLY" not in body
    reply.delete()
    assert all("EDITED-REPLY" not in body for body in read_all(client, urls))


def test_the_reply_page_updates_the_public_pages(client, acme, acme_admin, make_review):
    admin_client = client
    admin_client.force_login(acme_admin)
    review = make_review(acme, acme.sam, text="A review the agency replies to.")
    urls = pages(acme, acme.sam)[:2]
    read_all(admin_client, urls)
    response = admin_client.post(
        reverse("profiles-reply", args=[review.pk]), {"text": "REPLIED-THROUGH-THE-PAGE"}
    )
    assert response.status_code in (200, 302)
    assert all("REPLIED-THROUGH-THE-PAGE" in body for body in read_all(admin_client, urls))


def test_profile_and_agency_details_show_at_once(client, acme, make_review):
    make_review(acme, acme.sam)
    urls = pages(acme, acme.sam)
    read_all(client, urls)
    acme.sam.display_name = "Samantha Carter-Renamed"
    acme.sam.save()
    agency_page, recruiter_page, _ = read_all(client, urls)
    assert "Samantha Carter-Renamed" in agency_page and "Samantha Carter-Renamed" in recruiter_page
    acme.name = "Acme Renamed Recruitment"
    acme.save()
    for url, body in zip(urls, read_all(client, urls), strict=True):
        assert "Acme Renamed Recruitment" in body, url


def test_a_member_who_leaves_is_unlinked_at_once(client, acme, make_review):
    make_review(acme, acme.riya, text="Riya helped me a great deal with my move.")
    link = recruiter_url(acme, acme.riya)
    assert link in read(client, agency_url(acme))
    user = acme.riya.user
    user.is_active = False
    user.save()
    assert link not in read(client, agency_url(acme))
    assert client.get(link).status_code == 404


def test_the_cache_can_be_turned_off(client, acme, make_review, settings):
    settings.EMAILSYNC_PAGE_CACHE_SECONDS = 0
    make_review(acme, acme.sam)
    client.get(agency_url(acme))
    with CaptureQueriesContext(connection) as queries:
        client.get(agency_url(acme))
    assert len(queries) > 1


def test_an_agency_and_a_recruiter_with_the_same_id_never_share_a_page(monkeypatch, rf):
    """Agencies and recruiter profiles are numbered separately, so an agency's id is often some
    recruiter's id too; with the agency's rating the newest change, both pages also share a
    stamp. Their ETags (and so their cached bodies) must still differ."""
    from types import SimpleNamespace

    from emailsync.profiles import views

    same_id = 7
    agency = SimpleNamespace(pk=same_id)
    recruiter = SimpleNamespace(pk=same_id, agency=agency)
    monkeypatch.setattr(views, "_agency", lambda request, slug: agency)
    monkeypatch.setattr(views, "_recruiter", lambda request, a, r: recruiter)
    from django.utils import timezone

    stamp = timezone.now()
    monkeypatch.setattr(views, "_changed", lambda *objects: stamp)
    request = rf.get("/")
    agency_tag = views.agency_etag(request, "acme")
    recruiter_tag = views.recruiter_etag(request, "acme", "avery")
    assert agency_tag and recruiter_tag
    assert agency_tag != recruiter_tag
