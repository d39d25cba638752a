"""What the database knows that a batch of trigger emails needs, read in one round trip.

A batch's rules need five facts from the database: which agency each address token belongs to,
which messages were delivered before, which senders an admin blocked, which recipients are
suppressed, and whom each agency asked recently. All five can be asked before any rule runs —
the tokens, senders and recipients are in the envelopes and headers — so they are: on
PostgreSQL the five statements go out together in one pipeline and the listener's database
thread waits once, not five times, while the listener shares its cores with the database.

The per-agency lookups go by exact pairs (an address token and a message, a sender or a
recipient), joined to the agency through the token in the database: each is an index probe
on the table's unique key, however many rows an agency has collected.
"""

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections

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


# Statement texts are built once per shape (on PostgreSQL one per lookup, whatever the count).
@functools.lru_cache(maxsize=256)
def pairs_sql(vendor: str, model, columns: tuple[str, ...], match: str, count: int) -> str:
    """`columns` of `model` for each (token, value) pair: the token's agency, and `match` (a
    column) equal to the value."""
    if vendor == "postgresql":
        wanted = "UNNEST((%b)::varchar[], (%b)::varchar[]) AS w(token, value)"
    else:
        values = ", ".join(["(%s, %s)"] * count)
        wanted = f"(SELECT column1 AS token, column2 AS value FROM (VALUES {values})) AS w"  # noqa: S608
    selected = ", ".join(f"m.{quote(c)}" for c in columns)
    return (
        f"SELECT {selected} FROM {wanted} "  # noqa: S608 - names from the models only
        f"JOIN {quote(InboundAddress._meta.db_table)} a ON a.token = w.token "
        f"JOIN {quote(model._meta.db_table)} m ON m.agency_id = a.agency_id "
        f"AND m.{quote(match)} = w.value"
    )


@functools.lru_cache(maxsize=256)
def in_sql(vendor: str, model, columns: tuple[str, ...], match: str, count: int) -> str:
    """`columns` of `model` where `match` is one of the values."""
    if vendor == "postgresql":
        where = f"{quote(match)} = ANY(%b)"
    else:
        where = f"{quote(match)} IN ({', '.join(['%s'] * count)})"
    selected = ", ".join(map(quote, columns))
    return f"SELECT {selected} FROM {quote(model._meta.db_table)} WHERE {where}"  # noqa: S608


def by_pairs(vendor: str, pairs, model, columns: tuple[str, ...], match: str):
    if not pairs:
        return None
    ordered = sorted(pairs)
    if vendor == "postgresql":  # one array per side: the same text for any count
        params = [[t for t, _ in ordered], [v for _, v in ordered]]
    else:
        params = [x for pair in ordered for x in pair]
    return pairs_sql(vendor, model, columns, match, len(ordered)), params


def by_values(vendor: str, values, model, columns: tuple[str, ...], match: str):
    if not values:
        return None
    ordered = sorted(values)
    params = [ordered] if vendor == "postgresql" else ordered
    return in_sql(vendor, model, columns, match, len(ordered)), params


def read(wanted: Wanted) -> Known:
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    hashes = {address_hash(email): email for _, email in wanted.recipients}
    statements = {
        "addresses": by_values(
            vendor,
            wanted.tokens,
            InboundAddress,
            ("token", "agency_id", "retired_at", "accept_until"),
            "token",
        ),
        "delivered": by_pairs(
            vendor,
            wanted.messages,
            Trigger,
            ("agency_id", "message_id_hash", "id", "status", "reason"),
            "message_id_hash",
        ),
        "blocked": by_pairs(vendor, wanted.senders, BlockedSender, ("agency_id", "email"), "email"),
        "suppressed": by_values(vendor, hashes, Suppression, ("address_hash",), "address_hash"),
        "asked": by_pairs(
            vendor,
            wanted.recipients,
            AskedRecipient,
            ("agency_id", "email", "last_asked_at"),
            "email",
        ),
    }
    results = rows.run_together({k: v for k, v in statements.items() if v is not None})
    known = Known()
    aware = rows.aware if vendor == "sqlite" else lambda value: value
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
