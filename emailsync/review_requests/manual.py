"""Asking people for a review from the agency app: a manual request, and releasing a trigger
from quarantine.

Both follow Email Sync's rules exactly: the same exclusions and reason codes
(`emailsync.inbound.recipients.decide`), the same dedupe ledger (`AskedRecipient.claim_many`),
the same send time (`send_time_for`) and the same request row as `emailsync.inbound.recording`.
Every person typed in or released gets a `TriggerRecipient` row with its outcome, so the
fairness audit shows manual requests next to Email Sync's.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from emailsync.inbound import recipients as rules
from emailsync.inbound.facts import AgencyFacts
from emailsync.inbound.models import Trigger, TriggerRecipient

from .models import AskedRecipient, ReviewRequest, Source, Suppression, mailbox
from .scheduling import send_time_for

OUTCOME = TriggerRecipient.Outcome

# Email Sync's recipient cap tells a bulk email (a newsletter BCC'd to the inbound address) from a
# placement email. A manual request or an API call is not an email: each names exactly who to
# ask, so only its own limit applies (the form's, and the API schema's `recipients` maximum).
MANUAL_LIMIT = 100
API_LIMIT = 50
SOURCE_LIMITS = {Source.MANUAL: MANUAL_LIMIT, Source.API: API_LIMIT}

# A person named again in the same request (the same address, in any case): skipped, so that each
# person given gets an outcome, and the first entry's name and role are the ones kept.
DUPLICATE = "duplicate"
REASONS = {DUPLICATE: "The same address was given earlier in this request."}


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""
    role: str = ""


@dataclass(frozen=True)
class Outcome:
    email: str
    name: str
    invited: bool
    reason: str = ""
    request: ReviewRequest | None = None


def decisions_for(
    facts: AgencyFacts, people, sender: str, now, cap: int | None = None
) -> list[rules.Decision]:
    """Email Sync's recipient rules for `people`, with today's suppressions and recent asks.
    `cap` is the bulk-send cap: the agency's recipient cap unless the caller has its own."""
    candidates = [rules.Recipient(p.email, p.name) for p in people]
    emails = {c.email.strip().lower() for c in candidates}
    window = timedelta(days=facts.settings.dedupe_days)
    return rules.decide(
        candidates,
        sender=(sender or "").lower(),
        inbound_domain=django_settings.EMAILSYNC_INBOUND_DOMAIN.lower(),
        agency_domains=facts.domains,
        member_emails=facts.member_emails,
        suppressed=Suppression.suppressed(emails),
        recently_asked=AskedRecipient.recently_asked(facts.agency.pk, emails, now, window),
        cap=facts.settings.recipient_cap if cap is None else cap,
    )


def create_request(
    facts: AgencyFacts,
    *,
    email: str,
    name: str,
    role: str,
    recruiter_id,
    placement_ref: str,
    source: str,
    now,
    send_now: bool = False,
    personal_message: str = "",
    message_by: str = "",
) -> ReviewRequest:
    """The review request, as recording.write makes them (its email is queued when it falls
    due: outbox/due_requests.py)."""
    request = ReviewRequest.objects.create(
        **ReviewRequest.new_row(
            agency_id=facts.agency.pk,
            email=email,
            name=name,
            role=role,
            recruiter_id=recruiter_id,
            source=source,
            placement_ref=placement_ref,
            now=now,
            send_after=now if send_now else send_time_for(facts.settings, now),
            personal_message=personal_message,
            message_by=message_by,
        )
    )
    return request


def message_author(by, recruiter) -> str:
    """Who a personal message is signed with when it is not the recruiter's own: the name of
    the member who wrote it (empty for the recruiter themselves, and for the API, whose
    messages are the agency's system speaking for the recruiter)."""
    if by is None or (recruiter is not None and recruiter.user_id == by.pk):
        return ""
    return by.full_name or by.email


def claim(facts: AgencyFacts, decisions: list[rules.Decision], now) -> list[rules.Decision]:
    """Take the dedupe ledger for everyone to be invited; a lost race becomes recently_asked."""
    window = timedelta(days=facts.settings.dedupe_days)
    wanted = [(facts.agency.pk, d.email, window) for d in decisions if d.invite]
    won = AskedRecipient.claim_many(wanted, now) if wanted else set()
    return [
        d
        if not d.invite or (facts.agency.pk, d.email) in won
        else rules.Decision(d.email, d.name, False, rules.RECENTLY_ASKED)
        for d in decisions
    ]


def request_manually(
    agency,
    people: list[Person],
    *,
    by,
    recruiter=None,
    personal_message: str = "",
    placement_ref: str = "",
    send_now: bool = False,
    now=None,
    source: str = Source.MANUAL,
    sender: str | None = None,
    audit: dict | None = None,
) -> tuple[Trigger, list[Outcome]]:
    """Ask `people` for a review on behalf of `recruiter`, with Email Sync's rules.

    Recorded as a trigger (source `manual`, or `api` for the REST API, which passes `by=None`
    and the `sender` the rules treat as the one who sent) so the activity log and its export
    show who was asked and who was skipped, and why.
    """
    now = now or timezone.now()
    sender = (by.email if by is not None else "") if sender is None else sender
    facts = AgencyFacts.load(agency.pk)
    first, seen = [], set()
    for p in people:
        key = p.email.strip().lower()
        if key not in seen:
            seen.add(key)
            first.append(p)
    roles = {p.email.strip().lower(): p.role for p in first}
    with transaction.atomic():
        cap = SOURCE_LIMITS.get(source)  # None: an email trigger's source keeps the agency's cap
        decisions = claim(facts, decisions_for(facts, first, sender, now, cap), now)
        trigger = Trigger.objects.create(
            agency=agency,
            received_at=now,
            message_id_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            source=str(source),
            sender=sender,
            recruiter=recruiter,
            placement_ref=placement_ref,
            status=Trigger.Status.ACCEPTED
            if any(d.invite for d in decisions)
            else Trigger.Status.SKIPPED,
        )
        if trigger.status == Trigger.Status.SKIPPED:
            bulk = any(d.reason == rules.BULK_SEND for d in decisions)
            trigger.reason = "bulk_send" if bulk else "no_recipients"
            trigger.save(update_fields=["reason"])
        outcomes = []
        by_email = {d.email: d for d in decisions}
        for d in _in_given_order(people, by_email):
            if d.reason == DUPLICATE:
                TriggerRecipient.objects.create(
                    trigger=trigger,
                    email=d.email,
                    name=d.name[:120],
                    outcome=OUTCOME.SKIPPED,
                    reason=DUPLICATE,
                )
                outcomes.append(Outcome(d.email, d.name, False, DUPLICATE))
                continue
            request = None
            if d.invite:
                request = create_request(
                    facts,
                    email=d.email,
                    name=d.name,
                    role=roles.get(d.email, ""),
                    recruiter_id=recruiter.pk if recruiter else None,
                    placement_ref=placement_ref,
                    source=source,
                    now=now,
                    send_now=send_now,
                    personal_message=personal_message,
                    message_by=message_author(by, recruiter),
                )
            TriggerRecipient.objects.create(
                trigger=trigger,
                email=d.email,
                name=d.name[:120],
                role=roles.get(d.email, ""),
                outcome=OUTCOME.INVITED if d.invite else OUTCOME.SKIPPED,
                reason=d.reason,
                review_request=request,
            )
            outcomes.append(Outcome(d.email, d.name, d.invite, d.reason, request))
        agency.record(
            by,
            "reviews.manual_request" if source == Source.MANUAL else f"reviews.{source}_request",
            f"{sum(o.invited for o in outcomes)}/{len(outcomes)}",
            trigger=trigger.pk,
            recruiter=recruiter.display_name if recruiter else "",
            **(audit or {}),
        )
    return trigger, outcomes


def _in_given_order(people, by_email: dict) -> list[rules.Decision]:
    """Each person's decision in the order given. The rules decide once per mailbox (jo+cv@
    and jo@ are one person), so every other entry for that mailbox, the same address again or
    another form of it, gets a `duplicate` one: everyone given is accounted for."""
    chosen = {mailbox(email): decision for email, decision in by_email.items()}
    ordered, done = [], set()
    for p in people:
        email = p.email.strip().lower()
        key = mailbox(email)
        decision = chosen.get(key)
        if key in done or decision is None or decision.email != email:
            ordered.append(rules.Decision(email, p.name.strip(), False, DUPLICATE))
        else:
            done.add(key)
            ordered.append(decision)
    return ordered


def release(trigger: Trigger, by, now=None) -> list[Outcome]:
    """Release a quarantined trigger: its held recipients are asked now, by today's rules (an
    address suppressed or asked since the trigger arrived is skipped, with that reason)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Trigger.objects.select_for_update().get(pk=trigger.pk)
        if locked.status != Trigger.Status.QUARANTINED:
            raise ValueError("Only a quarantined trigger can be released.")
        facts = AgencyFacts.load(locked.agency_id)
        held = list(locked.recipients.filter(outcome=OUTCOME.HELD))
        people = [Person(r.email, r.name, r.role) for r in held]
        decisions = claim(facts, decisions_for(facts, people, locked.sender, now), now)
        by_email = {d.email: d for d in decisions}
        outcomes = []
        for row in held:
            d = by_email.get(row.email.strip().lower())
            request = None
            if d and d.invite:
                request = create_request(
                    facts,
                    email=d.email,
                    name=row.name,
                    role=row.role,
                    recruiter_id=locked.recruiter_id,
                    placement_ref=locked.placement_ref,
                    source=Source.EMAIL_SYNC,
                    now=now,
                )
                row.outcome, row.reason, row.review_request = OUTCOME.INVITED, "", request
            else:
                row.outcome = OUTCOME.SKIPPED
                row.reason = d.reason if d else rules.RECENTLY_ASKED
            row.save(update_fields=["outcome", "reason", "review_request"])
            outcomes.append(
                Outcome(row.email, row.name, row.outcome == OUTCOME.INVITED, row.reason, request)
            )
        locked.status = Trigger.Status.RELEASED
        locked.save(update_fields=["status"])
        locked.agency.record(
            by,
            "email_sync.trigger_released",
            locked.sender,
            trigger=locked.pk,
            invited=sum(o.invited for o in outcomes),
        )
    trigger.status = locked.status
    return outcomes


def block_sender(trigger: Trigger, by) -> int:
    """Block the trigger's sender: this and their other quarantined triggers never ask anyone."""
    from emailsync.inbound.models import BlockedSender

    with transaction.atomic():
        BlockedSender.objects.get_or_create(agency_id=trigger.agency_id, email=trigger.sender)
        triggers = Trigger.objects.filter(
            agency_id=trigger.agency_id,
            sender=trigger.sender,
            status=Trigger.Status.QUARANTINED,
        )
        ids = list(triggers.values_list("pk", flat=True))
        TriggerRecipient.objects.filter(trigger_id__in=ids, outcome=OUTCOME.HELD).update(
            outcome=OUTCOME.SKIPPED, reason="sender_blocked"
        )
        blocked = Trigger.objects.filter(pk__in=ids).update(
            status=Trigger.Status.BLOCKED, reason="sender_blocked"
        )
        trigger.agency.record(by, "email_sync.sender_blocked", trigger.sender, triggers=blocked)
    return blocked


def unblock_sender(blocked, by) -> None:
    """Let a blocked sender's new emails through again. What was blocked stays as it was:
    those emails were refused, and the activity log says so."""
    with transaction.atomic():
        blocked.delete()
        blocked.agency.record(by, "email_sync.sender_unblocked", blocked.email)
