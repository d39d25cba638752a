"""Defects found by black-box testing of the API, each pinned by a test."""

import json
import uuid

import pytest

from emailsync.inbound.models import TriggerRecipient
from emailsync.placements.models import Placement
from emailsync.review_requests.models import ReviewRequest
from tests.profiles.conftest import request_for, review_for

pytestmark = pytest.mark.django_db

FULL = {
    "external_ref": "DR-2402",
    "candidate_name": "Sofia R.",
    "candidate_email": "sofia@people.test",
    "client_company": "Client Ltd",
    "client_contact_name": "Sam Boss",
    "client_contact_email": "boss@client.test",
    "job_title": "Staff nurse",
    "start_date": "2025-03-03",
    "recruiter_email": "sam@acme.test",
}


def error_of(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


# --- 1. an upsert changes only the fields it gives ----------------------------------------------


def test_upsert_keeps_the_fields_the_body_leaves_out(api, acme, sam):
    first = api.post("/api/v1/placements", FULL)
    assert first.status_code == 201
    partial = api.post(
        "/api/v1/placements", {"external_ref": "DR-2402", "candidate_name": "Sofia Rossi"}
    )
    assert partial.status_code == 200, partial.content
    expected = {**first.json(), "candidate_name": "Sofia Rossi"}
    assert partial.json() == expected
    placement = Placement.objects.get(agency=acme)
    assert placement.job_title == "Staff nurse" and placement.recruiter.user == sam
    edited = [e for e in acme.audit_entries.all() if e.action == "placement.edited"]
    assert len(edited) == 1


def test_upsert_can_still_clear_a_field_it_gives(api, acme, sam):
    api.post("/api/v1/placements", FULL)
    cleared = api.post(
        "/api/v1/placements",
        {"external_ref": "DR-2402", "candidate_name": "S", "job_title": "", "start_date": None},
    ).json()
    assert cleared["job_title"] == "" and cleared["start_date"] is None
    assert cleared["client_company"] == "Client Ltd" and cleared["recruiter"] is not None


def test_upsert_create_gives_absent_fields_their_defaults(api):
    made = api.post("/api/v1/placements", {"external_ref": "N-1", "candidate_name": "Ann"})
    assert made.status_code == 201
    body = made.json()
    assert body["job_title"] == "" and body["start_date"] is None and body["recruiter"] is None


def test_patch_keeps_the_fields_the_body_leaves_out(api, sam):
    made = api.post("/api/v1/placements", FULL).json()
    patched = api.patch(f"/api/v1/placements/{made['id']}", {"candidate_name": "Sofia Rossi"})
    assert patched.status_code == 200
    assert patched.json() == {**made, "candidate_name": "Sofia Rossi"}


# --- 2. unknown fields are refused --------------------------------------------------------------


def test_unknown_body_fields_are_422_naming_the_field(api, acme):
    response = api.post(
        "/api/v1/placements",
        {"external_ref": "V-1", "candidate_name": "V One", "bogus": 1, "id": 999, "agency_id": 2},
    )
    error = error_of(response, 422, "validation_error")
    assert set(error["fields"]) == {"bogus", "id", "agency_id"}
    assert not Placement.objects.exists()
    made = api.post("/api/v1/placements", {"external_ref": "V-1", "candidate_name": "V"}).json()
    patch = api.patch(f"/api/v1/placements/{made['id']}", {"bogus": 1})
    assert set(error_of(patch, 422, "validation_error")["fields"]) == {"bogus"}
    typo = api.post("/api/v1/review-requests", {"recipients": [{"email": "a@p.test", "rol": "x"}]})
    assert set(error_of(typo, 422, "validation_error")["fields"]) == {"recipients.0.rol"}
    top = api.post("/api/v1/review-requests", {"recipients": [{"email": "a@p.test"}], "x": 1})
    assert set(error_of(top, 422, "validation_error")["fields"]) == {"x"}
    assert not ReviewRequest.objects.exists()


# --- 3. an oversized body is 413 ----------------------------------------------------------------


def big_body():
    return json.dumps({"external_ref": "BIG", "candidate_name": "x" * (5 * 1024 * 1024)})


def test_oversized_body_is_413_json(api):
    plain = api.client.post(
        "/api/v1/placements", big_body(), content_type="application/json", headers=api.headers()
    )
    error_of(plain, 413, "too_large")
    keyed = api.client.post(
        "/api/v1/placements",
        big_body(),
        content_type="application/json",
        headers={**api.headers(), "Idempotency-Key": str(uuid.uuid4())},
    )
    error_of(keyed, 413, "too_large")
    assert not Placement.objects.exists()


# --- 4. a body must be JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/x-www-form-urlencoded", "application/xml", "text/json"],
)
def test_body_that_is_not_declared_json_is_415(api, content_type):
    body = json.dumps({"external_ref": "CT-1", "candidate_name": "Ann"})
    response = api.client.generic(
        "POST", "/api/v1/placements", body, content_type=content_type, headers=api.headers()
    )
    error_of(response, 415, "unsupported_media_type")
    assert not Placement.objects.exists()


def test_json_with_a_charset_and_an_empty_post_are_accepted(api, acme):
    ok = api.client.post(
        "/api/v1/placements",
        json.dumps({"external_ref": "CT-2", "candidate_name": "Ann"}),
        content_type="application/json; charset=utf-8",
        headers=api.headers(),
    )
    assert ok.status_code == 201
    rr = request_for(acme, None)
    rr.save()
    cancel = api.client.generic(
        "POST", f"/api/v1/review-requests/{rr.pk}/cancel", b"", headers=api.headers()
    )
    # Through to the view (a completed request cannot be cancelled), not refused as a body.
    error_of(cancel, 409, "not_cancellable")


# --- 5. no-store and the JSON shape everywhere --------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/", "/api/v1/placements/x/y"])
def test_unknown_api_addresses_are_json_404_and_not_stored(api, path):
    error_of(api.get(path), 404, "not_found")


# --- 6. a request does not show an unconfirmed review -------------------------------------------


def test_review_request_hides_a_review_waiting_for_confirmation(api, acme, sam):
    rr = request_for(acme, sam.profile)
    rr.save()
    review = review_for(acme, rr, sam.profile, status="unconfirmed")
    review.save()
    assert api.get(f"/api/v1/review-requests/{rr.pk}").json()["review_id"] is None
    listed = api.get("/api/v1/review-requests").json()["data"]
    assert [r["review_id"] for r in listed] == [None]
    review.status = "missing_verification"
    review.save()
    assert api.get(f"/api/v1/review-requests/{rr.pk}").json()["review_id"] == review.pk


# --- 7. reviews by the placement they were verified against --------------------------------------


def test_reviews_filter_matches_the_verified_placements_reference(api, acme, sam):
    placement = Placement.objects.create(agency=acme, candidate_name="Ann", external_ref="PL-X")
    rr = request_for(acme, sam.profile)
    rr.save()
    verified = review_for(acme, rr, sam.profile, status="verified")
    verified.placement_ref = "typed-by-hand"
    verified.placement = placement
    verified.save()
    rr2 = request_for(acme, sam.profile)
    rr2.save()
    copied = review_for(acme, rr2, sam.profile, status="missing_verification")
    copied.placement_ref = "PL-X"
    copied.save()

    def ids(ref):
        return {r["id"] for r in api.get("/api/v1/reviews", {"placement_ref": ref}).json()["data"]}

    assert ids("PL-X") == {verified.pk, copied.pk}
    assert ids("typed-by-hand") == {verified.pk}
    assert ids("other") == set()


# --- 8. the same person twice -------------------------------------------------------------------


def test_a_repeated_recipient_is_skipped_as_duplicate_and_keeps_the_first_role(api):
    response = api.post(
        "/api/v1/review-requests",
        {
            "recipients": [
                {"email": "Dup@People.test", "name": "Dee", "role": "candidate"},
                {"email": "dup@people.test", "name": "Dee again"},
            ]
        },
    )
    assert response.status_code == 201, response.content
    first, second = response.json()["recipients"]
    assert first["outcome"] == "scheduled" and first["review_request"]["role"] == "candidate"
    assert second["email"] == "dup@people.test" and second["outcome"] == "skipped"
    assert second["reason"] == "duplicate" and second["reason_message"]
    assert ReviewRequest.objects.get().role == "candidate"
    rows = list(TriggerRecipient.objects.values_list("email", "outcome", "reason", "role"))
    assert rows == [
        ("dup@people.test", "invited", "", "candidate"),
        ("dup@people.test", "skipped", "duplicate", ""),
    ]


def test_another_form_of_the_same_mailbox_is_a_duplicate_too(api):
    response = api.post(
        "/api/v1/review-requests",
        {"recipients": [{"email": "dan@people.test"}, {"email": "Dan+Work@people.test"}]},
    )
    assert response.status_code == 201, response.content
    outcomes = [(r["email"], r["outcome"], r["reason"]) for r in response.json()["recipients"]]
    assert outcomes == [
        ("dan@people.test", "scheduled", None),
        ("dan+work@people.test", "skipped", "duplicate"),
    ]
    assert TriggerRecipient.objects.count() == 2 and ReviewRequest.objects.count() == 1


# --- 9. no lax coercion -------------------------------------------------------------------------


@pytest.mark.parametrize("start_date", [0, 20250303, "2025-03-03T00:00:00", "2025-03-03T10:00"])
def test_start_date_must_be_an_iso_date_string(api, start_date):
    body = {"external_ref": "D-1", "candidate_name": "Ann", "start_date": start_date}
    error = error_of(api.post("/api/v1/placements", body), 422, "validation_error")
    assert set(error["fields"]) == {"start_date"}
    assert not Placement.objects.exists()


def test_iso_dates_still_work_in_post_and_patch(api):
    made = api.post(
        "/api/v1/placements",
        {"external_ref": "D-2", "candidate_name": "Ann", "start_date": "2025-03-03"},
    )
    assert made.status_code == 201 and made.json()["start_date"] == "2025-03-03"
    pid = made.json()["id"]
    patched = api.patch(f"/api/v1/placements/{pid}", {"start_date": "2025-04-01"})
    assert patched.json()["start_date"] == "2025-04-01"
    lax = api.patch(f"/api/v1/placements/{pid}", {"start_date": 0})
    assert set(error_of(lax, 422, "validation_error")["fields"]) == {"start_date"}


@pytest.mark.parametrize("send_now", ["yes", "true", 1, 0, "false"])
def test_send_now_must_be_a_boolean(api, send_now):
    body = {"recipients": [{"email": "a@people.test"}], "send_now": send_now}
    error = error_of(api.post("/api/v1/review-requests", body), 422, "validation_error")
    assert set(error["fields"]) == {"send_now"}
    assert not ReviewRequest.objects.exists()


def test_send_now_true_is_accepted(api):
    body = {"recipients": [{"email": "a@people.test"}], "send_now": True}
    assert api.post("/api/v1/review-requests", body).status_code == 201


# --- 10. an unknown trigger source is refused like other enums ----------------------------------


def test_trigger_source_filter_refuses_unknown_values(api):
    error_of(api.get("/api/v1/triggers", {"source": "carrier-pigeon"}), 422, "validation_error")
    for source in ("smtp", "manual", "api", "esp:postmark", "esp:amazon_ses"):
        assert api.get("/api/v1/triggers", {"source": source}).status_code == 200
