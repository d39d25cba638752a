"""The aggregates behind every public number, and how they are kept equal to the reviews.

`refresh(agency_id, recruiter_ids)` recomputes one agency's row and the given recruiters' rows
from their public reviews (one grouped, indexed query each) under a row lock, so two
transactions changing reviews of the same agency at once cannot each overwrite the other's
result: the second waits for the first and then reads its committed change.

The ranking (docs/PROFILES.md):

    score = (PRIOR_WEIGHT × PRIOR_MEAN + sum of ratings) / (PRIOR_WEIGHT + count)
    rank  = score − recency penalty of the newest public review
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from emailsync.reviews.models import Review

from .models import AgencyRating, RecruiterRating, public_reviews

PRIOR_MEAN = 3.5
PRIOR_WEIGHT = 5
# (newest public review at most this old, penalty); anything older gets OLD_PENALTY.
RECENCY = ((timedelta(days=180), 0.0), (timedelta(days=365), 0.1), (timedelta(days=730), 0.25))
OLD_PENALTY = 0.5


def bayesian(count: int, total: int) -> float:
    return round((PRIOR_WEIGHT * PRIOR_MEAN + total) / (PRIOR_WEIGHT + count), 6)


def recency_penalty(last_review_at, now) -> float:
    if last_review_at is None:
        return OLD_PENALTY
    age = now - last_review_at
    for limit, penalty in RECENCY:
        if age <= limit:
            return penalty
    return OLD_PENALTY


def rank(count: int, total: int, last_review_at, now) -> float:
    if not count:
        return 0.0
    return round(bayesian(count, total) - recency_penalty(last_review_at, now), 6)


_SUMS = {
    "count": Count("id"),
    "total": Sum("rating"),
    **{f"star_{n}": Count("id", filter=Q(rating=n)) for n in range(1, 6)},
    "candidate_count": Count("id", filter=Q(role="candidate")),
    "candidate_total": Sum("rating", filter=Q(role="candidate")),
    "client_count": Count("id", filter=Q(role="client")),
    "client_total": Sum("rating", filter=Q(role="client")),
    "last_review_at": Max("submitted_at"),
}


def _finish(values: dict, now) -> dict:
    values = {k: (v or 0) if k != "last_review_at" else v for k, v in values.items()}
    values["score"] = bayesian(values["count"], values["total"]) if values["count"] else 0.0
    values["rank"] = rank(values["count"], values["total"], values["last_review_at"], now)
    return values


def compute_agency(agency_id: int, now=None) -> dict:
    now = now or timezone.now()
    return _finish(public_reviews().filter(agency_id=agency_id).aggregate(**_SUMS), now)


def compute_recruiter(recruiter_id: int, now=None) -> dict:
    now = now or timezone.now()
    return _finish(public_reviews().filter(recruiter_id=recruiter_id).aggregate(**_SUMS), now)


def compute_all(now=None) -> tuple[dict[int, dict], dict[int, dict]]:
    """Every agency's and recruiter's values from scratch, two grouped queries in all."""
    from emailsync.agencies.models import Agency, RecruiterProfile

    now = now or timezone.now()
    empty = _finish(dict.fromkeys(_SUMS, None), now)
    agencies = {pk: dict(empty) for pk in Agency.objects.values_list("pk", flat=True)}
    for row in public_reviews().order_by().values("agency_id").annotate(**_SUMS):
        agencies[row.pop("agency_id")] = _finish(row, now)
    recruiters = {pk: dict(empty) for pk in RecruiterProfile.objects.values_list("pk", flat=True)}
    rows = public_reviews().filter(recruiter__isnull=False).order_by().values("recruiter_id")
    for row in rows.annotate(**_SUMS):
        recruiters[row.pop("recruiter_id")] = _finish(row, now)
    return agencies, recruiters


def _store(model, key: str, pk: int, values: dict, now, **extra) -> None:
    row = model.objects.select_for_update().filter(**{key: pk}).first()
    if row is None:
        model.objects.create(**{key: pk}, **values, **extra, changed_at=now)
        return
    for name, value in values.items():
        setattr(row, name, value)
    row.changed_at = now
    row.save()


@transaction.atomic
def refresh(agency_id: int, recruiter_ids=(), now=None) -> None:
    """Recompute one agency's aggregates and those of the given recruiters (lock, then read)."""
    from emailsync.agencies.models import RecruiterProfile

    now = now or timezone.now()
    # Lock first: the read below then sees every change committed before the lock was granted.
    AgencyRating.objects.get_or_create(agency_id=agency_id, defaults={"changed_at": now})
    list(AgencyRating.objects.select_for_update().filter(agency_id=agency_id))
    _store(AgencyRating, "agency_id", agency_id, compute_agency(agency_id, now), now)
    ids = sorted({pk for pk in recruiter_ids if pk})
    existing = set(RecruiterProfile.objects.filter(pk__in=ids).values_list("pk", flat=True))
    for recruiter_id in ids:
        if recruiter_id not in existing:
            continue
        RecruiterRating.objects.get_or_create(
            recruiter_id=recruiter_id, defaults={"agency_id": agency_id, "changed_at": now}
        )
        values = compute_recruiter(recruiter_id, now)
        _store(RecruiterRating, "recruiter_id", recruiter_id, values, now, agency_id=agency_id)


def touch(agency_id: int, recruiter_ids=(), now=None) -> None:
    """Something shown on the pages changed without changing the numbers (a reply, a name)."""
    now = now or timezone.now()
    if not AgencyRating.objects.filter(agency_id=agency_id).update(changed_at=now):
        refresh(agency_id, recruiter_ids, now)
        return
    ids = [pk for pk in recruiter_ids if pk]
    if ids:
        updated = RecruiterRating.objects.filter(recruiter_id__in=ids).update(changed_at=now)
        if updated < len(set(ids)):
            refresh(agency_id, ids, now)


@dataclass
class Mismatch:
    kind: str  # "agency" | "recruiter"
    pk: int
    stored: dict | None
    expected: dict

    def fields(self) -> list[str]:
        if self.stored is None:
            return ["(missing row)"]
        return [k for k, v in self.expected.items() if not _same(self.stored.get(k), v)]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs((a or 0) - (b or 0)) < 1e-6
    return a == b


def check(now=None) -> list[Mismatch]:
    """Every stored row that differs from a from-scratch recomputation (or is missing)."""
    now = now or timezone.now()
    agencies, recruiters = compute_all(now)
    found = []
    for kind, expected, model, key in (
        ("agency", agencies, AgencyRating, "agency_id"),
        ("recruiter", recruiters, RecruiterRating, "recruiter_id"),
    ):
        stored = {row[key]: row for row in model.objects.values(key, *model.FIELDS)}
        for pk, values in expected.items():
            row = stored.get(pk)
            if row is None and not values["count"]:
                continue  # no row and nothing to count: the pages show zero either way
            mismatch = Mismatch(kind, pk, row, values)
            if row is None or mismatch.fields():
                found.append(mismatch)
    return found


def repair(mismatches: list[Mismatch], now=None) -> None:
    from emailsync.agencies.models import RecruiterProfile

    now = now or timezone.now()
    recruiters = [m.pk for m in mismatches if m.kind == "recruiter"]
    agency_of = dict(
        RecruiterProfile.objects.filter(pk__in=recruiters).values_list("pk", "agency_id")
    )
    by_agency: dict[int, set[int]] = {}
    for m in mismatches:
        if m.kind == "agency":
            by_agency.setdefault(m.pk, set())
        elif m.pk in agency_of:
            by_agency.setdefault(agency_of[m.pk], set()).add(m.pk)
    for agency_id, ids in by_agency.items():
        refresh(agency_id, ids, now)


def review_keys(review: Review) -> tuple[int, int | None]:
    return review.agency_id, review.recruiter_id
