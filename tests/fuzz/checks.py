"""What every fuzzed message must satisfy, checked the same way in `make test` and in the full run.

- every reply is a three-digit code with a reason; the message content gets one; never 451
  (that means ingest failed on input, and the sending MTA would retry forever);
- the listener stays up (the runner also sends a clean message after each family);
- a message whose address headers are broken on purpose, or whose trigger records header
  defects, asks nobody; every review request that does exist is to a sane address that was
  in the message's own To/Cc, on behalf of a sender on the agency's domain;
- no privacy marker (planted in subjects, bodies and headers we do not keep) appears in a full
  database dump or in anything the listener logged.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .client import Outcome, valid_reply
from .corpus import Case
from .messages import AGENCIES, MARKER_PREFIX, MARKER_RE

MARKER_LENGTH = len(MARKER_PREFIX) + 2 + 5 + 1 + 6
# A quoted local part may hold spaces and quotes; control characters never, nor an empty side.
_SANE_EMAIL = re.compile(r"^[^\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+$")
_BAD_NAME = re.compile(r"[\r\n\x00]")


def setup_agencies() -> dict[str, str]:
    """Acme (DKIM or trusted Authentication-Results required) and Beta (trusts its From
    domain), Email Sync on, no hourly cap in the way; returns agency key -> BCC address."""
    from emailsync.agencies.models import Agency, User
    from emailsync.inbound.models import InboundAddress
    from emailsync.review_requests.models import EmailSyncSettings

    bcc = {}
    for key, spec in AGENCIES.items():
        agency, _ = Agency.create_with_admin(
            name=f"{key.title()} Fuzz Recruitment",
            admin_email=f"admin@{spec.domain}",
            admin_name=f"{key.title()} Admin",
            password="correct horse battery",
            domains=(spec.domain,),
        )
        sync = EmailSyncSettings.for_agency(agency)
        sync.enabled = True
        sync.trust_from_domain = key == "beta"
        sync.rate_limit_per_hour = 10_000_000
        sync.save()
        for email in spec.senders[:1] + (("jo.smith@acme.test",) if key == "acme" else ()):
            User.objects.create_user(
                email=email,
                password="x" * 12,
                full_name=email.split("@")[0].title(),
                agency=agency,
                role=User.Role.RECRUITER,
            )
        bcc[key] = InboundAddress.current_for(agency).address
    return bcc


@dataclass
class Result:
    case: Case
    outcome: Outcome
    requests: int = 0
    violations: list[str] = field(default_factory=list)
    leaked: bool = False


def check_replies(result: Result) -> None:
    outcome = result.outcome
    if outcome.error:
        result.violations.append(f"connection: {outcome.error}")
    for code, text in outcome.replies:
        if not valid_reply(code, text):
            result.violations.append(f"invalid reply {code} {text!r}")
    # Only a refused MAIL/RCPT/DATA may leave the content unanswered.
    refused = any(c >= 400 for c, _ in outcome.replies[1:])
    if outcome.data_reply is None and not outcome.error and not refused:
        result.violations.append("no reply to the message content")
    if outcome.data_reply is not None and outcome.data_reply[0] in (421, 451):
        result.violations.append(f"transient failure on input: {outcome.data_reply}")


def check_database(results: list[Result]) -> None:
    """Triggers and review requests of every message, read straight from the database."""
    from emailsync.inbound.models import Trigger, TriggerRecipient

    by_trigger: dict[int, list[Result]] = defaultdict(list)
    for result in results:
        for trigger_id in result.outcome.trigger_ids:
            by_trigger[trigger_id].append(result)
    ids = list(by_trigger)
    triggers = {}
    asked = defaultdict(list)
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for row in Trigger.objects.filter(pk__in=part).values("pk", "sender", "reason", "status"):
            triggers[row["pk"]] = row
        for row in TriggerRecipient.objects.filter(
            trigger_id__in=part, review_request__isnull=False
        ).values("trigger_id", "review_request__email", "review_request__name", "name"):
            asked[row["trigger_id"]].append(row)
    # However the trigger was reached: header defects never come with a review request.
    defective = list(
        TriggerRecipient.objects.filter(
            trigger__reason="header_defects", review_request__isnull=False
        ).values_list("trigger_id", flat=True)
    )
    for trigger_id in defective:
        for result in by_trigger.get(trigger_id, []):
            result.violations.append("a trigger with header defects has review requests")
    if defective and not set(defective) & set(by_trigger):
        raise AssertionError(f"triggers with header defects have review requests: {defective}")
    for trigger_id, owners in by_trigger.items():
        trigger = triggers.get(trigger_id)
        for result in owners:
            if trigger is None:
                result.violations.append(f"250 for trigger {trigger_id}, which does not exist")
                continue
            requests = asked[trigger_id]
            result.requests += len(requests)
            if requests:
                check_requests(result, trigger, requests)


def check_requests(result: Result, trigger: dict, requests: list[dict]) -> None:
    from emailsync.inbound.headers import parse_headers, split_message

    case = result.case
    if case.address_defect:
        result.violations.append("broken address headers, yet review requests were created")
    defects = parse_headers(split_message(case.raw)[0]).defects
    if defects:
        result.violations.append(f"header defects {defects}, yet review requests were created")
    if trigger["reason"] == "header_defects":
        result.violations.append("header defects recorded, yet review requests were created")
    domain = AGENCIES[case.agency].domain
    sender = trigger["sender"] or ""
    if sender.rpartition("@")[2] != domain:
        result.violations.append(f"requests for a sender off the agency domain: {sender!r}")
    raw = case.raw.decode("utf-8", "replace").lower()
    for row in requests:
        email, name = row["review_request__email"], row["review_request__name"]
        if not _SANE_EMAIL.match(email) or len(email) > 320:
            result.violations.append(f"review request to an unusable address {email!r}")
        if _BAD_NAME.search(name or "") or _BAD_NAME.search(row["name"] or ""):
            result.violations.append(f"control characters in a stored name {name!r}")
        if case.allowed is not None:
            if email.lower() not in case.allowed:
                result.violations.append(f"asked {email!r}, who was not in the outer To/Cc")
        elif email.lower() not in raw and _idna(email) not in raw:
            result.violations.append(f"asked {email!r}, who is nowhere in the message")


def _idna(email: str) -> str:
    local, _, domain = email.lower().rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode()}"
    except UnicodeError:
        return email.lower()


def find_leaks(text: str, results_by_marker: dict[str, Result], where: str) -> list[str]:
    """Every marker-shaped string in `text`; each attributed to its case when possible."""
    found = []
    for token in set(MARKER_RE.findall(text)):
        result = results_by_marker.get(token[:MARKER_LENGTH].lower())
        if result is not None:
            result.leaked = True
            result.violations.append(f"privacy marker found in {where}")
        found.append(token[:60])
    return found


def markers_index(results: list[Result]) -> dict[str, Result]:
    return {m.lower(): r for r in results for m in r.case.markers}


def reply_class(outcome: Outcome) -> str:
    if outcome.data_reply is None:
        return "none"
    return f"{outcome.data_reply[0] // 100}xx"


FAMILY_COLUMNS = (
    "messages",
    "2xx",
    "4xx",
    "5xx",
    "none",
    "triggers",
    "duplicates",
    "requests",
    "crashes",
    "leaks",
    "violations",
)


def family_table(results: list[Result], crashes: Counter | None = None) -> dict[str, Counter]:
    table: dict[str, Counter] = {}
    for result in results:
        row = table.setdefault(result.case.family, Counter())
        row["messages"] += 1
        row[reply_class(result.outcome)] += 1
        row["triggers"] += len(set(result.outcome.trigger_ids))
        row["duplicates"] += result.outcome.duplicate
        row["requests"] += result.requests
        row["crashes"] += bool(result.outcome.error)
        row["leaks"] += result.leaked
        row["violations"] += bool(result.violations)
    for family, count in (crashes or {}).items():
        table.setdefault(family, Counter())["crashes"] += count
    return table


def format_table(table: dict[str, Counter]) -> str:
    header = "| family | " + " | ".join(FAMILY_COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(FAMILY_COLUMNS) + 1)]
    total = Counter()
    for family, row in table.items():
        total.update(row)
        lines.append(f"| {family} | " + " | ".join(f"{row[c]:,}" for c in FAMILY_COLUMNS) + " |")
    lines.append("| **total** | " + " | ".join(f"{total[c]:,}" for c in FAMILY_COLUMNS) + " |")
    return "\n".join(lines)
