"""Every route of the resolver is covered by an isolation walk or classified with a reason.

`tests/agencies/test_isolation.py` walks /app/ and `tests/api/test_isolation.py` walks the
OpenAPI document. Everything else is classified in `tests/urlwalk.py` (operators' admin, ESP
webhooks, capability links, public pages) and walked here for what its class promises. A new
route anywhere fails `test_every_route_is_walked_or_classified` until it is placed.
"""

import re
import secrets

import pytest
from django.test import Client
from django.urls import reverse

from emailsync.agencies.models import User
from emailsync.inbound.models import Trigger
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review
from tests.profiles.conftest import request_for, review_for
from tests.urlwalk import (
    API_NOT_OPERATIONS,
    CAPABILITY,
    DEBUG_ONLY,
    PUBLIC,
    Route,
    all_routes,
    api_routes,
    classify,
)

pytestmark = pytest.mark.django_db


def routes_of(kind) -> list[Route]:
    return [r for r in all_routes() if classify(r) == kind]


def test_every_route_is_walked_or_classified():
    unplaced = [r.route for r in all_routes() if classify(r) is None]
    assert not unplaced, (
        "these routes are in no isolation walk: put them under /app/ or the API, or classify "
        f"them in tests/urlwalk.py with a reason: {unplaced}"
    )


def test_the_classification_names_only_routes_that_exist():
    names = {r.name for r in all_routes()} | {r.route for r in all_routes()}
    for table in (CAPABILITY, PUBLIC, API_NOT_OPERATIONS):
        stale = set(table) - names - DEBUG_ONLY
        assert not stale, f"classified routes that no longer exist: {stale}"


def test_every_api_route_is_an_operation_of_the_openapi_document(client):
    """The API walk reads the document; a route left out of it would escape that walk."""
    doc = client.get("/api/v1/openapi.json").json()
    documented = set(doc["paths"])
    routed = {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.route)
        for r in api_routes()
        if r.name not in API_NOT_OPERATIONS
    }
    assert routed == documented


# --- operators' Django admin ----------------------------------------------------------------


def admin_path(route: Route) -> str:
    if route.name == "app_list":
        return "/admin/agencies/"
    if "(?P<url>" in route.route:
        return "/admin/nothing-here/"
    values = dict.fromkeys(route.kwargs, "1")
    return route.path(**values)


ADMIN_SIGN_IN = {"login", "logout"}  # the admin's own sign-in and sign-out pages


def test_the_operators_admin_refuses_agency_members(agency, add_member):
    member = add_member(agency)
    admin = agency.admins().get()
    routes = routes_of("operator")
    assert len(routes) > 50
    for user in (admin, member, None):
        browser = Client()
        if user is not None:
            browser.force_login(user)
        for route in routes:
            path = admin_path(route)
            for method in ("get", "post"):
                response = getattr(browser, method)(path)
                if route.name in ADMIN_SIGN_IN:
                    assert response.status_code < 500
                    continue
                assert response.status_code in (302, 404), (user, method, path)
                if response.status_code == 302:
                    assert response.url.startswith("/admin/login/"), (user, path, response.url)
    assert User.objects.get(pk=member.pk).is_active


# --- ESP webhooks ---------------------------------------------------------------------------


def esp_path(route: Route) -> str:
    return "/" + route.route.replace("^", "").replace("(_mime)?", "").replace("$", "")


def test_esp_webhooks_refuse_a_post_without_the_shared_secret(agency, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:" + secrets.token_hex(8)}
    routes = routes_of("esp")
    assert routes
    # An ESP we have no signing key for fails closed (a configuration error, 500); the others
    # refuse the missing basic auth (400). None may accept the post.
    browser = Client(raise_request_exception=False)
    for route in routes:
        response = browser.post(esp_path(route), "{}", content_type="application/json")
        assert response.status_code >= 400, (route.route, response.status_code)
    assert not Trigger.objects.exists()


# --- capability links ---------------------------------------------------------------------------


@pytest.fixture
def rival(make_agency, add_member):
    b = make_agency(name="Rival Recruitment", domains=["rival.test"])
    member = add_member(b)
    rr = request_for(b, member.profile)
    rr.save()
    review = review_for(b, rr, member.profile)
    review.save()
    b.member, b.review = member, review
    return b


def snapshot():
    return (
        list(ReviewRequest.objects.values_list("pk", "status", "email")),
        list(Review.objects.values_list("pk", "status", "text")),
    )


def test_capability_links_with_an_unknown_token_show_and_change_nothing(rival):
    routes = routes_of("capability")
    assert {r.name for r in routes} == set(CAPABILITY)
    before = snapshot()
    for route in routes:
        path = route.path(**{k: secrets.token_urlsafe(16) for k in route.kwargs})
        for method in ("get", "post"):
            response = getattr(Client(), method)(path)
            assert response.status_code in (200, 302, 400, 404, 405, 410), (path, method)
            if response.status_code == 302:
                assert "Rival" not in response.url
            else:
                assert b"Rival Recruitment" not in response.content, (method, path)
                assert rival.member.email.encode() not in response.content, (method, path)
    assert snapshot() == before


# --- public pages --------------------------------------------------------------------------------


def test_public_pages_open_without_a_sign_in(rival):
    values = {
        "agency_slug": rival.slug,
        "recruiter_slug": rival.member.profile.slug,
        "review_id": rival.review.pk,
        "section": "agencies",
        "page": 1,
        "message_id": 1,
        "path": "nothing.png",
    }
    routes = routes_of("public")
    assert len(routes) == len(set(PUBLIC) - DEBUG_ONLY)
    for route in routes:
        response = Client().get(route.path(**values))
        assert response.status_code < 500, (route.route, response.status_code)


def test_a_report_takes_only_a_published_review_of_the_agency_in_the_url(
    rival, make_agency, add_member
):
    a = make_agency(name="Agency A", domains=["a.test"])
    a_member = add_member(a)
    rr = request_for(a, a_member.profile)
    rr.save()
    published = review_for(a, rr, a_member.profile)
    published.save()
    rr2 = request_for(a, a_member.profile, email="other@example.org")
    rr2.save()
    unverified = review_for(a, rr2, a_member.profile, status="missing_verification")
    unverified.save()

    def report(slug, review_id):
        return Client().get(reverse("profiles-report", args=[slug, review_id])).status_code

    assert report(a.slug, published.pk) == 200
    assert report(a.slug, rival.review.pk) == 404  # B's review under A's name
    assert report(rival.slug, published.pk) == 404  # A's review under B's name
    assert report(a.slug, unverified.pk) == 404  # not published


def test_development_and_metrics_routes_are_closed_in_production(settings, admin_client):
    settings.DEBUG = False
    for route in all_routes():
        if route.name.startswith("dev-outbox"):
            assert admin_client.get(route.path(message_id=1)).status_code == 404, route
    settings.EMAILSYNC_METRICS_TOKEN = ""
    assert Client().get(reverse("metrics")).status_code == 404
    settings.EMAILSYNC_METRICS_TOKEN = secrets.token_hex(8)
    assert Client().get(reverse("metrics")).status_code == 401
