"""Placements, review requests (with Email Sync's rules), reviews and triggers over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.agencies.models import SenderAddress
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker
from emailsync.placements.models import Placement
from emailsync.review_requests.manual import Person, request_manually
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Suppression
from emailsync.reviews.models import Review
from tests.profiles.conftest import request_for, review_for

pytestmark = pytest.mark.django_db


def test_placement_upsert_is_idempotent(api, acme, sam):
    body = {
        "external_ref": "PL-7",
        "candidate_name": "Ann Lee",
        "candidate_email": "ANN@x.test",
        "start_date": "2025-04-01",
        "recruiter_email": "sam@acme.test",
    }
    first = api.post("/api/v1/placements", body)
    assert first.status_code == 201
    again = api.post("/api/v1/placements", body)
    assert again.status_code == 200 and again.json() == first.json()
    assert Placement.objects.filter(agency=acme).count() == 1
    changed = api.post("/api/v1/placements", {**body, "job_title": "Chef"})
    assert changed.status_code == 200 and changed.json()["job_title"] == "Chef"
    placement = Placement.objects.get(agency=acme)
    assert placement.candidate_email == "ann@x.test" and placement.recruiter.user == sam
    actions = list(acme.audit_entries.values_list("action", flat=True))
    assert actions.count("placement.created") == 1 and actions.count("placement.edited") == 1


def test_placement_get_patch_and_filters(api, acme, sam):
    a = api.post(
        "/api/v1/placements",
        {"external_ref": "A", "candidate_name": "Ann", "start_date": "2025-01-10"},
    ).json()
    api.post(
        "/api/v1/placements",
        {
            "external_ref": "B",
            "candidate_name": "Bob",
            "start_date": "2025-06-10",
            "recruiter_email": "sam@acme.test",
        },
    )
    assert api.get(f"/api/v1/placements/{a['id']}").json()["candidate_name"] == "Ann"
    patched = api.patch(f"/api/v1/placements/{a['id']}", {"job_title": "Nurse"})
    assert patched.status_code == 200 and patched.json()["job_title"] == "Nurse"
    assert patched.json()["candidate_name"] == "Ann"
    clash = api.patch(f"/api/v1/placements/{a['id']}", {"external_ref": "B"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "external_ref_taken"
    unknown = api.patch(f"/api/v1/placements/{a['id']}", {"recruiter_email": "who@else.test"})
    assert unknown.status_code == 422 and "recruiter_email" in unknown.json()["error"]["fields"]

    def refs(**params):
        return [p["external_ref"] for p in api.get("/api/v1/placements", params).json()["data"]]

    assert refs(external_ref="A") == ["A"]
    assert refs(recruiter_email="sam@acme.test") == ["B"]
    assert refs(start_date_from="2025-03-01") == ["B"]
    assert refs(start_date_to="2025-03-01") == ["A"]


def reasons(response):
    assert response.status_code == 201, response.content
    return {r["email"]: (r["outcome"], r["reason"]) for r in response.json()["recipients"]}


def test_api_requests_follow_email_syncs_rules_with_the_same_reason_codes(api, acme, sam):
    Suppression.add("gone@people.test", Suppression.Reason.UNSUBSCRIBED)
    # Asked before by another way in (a manual request): the one dedupe applies across ways.
    request_manually(acme, [Person("asked@people.test")], by=acme.admins().get())
    response = api.post(
        "/api/v1/review-requests",
        {
            "recruiter_email": "sam@acme.test",
            "placement_ref": "PL-9",
            "recipients": [
                {"email": "cara@people.test", "name": "Cara", "role": "candidate"},
                {"email": "gone@people.test"},
                {"email": "asked@people.test"},
                {"email": "noreply@people.test"},
                {"email": "jo@acme.test"},
                {"email": "sam@acme.test"},
            ],
        },
    )
    assert reasons(response) == {
        "cara@people.test": ("scheduled", None),
        "gone@people.test": ("skipped", "suppressed"),
        "asked@people.test": ("skipped", "recently_asked"),
        "noreply@people.test": ("skipped", "role_address"),
        "jo@acme.test": ("skipped", "colleague"),
        "sam@acme.test": ("skipped", "sender"),
    }
    rr = ReviewRequest.objects.get(email="cara@people.test")
    assert rr.source == "api" and rr.recruiter.user == sam and rr.placement_ref == "PL-9"
    assert rr.role == "candidate" and rr.deadline == rr.created_at + timedelta(hours=72)
    sync = EmailSyncSettings.for_agency(acme)
    assert rr.send_after >= rr.created_at + timedelta(hours=sync.delay_hours) - timedelta(hours=1)
    # Its email is queued when it falls due, by the worker, as every request's is.
    assert rr.queued_at is None and not OutboundEmail.objects.filter(review_request=rr).exists()
    trigger = Trigger.objects.get(source="api")
    assert trigger.recipients.count() == 6
    # The same email list through the rules again: now Cara was asked too.
    again = api.post("/api/v1/review-requests", {"recipients": [{"email": "cara@people.test"}]})
    assert reasons(again) == {"cara@people.test": ("skipped", "recently_asked")}


def test_a_removed_member_is_no_recruiter_to_credit(api, acme, sam):
    """`recruiter_email` must name a member: after the admin removes Sam, neither his login
    address nor another of his sending addresses credits him (the email would go out in his
    name, Reply-To him)."""
    SenderAddress.objects.create(agency=acme, profile=sam.profile, email="sam@sam-home.test")
    sam.remove_from_agency(by=acme.admins().get())
    for address in ("sam@acme.test", "sam@sam-home.test"):
        response = api.post(
            "/api/v1/review-requests",
            {"recruiter_email": address, "recipients": [{"email": "cara@people.test"}]},
        )
        assert response.status_code == 422, address
        assert response.json()["error"]["code"] == "unknown_recruiter"
        placement = api.post(
            "/api/v1/placements",
            {"external_ref": "PL-1", "candidate_name": "Cara", "recruiter_email": address},
        )
        assert placement.status_code == 422, address
        # Their past records can still be found by their address.
        assert api.get("/api/v1/reviews", {"recruiter_email": address}).status_code == 200
    assert not ReviewRequest.objects.exists()


def test_email_syncs_recipient_cap_does_not_apply_to_an_api_call(api, acme):
    """The cap tells a bulk email from a placement email; an API call names exactly who to ask,
    so only the API's own limit (50 recipients a call) applies."""
    sync = EmailSyncSettings.for_agency(acme)
    sync.recipient_cap = 2
    sync.save()
    response = api.post(
        "/api/v1/review-requests",
        {"recipients": [{"email": f"p{n}@people.test"} for n in range(3)]},
    )
    assert set(reasons(response).values()) == {("scheduled", None)}
    assert ReviewRequest.objects.count() == 3


def test_get_list_and_cancel_requests(api, acme):
    made = api.post("/api/v1/review-requests", {"recipients": [{"email": "a@people.test"}]})
    rr_id = made.json()["recipients"][0]["review_request"]["id"]
    assert api.get(f"/api/v1/review-requests/{rr_id}").json()["status"] == "scheduled"
    listed = api.get("/api/v1/review-requests", {"status": "scheduled", "source": "api"})
    assert [r["id"] for r in listed.json()["data"]] == [rr_id]
    cancelled = api.post(f"/api/v1/review-requests/{rr_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/review-requests/{rr_id}/cancel").status_code == 200
    # When it would have fallen due, nothing is queued or sent.
    deadline = ReviewRequest.objects.get(pk=rr_id).deadline
    assert Worker(run_jobs=False).run_once(now=deadline).claimed == 0
    assert not OutboundEmail.objects.filter(review_request_id=rr_id).exists()
    # Cancelling released the address: asking again schedules.
    again = api.post("/api/v1/review-requests", {"recipients": [{"email": "a@people.test"}]})
    assert reasons(again) == {"a@people.test": ("scheduled", None)}
    ReviewRequest.objects.filter(pk=rr_id).update(status="sent")
    sent = api.post(f"/api/v1/review-requests/{rr_id}/cancel")
    assert sent.status_code == 409 and sent.json()["error"]["code"] == "not_cancellable"


def test_reviews_list_filters_by_status_and_hides_unconfirmed(api, acme, sam):
    profile = sam.profile
    made = {}
    for status in ("missing_verification", "verified", "rejected", "unconfirmed"):
        rr = request_for(acme, profile)
        rr.save()
        review = review_for(acme, rr, profile, status=status)
        review.save()
        made[status] = review.pk

    def ids(**params):
        return {r["id"] for r in api.get("/api/v1/reviews", params).json()["data"]}

    assert ids() == {made["missing_verification"], made["verified"], made["rejected"]}
    for status in ("missing_verification", "verified", "rejected"):
        assert ids(status=status) == {made[status]}
    assert api.get("/api/v1/reviews", {"status": "unconfirmed"}).status_code == 422
    assert api.get(f"/api/v1/reviews/{made['unconfirmed']}").status_code == 404
    one = api.get(f"/api/v1/reviews/{made['verified']}").json()
    assert one["rating"] == 5 and one["recruiter"]["email"] == "sam@acme.test"
    assert Review.objects.count() == 4


def test_triggers_show_each_recipients_outcome(api, acme):
    api.post(
        "/api/v1/review-requests",
        {"recipients": [{"email": "a@people.test"}, {"email": "noreply@people.test"}]},
    )
    body = api.get("/api/v1/triggers", {"source": "api"}).json()
    (trigger,) = body["data"]
    assert {(r["email"], r["outcome"], r["reason"]) for r in trigger["recipients"]} == {
        ("a@people.test", "invited", ""),
        ("noreply@people.test", "skipped", "role_address"),
    }
    assert api.get(f"/api/v1/triggers/{trigger['id']}").json() == trigger
    later = (timezone.now() + timedelta(days=1)).isoformat()
    assert api.get("/api/v1/triggers", {"received_after": later}).json()["data"] == []
    assert TriggerRecipient.objects.count() == 2
