"""The listener's batch write on PostgreSQL: one statement that is its own transaction.

A batch's rows (triggers, each recipient's outcome, review requests), its dedupe-ledger
entries, its unknown senders and the end of its setup tests are written by one statement,
run in autocommit, so the batch makes two round trips (its lookup, known.py, and this) where a
BEGIN and a COMMIT around them made four (docs/PERFORMANCE.md, stop 24). Being the whole
transaction, the statement itself does what a transaction around it would have guaranteed:
it locks the batch's agencies before writing anything, and fails whole when a ledger entry it
bet on was taken meanwhile. recording.py builds the rows and calls it; SQLite writes them table
by table there instead.
"""

import functools

from django.db import DatabaseError

from emailsync.agencies.models import Agency
from emailsync.review_requests.models import AskedRecipient, EmailSyncSettings, ReviewRequest

from .models import Trigger, TriggerRecipient, UnmappedSender
from .rows import Table, array_literal, hot_cursor, json_document

TRIGGERS = Table(Trigger)
RECIPIENTS = Table(TriggerRecipient)
REQUESTS = Table(ReviewRequest)


class LostClaim(Exception):
    """Someone else took a dedupe-ledger entry this batch counted on (see below)."""


class AgenciesGone(Exception):
    """An agency of the batch was deleted after the batch looked it up; nothing was written."""


# The SQLSTATE of emailsync_refuse_batch() (migration inbound 0004).
REFUSED = "ES409"


def write_in_one_statement(
    plans, requests, recipients, claims, now, unmapped=None, setup_tests_ended=()
) -> list[int]:
    """PostgreSQL: everything the batch writes in one statement, one round trip, which in
    autocommit is also the batch's whole transaction: no BEGIN or COMMIT of its own.

    Each table's rows travel as one JSON document; the new triggers and requests take their
    ids from their sequences inside the statement, and the recipients find their parents' ids
    by position. Being its own transaction, the statement carries what a transaction around
    it would have guaranteed:
    - it locks the batch's agencies against deletion first, and writes nothing if one is gone
      (AgenciesGone): the hot rows have no foreign keys to check that for it;
    - it takes the dedupe ledger's entries, each with its agency's window, and one not won
      (someone asked that person since the batch looked) fails the whole statement through
      emailsync_refuse_batch(): LostClaim.
    Returns the triggers' ids in the order of `plans`."""
    moments: dict = {}
    triggers = TRIGGERS.json_rows([TRIGGERS.as_row(p.trigger) for p in plans], moments=moments)
    # Sorted, as every claim on the ledger is, so two batches wait instead of deadlocking.
    pairs = sorted({(agency_id, email) for agency_id, email, _ in claims})
    cutoffs = sorted({(agency_id, now - window) for agency_id, _, window in claims})
    if len(cutoffs) != len({agency_id for agency_id, _ in cutoffs}):
        raise ValueError("one dedupe window per agency")
    unmapped = sorted((unmapped or {}).items())  # one order: no deadlocks
    params = {
        "agencies": array_literal(sorted({p.trigger.agency_id for p in plans})),
        "triggers": json_document(triggers),
        "requests": json_document(REQUESTS.json_rows(requests, moments=moments)),
        # Each recipient names its parents by position (from 0) in its own link columns.
        "recipients": json_document(
            RECIPIENTS.json_rows(
                [
                    {**row, "trigger_id": row["trigger"], "review_request_id": row["request"]}
                    for row in recipients
                ],
                moments,
            )
        ),
        "now": now,
        "claim_agencies": array_literal([a for a, _ in pairs]),
        "claim_emails": array_literal([e for _, e in pairs]),
        "claims": len(pairs),
        "window_agencies": array_literal([a for a, _ in cutoffs]),
        "cutoffs": array_literal([c for _, c in cutoffs]),
        "unmapped_agencies": array_literal([a for (a, _), _ in unmapped]),
        "unmapped_emails": array_literal([e for (_, e), _ in unmapped]),
        "unmapped_counts": array_literal([n for _, n in unmapped]),
        "setup_tests": array_literal(list(setup_tests_ended)),
    }
    try:
        with hot_cursor() as cursor:
            cursor.execute(one_statement(), params)
            _, ids = cursor.fetchone()
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == REFUSED:
            raise LostClaim from exc
        raise
    if not ids:  # the lock found an agency gone, so nothing was written
        raise AgenciesGone
    return ids


# `gate` locks the batch's agencies (in id order, one lock order for every batch) before
# anything is written: every write reads `open`, which has its one row only if every agency
# is still there. Each document is read once, whole, by json_populate_recordset, every value
# typed by the table's own row type (every JSON row carries every column); reading it element
# by element, then each element again as a record, cost PostgreSQL about twice the parsing
# (docs/PERFORMANCE.md, stop 29). Each new trigger and request takes its id from its sequence
# once (MATERIALIZED) and keeps its position in the document (ORDINALITY, from 1); recipients
# name their parents by position (from 0) in their own link columns. The documents are
# `json`, not `jsonb`: each is read once, in order, so PostgreSQL's binary form was conversion
# for nothing (ingest_ab on PostgreSQL: B/A 1.057, 1.023-1.092; docs/PERFORMANCE.md, stop 26).
# Each ledger entry the upsert inserts, or moves on because its last ask is older than its
# agency's cut-off, is one won; `verdict` fails the statement unless all were. The statement
# returns one row whatever happened, so `verdict` is always evaluated; the new triggers' ids
# come as one array. Every array parameter may be empty; the text is the same for any batch.
ONE_STATEMENT = """
WITH gate AS MATERIALIZED (
        SELECT count(*) AS agencies FROM (
            SELECT id FROM "{agencies}" WHERE id = ANY(%(agencies)b::bigint[])
            ORDER BY id FOR KEY SHARE) AS locked),
    open AS MATERIALIZED (
        SELECT 1 FROM gate WHERE agencies = cardinality(%(agencies)b::bigint[])),
    new_triggers AS MATERIALIZED (
        SELECT nextval(pg_get_serial_sequence('{triggers}', 'id')::regclass) AS new_id, r.*
        FROM open, json_populate_recordset(NULL::"{triggers}", %(triggers)b::json)
            WITH ORDINALITY AS r),
    new_requests AS MATERIALIZED (
        SELECT nextval(pg_get_serial_sequence('{requests}', 'id')::regclass) AS new_id, r.*
        FROM open, json_populate_recordset(NULL::"{requests}", %(requests)b::json)
            WITH ORDINALITY AS r),
    written_triggers AS (
        INSERT INTO "{triggers}" (id, {trigger_columns})
        SELECT r.new_id, {trigger_values} FROM new_triggers r),
    written_requests AS (
        INSERT INTO "{requests}" (id, {request_columns})
        SELECT r.new_id, {request_values} FROM new_requests r),
    written_recipients AS (
        INSERT INTO "{recipients}" (trigger_id, review_request_id, {recipient_columns})
        SELECT t.new_id, q.new_id, {recipient_values}
        FROM json_populate_recordset(NULL::"{recipients}", %(recipients)b::json) AS r
        JOIN new_triggers t ON t.ordinality = r.trigger_id + 1
        LEFT JOIN new_requests q ON q.ordinality = r.review_request_id + 1),
    claimed AS (
        INSERT INTO "{asked}" (agency_id, email, last_asked_at)
        SELECT a, e, %(now)b FROM open,
            UNNEST(%(claim_agencies)b::bigint[], %(claim_emails)b::varchar[]) AS t(a, e)
        ON CONFLICT (agency_id, email) DO UPDATE SET last_asked_at = excluded.last_asked_at
        WHERE "{asked}".last_asked_at < (
            SELECT c FROM UNNEST(%(window_agencies)b::bigint[], %(cutoffs)b::timestamptz[])
                AS w(a, c)
            WHERE w.a = excluded.agency_id)
        RETURNING 1),
    unmapped AS (
        INSERT INTO "{unmapped}" (agency_id, email, first_seen, last_seen, trigger_count)
        SELECT a, e, %(now)b, %(now)b, n FROM open,
            UNNEST(%(unmapped_agencies)b::bigint[], %(unmapped_emails)b::varchar[],
                %(unmapped_counts)b::integer[]) AS u(a, e, n)
        ON CONFLICT (agency_id, email) DO UPDATE SET last_seen = excluded.last_seen,
            trigger_count = "{unmapped}".trigger_count + excluded.trigger_count),
    setup_tests_ended AS (
        UPDATE "{settings}" SET setup_test_until = %(now)b
        WHERE agency_id = ANY(%(setup_tests)b::bigint[]) AND setup_test_until > %(now)b
            AND EXISTS (SELECT FROM open)),
    verdict AS MATERIALIZED (
        SELECT CASE WHEN EXISTS (SELECT FROM open)
                AND (SELECT count(*) FROM claimed) < %(claims)b::integer
            THEN emailsync_refuse_batch('a dedupe-ledger entry was taken meanwhile')
            ELSE 0 END AS refused)
SELECT (SELECT refused FROM verdict), ARRAY(SELECT new_id FROM new_triggers ORDER BY ordinality)
"""


@functools.cache
def one_statement() -> str:
    def columns(table: Table, *linked: str) -> tuple[str, str]:
        names = [f'"{f.column}"' for f in table.fields if f.attname not in linked]
        return ", ".join(names), ", ".join(f"r.{name}" for name in names)

    parts = {
        "agencies": Agency._meta.db_table,
        "asked": AskedRecipient._meta.db_table,
        "unmapped": UnmappedSender._meta.db_table,
        "settings": EmailSyncSettings._meta.db_table,
    }
    for key, table, linked in [
        ("trigger", TRIGGERS, ()),
        ("request", REQUESTS, ()),
        ("recipient", RECIPIENTS, ("trigger_id", "review_request_id")),
    ]:
        parts[key + "s"] = table.model._meta.db_table
        parts[key + "_columns"], parts[key + "_values"] = columns(table, *linked)
    # On one line: psycopg converts a statement's placeholders once and caches the result only
    # for statements up to 4,096 bytes (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH); longer
    # ones are converted again on every call (measured: 70 µs against 34 µs per batch).
    return " ".join(ONE_STATEMENT.format(**parts).split())
