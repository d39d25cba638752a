"""A scheduled review request until it is sent: edit it, cancel it, or send it now.

The worker renders a request when it sends it, so an edit to the request row is what goes out;
its queued email row carries the address, so that is updated too. Every change runs under the
request's row lock (with its email rows) and only while the request is still scheduled and its
email not claimed by the worker, so an edit can never race the worker into sending something
half-changed or cancelled; each is audited.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from emailsync.agencies.models import RecruiterProfile
from emailsync.inbound import recipients as rules
from emailsync.inbound.facts import AgencyFacts
from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.manual import Person, decisions_for, message_author
from emailsync.review_requests.models import (
    AskedRecipient,
    EmailSyncSettings,
    ReviewRequest,
    Source,
    mailbox,
)

from .labels import recipient_reason

SCHEDULED = ReviewRequest.Status.SCHEDULED
QUEUED = OutboundEmail.Status.QUEUED


SENDING = OutboundEmail.Status.SENDING
BEING_SENT = _lazy(
    "This invite is being sent right now, so it can no longer be changed or cancelled."
)


def _locked(request: ReviewRequest) -> ReviewRequest:
    """The request and its email rows, locked together; refused unless still scheduled and not
    in the worker's hands (a row it has claimed goes out as it was when claimed)."""
    locked = ReviewRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != SCHEDULED:
        raise ValidationError(_("This invite has already been sent or cancelled."))
    statuses = list(
        OutboundEmail.objects.select_for_update()
        .filter(review_request=locked, kind=OutboundEmail.Kind.REVIEW_REQUEST)
        .values_list("status", flat=True)
    )
    if SENDING in statuses:
        raise ValidationError(BEING_SENT, code="being_sent")
    return locked


def edit(request: ReviewRequest, data: dict, by) -> ReviewRequest:
    """Change name, email, recruiter, role or personal message. A new email address passes the
    same rules as Email Sync (and takes the dedupe ledger; the old address is released)."""
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(request)
        new_email = data["email"].strip().lower()
        changed = [k for k in ("name", "role", "personal_message") if getattr(locked, k) != data[k]]
        if locked.recruiter_id != (data["recruiter"].pk if data["recruiter"] else None):
            changed.append("recruiter")
        if new_email != locked.email:
            facts = AgencyFacts.load(locked.agency_id)
            decision = decisions_for(facts, [Person(new_email, data["name"])], by.email, now)[0]
            # Another form of the same mailbox (a tag fixed or dropped) is the same person:
            # the ledger's entry for them is this request's own ask, kept as it is.
            same_person = mailbox(new_email) == mailbox(locked.email)
            if same_person and decision.reason == rules.RECENTLY_ASKED:
                decision = rules.Decision(new_email, data["name"], True)
            window = timedelta(days=facts.settings.dedupe_days)
            if (
                decision.invite
                and not same_person
                and not AskedRecipient.claim(locked.agency_id, new_email, now, window)
            ):
                decision = rules.Decision(new_email, data["name"], False, rules.RECENTLY_ASKED)
            if not decision.invite:
                raise ValidationError({"email": recipient_reason(decision.reason)})
            if not same_person:
                AskedRecipient.release(locked.agency_id, locked.email)
            changed.append("email")
            locked.email = new_email
        locked.name = data["name"][:120]
        locked.role = data["role"]
        locked.recruiter = data["recruiter"]
        if "personal_message" in changed:  # whoever wrote the new words signs them
            author = message_author(by, data["recruiter"])
            locked.message_by = author[:120] if data["personal_message"] else ""
        elif "recruiter" in changed and locked.personal_message and not locked.message_by:
            # The words stay those of the recruiter who wrote them, not the new one's.
            # Words sent for no recruiter (an API request without one) were the agency's own.
            previous = RecruiterProfile.objects.filter(pk=request.recruiter_id).first()
            author = previous.display_name if previous else locked.agency.name
            locked.message_by = author[:120]
        locked.personal_message = data["personal_message"]
        locked.save(
            update_fields=["email", "name", "role", "recruiter", "personal_message", "message_by"]
        )
        OutboundEmail.objects.filter(review_request=locked, status=QUEUED).update(
            to_email=locked.email, to_name=locked.name
        )
        if changed:
            locked.agency.record(
                by, "invite.edited", locked.email, request=locked.pk, fields=sorted(changed)
            )
    return locked


def cancel(requests, by, refused: list | None = None) -> int:
    """Cancel scheduled requests; their addresses may be asked again later. Each request that
    cannot be cancelled any more is skipped, and why is appended to `refused` if given."""
    done = 0
    with transaction.atomic():
        for request in requests:
            try:
                locked = _locked(request)
            except ValidationError as exc:
                if refused is not None:
                    refused.extend(exc.messages)
                continue
            locked.status, locked.status_reason = ReviewRequest.Status.CANCELLED, "cancelled"
            locked.save(update_fields=["status", "status_reason"])
            OutboundEmail.objects.filter(review_request=locked, status=QUEUED).update(
                status=OutboundEmail.Status.CANCELLED, status_reason="cancelled"
            )
            AskedRecipient.release(locked.agency_id, locked.email)
            locked.agency.record(by, "invite.cancelled", locked.email, request=locked.pk)
            done += 1
    return done


# Requests Email Sync made are held while it is off; manual and API requests are not.
SWITCHED_SOURCES = (Source.EMAIL_SYNC, Source.SETUP_TEST)
EMAIL_SYNC_OFF = _lazy(
    "Email Sync is off, so this invite would not be sent. Switch Email Sync on to send it."
)


def send_now(requests, by, refused: list | None = None) -> int:
    """Send scheduled requests at the worker's next pass instead of at their scheduled time."""
    done, now = 0, timezone.now()
    with transaction.atomic():
        for request in requests:
            try:
                locked = _locked(request)
            except ValidationError as exc:
                if refused is not None:
                    refused.extend(exc.messages)
                continue
            if (
                locked.source in SWITCHED_SOURCES
                and not EmailSyncSettings.for_agency(locked.agency).enabled
            ):
                # The worker would skip it (email_sync_off): say so now, not "on its way".
                if refused is not None:
                    refused.append(str(EMAIL_SYNC_OFF))
                continue
            locked.send_after = now
            locked.save(update_fields=["send_after"])
            OutboundEmail.objects.filter(review_request=locked, status=QUEUED).update(
                send_after=now
            )
            locked.agency.record(by, "invite.sent_now", locked.email, request=locked.pk)
            done += 1
    return done
