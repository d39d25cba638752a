"""One object of each kind the agency app's URLs point at, for an agency (the isolation walk)."""

from datetime import date, timedelta

from django.utils import timezone

from emailsync.inbound.models import BlockedSender, Trigger, TriggerRecipient, UnmappedSender
from emailsync.placements.models import Placement, PlacementImport
from emailsync.review_requests.models import ReviewRequest, Source


def scheduled_request(agency, recruiter, email="invitee@example.org", **fields) -> ReviewRequest:
    now = timezone.now()
    values = dict(
        agency=agency,
        source=Source.EMAIL_SYNC,
        email=email,
        name="Ivy Invitee",
        recruiter=recruiter,
        send_after=now + timedelta(hours=20),
        deadline=now + timedelta(hours=72),
    )
    values.update(fields)
    return ReviewRequest.objects.create(**values)


def quarantined_trigger(agency, sender="stranger@elsewhere.test", recipients=("held@example.org",)):
    trigger = Trigger.objects.create(
        agency=agency,
        message_id_hash=f"q-{agency.pk}-{timezone.now().timestamp()}-{sender}",
        sender=sender,
        status=Trigger.Status.QUARANTINED,
        reason="sender_not_agency",
    )
    for email in recipients:
        TriggerRecipient.objects.create(
            trigger=trigger, email=email, outcome="held", reason="quarantined"
        )
    return trigger


def agency_app_objects(agency, recruiter) -> dict:
    domain = (agency.domain_names() or ["example.test"])[0]
    placement = Placement.objects.create(
        agency=agency,
        candidate_name="Pat Placed",
        candidate_email=f"pat@{domain}.example",
        start_date=date.today(),
        recruiter=recruiter,
    )
    job = PlacementImport.objects.create(
        agency=agency, content="candidate_name\nA\n", total_rows=1, filename="a.csv"
    )
    from emailsync.api.models import ApiKey, WebhookEndpoint
    from emailsync.api.webhooks import queue_test

    key, _raw = ApiKey.issue(agency, "ATS")
    endpoint = WebhookEndpoint.objects.create(
        agency=agency, url="https://ats.example.com/hook", events="review.verified"
    )
    return {
        "key_id": key.pk,
        "endpoint_id": endpoint.pk,
        "delivery_id": queue_test(endpoint).pk,
        "placement_id": placement.pk,
        "import_id": job.pk,
        "request_id": scheduled_request(agency, recruiter).pk,
        "trigger_id": quarantined_trigger(agency).pk,
        "unmapped_id": UnmappedSender.objects.create(agency=agency, email=f"new@{domain}").pk,
        "blocked_id": BlockedSender.objects.create(agency=agency, email="spam@bad.example").pk,
    }
