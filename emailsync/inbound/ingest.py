"""The one place an inbound email becomes a trigger and review requests.

The SMTP listener and the ESP webhooks are thin adapters around `ingest`: they hand it the
envelope recipients, the header block, the body (in memory only, for structured data) and the
authentication evidence they gathered, and it decides everything else, writing it all or
nothing (on PostgreSQL one statement, on SQLite one transaction).
Nothing here stores or logs the body, and the subject is kept only for a setup test.

Work is done per batch: the listener groups every message that finished DATA while the previous
batch was being committed, and this module reads what the rules need for the whole batch in a few
queries and writes all of its rows in a few statements. A single message is a batch of one.
"""

import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from emailsync.agencies.models import Agency
from emailsync.review_requests.models import AskedRecipient, mailbox

from . import batch_statement, recording
from . import recipients as rules
from .addresses import agency_tokens
from .evidence import AuthEvidence, AuthVerdict, judge
from .facts import FACTS, AgencyFacts
from .headers import ParsedHeaders, header_hash, message_id_hash, parse_headers
from .known import Wanted
from .known import read as read_known
from .models import SETUP_SUBJECT_DAYS, Trigger
from .structured import StructuredData, extract, stored_problems

log = logging.getLogger("emailsync.inbound")

MAX_AGE = timedelta(days=7)
# A signature whose key DNS did not return (timeout, SERVFAIL) is asked again: the sending
# server is told to retry (451 4.4.3) while the email is younger than this. An outage that
# lasts longer ends in quarantine, where the admin sees it and can release the email.
DNS_RETRY_WINDOW = timedelta(hours=12)
CLOCK_SKEW = timedelta(minutes=15)  # how far ahead a sending server's clock may be
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
class Inbound:
    """One received message as an adapter hands it over. The body lives in memory only."""

    envelope_recipients: tuple[str, ...]
    header: bytes
    body: bytes
    evidence: AuthEvidence
    source: str = "smtp"
    headers: ParsedHeaders | None = None  # when the adapter has parsed them already
    # MAIL FROM:<>, the null reverse-path (RFC 5321 4.5.5) that marks bounces and automatic
    # replies (RFC 3834 3.3); False where the adapter does not know the envelope's sender.
    null_sender: bool = False


@dataclass(frozen=True)
class IngestResult:
    agency_id: int
    trigger_id: int | None  # None when nothing was recorded (retry_later)
    created: bool
    status: str
    reason: str = ""
    requests: int = 0
    # Nothing was recorded for this agency: DNS did not answer for the signature that would
    # have decided it, so the sender should try again later (see DNS_RETRY_WINDOW).
    retry_later: bool = False


@dataclass
class Plan:
    """What one message means for one agency, decided before anything is written."""

    message: int  # index in the batch
    facts: AgencyFacts
    headers: ParsedHeaders
    structured: StructuredData
    trigger: Trigger
    candidates: list[rules.Recipient]
    quarantined: bool = False
    setup_test: bool = False
    decisions: list[rules.Decision] = field(default_factory=list)
    duplicate_of: "Plan | None" = None
    existing: tuple | None = None  # (pk, status, reason) of an earlier delivery
    requests: int = 0
    retry_later: bool = False  # decided on nothing: DNS failed for the deciding signature
    credited_by_sender: bool = False  # the recruiter came from the Sender header


def ingest(
    envelope_recipients,
    header_bytes: bytes,
    body_bytes: bytes,
    evidence: AuthEvidence,
    source: str = "smtp",
    now: datetime | None = None,
    headers: ParsedHeaders | None = None,
    null_sender: bool = False,
) -> list[IngestResult]:
    """Record the message once per addressed agency and schedule its review requests."""
    message = Inbound(
        tuple(envelope_recipients), header_bytes, body_bytes, evidence, source, headers, null_sender
    )
    return ingest_batch([message], now)[0]


def ingest_batch(messages: list[Inbound], now: datetime | None = None) -> list[list[IngestResult]]:
    """Ingest several messages at once: either all their rows exist, or none do."""
    now = now or timezone.now()
    if recording.writes_in_one_statement():
        # PostgreSQL writes the batch in one statement, which in autocommit is the batch's
        # whole transaction: a BEGIN and a COMMIT are two round trips of the four a batch
        # would otherwise make (docs/PERFORMANCE.md, stop 24). Inside a caller's transaction
        # a savepoint stands in for it.
        try:
            with nullcontext() if connection.get_autocommit() else transaction.atomic():
                return Batch(messages, now).run()
        except (batch_statement.LostClaim, batch_statement.AgenciesGone):
            pass  # someone asked one of these people, or an agency was deleted, meanwhile
    # In a transaction (SQLite always; PostgreSQL after a lost bet or a deleted agency): the
    # ledger is taken before writing, and the lookup's lock on the agencies (PostgreSQL)
    # holds until the commit, so it is decided again on what is there now.
    with transaction.atomic():
        return Batch(messages, now, claim_while_writing=False).run()


def ignore_reason(
    headers: ParsedHeaders,
    now: datetime,
    structured: StructuredData | None = None,
    null_sender: bool = False,
) -> str:
    """Messages that are not a person's email to a candidate or client."""
    if headers.defects:
        return "header_defects"
    auto = auto_submitted_keyword(headers.auto_submitted or "")
    # An ATS's placement email is generated, and may say so (Auto-Submitted: auto-generated,
    # or Precedence: bulk, which ATS mailers add to one-to-one mail too), but valid Email Sync
    # data in it says it was meant as a trigger; an out-of-office reply or a vacation notice
    # never carries any. A List-Id still means a mailing list.
    meant_as_trigger = bool(structured and structured.sources)
    if ((auto and auto != "no") or null_sender) and not meant_as_trigger:
        return "auto_submitted"
    precedence = (headers.precedence or "").strip().lower()
    if precedence in IGNORED_PRECEDENCE and not meant_as_trigger:
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


def auto_submitted_keyword(value: str) -> str:
    """The keyword of an Auto-Submitted value, without the comments and `; parameters` RFC 3834
    (section 5) allows around it: `no (sent by a person)` means no."""
    return _COMMENTS.sub(" ", value).partition(";")[0].strip().lower()


_COMMENTS = re.compile(r"\((?:[^()\\]|\\.)*\)")


def authentication(
    facts: AgencyFacts, sender: str, evidence: AuthEvidence
) -> tuple[AuthVerdict, str]:
    """Whether the message provably comes from the agency, and the reason code if not."""
    domain = sender.rpartition("@")[2]
    if domain not in facts.domains and rules.strip_plus_tag(sender) not in facts.member_emails:
        detail = f"{sender or 'The sender'} is not on the agency's domains or team."
        return AuthVerdict(False, "", detail), "sender_not_agency"
    verdict = judge(evidence, domain, facts.signing_domains, facts.settings.trust_from_domain)
    return verdict, "" if verdict.passed else "sender_unauthenticated"


def sender_of(headers: ParsedHeaders) -> str:
    return headers.from_addr.addr_spec if headers.from_addr else ""


def recruiter_for(facts: AgencyFacts, *addresses: str) -> int | None:
    """The recruiter of the first address that is one of the agency's recruiters'."""
    for candidate in addresses:
        if candidate:
            profile = facts.senders.get(rules.strip_plus_tag(candidate.lower()))
            if profile:
                return profile
    return None


def ledger_entries(claims) -> list[tuple[int, str, timedelta]]:
    """(agency id, mailbox, window) for each of `Batch.claims`: what the ledger is given."""
    return [(p.trigger.agency_id, mailbox(p.decisions[i].email), window) for p, i, window in claims]


class Batch:
    def __init__(self, messages: list[Inbound], now: datetime, claim_while_writing=True):
        self.messages, self.now = messages, now
        self.claim_while_writing = claim_while_writing

    def run(self) -> list[list[IngestResult]]:
        plans = self.plan()
        self.evaluate_recipients(plans)
        claims = self.claims(plans)
        entries = ledger_entries(claims)
        if not self.claim_while_writing:
            self.claim(claims, entries)
            entries = []
        # else betting that no one takes these ledger entries before the write, which takes
        # them itself: a lost bet raises LostClaim, having written nothing.
        new = [p for p in plans if self.is_new(p) and not p.retry_later]
        ended = self.setup_tests_ended(new)
        recording.write(new, self.now, entries, ended)
        if ended:  # other listener processes notice within EMAILSYNC_LISTENER_CACHE_SECONDS
            transaction.on_commit(lambda: FACTS.forget(ended))
        results: list[list[IngestResult]] = [[] for _ in self.messages]
        for plan in plans:
            results[plan.message].append(self.result(plan))
        return results

    # --- reading ------------------------------------------------------------------------

    def plan(self) -> list[Plan]:
        parsed, wanted = [], Wanted()
        for message in self.messages:
            headers = message.headers or parse_headers(message.header)
            key = (
                message_id_hash(headers.message_id)
                if headers.message_id
                else header_hash(message.header)
            )
            tokens = agency_tokens(message.envelope_recipients)
            parsed.append((headers, key, tokens))
            sender = sender_of(headers)
            emails = {a.addr_spec.strip().lower() for a in (*headers.to, *headers.cc)}
            # The ledger goes by mailbox, and an unsubscribe may name either form.
            emails.update([mailbox(e) for e in emails])
            for token in tokens:
                wanted.tokens.add(token)
                wanted.messages.add((token, key))
                if sender:  # as the trigger keeps it, which is what a block names
                    wanted.senders.add((token, sender[:320]))
                wanted.recipients.update((token, email) for email in emails)
        self.known = known = read_known(wanted)
        by_token = known.agency_by_token(self.now)
        try:
            facts = FACTS.get_many({by_token[t] for t in wanted.tokens if t in by_token})
        except Agency.DoesNotExist as gone:  # deleted since the lookup, which held no lock
            raise batch_statement.AgenciesGone from gone
        plans, first = [], {}
        for index, (message, (headers, key, tokens)) in enumerate(
            zip(self.messages, parsed, strict=True)
        ):
            agency_ids = list(dict.fromkeys(by_token[t] for t in tokens if t in by_token))
            if not agency_ids:
                continue
            structured = extract(message.header, message.body, headers.x_emailsync)
            for agency_id in agency_ids:
                plan = self.plan_one(index, message, headers, key, structured, facts[agency_id])
                plan.existing = known.delivered.get((agency_id, key))
                plan.duplicate_of = first.get((agency_id, key))
                first.setdefault((agency_id, key), plan)
                plans.append(plan)
        self.block(plans)
        return plans

    def plan_one(
        self,
        index,
        message: Inbound,
        headers: ParsedHeaders,
        key: str,
        structured: StructuredData,
        facts: AgencyFacts,
    ) -> Plan:
        agency_id = facts.agency.pk
        sender = sender_of(headers)
        trigger = Trigger(
            agency_id=agency_id,
            received_at=self.now,
            message_id_hash=key,
            source=message.source,
            sender=sender[:320],
            placement_ref=structured.placement_ref or "",
            structured_problems=stored_problems(structured.problems),
            # Structured data may name the recruiter (an ATS sends as a shared address).
            recruiter_id=recruiter_for(facts, structured.recruiter_email, sender),
        )
        candidates = [
            rules.Recipient(a.addr_spec, a.display_name) for a in (*headers.to, *headers.cc)
        ]
        plan = Plan(index, facts, headers, structured, trigger, candidates)
        trigger.reason = ignore_reason(headers, self.now, structured, message.null_sender)
        if trigger.reason == "header_defects":
            trigger.header_defects = stored_problems(dict.fromkeys(headers.defects))
        if not trigger.reason and not facts.settings.enabled:
            trigger.reason = "email_sync_off"
        if trigger.reason:
            return plan
        verdict, failure = authentication(facts, sender, message.evidence)
        trigger.auth_method, trigger.auth_detail = verdict.method, verdict.detail[:300]
        plan.quarantined, trigger.reason = bool(failure), failure
        if not failure and trigger.recruiter_id is None and headers.sender_addr:
            # From is the agency's but no one's (a shared mailbox): the Sender header names
            # the person who sent "on behalf of" it (Outlook, Gmail delegation). Only for mail
            # that is provably the agency's; From stays an unknown sender an admin can map.
            trigger.recruiter_id = recruiter_for(facts, headers.sender_addr.addr_spec)
            plan.credited_by_sender = trigger.recruiter_id is not None
        if (
            facts.settings.in_setup_test(self.now)
            and rules.strip_plus_tag(sender) in facts.setup_testers
        ):
            plan.setup_test = trigger.is_setup_test = True
            trigger.subject = (headers.subject or "")[:300]
            trigger.subject_expires_at = self.now + timedelta(days=SETUP_SUBJECT_DAYS)
        plan.retry_later = verdict.temporary and self.may_retry(message, headers, plan)
        return plan

    def may_retry(self, message: Inbound, headers: ParsedHeaders, plan: Plan) -> bool:
        """Whether a trigger that failed only because DNS did not answer may be asked again
        rather than quarantined: over SMTP (a sending server retries for days; an ESP gives up
        within minutes or hours, so its posts are quarantined as before), not a setup test (its
        window would have closed by the retry, turning the admin's test into a real email),
        and while the email is young by its Date, which must not lie in the future (a sender
        could otherwise keep it unanswered for ever)."""
        date = headers.date
        return (
            message.source == "smtp"
            and not plan.setup_test
            and date is not None
            and self.now - DNS_RETRY_WINDOW < date <= self.now + CLOCK_SKEW
        )

    def block(self, plans: list[Plan]) -> None:
        """Senders an admin blocked: recorded, never acted on."""
        for plan in plans:
            if (plan.trigger.agency_id, plan.trigger.sender) in self.known.blocked:
                plan.trigger.status, plan.trigger.reason = Trigger.Status.BLOCKED, "sender_blocked"
                plan.trigger.header_defects = ""  # they were the reason no longer given
                plan.quarantined = plan.setup_test = plan.retry_later = False

    def evaluate_recipients(self, plans: list[Plan]) -> None:
        live = [p for p in plans if self.is_new(p) and (not p.trigger.reason or p.quarantined)]
        inbound_domain = settings.EMAILSYNC_INBOUND_DOMAIN.lower()
        for plan in live:
            cutoff = self.now - timedelta(days=plan.facts.settings.dedupe_days)
            asked = self.known.asked.get(plan.trigger.agency_id, ())
            plan.decisions = rules.decide(
                plan.candidates,
                sender=plan.trigger.sender,
                inbound_domain=inbound_domain,
                agency_domains=plan.facts.domains,
                member_emails=plan.facts.member_emails,
                suppressed=self.known.suppressed,
                recently_asked={e for e, when in asked if when >= cutoff},
                cap=plan.facts.settings.recipient_cap,
            )

    def claims(self, plans: list[Plan]) -> list[tuple[Plan, int, timedelta]]:
        """The dedupe-ledger entries to take: (plan, decision index, window) for everyone to
        be asked, each person once per agency (a later message of the batch skips them)."""
        wanted, seen = [], set()
        for plan in plans:
            if not self.is_new(plan) or plan.quarantined or plan.setup_test or plan.trigger.reason:
                continue
            window = timedelta(days=plan.facts.settings.dedupe_days)  # the agency's, for all
            for i, d in enumerate(plan.decisions):
                if not d.invite:
                    continue
                pair = (plan.trigger.agency_id, mailbox(d.email))
                if pair in seen:  # asked by an earlier message of this same batch
                    plan.decisions[i] = rules.Decision(d.email, d.name, False, rules.RECENTLY_ASKED)
                    continue
                seen.add(pair)
                wanted.append((plan, i, window))
        return wanted

    def claim(self, wanted: list[tuple[Plan, int, timedelta]], entries) -> None:
        """Take the dedupe ledger for everyone to be asked; a lost race skips that person."""
        won = AskedRecipient.claim_many(entries, self.now)
        for plan, i, _ in wanted:
            d = plan.decisions[i]
            if (plan.trigger.agency_id, mailbox(d.email)) not in won:
                plan.decisions[i] = rules.Decision(d.email, d.name, False, rules.RECENTLY_ASKED)

    # --- writing ------------------------------------------------------------------------

    @staticmethod
    def setup_tests_ended(new: list[Plan]) -> set[int]:
        """A setup test is one email: once it has arrived, the admin's next emails are real
        ones again, asking real candidates (the page offers to run another test). The
        agencies whose test this batch ends."""
        return {p.trigger.agency_id for p in new if p.setup_test}

    @staticmethod
    def is_new(plan: Plan) -> bool:
        return plan.existing is None and plan.duplicate_of is None

    @staticmethod
    def result(plan: Plan) -> IngestResult:
        agency_id = plan.trigger.agency_id
        if plan.existing is None and (plan.duplicate_of or plan).retry_later:
            return IngestResult(
                agency_id, None, False, "deferred", "dns_temporary", retry_later=True
            )
        if plan.existing is not None:
            return IngestResult(agency_id, plan.existing[0], False, *plan.existing[1:])
        if plan.duplicate_of is not None:
            original = plan.duplicate_of.trigger
            return IngestResult(agency_id, original.pk, False, original.status, original.reason)
        trigger = plan.trigger
        return IngestResult(
            agency_id, trigger.pk, True, trigger.status, trigger.reason, plan.requests
        )
