"""A key of agency A can never read or change agency B's data, on every operation of the API.

The operations come from the OpenAPI document, so a new route cannot escape: an operation whose
path parameter this test cannot fill, or whose method it does not know how to call, fails it."""

import pytest

from emailsync.inbound.models import Trigger
from emailsync.placements.models import Placement
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review
from tests.api.conftest import ApiClient
from tests.api.seed import seed_agency

pytestmark = pytest.mark.django_db

BODIES = {  # a valid body per operation that takes one
    ("post", "/api/v1/placements"): {"external_ref": "{ref}", "candidate_name": "Mallory"},
    ("patch", "/api/v1/placements/{placement_id}"): {"candidate_name": "Mallory"},
    ("post", "/api/v1/review-requests"): {"recipients": [{"email": "{email}"}]},
    ("post", "/api/v1/review-requests/{request_id}/cancel"): None,
}


def operations(client):
    doc = client.get("/api/v1/openapi.json").json()
    for path, methods in doc["paths"].items():
        for method in methods:
            yield method, path


def snapshot(agency):
    return {
        "placements": list(Placement.objects.filter(agency=agency).values()),
        "requests": list(ReviewRequest.objects.filter(agency=agency).values()),
        "reviews": list(Review.objects.filter(agency=agency).values()),
        "triggers": list(Trigger.objects.filter(agency=agency).values()),
        "audit": agency.audit_entries.count(),
    }


def test_a_key_of_agency_a_never_reaches_agency_b(client, make_agency, add_member, settings):
    settings.EMAILSYNC_API_RATE_LIMIT = 10**6
    a = seed_agency(make_agency, add_member, "Agency A", "a.test")
    b = seed_agency(make_agency, add_member, "Agency B", "b.test")
    api = ApiClient(client, a.key)
    b_ids = {
        "placement_id": b.placement.pk,
        "request_id": b.request_id,
        "review_id": b.review.pk,
        "trigger_id": b.trigger_id,
    }
    b_owned = {
        "/api/v1/placements": set(
            Placement.objects.filter(agency=b.agency).values_list("pk", flat=True)
        ),
        "/api/v1/review-requests": set(
            ReviewRequest.objects.filter(agency=b.agency).values_list("pk", flat=True)
        ),
        "/api/v1/reviews": set(Review.objects.filter(agency=b.agency).values_list("pk", flat=True)),
        "/api/v1/triggers": set(
            Trigger.objects.filter(agency=b.agency).values_list("pk", flat=True)
        ),
    }
    before = snapshot(b.agency)
    seen = 0
    for method, path in operations(client):
        names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        unknown = set(names) - b_ids.keys()
        assert not unknown, f"teach this test which object {unknown} of {path} points at"
        url = path.format(**b_ids)
        body = BODIES.get((method, path), "missing")
        if method == "get":
            response = api.get(url)
        else:
            assert body != "missing", f"teach this test a body for {method.upper()} {path}"
            text = None if body is None else _fill(body, b)
            response = getattr(api, method)(url, text)
        seen += 1
        if names:
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.json()["error"]["code"] == "not_found"
        elif method == "get" and "data" in response.json():
            owned = b_owned[path]
            assert response.json()["data"], path  # A sees its own rows…
            assert not {item["id"] for item in response.json()["data"]} & owned, path  # …only
        else:
            assert response.status_code in (200, 201), (method, path, response.content)
            assert response.json().get("id") not in b_owned.get(path, set())
    assert seen >= 12
    assert snapshot(b.agency) == before


def _fill(body, b):
    import json

    text = json.dumps(body).replace("{ref}", b.placement.external_ref)
    return json.loads(text.replace("{email}", "cara@b.test.example"))


def test_upsert_with_b_s_reference_creates_a_s_own(client, make_agency, add_member):
    a = seed_agency(make_agency, add_member, "Agency A", "a.test")
    b = seed_agency(make_agency, add_member, "Agency B", "b.test")
    response = ApiClient(client, a.key).post(
        "/api/v1/placements",
        {"external_ref": b.placement.external_ref, "candidate_name": "Mallory"},
    )
    assert response.status_code == 201
    assert Placement.objects.get(pk=b.placement.pk).candidate_name == "Pat Placed"
    assert Placement.objects.get(pk=response.json()["id"]).agency == a.agency
