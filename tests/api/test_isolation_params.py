"""Agency B's objects named in query parameters and bodies, and every HTTP method, not only the
path ids `test_isolation.py` replays.

Every query parameter and body field of the OpenAPI document is classified: either it can name
another object (REFERENCES: replayed with B's value) or it is plain data (PLAIN, with the reason).
A new parameter or field fails `test_every_parameter_and_field_is_classified` until it is placed.
"""

import pytest

from emailsync.placements.models import Placement
from emailsync.review_requests.models import ReviewRequest
from tests.api.conftest import ApiClient
from tests.api.seed import seed_agency
from tests.api.test_isolation import snapshot

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


def b_values(b) -> dict:
    request = ReviewRequest.objects.get(pk=b.request_id)
    return {
        "recruiter_email": b.placement.recruiter.user.email,
        "external_ref": b.placement.external_ref,
        "placement_ref": b.placement.external_ref,
        "candidate_email": b.placement.candidate_email,
        "client_contact_email": "contact@b.test.example",
        "email": request.email,
    }


# Can name one of B's rows: replayed with B's value (see b_values).
REFERENCES = {
    ("query", "recruiter_email"),
    ("query", "external_ref"),
    ("query", "placement_ref"),
    ("query", "candidate_email"),
    ("query", "client_contact_email"),
    ("query", "email"),
    ("body", "recruiter_email"),
    ("body", "external_ref"),
    ("body", "placement_ref"),
}
PLAIN = {
    ("query", "cursor"): "an offset into the caller's own list",
    ("query", "limit"): "page size",
    ("query", "status"): "a state filter",
    ("query", "source"): "a channel filter",
    ("query", "start_date_from"): "a date filter",
    ("query", "start_date_to"): "a date filter",
    ("query", "created_after"): "a date filter",
    ("query", "created_before"): "a date filter",
    ("query", "submitted_after"): "a date filter",
    ("query", "submitted_before"): "a date filter",
    ("query", "received_after"): "a date filter",
    ("query", "received_before"): "a date filter",
    ("body", "candidate_name"): "data of the caller's placement",
    ("body", "candidate_email"): "data of the caller's placement (a person, not a row)",
    ("body", "client_company"): "data",
    ("body", "client_contact_name"): "data",
    ("body", "client_contact_email"): "data (a person, not a row)",
    ("body", "job_title"): "data",
    ("body", "start_date"): "data",
    ("body", "recipients"): "people to ask; dedupe and suppression apply per agency",
    ("body", "personal_message"): "data",
    ("body", "send_now"): "a flag",
}


def document(client):
    return client.get("/api/v1/openapi.json").json()


def body_fields(doc, op):
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = schema.get("schema", {}).get("$ref")
    if not ref:
        return []
    return list(doc["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}))


def test_every_parameter_and_field_is_classified(client):
    doc = document(client)
    found = set()
    for methods in doc["paths"].values():
        for op in methods.values():
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    found.add(("query", param["name"]))
            found |= {("body", name) for name in body_fields(doc, op)}
    unknown = found - REFERENCES - PLAIN.keys()
    assert not unknown, f"classify in REFERENCES (replayed with B's value) or PLAIN: {unknown}"


@pytest.fixture
def two(client, make_agency, add_member, settings):
    settings.EMAILSYNC_API_RATE_LIMIT = 10**6
    a = seed_agency(make_agency, add_member, "Agency A", "a.test")
    b = seed_agency(make_agency, add_member, "Agency B", "b.test")
    return a, b, ApiClient(client, a.key)


def test_filters_with_b_s_values_return_nothing_of_b(client, two):
    a, b, api = two
    doc = document(client)
    values = b_values(b)
    b_ids = {
        "/api/v1/placements": {b.placement.pk},
        "/api/v1/review-requests": set(
            ReviewRequest.objects.filter(agency=b.agency).values_list("pk", flat=True)
        ),
        "/api/v1/reviews": {b.review.pk},
        "/api/v1/triggers": {b.trigger_id},
    }
    replayed = 0
    for path, methods in doc["paths"].items():
        op = methods.get("get")
        if op is None or "{" in path:
            continue
        for param in op.get("parameters", []):
            if ("query", param["name"]) not in REFERENCES:
                continue
            response = api.get(path, {param["name"]: values[param["name"]]})
            replayed += 1
            if response.status_code == 422:  # B's recruiter is no member of A: refused
                assert response.json()["error"]["code"] == "unknown_recruiter", path
                continue
            assert response.status_code == 200, (path, param["name"], response.content)
            got = {item["id"] for item in response.json()["data"]}
            assert not got & b_ids[path], (path, param["name"])
    assert replayed >= 6


def test_b_s_recruiter_and_references_in_a_body_change_nothing_of_b(two):
    a, b, api = two
    values = b_values(b)
    before = snapshot(b.agency)
    b_recruiter = b.placement.recruiter_id
    attempts = [
        ("post", "/api/v1/placements", {"candidate_name": "M", "recruiter_email": "{r}"}),
        ("patch", f"/api/v1/placements/{a.placement.pk}", {"recruiter_email": "{r}"}),
        (
            "post",
            "/api/v1/review-requests",
            {"recipients": [{"email": "new@x.example"}], "recruiter_email": "{r}"},
        ),
        (
            "post",
            "/api/v1/review-requests",
            {"recipients": [{"email": "other@x.example"}], "placement_ref": "{ref}"},
        ),
        ("patch", f"/api/v1/placements/{a.placement.pk}", {"external_ref": "{ref}"}),
    ]
    for method, path, body in attempts:
        filled = {
            k: (
                values["recruiter_email"]
                if v == "{r}"
                else values["placement_ref"]
                if v == "{ref}"
                else v
            )
            for k, v in body.items()
        }
        response = getattr(api, method)(path, filled)
        # Refused (B's recruiter is no member of A) or done within A; the rows say which.
        assert response.status_code < 500, (method, path, response.content)
    assert snapshot(b.agency) == before
    assert not Placement.objects.filter(agency=a.agency, recruiter_id=b_recruiter).exists()
    assert not ReviewRequest.objects.filter(agency=a.agency, recruiter_id=b_recruiter).exists()
    assert Placement.objects.get(pk=b.placement.pk).agency == b.agency


def test_methods_the_document_does_not_list_are_refused(client, two):
    """Every method on every path: those the document lists are replayed by test_isolation;
    every other one must be refused without touching anything."""
    a, b, api = two
    doc = document(client)
    ids = {
        "placement_id": b.placement.pk,
        "request_id": b.request_id,
        "review_id": b.review.pk,
        "trigger_id": b.trigger_id,
    }
    before = snapshot(b.agency)
    refused = 0
    for path, methods in doc["paths"].items():
        url = path.format(**ids)
        for method in METHODS:
            if method in methods:
                continue
            caller = getattr(api.client, method)
            response = caller(url, content_type="application/json", headers=api.headers())
            assert response.status_code in (404, 405), (method, path, response.status_code)
            refused += 1
    assert refused >= 30
    assert snapshot(b.agency) == before
