"""One agency can never see or change another's data, and recruiters cannot use admin pages.

The URL list comes from the resolver: a new agency URL with an id this test does not know how to
fill fails the test until someone says which object it points at.
"""

import pytest
from django.urls import reverse

from emailsync.agencies.models import AgencyDomain, Invitation, User
from emailsync.profiles.models import ReviewReply
from tests.profiles.conftest import request_for, review_for
from tests.urlwalk import agency_routes
from tests.workspace.objects import agency_app_objects

# Pages a recruiter may open; everything else under /app/ is for admins only.
MEMBER_PAGES = {
    "agency-home",
    "team",
    "my-profile",
    # The Reviews page shows a recruiter their own requests and reviews, read-only; they may
    # ask people for a review themselves (credited to them) and see their own review link.
    "agency-reviews",
    "get-reviews",
    "manual-request",
}


@pytest.fixture
def other_agency_objects(make_agency, add_member):
    """Agency B and one object of each kind an agency URL can point at."""
    b = make_agency(name="Rival Recruitment", domains=["rival.test"])
    b_admin = b.admins().get()
    b_member = add_member(b)
    invitation, _ = Invitation.issue(b, "pending@rival.test", "recruiter", b_admin)
    return b, {
        "member_id": b_member.pk,
        "invitation_id": invitation.pk,
        "sender_id": b_member.profile.senders.get().pk,
        "domain_id": AgencyDomain.objects.get(agency=b).pk,
        "review_id": a_review(b, b_member.profile).pk,
        **agency_app_objects(b, b_member.profile),
    }


def a_review(agency, recruiter):
    rr = request_for(agency, recruiter)
    rr.save()
    review = review_for(agency, rr, recruiter)
    review.save()
    return review


def own_objects(agency, member):
    invitation, _ = Invitation.issue(agency, "mine@acme.test", "recruiter", agency.admins().get())
    return {
        "member_id": member.pk,
        "invitation_id": invitation.pk,
        "sender_id": member.profile.senders.get().pk,
        "domain_id": AgencyDomain.objects.get(agency=agency).pk,
        "review_id": a_review(agency, member.profile).pk,
        **agency_app_objects(agency, member.profile),
    }


def test_every_agency_url_kwarg_is_known(other_agency_objects):
    _, objects = other_agency_objects
    unknown = {k for r in agency_routes() for k in r.kwargs} - objects.keys()
    assert not unknown, f"teach test_isolation which object these point at: {unknown}"


@pytest.mark.django_db
def test_admin_of_a_gets_404_for_every_object_of_b(admin_client, other_agency_objects):
    b, objects = other_agency_objects
    routes = [r for r in agency_routes() if r.kwargs]
    assert routes
    for route in routes:
        path = route.path(**objects)
        for method in ("get", "post"):
            response = getattr(admin_client, method)(path)
            assert response.status_code in (404, 405), (method, path, response.status_code)
            if method == "get" and response.status_code == 405:
                continue
    # Nothing of B changed through all those requests.
    assert b.members().count() == 2 and b.admins().count() == 1
    assert Invitation.objects.get(pk=objects["invitation_id"]).usable
    assert AgencyDomain.objects.filter(pk=objects["domain_id"]).exists()
    assert not ReviewReply.objects.filter(review_id=objects["review_id"]).exists()
    assert_untouched(objects)


@pytest.mark.django_db
def test_pages_without_ids_show_only_the_own_agency(admin_client, other_agency_objects):
    b, _ = other_agency_objects
    for route in agency_routes():
        if route.kwargs:
            continue
        response = admin_client.get(route.path())
        if response.status_code == 405:
            continue
        assert response.status_code == 200, route
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"Rival Recruitment" not in body, route
        assert b"rival.test" not in body, route


@pytest.mark.django_db
def test_admin_opens_every_page_of_the_own_agency(admin_client, agency, add_member, monkeypatch):
    monkeypatch.setattr("emailsync.workspace.dnscheck.resolver", lambda: no_dns)
    objects = own_objects(agency, add_member(agency))
    for route in agency_routes():
        response = admin_client.get(route.path(**objects))
        assert response.status_code in (200, 405), (route, response.status_code)


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login(client, agency, add_member):
    objects = own_objects(agency, add_member(agency))
    for route in agency_routes():
        response = client.get(route.path(**objects))
        if response.status_code == 405:
            response = client.post(route.path(**objects))
        assert response.status_code == 302, route
        assert response.url.startswith(reverse("login")), route


@pytest.mark.django_db
def test_recruiters_get_403_on_admin_pages(client, agency, add_member):
    recruiter = add_member(agency)
    objects = own_objects(agency, add_member(agency))
    client.force_login(recruiter)
    for route in agency_routes():
        path = route.path(**objects)
        get = client.get(path)
        post = client.post(path)
        if route.name in MEMBER_PAGES:
            assert get.status_code == 200, route
        else:
            assert get.status_code in (403, 405) and post.status_code == 403, route
    assert User.objects.get(pk=objects["member_id"]).is_active
    assert_untouched(objects)


class no_dns:  # noqa: N801 - stands in for a resolver: every name is missing
    @staticmethod
    def resolve(name, rdtype):
        import dns.resolver

        raise dns.resolver.NXDOMAIN


def assert_untouched(objects):
    from emailsync.inbound.models import Trigger, UnmappedSender
    from emailsync.review_requests.models import ReviewRequest
    from emailsync.reviews.models import Review

    assert ReviewRequest.objects.get(pk=objects["request_id"]).status == "scheduled"
    assert Trigger.objects.get(pk=objects["trigger_id"]).status == "quarantined"
    assert UnmappedSender.objects.get(pk=objects["unmapped_id"]).mapped_to is None
    review = Review.objects.get(pk=objects["review_id"])
    assert review.placement_id is None and review.rejected_by_id is None
    from emailsync.api.models import ApiKey, WebhookDelivery, WebhookEndpoint

    assert ApiKey.objects.get(pk=objects["key_id"]).active
    endpoint = WebhookEndpoint.objects.get(pk=objects["endpoint_id"])
    assert endpoint.url == "https://ats.example.com/hook" and endpoint.active
    assert WebhookDelivery.objects.get(pk=objects["delivery_id"]).attempts == 0


@pytest.mark.django_db
def test_operator_admin_is_for_staff_only(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url
