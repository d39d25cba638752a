"""Writing what a batch of trigger emails decided: the triggers, each recipient's outcome and
the review requests — one INSERT per table per batch. (A request's email joins the outbox when
it falls due: outbox/due_requests.py.)

`ingest` decides; this module only writes. Rows are plain dicts (see rows.py for why).

Why the hot rows carry no foreign keys. A trigger email writes seven rows, and
PostgreSQL checks a foreign-key constraint with a locking query per row: on a busy listener
those checks cost more of the machine than anything else the database did for a batch
(docs/PERFORMANCE.md, stop 16). So the constraints are kept where rows come from many places
(the outbox, recruiters), and dropped where every row is written here, in one statement, with
parents that statement just created or the batch just looked up: a recipient's outcome to
its trigger and request, and the trigger, request and dedupe ledger to their agency. Django
still knows each relation, so every delete cascades as before; the agency itself is locked
for the batch instead of once per row (by the write statement on PostgreSQL, by the lookup in
known.py when the batch runs in a transaction), and `delete_agency` takes that lock first.
"""

import logging

from django.db import connection

from emailsync.review_requests.models import (
    EmailSyncSettings,
    ReviewRequest,
    Source,
)
from emailsync.review_requests.scheduling import send_time_for

from . import recipients as rules
from .batch_statement import (
    RECIPIENTS,
    REQUESTS,
    TRIGGERS,
    write_in_one_statement,
)
from .models import Trigger, TriggerRecipient, UnmappedSender
from .rows import hot_cursor

log = logging.getLogger("emailsync.inbound")

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


def write(plans, now, claims=(), setup_tests_ended=()) -> None:
    """Write the batch: its triggers, outcomes and requests, its unknown senders, and the end
    of the setup tests in it (`setup_tests_ended`, agency ids).

    On PostgreSQL all of it is one statement (`write_in_one_statement`), which also takes the
    dedupe ledger's `claims`, (agency id, email, window) entries, on the bet that no one else
    takes them meanwhile: if anyone did, the statement fails, writing nothing, and LostClaim is
    raised. On SQLite `claims` must be empty (the caller takes the ledger first)."""
    if not plans:  # every message in the batch was a redelivery
        return
    requests, recipients = [], []
    for index, plan in enumerate(plans):
        start = len(recipients)
        plan_requests = outcomes(plan, now, recipients)
        plan.requests = len(plan_requests)
        requests.extend(plan_requests)
        for row in recipients[start:]:
            row["trigger"] = index
        # Only after each recipient's outcome is recorded: a reason the trigger takes from its
        # recipients (no one left, a bulk send) must not stand in for each one's own reason.
        settle_status(plan)
    # Links between the rows by position, until the database gives them ids.
    position = {id(request): i for i, request in enumerate(requests)}
    for row in recipients:
        request = row["request"]
        row["request"] = None if request is None else position[id(request)]
    unmapped = unmapped_senders(plans)
    if writes_in_one_statement():
        ids = write_in_one_statement(
            plans, requests, recipients, list(claims), now, unmapped, sorted(setup_tests_ended)
        )
    else:
        if claims:
            raise ValueError("only PostgreSQL takes the dedupe ledger in the write")
        ids = write_table_by_table(plans, requests, recipients)
        note_unmapped_senders(unmapped, now)
        end_setup_tests(setup_tests_ended, now)
    for plan, pk in zip(plans, ids, strict=True):
        plan.trigger.pk = pk
    if log.isEnabledFor(logging.INFO):
        # One record per batch naming each trigger in it: a record per trigger (formatted,
        # written and flushed) cost a busy listener 0.02-0.04 ms of CPU per email. Named up to
        # a syslog line's worth; `emailsync triggers` has them all.
        named = [
            f"{p.trigger.pk} agency={p.trigger.agency_id} {p.trigger.status}"
            + (f" ({p.trigger.reason})" if p.trigger.reason else "")
            for p in plans[:LOGGED_PER_BATCH]
        ]
        if len(plans) > LOGGED_PER_BATCH:
            named.append(f"and {len(plans) - LOGGED_PER_BATCH} more")
        log.info("wrote %d trigger(s): %s", len(plans), ", ".join(named))


LOGGED_PER_BATCH = 50


def write_table_by_table(plans, requests, recipients) -> list[int]:
    """One multi-row INSERT per table, parents first, each child given its parents' new ids.
    Returns the triggers' ids in the order of `plans`."""
    trigger_ids = TRIGGERS.insert([TRIGGERS.as_row(p.trigger) for p in plans], returning=True)
    request_ids = REQUESTS.insert(requests, returning=True)
    for row in recipients:
        row["trigger_id"] = trigger_ids[row["trigger"]]
        row["review_request_id"] = None if row["request"] is None else request_ids[row["request"]]
    RECIPIENTS.insert(recipients)
    return trigger_ids


def writes_in_one_statement() -> bool:
    """Whether `write` is one statement, its own transaction when run in autocommit, that
    takes the dedupe ledger itself: PostgreSQL."""
    return connection.vendor == "postgresql"


def outcomes(plan, now, recipients: list[dict]) -> list[dict]:
    """Append each recipient's outcome to `recipients`; return the review requests to create."""
    trigger = plan.trigger

    def recipient(email, name, outcome, reason="", role="", request=None):
        recipients.append(
            {
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
        # The admin sees exactly what a candidate would, at once; nobody else is asked. A test
        # that failed the sender check sends nothing, as any quarantined email: the admin's
        # own request is held with the rest, and the page says what to fix.
        name = plan.headers.from_addr.display_name if plan.headers.from_addr else ""
        if plan.quarantined:
            recipient(trigger.sender, name, OUTCOME.HELD, rules.QUARANTINED)
        else:
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
            continue
        # Whoever is (or would be) asked is recorded by the name the request greets them by:
        # structured data's, else the header's.
        name = plan.structured.name_for(d.email) or d.name
        if plan.quarantined:
            recipient(d.email, name, OUTCOME.HELD, rules.QUARANTINED, role)
        elif plan.setup_test:
            recipient(d.email, name, OUTCOME.SKIPPED, rules.SETUP_TEST_PREVIEW, role)
        else:
            request = request_row(plan, d.email, name, now, send_after=due)
            requests.append(request)
            recipient(d.email, name, OUTCOME.INVITED, role=role, request=request)
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


def unmapped_sender(plan) -> str:
    """An unknown address on the agency's domain, which an admin can later map; or ''."""
    trigger = plan.trigger
    sender = rules.strip_plus_tag(trigger.sender) if trigger.sender else ""
    if (
        not sender
        or (trigger.recruiter_id is not None and not plan.credited_by_sender)
        or trigger.reason == "header_defects"
        or sender.rpartition("@")[2] not in plan.facts.domains
    ):
        return ""
    return sender


def unmapped_senders(plans) -> dict[tuple[int, str], int]:
    """(agency id, unknown sender) -> how many of the batch's triggers it sent."""
    seen: dict[tuple[int, str], int] = {}
    for plan in plans:
        sender = unmapped_sender(plan)
        if sender:
            key = (plan.trigger.agency_id, sender)
            seen[key] = seen.get(key, 0) + 1
    return seen


def note_unmapped_senders(seen: dict[tuple[int, str], int], now) -> None:
    """SQLite: remember each unknown sender, counting its triggers, in one upsert (two
    listeners seeing the same new sender at once both count it, neither fails on the other's
    row). PostgreSQL does the same inside `write_in_one_statement`."""
    if not seen:
        return
    table = connection.ops.quote_name(UnmappedSender._meta.db_table)
    moment = connection.ops.adapt_datetimefield_value(now)
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(seen))
    params = [
        x
        for (agency_id, email), count in sorted(seen.items())  # one order: no deadlocks
        for x in (agency_id, email, moment, moment, count)
    ]
    with hot_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (agency_id, email, first_seen, last_seen, trigger_count) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (agency_id, email) DO UPDATE SET "
            f"last_seen = excluded.last_seen, "
            f"trigger_count = {table}.trigger_count + excluded.trigger_count",
            params,
        )


def end_setup_tests(agencies, now) -> None:
    """SQLite: a setup test is one email, so the ones in the batch are over (PostgreSQL does
    this inside `write_in_one_statement`)."""
    if agencies:
        EmailSyncSettings.objects.filter(agency_id__in=agencies, setup_test_until__gt=now).update(
            setup_test_until=now
        )
