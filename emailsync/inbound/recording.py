"""Writing what a batch of trigger emails decided: the triggers, each recipient's outcome, the
review requests and their queued emails — one INSERT per table per batch.

`ingest` decides; this module only writes. Rows are plain dicts (see rows.py for why).
"""

import logging

from django.db.models import F

from emailsync.outbox.models import OutboundEmail, new_message_id
from emailsync.review_requests.models import ReviewRequest, Source
from emailsync.review_requests.scheduling import send_time_for

from . import recipients as rules
from .models import Trigger, TriggerRecipient, UnmappedSender
from .rows import Table

log = logging.getLogger("emailsync.inbound")

TRIGGERS = Table(Trigger)
RECIPIENTS = Table(TriggerRecipient)
REQUESTS = Table(ReviewRequest)
EMAILS = Table(OutboundEmail)
OUTCOME = TriggerRecipient.Outcome


def settle_status(plan) -> None:
    """The trigger's final status and reason, from what was decided for its recipients."""
    trigger = plan.trigger
    if trigger.status == Trigger.Status.BLOCKED:
        return
    if plan.quarantined:
        trigger.status = Trigger.Status.QUARANTINED
    elif trigger.reason:
        trigger.status = Trigger.Status.SKIPPED
    elif plan.setup_test or any(d.invite for d in plan.decisions):
        trigger.status = Trigger.Status.ACCEPTED
    else:
        trigger.status = Trigger.Status.SKIPPED
        bulk = any(d.reason == rules.BULK_SEND for d in plan.decisions)
        trigger.reason = "bulk_send" if bulk else "no_recipients"


def write(plans, now) -> None:
    for plan in plans:
        settle_status(plan)
    ids = TRIGGERS.insert([TRIGGERS.as_row(p.trigger) for p in plans], returning=True)
    for plan, pk in zip(plans, ids, strict=True):
        plan.trigger.pk = pk
    requests, recipients = [], []
    for plan in plans:
        plan_requests = outcomes(plan, now, recipients)
        plan.requests = len(plan_requests)
        requests.extend(plan_requests)
    for request, pk in zip(requests, REQUESTS.insert(requests, returning=True), strict=True):
        request["id"] = pk
    EMAILS.insert(
        [
            {
                "kind": OutboundEmail.Kind.REVIEW_REQUEST,
                "template": "review_request",
                "agency_id": r["agency_id"],
                "review_request_id": r["id"],
                "to_email": r["email"],
                "to_name": r["name"],
                "send_after": r["send_after"],
                "message_id": new_message_id(),
                "created_at": now,
            }
            for r in requests
        ]
    )
    for row in recipients:
        request = row.pop("request", None)
        row["review_request_id"] = request["id"] if request else None
    RECIPIENTS.insert(recipients)
    for plan in plans:
        note_unmapped_sender(plan, now)
        log.info(
            "trigger %s agency=%s status=%s reason=%s",
            plan.trigger.pk,
            plan.trigger.agency_id,
            plan.trigger.status,
            plan.trigger.reason or "-",
        )


def outcomes(plan, now, recipients: list[dict]) -> list[dict]:
    """Append each recipient's outcome to `recipients`; return the review requests to create."""
    trigger = plan.trigger

    def recipient(email, name, outcome, reason="", role="", request=None):
        recipients.append(
            {
                "trigger_id": trigger.pk,
                "email": email[:320],
                "name": name[:120],
                "role": role,
                "outcome": outcome,
                "reason": reason,
                "request": request,
            }
        )

    if trigger.reason and not plan.quarantined:
        for r in rules.unique_recipients(plan.candidates):
            recipient(r.email, r.name, OUTCOME.SKIPPED, trigger.reason)
        return []
    requests = []
    due = send_time_for(plan.facts.settings, now)  # the same for everyone in one email
    if plan.setup_test:
        # The admin sees exactly what a candidate would, at once; nobody else is asked.
        name = plan.headers.from_addr.display_name if plan.headers.from_addr else ""
        request = request_row(
            plan, trigger.sender, name, now, send_after=now, source=Source.SETUP_TEST
        )
        requests.append(request)
        recipient(trigger.sender, name, OUTCOME.INVITED, "setup_test", request=request)
    for d in plan.decisions:
        role = plan.structured.role_for(d.email) or ""
        if plan.setup_test and d.reason == rules.SENDER:
            continue  # recorded above
        if not d.invite:
            recipient(d.email, d.name, OUTCOME.SKIPPED, d.reason, role)
        elif plan.quarantined:
            recipient(d.email, d.name, OUTCOME.HELD, rules.QUARANTINED, role)
        elif plan.setup_test:
            recipient(d.email, d.name, OUTCOME.SKIPPED, rules.SETUP_TEST_PREVIEW, role)
        else:
            request = request_row(plan, d.email, d.name, now, send_after=due)
            requests.append(request)
            recipient(d.email, d.name, OUTCOME.INVITED, role=role, request=request)
    return requests


def request_row(plan, email: str, name: str, now, *, send_after, source=Source.EMAIL_SYNC) -> dict:
    structured = plan.structured
    return ReviewRequest.new_row(
        agency_id=plan.trigger.agency_id,
        source=source,
        email=email,
        name=structured.name_for(email) or name,
        role=structured.role_for(email) or "",
        recruiter_id=plan.trigger.recruiter_id,
        placement_ref=structured.placement_ref or "",
        now=now,
        send_after=send_after,
    )


def note_unmapped_sender(plan, now) -> None:
    """An unknown address on the agency's domain: remembered so an admin can map it."""
    trigger = plan.trigger
    sender = rules.strip_plus_tag(trigger.sender) if trigger.sender else ""
    if (
        not sender
        or trigger.recruiter_id is not None
        or trigger.reason == "header_defects"
        or sender.rpartition("@")[2] not in plan.facts.domains
    ):
        return
    updated = UnmappedSender.objects.filter(agency_id=trigger.agency_id, email=sender).update(
        last_seen=now, trigger_count=F("trigger_count") + 1
    )
    if not updated:
        UnmappedSender.objects.create(
            agency_id=trigger.agency_id,
            email=sender,
            first_seen=now,
            last_seen=now,
            trigger_count=1,
        )
