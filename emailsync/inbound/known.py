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

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

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


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def by_pairs(pairs: set[tuple[str, str]], model, columns: list[str], match: str):
    """A statement reading `columns` of `model` for each (token, value) pair: the token's
    agency and `match` (a column) equal to the value. None when there are no pairs."""
    if not pairs:
        return None
    ordered = sorted(pairs)
    if connection.vendor == "postgresql":
        wanted = "UNNEST((%b)::varchar[], (%b)::varchar[]) AS w(token, value)"
        params = [[t for t, _ in ordered], [v for _, v in ordered]]
    else:
        values = ", ".join(["(%s, %s)"] * len(ordered))
        wanted = f"(SELECT column1 AS token, column2 AS value FROM (VALUES {values})) AS w"  # noqa: S608
        params = [x for pair in ordered for x in pair]
    selected = ", ".join(f"m.{connection.ops.quote_name(c)}" for c in columns)
    sql = (
        f"SELECT {selected} FROM {wanted} "  # noqa: S608 - names from the models only
        f"JOIN {table(InboundAddress)} a ON a.token = w.token "
        f"JOIN {table(model)} m ON m.agency_id = a.agency_id "
        f"AND m.{connection.ops.quote_name(match)} = w.value"
    )
    return sql, params


def read(wanted: Wanted) -> Known:
    hashes = {address_hash(email): email for _, email in wanted.recipients}
    p = rows.placeholder()
    statements = {
        "addresses": (
            f"SELECT token, agency_id, retired_at, accept_until FROM {table(InboundAddress)} "  # noqa: S608
            + (
                "WHERE token = ANY(%b)"
                if connection.vendor == "postgresql"
                else f"WHERE token IN ({', '.join([p] * len(wanted.tokens))})"
            ),
            [sorted(wanted.tokens)] if connection.vendor == "postgresql" else sorted(wanted.tokens),
        )
        if wanted.tokens
        else None,
        "delivered": by_pairs(
            wanted.messages,
            Trigger,
            ["agency_id", "message_id_hash", "id", "status", "reason"],
            "message_id_hash",
        ),
        "blocked": by_pairs(wanted.senders, BlockedSender, ["agency_id", "email"], "email"),
        "suppressed": (
            f"SELECT address_hash FROM {table(Suppression)} "  # noqa: S608
            + (
                "WHERE address_hash = ANY(%b)"
                if connection.vendor == "postgresql"
                else f"WHERE address_hash IN ({', '.join([p] * len(hashes))})"
            ),
            [sorted(hashes)] if connection.vendor == "postgresql" else sorted(hashes),
        )
        if hashes
        else None,
        "asked": by_pairs(
            wanted.recipients, AskedRecipient, ["agency_id", "email", "last_asked_at"], "email"
        ),
    }
    results = rows.run_together({k: v for k, v in statements.items() if v is not None})
    known = Known()
    known.addresses = [
        (token, agency_id, rows.aware(retired), rows.aware(until))
        for token, agency_id, retired, until in results.get("addresses", [])
    ]
    known.delivered = {(a, k): (pk, s, r) for a, k, pk, s, r in results.get("delivered", [])}
    known.blocked = {(a, e) for a, e in results.get("blocked", [])}
    known.suppressed = {hashes[h] for (h,) in results.get("suppressed", [])}
    asked = defaultdict(list)
    for agency_id, email, when in results.get("asked", []):
        asked[agency_id].append((email, rows.aware(when)))
    known.asked = dict(asked)
    return known
