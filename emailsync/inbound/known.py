"""What the database knows that a batch of trigger emails needs, read in one round trip.

A batch's rules need five facts from the database: which agency each address token belongs to,
which messages were delivered before, which senders an admin blocked, which recipients are
suppressed, and whom each agency asked recently. All five can be asked before any rule runs —
the tokens, senders and recipients are in the envelopes and headers — so they are: on
PostgreSQL as one statement whose five columns each carry one lookup's rows as JSON, so the
listener's database thread waits once, not five times, and the driver handles one result
instead of five (a five-statement pipeline cost more of the listener's CPU than the database
spent answering it). SQLite is in-process and runs the five in turn.

The per-agency lookups go by exact pairs (an address token and a message, a sender or a
recipient), joined to the agency through the token in the database: each is an index probe
on the table's unique key, however many rows an agency has collected. On PostgreSQL, when the
batch runs inside a transaction, the same statement also locks the batch's agencies against
deletion until it commits (outside one, the write statement takes that lock:
batch_statement.py).
"""

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections

from emailsync.agencies.models import Agency
from emailsync.review_requests.models import AskedRecipient, Suppression, address_hash

from . import rows
from .models import BlockedSender, InboundAddress, Trigger


@dataclass
class Wanted:
    """What to look up, gathered from a batch's envelopes and headers."""

    tokens: set[str] = field(default_factory=set)
    messages: set[tuple[str, str]] = field(default_factory=set)  # (token, message key)
    senders: set[tuple[str, str]] = field(default_factory=set)  # (token, From address)
    recipients: set[tuple[str, str]] = field(default_factory=set)  # (token, lower-cased)


@dataclass
class Known:
    addresses: list[tuple] = field(default_factory=list)  # token, agency, retired, until
    delivered: dict[tuple[int, str], tuple] = field(default_factory=dict)  # -> pk, status, why
    blocked: set[tuple[int, str]] = field(default_factory=set)
    suppressed: set[str] = field(default_factory=set)
    asked: dict[int, list[tuple[str, datetime]]] = field(default_factory=dict)

    def agency_by_token(self, now: datetime) -> dict[str, int]:
        """Token -> agency id, for the tokens whose address still accepts mail."""
        return {
            token: agency_id
            for token, agency_id, retired, until in self.addresses
            if retired is None or (until is not None and now < until)
        }


def quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


# SQLite: one statement per lookup, its text built once per shape.
@functools.lru_cache(maxsize=256)
def pairs_sql(model, columns: tuple[str, ...], match: str, count: int) -> str:
    """`columns` of `model` for each (token, value) pair: the token's agency, and `match` (a
    column) equal to the value."""
    values = ", ".join(["(%s, %s)"] * count)
    selected = ", ".join(f"m.{quote(c)}" for c in columns)
    return (
        f"SELECT {selected} "  # noqa: S608 - names from the models only
        f"FROM (SELECT column1 AS token, column2 AS value FROM (VALUES {values})) AS w "
        f"JOIN {quote(InboundAddress._meta.db_table)} a ON a.token = w.token "
        f"JOIN {quote(model._meta.db_table)} m ON m.agency_id = a.agency_id "
        f"AND m.{quote(match)} = w.value"
    )


@functools.lru_cache(maxsize=256)
def in_sql(model, columns: tuple[str, ...], match: str, count: int) -> str:
    """`columns` of `model` where `match` is one of the values."""
    selected = ", ".join(map(quote, columns))
    return (
        f"SELECT {selected} FROM {quote(model._meta.db_table)} "  # noqa: S608
        f"WHERE {quote(match)} IN ({', '.join(['%s'] * count)})"
    )


def by_pairs(pairs, model, columns: tuple[str, ...], match: str):
    if not pairs:
        return None
    ordered = sorted(pairs)
    return pairs_sql(model, columns, match, len(ordered)), [x for pair in ordered for x in pair]


def by_values(values, model, columns: tuple[str, ...], match: str):
    if not values:
        return None
    ordered = sorted(values)
    return in_sql(model, columns, match, len(ordered)), ordered


# The five lookups as the columns of one row (PostgreSQL): each a JSON array of its rows.
# Every array parameter may be empty; the text is the same for any batch.
def _json_rows(columns: str, source: str) -> str:
    return f"(SELECT coalesce(json_agg(json_build_array({columns})), '[]') FROM {source})"  # noqa: S608


@functools.cache
def one_statement(lock: bool = True) -> str:
    def pairs(model, columns: tuple[str, ...], match: str) -> str:
        # One probe of the table's unique (agency, value) key per pair, whatever the planner
        # knows: as a plain join, a table without statistics yet (a new install, filling
        # fast) was probed by agency alone and every row of the agency filtered.
        selected = ", ".join(f"m.{quote(c)}" for c in columns)
        return _json_rows(
            selected,
            "UNNEST((%b)::varchar[], (%b)::varchar[]) AS w(token, value) "  # noqa: S608
            f"JOIN {quote(InboundAddress._meta.db_table)} a ON a.token = w.token "
            f"CROSS JOIN LATERAL (SELECT {', '.join(map(quote, columns))} "
            f"FROM {quote(model._meta.db_table)} "
            f"WHERE agency_id = a.agency_id AND {quote(match)} = w.value LIMIT 1) AS m",
        )

    def values(model, columns: tuple[str, ...], match: str) -> str:
        selected = ", ".join(map(quote, columns))
        return _json_rows(
            selected, f"{quote(model._meta.db_table)} WHERE {quote(match)} = ANY((%b)::varchar[])"
        )

    # The batch's agencies, locked against deletion until its commit (in id order, one lock
    # order for every batch). The rows a batch writes carry no foreign-key constraints to the
    # agency (recording.py says why), so this one lock per agency is what keeps a deleted
    # agency from being left with rows: a deletion takes the agency FOR UPDATE first, so it
    # either waits for this batch to commit and then removes its rows with the rest, or has
    # already removed the agency and the lock finds nothing.
    # Outside a transaction (the listener's first attempt on PostgreSQL) the write statement
    # takes this lock instead (batch_statement.py): a lock here would end with this statement, and
    # would make it a transaction that writes (a row lock marks the row), one more commit
    # waiting for the disk.
    agencies = quote(Agency._meta.db_table)
    locked = (
        "(SELECT coalesce(json_agg(g.id), '[]') FROM ("  # noqa: S608
        f"SELECT id FROM {agencies} WHERE id IN (SELECT agency_id FROM "
        f"{quote(InboundAddress._meta.db_table)} WHERE token = ANY((%b)::varchar[])) "
        f"ORDER BY id{' FOR KEY SHARE' if lock else ''}) AS g)"
    )
    return "SELECT " + ",\n  ".join(
        [
            values(InboundAddress, ADDRESS_COLUMNS, "token"),
            pairs(Trigger, DELIVERED_COLUMNS, "message_id_hash"),
            pairs(BlockedSender, BLOCKED_COLUMNS, "email"),
            values(Suppression, ("address_hash",), "address_hash"),
            pairs(AskedRecipient, ASKED_COLUMNS, "email"),
            locked,
        ]
    )


ADDRESS_COLUMNS = ("token", "agency_id", "retired_at", "accept_until")
DELIVERED_COLUMNS = ("agency_id", "message_id_hash", "id", "status", "reason")
BLOCKED_COLUMNS = ("agency_id", "email")
ASKED_COLUMNS = ("agency_id", "email", "last_asked_at")


def read_in_one_statement(wanted: Wanted, hashes: dict[str, str]) -> dict[str, list]:
    def split(pairs):
        ordered = sorted(pairs)
        return rows.array_literal([t for t, _ in ordered]), rows.array_literal(
            [v for _, v in ordered]
        )

    tokens = rows.array_literal(sorted(wanted.tokens))
    params = [
        tokens,
        *split(wanted.messages),
        *split(wanted.senders),
        rows.array_literal(sorted(hashes)),
        *split(wanted.recipients),
        tokens,
    ]
    with rows.hot_cursor() as cursor:
        cursor.execute(
            one_statement(lock=not connections[DEFAULT_DB_ALIAS].get_autocommit()), params
        )
        addresses, delivered, blocked, suppressed, asked, locked = cursor.fetchone()
    # JSON has no date-times: they arrive as ISO 8601 text.
    moment = _from_json_moment
    # An address whose agency a deletion removed while this statement waited for its lock
    # was read before that deletion committed: it no longer exists.
    locked = set(locked)
    return {
        "addresses": [(t, a, moment(r), moment(u)) for t, a, r, u in addresses if a in locked],
        "delivered": delivered,
        "blocked": blocked,
        "suppressed": suppressed,
        "asked": [(a, e, moment(w)) for a, e, w in asked],
    }


def _from_json_moment(value):
    return None if value is None else datetime.fromisoformat(value)


def read(wanted: Wanted) -> Known:
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    hashes = {address_hash(email): email for _, email in wanted.recipients}
    if vendor == "postgresql":
        return known_from(read_in_one_statement(wanted, hashes), hashes, lambda value: value)
    return known_from(read_one_by_one(wanted, hashes), hashes, rows.aware)


def read_one_by_one(wanted: Wanted, hashes: dict[str, str]) -> dict[str, list]:
    statements = {
        "addresses": by_values(wanted.tokens, InboundAddress, ADDRESS_COLUMNS, "token"),
        "delivered": by_pairs(wanted.messages, Trigger, DELIVERED_COLUMNS, "message_id_hash"),
        "blocked": by_pairs(wanted.senders, BlockedSender, BLOCKED_COLUMNS, "email"),
        "suppressed": by_values(hashes, Suppression, ("address_hash",), "address_hash"),
        "asked": by_pairs(wanted.recipients, AskedRecipient, ASKED_COLUMNS, "email"),
    }
    results = {}
    with rows.hot_cursor() as cursor:
        for name, statement in statements.items():
            if statement is not None:
                cursor.execute(*statement)
                results[name] = cursor.fetchall()
    return results


def known_from(results: dict[str, list], hashes: dict[str, str], aware) -> Known:
    known = Known()
    known.addresses = [
        (token, agency_id, aware(retired), aware(until))
        for token, agency_id, retired, until in results.get("addresses", [])
    ]
    known.delivered = {(a, k): (pk, s, r) for a, k, pk, s, r in results.get("delivered", [])}
    known.blocked = {(a, e) for a, e in results.get("blocked", [])}
    known.suppressed = {hashes[h] for (h,) in results.get("suppressed", [])}
    asked = defaultdict(list)
    for agency_id, email, when in results.get("asked", []):
        asked[agency_id].append((email, aware(when)))
    known.asked = dict(asked)
    return known
