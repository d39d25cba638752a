"""Realistic data at scale, written fast: what `emailsync seed-scale` and the benchmarks load.

Per agency: a domain, Email Sync switched on, a BCC address, one admin and nine recruiters (each
with a public profile and a sender address), placements. Reviews are spread over random agencies,
recruiters, ratings, roles and 2½ years: 78 % verified (against one of the agency's placements,
some with a public reply, a few hidden by an operator), 10 % missing verification, 8 % rejected,
4 % unconfirmed (given through a recruiter's own link). Every review has its review request; a
quarter as many again were asked and never answered (sent, opened, reminded, expired, bounced,
cancelled — as the periodic jobs leave them, so a worker started on the data queues nothing).
The last 90 days — what retention keeps — also have their trigger emails with per-recipient
outcomes, the dedupe ledger and the sent outbox rows. The rating tables are then filled from a
from-scratch recomputation, so `emailsync profiles check-aggregates` passes.

Rows are written with COPY on PostgreSQL and `bulk_create` in batches on SQLite, ids assigned
here (after the tables' current maximum), without signals, in one transaction. The generator is
seeded, so the same sizes give the same data. Only reserved `.test` domains are used.
"""

import hashlib
import itertools
import json
import random
import secrets
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max

USERS_PER_AGENCY = 10  # the first is the admin
HISTORY_DAYS = 900
RECENT_DAYS = 90  # triggers, the dedupe ledger and outbox rows are kept this long
TOWNS = ["Leeds", "London", "Manchester", "Bristol", "Glasgow", "Cardiff", "York", "Bath"]
FIRST = ["Ava", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hari", "Isla", "Jon", "Kemi"]
LAST = ["Shah", "Okafor", "Murphy", "Evans", "Nowak", "Khan", "Reid", "Costa", "Lewis", "Price"]
WORDS = [
    *("great", "recruiter", "listened", "understood", "role", "salary", "interview"),
    *("feedback", "quick", "honest", "placement", "team", "communication", "offer"),
    *("helpful", "professional", "kept", "informed", "throughout"),
]
# (status, weight) of reviews, and of the requests nobody answered.
REVIEW_STATUSES = [
    ("verified", 78),
    ("missing_verification", 10),
    ("rejected", 8),
    ("unconfirmed", 4),
]
UNANSWERED = ["sent", "sent", "opened", "expired", "expired", "bounced", "cancelled"]
HIDDEN_SHARE = 0.005  # of verified reviews, hidden by an operator
REPLY_SHARE = 0.10  # of verified reviews, with the agency's public reply


class AlreadySeeded(Exception):
    pass


@dataclass
class Summary:
    agencies: int = 0
    users: int = 0
    placements: int = 0
    requests: int = 0
    reviews: int = 0
    triggers: int = 0
    outbox: int = 0
    seconds: float = 0.0
    aggregate_seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Progress:
    """A bar redrawn in place on a terminal; a plain line every tenth otherwise."""

    def __init__(self, total: int, stream=None, tty: bool | None = None):
        self.total, self.done = max(1, total), 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.stage = ""
        self.shown_tenth = -1
        self.last_draw = 0.0

    def step(self, stage: str, n: int = 1) -> None:
        self.done += n
        if stage != self.stage:
            self.stage = stage
            if not self.tty:
                self.stream.write(f"seed-scale: {stage}…\n")
                self.stream.flush()
        self.draw()

    def draw(self, force: bool = False) -> None:
        fraction = min(1.0, self.done / self.total)
        if self.tty:
            now = time.monotonic()
            if force or now - self.last_draw > 0.1:
                self.last_draw = now
                bar = "#" * int(fraction * 30)
                self.stream.write(f"\r[{bar:<30}] {fraction:4.0%} {self.stage:<24}")
                self.stream.flush()
        elif int(fraction * 10) > self.shown_tenth:
            self.shown_tenth = int(fraction * 10)
            self.stream.write(f"seed-scale: {fraction:.0%} ({self.done:,}/{self.total:,} rows)\n")
            self.stream.flush()

    def finish(self) -> None:
        self.done = self.total
        self.draw(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Writer:
    """Inserts plain dicts (keyed by attname; missing columns get the field's default)."""

    BATCH = 2000

    def __init__(self, progress: Progress):
        self.progress = progress
        self.postgres = connection.vendor == "postgresql"

    @staticmethod
    def first_id(model) -> int:
        return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1

    def write(self, model, rows: Iterable[dict], stage: str) -> int:
        if self.postgres:
            return self._copy(model, rows, stage)
        n, batch = 0, []
        for values in rows:
            batch.append(model(**values))
            if len(batch) >= self.BATCH:
                model.objects.bulk_create(batch)
                n += len(batch)
                self.progress.step(stage, len(batch))
                batch = []
        if batch:
            model.objects.bulk_create(batch)
            n += len(batch)
            self.progress.step(stage, len(batch))
        return n

    def _copy(self, model, rows, stage: str) -> int:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        pk = model._meta.pk
        # An id left out is the database's to assign (its sequence's default).
        fields = [
            f
            for f in model._meta.concrete_fields
            if f is not pk or f.attname in first or not getattr(f, "db_returning", False)
        ]
        rows = itertools.chain([first], rows)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(model._meta.db_table)
        n = 0
        with connection.cursor() as cursor:
            raw = cursor.connection.cursor()
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in rows:
                    copy.write_row([_column_value(f, values) for f in fields])
                    n += 1
                    if n % 1000 == 0:
                        self.progress.step(stage, 1000)
        self.progress.step(stage, n % 1000)
        return n

    def reset_sequences(self, models) -> None:
        if not self.postgres:
            return  # SQLite's AUTOINCREMENT follows the largest id inserted
        with connection.cursor() as cursor:
            for model in models:
                table, pk = model._meta.db_table, model._meta.pk.column
                # Our own models' table and column names, quoted; not input.
                column, name = connection.ops.quote_name(pk), connection.ops.quote_name(table)
                query = f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE((SELECT MAX({column}) FROM {name}), 1))"  # noqa: S608, E501
                cursor.execute(query, [table, pk])


def _column_value(field, values: dict):
    if field.attname in values:
        value = values[field.attname]
    elif field.has_default():
        value = field.get_default()
    elif field.null:
        value = None
    else:
        value = field.get_default()  # "" for text columns
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return value


def existing_agencies() -> int:
    from emailsync.agencies.models import Agency

    return Agency.objects.count()


def seed(
    n_agencies: int,
    n_reviews: int,
    *,
    random_seed: int = 7,
    progress_stream=None,
    tty: bool | None = None,
    now: datetime | None = None,
) -> Summary:
    """Fill an empty database. Raises AlreadySeeded if any agency exists."""
    from emailsync.agencies.models import (
        Agency,
        AgencyDomain,
        RecruiterProfile,
        SenderAddress,
        User,
    )
    from emailsync.inbound.models import InboundAddress, Trigger, TriggerRecipient, new_token
    from emailsync.outbox.models import OutboundEmail
    from emailsync.placements.models import Placement
    from emailsync.profiles import aggregates
    from emailsync.profiles.models import AgencyRating, Moderation, RecruiterRating, ReviewReply
    from emailsync.review_requests.models import AskedRecipient, EmailSyncSettings, ReviewRequest
    from emailsync.reviews.models import Review

    if n_agencies < 1 or n_reviews < 0:
        raise ValueError("at least one agency, and no negative number of reviews")
    rng = random.Random(random_seed)
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    summary = Summary(agencies=n_agencies)

    # The plan, compactly: which agency, recruiter, time, role and status each review has.
    statuses = [s for s, w in REVIEW_STATUSES for _ in range(w)]
    review_plan = []  # (agency index, user offset, created, role, status, rating)
    for _ in range(n_reviews):
        when = now - timedelta(minutes=rng.randint(60, 60 * 24 * HISTORY_DAYS))
        review_plan.append(
            (
                rng.randrange(n_agencies),
                rng.randrange(USERS_PER_AGENCY),
                when,
                rng.choice(("candidate", "candidate", "client")),
                rng.choice(statuses),
                rng.choice((5, 5, 5, 4, 4, 3, 2, 1)),
            )
        )
    unanswered_plan = [
        (
            rng.randrange(n_agencies),
            rng.randrange(USERS_PER_AGENCY),
            now - timedelta(minutes=rng.randint(60, 60 * 24 * HISTORY_DAYS)),
            rng.choice(("candidate", "client")),
            rng.choice(UNANSWERED),
        )
        for _ in range(n_reviews // 4)
    ]
    per_agency = [0] * n_agencies
    for plan in review_plan:
        per_agency[plan[0]] += 1
    placements_of = []  # per agency: (first placement offset, count)
    offset = 0
    for count in per_agency:
        k = max(1, count // 2)
        placements_of.append((offset, k))
        offset += k
    n_placements = offset
    recent = now - timedelta(days=RECENT_DAYS)
    n_recent = sum(1 for p in review_plan if p[2] >= recent) + sum(
        1 for p in unanswered_plan if p[2] >= recent
    )
    n_users = n_agencies * USERS_PER_AGENCY
    total_rows = (
        n_agencies * 4
        + n_users * 3
        + n_placements
        + len(review_plan) * 2
        + len(unanswered_plan)
        + n_recent * 5
        + int(n_reviews * 0.09)
        + n_agencies * (USERS_PER_AGENCY + 1)
    )
    progress = Progress(total_rows, progress_stream, tty)

    with transaction.atomic():
        if existing_agencies():
            raise AlreadySeeded(existing_agencies())
        w = Writer(progress)
        a0 = w.first_id(Agency)
        u0 = w.first_id(User)
        p0 = w.first_id(RecruiterProfile)
        pl0 = w.first_id(Placement)
        rr0 = w.first_id(ReviewRequest)
        rv0 = w.first_id(Review)
        t0 = w.first_id(Trigger)

        def agency_id(a: int) -> int:
            return a0 + a

        def user_id(a: int, k: int) -> int:
            return u0 + a * USERS_PER_AGENCY + k

        def profile_id(a: int, k: int) -> int:
            return p0 + a * USERS_PER_AGENCY + k

        def domain(a: int) -> str:
            return f"agency{a + 1}.scale.test"

        def user_email(a: int, k: int) -> str:
            return f"admin@{domain(a)}" if k == 0 else f"recruiter{k}@{domain(a)}"

        def person(a: int, k: int) -> str:
            n = a * USERS_PER_AGENCY + k
            return f"{FIRST[n % len(FIRST)]} {LAST[(n // len(FIRST)) % len(LAST)]}"

        founded = now - timedelta(days=HISTORY_DAYS + 30)
        w.write(
            Agency,
            (
                {
                    "id": agency_id(a),
                    "name": f"Agency {a + 1:05d} Recruitment",
                    "slug": f"agency-{a + 1}",
                    "location": f"{TOWNS[a % len(TOWNS)]}, UK",
                    "website": f"https://{domain(a)}/",
                    "created_at": founded,
                }
                for a in range(n_agencies)
            ),
            "agencies",
        )
        w.write(
            AgencyDomain,
            ({"agency_id": agency_id(a), "domain": domain(a)} for a in range(n_agencies)),
            "agencies",
        )
        w.write(
            EmailSyncSettings,
            ({"agency_id": agency_id(a), "enabled": True} for a in range(n_agencies)),
            "agencies",
        )
        w.write(
            InboundAddress,
            (
                {"agency_id": agency_id(a), "token": new_token(), "created_at": founded}
                for a in range(n_agencies)
            ),
            "agencies",
        )
        pairs = [(a, k) for a in range(n_agencies) for k in range(USERS_PER_AGENCY)]
        w.write(
            User,
            (
                {
                    "id": user_id(a, k),
                    "email": user_email(a, k),
                    "password": "!" + secrets.token_hex(8),  # unusable: nobody signs in
                    "full_name": person(a, k),
                    "agency_id": agency_id(a),
                    "role": "admin" if k == 0 else "recruiter",
                    "date_joined": founded,
                }
                for a, k in pairs
            ),
            "people",
        )
        w.write(
            RecruiterProfile,
            (
                {
                    "id": profile_id(a, k),
                    "user_id": user_id(a, k),
                    "agency_id": agency_id(a),
                    "display_name": person(a, k),
                    "job_title": "Head of Operations" if k == 0 else "Recruitment Consultant",
                    "slug": f"{person(a, k).lower().replace(' ', '-')}-{k}",
                    "bio": "Places people in good jobs and keeps them informed throughout.",
                    "specialisms": rng.choice(["Finance", "Engineering", "Care", "Sales"]),
                }
                for a, k in pairs
            ),
            "people",
        )
        w.write(
            SenderAddress,
            (
                {
                    "agency_id": agency_id(a),
                    "profile_id": profile_id(a, k),
                    "email": user_email(a, k),
                }
                for a, k in pairs
            ),
            "people",
        )
        summary.users = n_users

        def placements():
            for a, (first, count) in enumerate(placements_of):
                for j in range(count):
                    k = rng.randrange(1, USERS_PER_AGENCY)
                    yield {
                        "id": pl0 + first + j,
                        "agency_id": agency_id(a),
                        "external_ref": f"PL-{a + 1}-{j + 1}",
                        "candidate_name": f"Candidate {first + j}",
                        "candidate_email": f"c{first + j}@people.scale.test",
                        "client_company": f"Client {j % 40} Ltd",
                        "client_contact_name": f"Contact {j % 40}",
                        "client_contact_email": f"hire{j % 40}@client{a + 1}.scale.test",
                        "job_title": rng.choice(["Analyst", "Engineer", "Nurse", "Manager"]),
                        "start_date": (now - timedelta(days=rng.randint(1, HISTORY_DAYS))).date(),
                        "recruiter_id": profile_id(a, k),
                        "created_by_id": user_id(a, 0),
                        "created_at": founded,
                    }

        summary.placements = w.write(Placement, placements(), "placements")

        # Review requests: one per review, then the unanswered ones.
        def request_rows():
            for i, (a, k, when, role, status, _rating) in enumerate(review_plan):
                source = (
                    "recruiter_link"
                    if status == "unconfirmed"
                    else ("manual" if i % 10 == 0 else "email_sync")
                )
                yield {
                    "id": rr0 + i,
                    "agency_id": agency_id(a),
                    "source": source,
                    "email": f"p{rr0 + i}@people.scale.test",
                    "name": f"Person {rr0 + i}",
                    "role": role,
                    "recruiter_id": profile_id(a, k),
                    "token": f"s{rr0 + i}-{secrets.token_hex(6)}",
                    "status": "completed",
                    "created_at": when,
                    "send_after": when,
                    "queued_at": None if source == "recruiter_link" else when,
                    "deadline": when + timedelta(hours=72),
                    "sent_at": None if source == "recruiter_link" else when,
                    "completed_at": when + timedelta(hours=5),
                }
            for j, (a, k, when, role, status) in enumerate(unanswered_plan):
                i = len(review_plan) + j
                # As the periodic jobs leave them: reminded after 5 days, expired after 30.
                age = now - when
                if status in ("sent", "opened") and age > timedelta(days=30):
                    status = "expired"
                elif status in ("sent", "opened") and age > timedelta(days=5):
                    status = "reminded"
                yield {
                    "id": rr0 + i,
                    "agency_id": agency_id(a),
                    "source": "email_sync",
                    "email": f"p{rr0 + i}@people.scale.test",
                    "name": f"Person {rr0 + i}",
                    "role": role,
                    "recruiter_id": profile_id(a, k),
                    "token": f"s{rr0 + i}-{secrets.token_hex(6)}",
                    "status": status,
                    "status_reason": "Bounced: mailbox unavailable" if status == "bounced" else "",
                    "created_at": when,
                    "send_after": when,
                    "queued_at": None if status == "cancelled" else when,
                    "deadline": when + timedelta(hours=72),
                    "sent_at": None if status == "cancelled" else when,
                    "opened_at": when + timedelta(hours=2) if status == "opened" else None,
                    "reminded_at": when + timedelta(days=5) if status == "reminded" else None,
                    "expires_at": when + timedelta(days=30),
                }

        summary.requests = w.write(ReviewRequest, request_rows(), "review requests")

        def review_rows():
            for i, (a, k, when, role, status, rating) in enumerate(review_plan):
                submitted = when + timedelta(hours=5)
                first, count = placements_of[a]
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 60)))
                yield {
                    "id": rv0 + i,
                    "agency_id": agency_id(a),
                    "review_request_id": rr0 + i,
                    "recruiter_id": profile_id(a, k),
                    "rating": rating,
                    "text": text.capitalize() + ".",
                    "role": role,
                    "reviewer_name": f"Person {rr0 + i}",
                    "display_name_choice": rng.choice(["full", "initial", "initial", "anonymous"]),
                    "recommend": rating >= 3,
                    "consent": True,
                    "reviewer_email": f"p{rr0 + i}@people.scale.test",
                    "status": status,
                    "submitted_at": submitted,
                    "updated_at": submitted,
                    "editable_until": submitted + timedelta(hours=24),
                    "confirmed_at": None if status == "unconfirmed" else submitted,
                    "admins_notified_at": None if status == "unconfirmed" else submitted,
                    "verified_at": submitted + timedelta(days=1) if status == "verified" else None,
                    "verified_by_id": user_id(a, 0) if status == "verified" else None,
                    "placement_id": (
                        pl0 + first + rng.randrange(count) if status == "verified" else None
                    ),
                    "rejected_at": submitted + timedelta(days=1) if status == "rejected" else None,
                    "rejected_by_id": user_id(a, 0) if status == "rejected" else None,
                    "rejected_reason": rng.choice(["spam", "not_a_placement", "duplicate"])
                    if status == "rejected"
                    else "",
                }

        summary.reviews = w.write(Review, review_rows(), "reviews")
        verified = [i for i, p in enumerate(review_plan) if p[4] == "verified"]
        hidden = rng.sample(verified, int(len(verified) * HIDDEN_SHARE))
        replied = rng.sample(verified, int(len(verified) * REPLY_SHARE))
        w.write(
            Moderation,
            (
                {
                    "review_id": rv0 + i,
                    "hidden_at": now - timedelta(days=1),
                    "hidden_reason": "Reveals someone's personal information.",
                }
                for i in hidden
            ),
            "moderation",
        )
        w.write(
            ReviewReply,
            (
                {
                    "review_id": rv0 + i,
                    "text": "Thank you for taking the time to write this.",
                    "author_id": user_id(review_plan[i][0], 0),
                    "created_at": review_plan[i][2] + timedelta(days=2),
                    "updated_at": review_plan[i][2] + timedelta(days=2),
                }
                for i in replied
            ),
            "replies",
        )

        # The last 90 days: the trigger that asked, its recipients, the ledger and the outbox.
        recent_requests = []  # (request id, agency index, user offset, when, role, sent)
        for i, (a, k, when, role, status, _r) in enumerate(review_plan):
            if when >= recent and status != "unconfirmed" and i % 10:
                recent_requests.append((rr0 + i, a, k, when, role, True))
        for j, (a, k, when, role, status) in enumerate(unanswered_plan):
            if when >= recent:
                recent_requests.append(
                    (rr0 + len(review_plan) + j, a, k, when, role, status != "cancelled")
                )

        def triggers():
            for n, (_rid, a, k, when, _role, _sent) in enumerate(recent_requests):
                yield {
                    "id": t0 + n,
                    "agency_id": agency_id(a),
                    "received_at": when,
                    "message_id_hash": hashlib.sha256(f"scale-{t0 + n}".encode()).hexdigest(),
                    "sender": user_email(a, k),
                    "recruiter_id": profile_id(a, k),
                    "status": "accepted",
                    "auth_method": "dkim",
                    "auth_detail": f"d={domain(a)}",
                }

        summary.triggers = w.write(Trigger, triggers(), "triggers")

        def trigger_recipients():
            for n, (rid, a, _k, _when, role, _sent) in enumerate(recent_requests):
                yield {
                    "trigger_id": t0 + n,
                    "email": f"p{rid}@people.scale.test",
                    "name": f"Person {rid}",
                    "role": role,
                    "outcome": "invited",
                    "review_request_id": rid,
                }
                if n % 2:  # a colleague in Cc, skipped
                    yield {
                        "trigger_id": t0 + n,
                        "email": user_email(a, 0),
                        "outcome": "skipped",
                        "reason": "colleague",
                    }

        w.write(TriggerRecipient, trigger_recipients(), "triggers")
        w.write(
            AskedRecipient,
            (
                {
                    "agency_id": agency_id(a),
                    "email": f"p{rid}@people.scale.test",
                    "last_asked_at": when,
                }
                for rid, a, _k, when, _role, _sent in recent_requests
            ),
            "dedupe ledger",
        )
        domain_of_mail = "emailsync.localhost"
        summary.outbox = w.write(
            OutboundEmail,
            (
                {
                    "kind": "review_request",
                    "template": "review_request",
                    "agency_id": agency_id(a),
                    "review_request_id": rid,
                    "to_email": f"p{rid}@people.scale.test",
                    "to_name": f"Person {rid}",
                    "status": "sent",
                    "send_after": when,
                    "attempts": 1,
                    "message_id": f"<scale-{rid}-{secrets.token_hex(8)}@{domain_of_mail}>",
                    "created_at": when,
                    "sent_at": when,
                }
                for rid, a, _k, when, _role, sent in recent_requests
                if sent
            ),
            "outbox",
        )
        w.reset_sequences(
            [
                Agency,
                AgencyDomain,
                EmailSyncSettings,
                InboundAddress,
                User,
                RecruiterProfile,
                SenderAddress,
                Placement,
                ReviewRequest,
                Review,
                Moderation,
                ReviewReply,
                Trigger,
                TriggerRecipient,
                AskedRecipient,
                OutboundEmail,
            ]
        )

        # The aggregates, from scratch, for every agency and recruiter.
        summary.seconds = time.perf_counter() - started
        aggregates_started = time.perf_counter()
        agencies, recruiters = aggregates.compute_all(now)
        owner = {profile_id(a, k): agency_id(a) for a, k in pairs}
        w.write(
            AgencyRating,
            ({"agency_id": pk, **values, "changed_at": now} for pk, values in agencies.items()),
            "aggregates",
        )
        w.write(
            RecruiterRating,
            (
                {"recruiter_id": pk, "agency_id": owner[pk], **values, "changed_at": now}
                for pk, values in recruiters.items()
                if pk in owner
            ),
            "aggregates",
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    progress.finish()
    summary.aggregate_seconds = time.perf_counter() - aggregates_started
    return summary


def describe(summary: Summary) -> str:
    return (
        f"Seeded {summary.agencies:,} agencies, {summary.users:,} people, "
        f"{summary.placements:,} placements, {summary.requests:,} review requests, "
        f"{summary.reviews:,} reviews, {summary.triggers:,} recent triggers, "
        f"{summary.outbox:,} outbox rows in {summary.seconds:.1f} s; "
        f"aggregates in {summary.aggregate_seconds:.1f} s."
    )
