"""API keys, the integration method, rate limits, the error shape, pagination, idempotency."""

import uuid

import pytest

from emailsync.api.models import ApiKey, IdempotencyRecord
from emailsync.inbound.models import Trigger
from emailsync.placements.models import Placement
from tests.api.conftest import ApiClient, enable_api

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    return body["error"]


def test_key_is_stored_hashed_and_works(api, acme, acme_key):
    row = ApiKey.objects.get(agency=acme)
    assert acme_key.startswith("esk_") and len(acme_key) > 50
    assert acme_key not in (row.key_hash, row.prefix) and row.prefix in acme_key
    assert row.last_used_at is None
    response = api.get("/api/v1/agency")
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Recruitment"
    row.refresh_from_db()
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer esk_nope", "Basic dXNlcjpwYXNz", "Bearer esk_000000000000_x"],
)
def test_missing_or_wrong_keys_get_401(client, acme, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/placements", headers=headers)
    assert_error(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_fails_at_once(api, acme, acme_key):
    assert api.get("/api/v1/reviews").status_code == 200
    ApiKey.objects.get(agency=acme).revoke(by=None)
    assert_error(api.get("/api/v1/reviews"), 401, "unauthenticated")
    assert_error(
        api.post("/api/v1/placements", {"external_ref": "x", "candidate_name": "y"}),
        401,
        "unauthenticated",
    )
    # A key with the right prefix but a wrong secret fails too.
    tampered = acme_key[:-4] + "AAAA"
    assert_error(ApiClient(api.client, tampered).get("/api/v1/reviews"), 401, "unauthenticated")


def test_api_refused_when_the_agency_chose_email_sync_only(api, acme):
    enable_api(acme, "email_sync")
    error = assert_error(api.get("/api/v1/placements"), 403, "api_disabled")
    assert "Settings" in error["message"]
    enable_api(acme, "api")
    assert api.get("/api/v1/placements").status_code == 200


def test_rate_limit_answers_429_with_retry_after(api, settings):
    settings.EMAILSYNC_API_RATE_LIMIT = 3
    for _ in range(3):
        assert api.get("/api/v1/reviews").status_code == 200
    response = api.get("/api/v1/reviews")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_validation_errors_name_the_fields(api):
    response = api.post(
        "/api/v1/placements",
        {"external_ref": "", "candidate_name": "Ann", "candidate_email": "not-an-email"},
    )
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"external_ref", "candidate_email"}
    assert_error(api.get("/api/v1/placements", {"limit": "0"}), 422, "validation_error")
    assert_error(api.get("/api/v1/placements", {"cursor": "garbage!"}), 422, "validation_error")
    malformed = api.client.post(
        "/api/v1/placements", "{not json", content_type="application/json", headers=api.headers()
    )
    assert_error(malformed, 400, "bad_request")
    assert_error(api.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(
        api.client.delete("/api/v1/reviews", headers=api.headers()), 405, "method_not_allowed"
    )
    nul = api.post("/api/v1/placements", {"external_ref": "a\x00b", "candidate_name": "x"})
    assert_error(nul, 422, "validation_error")


def test_cursor_pagination_walks_every_row_once(api, acme):
    for n in range(7):
        Placement.objects.create(agency=acme, candidate_name=f"P{n}", external_ref=f"R{n}")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/placements", params).json()
        seen += [p["external_ref"] for p in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"R{n}" for n in reversed(range(7))]


def test_idempotent_post_replays_the_first_response(api, sam):
    body = {
        "recipients": [{"email": "cara@candidate.test", "name": "Cara"}],
        "recruiter_email": "sam@acme.test",
    }
    key = str(uuid.uuid4())
    first = api.post("/api/v1/review-requests", body, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 201
    again = api.post("/api/v1/review-requests", body, HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Trigger.objects.filter(source="api").count() == 1
    # The same key with a different request is refused; a new key runs again.
    other = api.post(
        "/api/v1/review-requests", {**body, "placement_ref": "X"}, HTTP_IDEMPOTENCY_KEY=key
    )
    assert_error(other, 422, "idempotency_key_reused")
    fresh = api.post("/api/v1/review-requests", body, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert fresh.json()["recipients"][0]["reason"] == "recently_asked"
    assert IdempotencyRecord.objects.count() == 2


def test_a_replay_is_refused_like_any_call_over_the_limit_or_once_the_api_is_off(
    api, acme, settings
):
    """Replays are answered before ninja authenticates; they must still count against the
    key's rate limit, and be refused once the admin has switched the API off (403
    api_disabled, docs/API.md: *every* call is refused)."""
    body = {"external_ref": "PL-1", "candidate_name": "Ann", "candidate_email": "ann@x.test"}
    settings.EMAILSYNC_API_RATE_LIMIT = 2
    answers = [api.post("/api/v1/placements", body, HTTP_IDEMPOTENCY_KEY="k1") for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert_error(answers[-1], 429, "rate_limited")
    settings.EMAILSYNC_API_RATE_LIMIT = 600
    enable_api(acme, "email_sync")
    replay = api.post("/api/v1/placements", body, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error(replay, 403, "api_disabled")
    assert "Idempotent-Replayed" not in replay
    # So is the same key with another body: no "key reused" answer from a switched-off API.
    reused = api.post("/api/v1/placements", {**body, "job_title": "X"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error(reused, 403, "api_disabled")


def test_idempotency_keys_are_per_api_key(api, acme, client):
    _row, second = ApiKey.issue(acme, "Other integration")
    body = {"external_ref": "PL-1", "candidate_name": "Ann"}
    assert api.post("/api/v1/placements", body, HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    other = ApiClient(client, second).post(
        "/api/v1/placements", {**body, "job_title": "Chef"}, HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert other.status_code == 200 and other.json()["job_title"] == "Chef"


def test_idempotency_key_in_progress_gets_409(api, acme, rf):
    import json

    from emailsync.api.idempotency import fingerprint

    body = {"external_ref": "a", "candidate_name": "b"}
    racing = rf.post("/api/v1/placements", json.dumps(body), content_type="application/json")
    key = ApiKey.objects.get(agency=acme)
    IdempotencyRecord.objects.create(api_key=key, key="busy", fingerprint=fingerprint(racing))
    response = api.post("/api/v1/placements", body, HTTP_IDEMPOTENCY_KEY="busy")
    assert_error(response, 409, "idempotency_key_in_progress")
    assert response["Retry-After"]
    assert not Placement.objects.exists()


def test_openapi_document_is_3_1_and_describes_errors(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/api/v1/placements"]["post"]
    assert {"201", "200", "401", "404", "409", "422", "429"} <= set(op["responses"])
    assert doc["components"]["securitySchemes"]
