"""The one place an inbound email becomes a trigger and review requests.

The SMTP listener and the ESP webhooks are thin adapters around `ingest`: they hand it the
envelope recipients, the header block, the body (in memory only, for structured data) and the
authentication evidence they gathered, and it decides everything else in one transaction.
Nothing here stores or logs the body, and the subject is kept only for a setup test.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from emailsync.agencies.models import Agency, SenderAddress, User
from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import (
    AskedRecipient,
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
)
from emailsync.review_requests.scheduling import PROMISE, send_time_for

from . import recipients as rules
from .addresses import agency_tokens
from .authenticity import normalise_domain
from .evidence import AuthEvidence, AuthVerdict, judge
from .headers import ParsedHeaders, header_hash, message_id_hash, parse_headers
from .models import (
    SETUP_SUBJECT_DAYS,
    BlockedSender,
    InboundAddress,
    Trigger,
    TriggerRecipient,
    UnmappedSender,
)
from .structured import StructuredData, extract

log = logging.getLogger("emailsync.inbound")

MAX_AGE = timedelta(days=7)
IGNORED_PRECEDENCE = {"bulk", "list", "junk"}

# Trigger-level reason codes (recipient-level ones live in recipients.py).
TRIGGER_REASONS = {
    "auto_submitted": "An automatic message (Auto-Submitted), such as an out-of-office reply.",
    "precedence_bulk": "Marked as bulk or list mail (Precedence).",
    "mailing_list": "Mailing-list traffic (List-Id).",
    "delivery_report": "A bounce or delivery report.",
    "too_old": "The email is dated more than seven days ago.",
    "header_defects": "The From, To or Cc header could not be read reliably.",
    "email_sync_off": "Email Sync is switched off for the agency.",
    "sender_blocked": "An admin blocked this sender.",
    "sender_not_agency": "The sender is not on the agency's domains or team.",
    "sender_unauthenticated": "The sender's domain did not authenticate the email (DKIM).",
    "bulk_send": "More recipients than the agency's cap.",
    "no_recipients": "Every recipient was excluded by the rules.",
}


@dataclass(frozen=True)
class IngestResult:
    agency_id: int
    trigger_id: int
    created: bool
    status: str
    reason: str = ""
    requests: int = 0


@dataclass
class AgencyFacts:
    """What the rules need to know about one agency, read once per trigger."""

    agency: Agency
    settings: EmailSyncSettings
    domains: set[str]
    member_emails: set[str]
    admin_emails: set[str]
    senders: dict[str, int] = field(default_factory=dict)  # address -> recruiter profile id

    @classmethod
    def load(cls, agency_id: int) -> "AgencyFacts":
        sync = (
            EmailSyncSettings.objects.select_related("agency").filter(agency_id=agency_id).first()
        )
        agency = sync.agency if sync else Agency.objects.get(pk=agency_id)
        sync = sync or EmailSyncSettings.for_agency(agency)
        # Stored as A-labels (xn--…); headers give U-labels: compare in the Unicode form.
        domains = {normalise_domain(d) for d in agency.domains.values_list("domain", flat=True)}
        senders = dict(
            SenderAddress.objects.filter(agency_id=agency_id).values_list("email", "profile_id")
        )
        members = list(
            User.objects.filter(agency_id=agency_id, is_active=True).values_list(
                "email", "role", "profile__id"
            )
        )
        member_emails = set(senders) | {email for email, _, _ in members}
        admin_profiles = {pid for _, role, pid in members if role == User.Role.ADMIN}
        admin_emails = {email for email, role, _ in members if role == User.Role.ADMIN}
        admin_emails |= {email for email, pid in senders.items() if pid in admin_profiles}
        return cls(agency, sync, domains, member_emails, admin_emails, senders)


def ignore_reason(headers: ParsedHeaders, now: datetime) -> str:
    """Messages that are not a person's email to a candidate or client."""
    if headers.defects:
        return "header_defects"
    auto = (headers.auto_submitted or "").strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if (headers.precedence or "").strip().lower() in IGNORED_PRECEDENCE:
        return "precedence_bulk"
    if headers.list_id:
        return "mailing_list"
    if headers.content_type in {"multipart/report", "message/delivery-status"}:
        return "delivery_report"
    if headers.from_addr and headers.from_addr.local in {"mailer-daemon", "postmaster"}:
        return "delivery_report"
    if headers.date and headers.date < now - MAX_AGE:
        return "too_old"
    return ""


def authentication(
    facts: AgencyFacts, sender: str, evidence: AuthEvidence
) -> tuple[AuthVerdict, str]:
    """Whether the message provably comes from the agency, and the reason code if not."""
    domain = sender.rpartition("@")[2]
    if domain not in facts.domains and rules.strip_plus_tag(sender) not in facts.member_emails:
        detail = f"{sender or 'The sender'} is not on the agency's domains or team."
        return AuthVerdict(False, "", detail), "sender_not_agency"
    verdict = judge(
        evidence, domain, facts.settings.signing_domains(), facts.settings.trust_from_domain
    )
    return verdict, "" if verdict.passed else "sender_unauthenticated"


def agencies_for(envelope_recipients) -> list[int]:
    """The agencies whose (still accepted) BCC addresses are among the envelope recipients."""
    tokens = agency_tokens(envelope_recipients)
    if not tokens:
        return []
    now = timezone.now()
    found = []
    for address in InboundAddress.objects.filter(token__in=tokens).select_related("agency"):
        if address.accepts_mail(now) and address.agency_id not in found:
            found.append(address.agency_id)
    return found


def ingest(
    envelope_recipients,
    header_bytes: bytes,
    body_bytes: bytes,
    evidence: AuthEvidence,
    source: str = "smtp",
    now: datetime | None = None,
) -> list[IngestResult]:
    """Record the message once per addressed agency and schedule its review requests.

    Runs in one transaction (a savepoint when the caller batches several messages in its own),
    so either the trigger and all its requests exist, or nothing does.
    """
    now = now or timezone.now()
    headers = parse_headers(header_bytes)
    key = message_id_hash(headers.message_id) if headers.message_id else header_hash(header_bytes)
    structured = extract(header_bytes, body_bytes, headers.x_emailsync)
    with transaction.atomic():
        return [
            record(agency_id, headers, key, structured, evidence, source, now)
            for agency_id in agencies_for(envelope_recipients)
        ]


def record(
    agency_id: int,
    headers: ParsedHeaders,
    key: str,
    structured: StructuredData,
    evidence: AuthEvidence,
    source: str,
    now: datetime,
) -> IngestResult:
    existing = (
        Trigger.objects.filter(agency_id=agency_id, message_id_hash=key)
        .values_list("pk", "status", "reason")
        .first()
    )
    if existing:  # a retried delivery of the same message: nothing new
        return IngestResult(agency_id, existing[0], False, existing[1], existing[2])
    facts = AgencyFacts.load(agency_id)
    sender = headers.from_addr.addr_spec if headers.from_addr else ""
    trigger = Trigger(
        agency_id=agency_id,
        received_at=now,
        message_id_hash=key,
        source=source,
        sender=sender[:320],
        placement_ref=structured.placement_ref or "",
        structured_problems=",".join(structured.problems)[:200],
    )
    candidates = [rules.Recipient(a.addr_spec, a.display_name) for a in (*headers.to, *headers.cc)]

    reason = ignore_reason(headers, now)
    if not reason and not facts.settings.enabled:
        reason = "email_sync_off"
    if not reason and BlockedSender.objects.filter(agency_id=agency_id, email=sender).exists():
        reason = "sender_blocked"
        trigger.status = Trigger.Status.BLOCKED
    quarantined = False
    if not reason:
        verdict, trigger.reason = authentication(facts, sender, evidence)
        trigger.auth_method, trigger.auth_detail = verdict.method, verdict.detail[:300]
        quarantined = not verdict.passed
    trigger.recruiter_id = recruiter_for(facts, sender, structured)
    setup_test = (
        not reason
        and facts.settings.in_setup_test(now)
        and rules.strip_plus_tag(sender) in facts.admin_emails
    )
    if setup_test:
        trigger.is_setup_test = True
        trigger.subject = (headers.subject or "")[:300]
        trigger.subject_expires_at = now + timedelta(days=SETUP_SUBJECT_DAYS)

    if reason:
        trigger.status = trigger.status or Trigger.Status.SKIPPED
        trigger.reason = reason
        trigger.save()
        TriggerRecipient.objects.bulk_create(
            [
                TriggerRecipient(
                    trigger=trigger,
                    email=r.email[:320],
                    name=r.name[:120],
                    outcome=TriggerRecipient.Outcome.SKIPPED,
                    reason=reason,
                )
                for r in rules.unique_recipients(candidates)
            ]
        )
        return IngestResult(agency_id, trigger.pk, True, trigger.status, reason)

    decisions = evaluate(facts, sender, candidates, now)
    trigger.status = Trigger.Status.QUARANTINED if quarantined else Trigger.Status.ACCEPTED
    trigger.save()
    if sender and sender.rpartition("@")[2] in facts.domains and trigger.recruiter_id is None:
        note_unmapped_sender(agency_id, rules.strip_plus_tag(sender), now)
    requests = write_outcomes(
        trigger,
        facts,
        decisions,
        structured,
        headers,
        now,
        quarantined=quarantined,
        setup_test=setup_test,
    )
    if not quarantined and not requests:
        trigger.status = Trigger.Status.SKIPPED
        trigger.reason = (
            "bulk_send" if any(d.reason == rules.BULK_SEND for d in decisions) else "no_recipients"
        )
        trigger.save(update_fields=["status", "reason"])
    log.info(
        "trigger %s agency=%s status=%s reason=%s requests=%s",
        trigger.pk,
        agency_id,
        trigger.status,
        trigger.reason or "-",
        requests,
    )
    return IngestResult(agency_id, trigger.pk, True, trigger.status, trigger.reason, requests)


def recruiter_for(facts: AgencyFacts, sender: str, structured: StructuredData) -> int | None:
    """Structured data may name the recruiter (an ATS sends as a shared address)."""
    for candidate in (structured.recruiter_email, sender):
        if candidate:
            profile = facts.senders.get(rules.strip_plus_tag(candidate.lower()))
            if profile:
                return profile
    return None


def evaluate(facts: AgencyFacts, sender: str, candidates, now) -> list[rules.Decision]:
    emails = [r.email for r in rules.unique_recipients(candidates)]
    window = timedelta(days=facts.settings.dedupe_days)
    return rules.decide(
        candidates,
        sender=sender,
        inbound_domain=settings.EMAILSYNC_INBOUND_DOMAIN.lower(),
        agency_domains=facts.domains,
        member_emails=facts.member_emails,
        suppressed=Suppression.suppressed(emails) if emails else set(),
        recently_asked=AskedRecipient.recently_asked(facts.agency.pk, emails, now, window),
        cap=facts.settings.recipient_cap,
    )


def write_outcomes(
    trigger: Trigger,
    facts: AgencyFacts,
    decisions,
    structured: StructuredData,
    headers: ParsedHeaders,
    now,
    *,
    quarantined: bool,
    setup_test: bool,
) -> int:
    """Create the review requests and the per-recipient record; returns how many were asked."""
    outcome = TriggerRecipient.Outcome
    window = timedelta(days=facts.settings.dedupe_days)
    sender = trigger.sender
    rows, requests = [], 0
    if setup_test:
        # The admin sees exactly what a candidate would, at once; nobody else is asked.
        name = headers.from_addr.display_name if headers.from_addr else ""
        request = new_request(
            trigger, facts, sender, name, structured, now, send_after=now, source=Source.SETUP_TEST
        )
        rows.append(
            TriggerRecipient(
                trigger=trigger,
                email=sender,
                name=name[:120],
                outcome=outcome.INVITED,
                reason="setup_test",
                review_request=request,
            )
        )
        requests = 1
    for d in decisions:
        if setup_test and d.reason == rules.SENDER:
            continue  # recorded above
        row = TriggerRecipient(
            trigger=trigger,
            email=d.email[:320],
            name=d.name[:120],
            role=structured.role_for(d.email) or "",
        )
        if not d.invite:
            row.outcome, row.reason = outcome.SKIPPED, d.reason
        elif quarantined:
            row.outcome, row.reason = outcome.HELD, rules.QUARANTINED
        elif setup_test:
            row.outcome, row.reason = outcome.SKIPPED, rules.SETUP_TEST_PREVIEW
        elif not AskedRecipient.claim(facts.agency.pk, d.email, now, window):
            row.outcome, row.reason = outcome.SKIPPED, rules.RECENTLY_ASKED  # lost a race
        else:
            row.outcome = outcome.INVITED
            row.review_request = new_request(trigger, facts, d.email, d.name, structured, now)
            requests += 1
        rows.append(row)
    TriggerRecipient.objects.bulk_create(rows)
    return requests


def new_request(
    trigger: Trigger,
    facts: AgencyFacts,
    email: str,
    name: str,
    structured: StructuredData,
    now,
    *,
    send_after=None,
    source=Source.EMAIL_SYNC,
) -> ReviewRequest:
    request = ReviewRequest(
        agency_id=trigger.agency_id,
        source=source,
        email=email,
        name=(structured.name_for(email) or name)[:120],
        role=structured.role_for(email) or "",
        recruiter_id=trigger.recruiter_id,
        placement_ref=structured.placement_ref or "",
        created_at=now,
        send_after=send_after or send_time_for(facts.settings, now),
        deadline=now + PROMISE,
    )
    request.save()
    OutboundEmail(
        kind=OutboundEmail.Kind.REVIEW_REQUEST,
        template="review_request",
        agency_id=request.agency_id,
        review_request=request,
        to_email=request.email,
        to_name=request.name,
        send_after=request.send_after,
    ).save()
    return request


def note_unmapped_sender(agency_id: int, email: str, now) -> None:
    updated = UnmappedSender.objects.filter(agency_id=agency_id, email=email).update(
        last_seen=now, trigger_count=F("trigger_count") + 1
    )
    if not updated:
        UnmappedSender.objects.create(
            agency_id=agency_id, email=email, first_seen=now, last_seen=now, trigger_count=1
        )
