"""Ids that travel in forms and query strings, not in the URL path, are scoped too.

`test_isolation.py` replays every /app/ URL with another agency's ids *in the path*. An id can
also arrive as a form field (`placement_id`, `request_ids`, a recruiter `<select>`) or a query
parameter (`?review_id=`). This test finds those fields by rendering every agency page (and the
board's columns and the verify dialog) and reading their forms, so a new id-carrying field fails
it until ID_FIELDS says how to replay it with agency B's id; then it replays each one as agency A's
admin and checks that nothing of B changed and nothing of A now points at B.
"""

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.urls import Resolver404, resolve, reverse

from emailsync.inbound.models import UnmappedSender
from emailsync.placements.models import Placement
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review
from tests.agencies.test_isolation import (
    assert_untouched,
    no_dns,
    other_agency_objects,  # noqa: F401 - fixture
    own_objects,
)
from tests.urlwalk import agency_routes

pytestmark = pytest.mark.django_db

# Fields whose digits are not object ids.
NOT_IDS = {
    ("email-sync-settings", "days"): "weekday numbers of the business hours",
    ("agency-reviews", "rating"): "a star filter, 1–5",
}


@dataclass(frozen=True)
class Replay:
    method: str  # "get" or "post"
    b_object: str  # key of agency B's object whose id goes in the field
    extra: tuple = ()  # other fields the request needs to reach the lookup


# (route the form submits to, field) -> how to replay it with B's id.
ID_FIELDS = {
    ("review-verify", "placement_id"): Replay("post", "placement_id"),
    ("placement-search", "review_id"): Replay("get", "review_id", (("q", "Pat"),)),
    ("invite-bulk", "request_ids"): Replay("post", "request_id", (("action", "cancel"),)),
    ("invite-edit", "recruiter"): Replay(
        "post", "profile_id", (("email", "other@example.org"), ("name", "X"), ("role", ""))
    ),
    ("manual-request", "recruiter"): Replay("post", "profile_id", (("people", "p@example.org"),)),
    ("unmapped-map", "recruiter"): Replay("post", "profile_id"),
    ("placement-create", "recruiter"): Replay("post", "profile_id", (("candidate_name", "M"),)),
    ("placement-edit", "recruiter"): Replay("post", "profile_id", (("candidate_name", "M"),)),
    ("review-verify-new", "recruiter"): Replay("post", "profile_id", (("candidate_name", "M"),)),
    ("agency-reviews", "recruiter"): Replay("get", "profile_id"),
    ("activity-log", "recruiter"): Replay("get", "profile_id"),
}


class FormReader(HTMLParser):
    """(action, field name, method, values) of every form field and hx-get/hx-post query."""

    def __init__(self, page_path):
        super().__init__()
        self.page_path, self.forms, self.fields = page_path, {}, []
        self.current, self.select = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.current = (a.get("action") or self.page_path, (a.get("method") or "get").lower())
            if a.get("id"):
                self.forms[a["id"]] = self.current
        for attr in ("hx-get", "hx-post", "href"):
            url = a.get(attr) or ""
            if "?" in url:
                base, query = url.split("?", 1)
                for name, value in parse_qsl(query, keep_blank_values=True):
                    self.fields.append((base or self.page_path, name, "get", [value], None))
        if tag in ("input", "select", "textarea") and a.get("name"):
            field = [None, a["name"], None, [a.get("value") or ""], a.get("form")]
            if tag == "select":
                self.select = field
                field[3] = []
            chosen = a.get("type") in ("checkbox", "radio", "hidden") or tag == "select"
            if chosen or a["name"].endswith(("_id", "_ids")):
                self.fields.append(field)
            field[0], field[2] = self.current or (None, None)
        if tag == "option" and self.select is not None and a.get("value"):
            self.select[3].append(a["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        if tag == "select":
            self.select = None

    def id_fields(self):
        for action, name, method, values, form in self.fields:
            if form and form in self.forms:
                action, method = self.forms[form]
            looks_like_id = name.endswith(("_id", "_ids")) or (
                values and all(v.isdigit() for v in values if v) and any(values)
            )
            if action is not None and looks_like_id:
                yield urlsplit(action).path, name, method


def own_objects_to_act_on(agency, member):
    """A's objects, with its review waiting for verification so the verify dialog shows its
    forms (suggestions, search, add a placement) and a verify with B's placement would act."""
    objects = own_objects(agency, member)
    Review.objects.filter(pk=objects["review_id"]).update(
        status=Review.Status.MISSING_VERIFICATION, verified_at=None
    )
    return objects


def route_name(path):
    try:
        return resolve(path).url_name
    except Resolver404:
        return None


def pages_to_read(objects):
    routes = [r.path(**objects) for r in agency_routes()]
    columns = [f"{reverse('agency-reviews')}?col={c}" for c in ("scheduled", "sent", "missing")]
    search = f"{reverse('placement-search')}?q=Pat&review_id={objects['review_id']}"
    return [*routes, *columns, search]


def discovered_id_fields(client, objects):
    found = {}
    for path in pages_to_read(objects):
        response = client.get(path)
        if response.status_code != 200 or response.streaming:
            continue
        reader = FormReader(urlsplit(path).path)
        reader.feed(response.content.decode())
        for action, name, method in reader.id_fields():
            name_of_route = route_name(action)
            if name_of_route and name != "csrfmiddlewaretoken":
                found.setdefault((name_of_route, name), (action, method))
    return found


def test_every_id_carrying_field_is_replayed(
    admin_client,
    agency,
    add_member,
    other_agency_objects,  # noqa: F811 - the fixture imported above
    monkeypatch,
):
    """Reads the forms; fails on an id field nobody taught this test to replay."""
    monkeypatch.setattr("emailsync.workspace.dnscheck.resolver", lambda: no_dns)
    objects = own_objects_to_act_on(agency, add_member(agency))
    found = discovered_id_fields(admin_client, objects)
    unknown = set(found) - ID_FIELDS.keys() - NOT_IDS.keys()
    assert not unknown, f"teach ID_FIELDS how to replay these with another agency's id: {unknown}"
    # The walk really reads the forms: the known fields are found, not just listed.
    assert {("review-verify", "placement_id"), ("invite-bulk", "request_ids")} <= set(found)
    assert {("placement-search", "review_id"), ("review-verify-new", "recruiter")} <= set(found)


def test_another_agencys_id_in_a_form_or_query_changes_nothing(
    admin_client,
    agency,
    add_member,
    other_agency_objects,  # noqa: F811 - the fixture imported above
):
    b, b_objects = other_agency_objects
    b_objects = {**b_objects, "profile_id": b.profiles.exclude(user__role="admin").first().pk}
    member = add_member(agency)
    a_objects = own_objects_to_act_on(agency, member)
    a_request = ReviewRequest.objects.get(pk=a_objects["request_id"])
    a_placements = Placement.objects.filter(agency=agency).count()
    b_profile = b_objects["profile_id"]
    for (name, field), replay in ID_FIELDS.items():
        route = next(r for r in agency_routes() if r.name == name)
        path = route.path(**a_objects)
        data = {field: [str(b_objects[replay.b_object])], **dict(replay.extra)}
        response = getattr(admin_client, replay.method)(path, data)
        assert response.status_code in (200, 302, 400, 404), (name, field, response.status_code)
        if replay.method == "get" and response.status_code == 200:
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"Rival Recruitment" not in body, (name, field)
            assert b"rival.test" not in body, (name, field)
    assert_untouched(b_objects)
    # Nothing of A now points at B's objects.
    review = Review.objects.get(pk=a_objects["review_id"])
    assert review.placement_id is None
    a_request.refresh_from_db()
    assert a_request.recruiter_id == member.profile.pk and a_request.email == "invitee@example.org"
    assert not ReviewRequest.objects.filter(agency=agency, recruiter_id=b_profile).exists()
    assert not Placement.objects.filter(agency=agency, recruiter_id=b_profile).exists()
    assert Placement.objects.filter(agency=agency).count() == a_placements
    assert UnmappedSender.objects.get(pk=a_objects["unmapped_id"]).mapped_to is None
