"""A person's data requests: everything we hold about one email address, and its erasure.

`export_person(email)` gathers every row that names the address, across all agencies.
`erase_person(email, by=None)` removes or blanks them (docs/PRIVACY.md, "Erasure"):

- reviews that are not verified (unconfirmed, missing verification, rejected) are deleted with
  their requests; verified reviews stay published as *Anonymous* — name and email blanked, the
  rating and text kept, the request behind them blanked and its link token replaced;
- every other review request, the dedupe ledger (`AskedRecipient`) and every outbox row to the
  address are deleted;
- trigger-recipient rows are blanked (the agency's fairness audit keeps the outcome, not the
  person); placements, review reports and queued webhook bodies lose the address;
- the address is suppressed (a SHA-256 hash only), so nobody asks it again;
- each affected agency's rating aggregates are recomputed and its audit log gets one
  `privacy.erased` entry with counts, never the address.

Member accounts (`agencies.User`) are not touched: an agency removes its own members.
"""

import logging
import secrets

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from emailsync.agencies.models import Agency, AuditEntry, User
from emailsync.api.models import WebhookDelivery
from emailsync.inbound.models import TriggerRecipient
from emailsync.operations.models import DevelopmentMessage
from emailsync.outbox.models import OutboundEmail
from emailsync.placements.models import Placement
from emailsync.profiles import aggregates
from emailsync.profiles.models import ReviewReport
from emailsync.review_requests.models import (
    AskedRecipient,
    ReviewRequest,
    Suppression,
    mailbox,
)
from emailsync.reviews.models import DisplayName, Review
from emailsync.throttling.models import Counter

log = logging.getLogger("emailsync.privacy")

ERASED_ACTION = "privacy.erased"
ERASED_SUBJECT = "Data erased on the person's request"


def normalise(email: str) -> str:
    return (email or "").strip().lower()


def _when(value):
    return value.isoformat() if value else None


def _agency(agency) -> dict:
    return {"slug": agency.slug, "name": agency.name}


def _reviews(address: str):
    return Review.objects.filter(
        Q(reviewer_email__iexact=address) | Q(review_request__email__iexact=address)
    )


def export_person(email: str) -> dict:
    """Everything held about `email`, across all agencies, as plain JSON-ready data."""
    address = normalise(email)
    requests = (
        ReviewRequest.objects.filter(email__iexact=address)
        .select_related("agency", "recruiter")
        .order_by("created_at", "id")
    )
    reviews = _reviews(address).select_related("agency", "recruiter").order_by("submitted_at")
    recipients = (
        TriggerRecipient.objects.filter(email__iexact=address)
        .select_related("trigger__agency")
        .order_by("trigger__received_at", "id")
    )
    emails = (
        OutboundEmail.objects.filter(to_email__iexact=address)
        .select_related("agency")
        .order_by("created_at", "id")
    )
    asked = AskedRecipient.objects.filter(
        Q(email__iexact=address) | Q(email__iexact=mailbox(address))
    ).select_related("agency")
    placements = Placement.objects.filter(
        Q(candidate_email__iexact=address) | Q(client_contact_email__iexact=address)
    ).select_related("agency")
    reports = ReviewReport.objects.filter(contact_email__iexact=address).select_related(
        "review__agency"
    )
    suppression = Suppression.for_address(address).first()
    account = User.objects.filter(email__iexact=address).select_related("agency").first()
    return {
        "email": address,
        "exported_at": timezone.now().isoformat(),
        "review_requests": [
            {
                "agency": _agency(rr.agency),
                "recruiter": rr.recruiter.display_name if rr.recruiter else None,
                "source": rr.source,
                "name": rr.name,
                "role": rr.role,
                "placement_ref": rr.placement_ref,
                "personal_message": rr.personal_message,
                "status": rr.status,
                "status_reason": rr.status_reason,
                "created_at": _when(rr.created_at),
                "sent_at": _when(rr.sent_at),
                "opened_at": _when(rr.opened_at),
                "completed_at": _when(rr.completed_at),
                "reminded_at": _when(rr.reminded_at),
                "expires_at": _when(rr.expires_at),
            }
            for rr in requests
        ],
        "reviews": [
            {
                "agency": _agency(r.agency),
                "recruiter": r.recruiter.display_name if r.recruiter else None,
                "rating": r.rating,
                "text": r.text,
                "role": r.role,
                "reviewer_name": r.reviewer_name,
                "display_name_choice": r.display_name_choice,
                "shown_as": r.display_name,
                "recommend": r.recommend,
                "consent": r.consent,
                "status": r.status,
                "submitted_at": _when(r.submitted_at),
                "verified_at": _when(r.verified_at),
            }
            for r in reviews
        ],
        "trigger_recipients": [
            {
                "agency": _agency(tr.trigger.agency),
                "received_at": _when(tr.trigger.received_at),
                "name": tr.name,
                "outcome": tr.outcome,
                "reason": tr.reason,
            }
            for tr in recipients
        ],
        "emails": [
            {
                "agency": _agency(e.agency) if e.agency else None,
                "kind": e.kind,
                "template": e.template,
                "status": e.status,
                "created_at": _when(e.created_at),
                "sent_at": _when(e.sent_at),
            }
            for e in emails
        ],
        "last_asked": [
            {"agency": _agency(a.agency), "last_asked_at": _when(a.last_asked_at)} for a in asked
        ],
        # The person's own side of each placement: the other side's name is someone else's
        # data, not theirs to be sent.
        "placements": [_own_side(p, address) for p in placements],
        "review_reports": [
            {
                "agency": _agency(rep.review.agency),
                "reason": rep.reason,
                "detail": rep.detail,
                "created_at": _when(rep.created_at),
            }
            for rep in reports
        ],
        "suppression": (
            {"reason": suppression.reason, "since": _when(suppression.created_at)}
            if suppression
            else None
        ),
        "account": (
            {
                "agency": _agency(account.agency) if account.agency else None,
                "full_name": account.full_name,
                "role": account.role,
                "date_joined": _when(account.date_joined),
            }
            if account
            else None
        ),
    }


def _scrub(text: str, needles) -> str:
    lowered = text.lower()
    for needle in needles:
        start = lowered.find(needle.lower())
        while start != -1:
            text = text[:start] + text[start + len(needle) :]
            lowered = text.lower()
            start = lowered.find(needle.lower())
    return text


@transaction.atomic
def erase_person(email: str, by=None) -> dict:
    """Erase `email` everywhere (see the module's docstring); returns counts per kind of row.

    Safe to run again: a second run finds nothing and changes nothing but the suppression's
    existence (kept)."""
    address = normalise(email)
    if not address:
        raise ValueError("An email address is required.")
    counts = dict.fromkeys(
        [
            "reviews_deleted",
            "reviews_anonymised",
            "requests_deleted",
            "requests_blanked",
            "trigger_recipients_blanked",
            "emails_deleted",
            "asked_deleted",
            "placements_blanked",
            "reports_blanked",
            "webhooks_redacted",
        ],
        0,
    )
    per_agency: dict[int, dict] = {}
    recruiters: dict[int, set] = {}

    def bump(agency_id, key, n=1):
        per_agency.setdefault(agency_id, dict.fromkeys(counts, 0))[key] += n
        counts[key] += n

    # The person's requests first: a worker queueing one that fell due (outbox/due_requests.py)
    # skips it from now on, or, if it got there first, has committed its email before the
    # outbox rows below are deleted.
    list(ReviewRequest.objects.filter(email__iexact=address).select_for_update().values("pk"))
    reviews = list(_reviews(address).select_for_update())
    names = {r.reviewer_name.strip() for r in reviews if len(r.reviewer_name.strip()) >= 3}
    names |= {
        n.strip()
        for n in ReviewRequest.objects.filter(email__iexact=address).values_list("name", flat=True)
        if len(n.strip()) >= 3
    }
    kept_requests = set()
    for review in reviews:
        recruiters.setdefault(review.agency_id, set()).add(review.recruiter_id)
        AuditEntry.objects.filter(agency_id=review.agency_id, detail__review=review.pk).update(
            subject=f"{review.rating}★ {DisplayName.ANONYMOUS.label}"
        )
        if review.status == Review.Status.VERIFIED:
            review.reviewer_name = ""
            review.reviewer_email = ""
            review.display_name_choice = DisplayName.ANONYMOUS
            review.updated_at = timezone.now()
            review.save(
                update_fields=[
                    "reviewer_name",
                    "reviewer_email",
                    "display_name_choice",
                    "updated_at",
                ]
            )
            kept_requests.add(review.review_request_id)
            bump(review.agency_id, "reviews_anonymised")
        else:
            bump(review.agency_id, "reviews_deleted")
            review.delete()

    for rr in ReviewRequest.objects.filter(pk__in=kept_requests).select_for_update():
        rr.email, rr.name, rr.personal_message = "", "", ""
        rr.token = secrets.token_urlsafe(24)  # the old link stops working
        # save() would lower-case; update() keeps the blank email as it is.
        ReviewRequest.objects.filter(pk=rr.pk).update(
            email="", name="", personal_message="", token=rr.token
        )
        bump(rr.agency_id, "requests_blanked")

    # Outbox rows first: a request's rows would go with it, but notifications to the address
    # (a recruiter-link confirmation, a privacy link) hang off no request.
    for agency_id, n in _count_by_agency(OutboundEmail.objects.filter(to_email__iexact=address)):
        bump(agency_id, "emails_deleted", n)
    OutboundEmail.objects.filter(to_email__iexact=address).delete()
    doomed = ReviewRequest.objects.filter(email__iexact=address).exclude(pk__in=kept_requests)
    for agency_id, n in _count_by_agency(doomed):
        bump(agency_id, "requests_deleted", n)
    doomed.delete()

    recipients = TriggerRecipient.objects.filter(email__iexact=address)
    for agency_id, n in _count_by_agency(recipients, "trigger__agency_id"):
        bump(agency_id, "trigger_recipients_blanked", n)
    recipients.update(email="", name="")

    asked = AskedRecipient.objects.filter(
        Q(email__iexact=address) | Q(email__iexact=mailbox(address))
    )
    for agency_id, n in _count_by_agency(asked):
        bump(agency_id, "asked_deleted", n)
    asked.delete()

    for placement in Placement.objects.filter(
        Q(candidate_email__iexact=address) | Q(client_contact_email__iexact=address)
    ):
        fields = {}
        if placement.candidate_email.lower() == address:
            fields["candidate_email"] = ""
        if placement.client_contact_email.lower() == address:
            fields["client_contact_email"] = ""
        Placement.objects.filter(pk=placement.pk).update(**fields)
        bump(placement.agency_id, "placements_blanked")

    for report in ReviewReport.objects.filter(contact_email__iexact=address).select_related(
        "review"
    ):
        ReviewReport.objects.filter(pk=report.pk).update(contact_email="")
        bump(report.review.agency_id, "reports_blanked")

    needles = [address, *sorted(names, key=len, reverse=True)]
    for delivery in WebhookDelivery.objects.filter(body__icontains=address):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(body=_scrub(delivery.body, needles))
        bump(delivery.agency_id, "webhooks_redacted")

    AuditEntry.objects.filter(subject__icontains=address).update(subject=ERASED_SUBJECT)
    # Counters keyed on the address in clear (hash-keyed ones name nobody), and the development
    # outbox's copies of emails to it (DEBUG only).
    Counter.objects.filter(key__icontains=address).delete()
    DevelopmentMessage.objects.filter(recipients__icontains=address).delete()
    Suppression.add(address, Suppression.Reason.ERASED)

    agencies = {a.pk: a for a in Agency.objects.filter(pk__in=per_agency)}
    for agency_id, agency_counts in sorted(per_agency.items()):
        aggregates.refresh(agency_id, recruiters.get(agency_id, ()))
        agencies[agency_id].record(
            by if by is not None and by.agency_id == agency_id else None,
            ERASED_ACTION,
            ERASED_SUBJECT,
            **{k: v for k, v in agency_counts.items() if v},
        )
    log.info("privacy erasure done: %s", {k: v for k, v in counts.items() if v})
    return {**counts, "agencies": sorted(a.slug for a in agencies.values())}


def _count_by_agency(queryset, field: str = "agency_id"):
    rows = queryset.order_by().values(field).annotate(n=Count("pk"))
    return [(row[field], row["n"]) for row in rows if row[field] is not None]


def _own_side(placement, address: str) -> dict:
    as_candidate = placement.candidate_email.lower() == address
    return {
        "agency": _agency(placement.agency),
        "external_ref": placement.external_ref,
        "as": "candidate" if as_candidate else "client",
        "name": placement.candidate_name if as_candidate else placement.client_contact_name,
        "client_company": placement.client_company,
        "job_title": placement.job_title,
        "start_date": placement.start_date.isoformat() if placement.start_date else None,
    }
