"""The rows of the public pages' two hottest queries, without compiling them on every request.

An agency or recruiter page that is not in the page cache runs a query for its page of reviews
(and the agency page one for its recruiters). Building and compiling those ORM querysets costs
more than PostgreSQL takes to plan and run them, so each is written once as an ORM `values_list`
queryset (the single definition of what it reads: `public_reviews` decides what is public),
compiled once per process and database vendor with placeholder values, and then run with the
request's values through the ordinary Django cursor (so it is counted, logged and wrapped like
any query). The ORM's value converters (SQLite's datetimes and booleans) are applied as the ORM
would. `tests/profiles/test_rows.py` compares every shape with the plain queryset.
"""

import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import F, Q

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.prepared_statements import server_side_cursor
from emailsync.reviews.models import Review, shown_name

from .models import AgencyRating, EmptyRating, RecruiterRating, public_reviews

# Placeholder values no id or slug can have, found again among the compiled parameters.
_PLACEHOLDERS = {
    "agency": -7_300_000_001,
    "recruiter": -7_300_000_002,
    "agency_slug": "\x00agency-slug-placeholder",
    "recruiter_slug": "\x00recruiter-slug-placeholder",
}


def _cursor():
    """The ordinary Django cursor; on PostgreSQL (unless EMAILSYNC_PREPARED_QUERIES is off) one
    whose statements are server-side prepared, so PostgreSQL plans each of these queries once
    per connection rather than on every request (planning the page's five-table join took longer
    than running it)."""
    if connection.vendor != "postgresql" or not settings.EMAILSYNC_PREPARED_QUERIES:
        return connection.cursor()
    return server_side_cursor(prepare=True)


@dataclass
class _Compiled:
    sql: str
    params: list
    slots: list[tuple[int, str]]  # (position in params, placeholder name)
    converters: list[tuple[int, list, object]]


class CompiledQuery:
    """A `values_list` queryset, built by `build(**placeholders)`, run with real values (and, if
    `paged`, an appended LIMIT/OFFSET)."""

    def __init__(self, build, paged=True):
        self.build, self.paged = build, paged
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self) -> _Compiled:
        key = (connection.vendor, connection.alias)
        compiled = self._compiled.get(key)
        if compiled is None:
            queryset = self.build(**_PLACEHOLDERS)
            compiler = queryset.query.get_compiler(using=connection.alias)
            sql, params = compiler.as_sql()
            by_value = {v: k for k, v in _PLACEHOLDERS.items()}
            slots = [
                (i, by_value[p])
                for i, p in enumerate(params)
                if type(p) in (int, str) and p in by_value
            ]
            converters = compiler.get_converters([col for col, _, _ in compiler.select])
            compiled = _Compiled(
                sql=sql + " LIMIT %s OFFSET %s" if self.paged else sql,
                params=list(params),
                slots=slots,
                converters=[(pos, convs, expr) for pos, (convs, expr) in converters.items()],
            )
            with self._lock:
                self._compiled[key] = compiled
        return compiled

    def fetch(self, limit: int | None = None, offset: int = 0, **values) -> list:
        compiled = self._compile()
        params = list(compiled.params)
        for position, name in compiled.slots:
            params[position] = values[name]
        if self.paged:
            params += [limit, offset]
        with _cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return rows
        converted = []
        for row in map(list, rows):
            for position, convs, expression in compiled.converters:
                value = row[position]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[position] = value
            converted.append(row)
        return converted


# --- the page of reviews ------------------------------------------------------------------------

_REVIEW = (
    "id",
    "rating",
    "text",
    "role",
    "reviewer_name",
    "display_name_choice",
    "submitted_at",
    "reply__text",
)
_RECRUITER = (
    "recruiter_id",
    "recruiter__display_name",
    "recruiter__slug",
    "recruiter__user__is_active",
    "recruiter__user__agency_id",
)
_NEWEST_FIRST = ("-submitted_at", "-id")

AGENCY_REVIEWS = CompiledQuery(
    lambda agency, **_: (
        public_reviews(Review.objects.filter(agency_id=agency))
        .order_by(*_NEWEST_FIRST)
        .values_list(*_REVIEW, *_RECRUITER)
    )
)
RECRUITER_REVIEWS = CompiledQuery(
    lambda recruiter, **_: (
        public_reviews(Review.objects.filter(recruiter_id=recruiter))
        .order_by(*_NEWEST_FIRST)
        .values_list(*_REVIEW)
    )
)


class Recruiter:
    __slots__ = ("id", "display_name", "slug")

    def __init__(self, pk, display_name, slug):
        self.id, self.display_name, self.slug = pk, display_name, slug

    @property
    def pk(self):
        return self.id


class Reply:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


class PublicReview:
    """What a public page shows of a review (and what its JSON-LD reads)."""

    __slots__ = (
        "id",
        "rating",
        "text",
        "role",
        "reviewer_name",
        "display_name_choice",
        "submitted_at",
        "reply",
        "recruiter",
        "recruiter_linkable",
        # set by the view
        "report_url",
        "recruiter_url",
        "shown_name",
        "date_iso",
        "date_text",
    )

    @property
    def pk(self):
        return self.id

    @property
    def display_name(self) -> str:
        return shown_name(self.reviewer_name, self.display_name_choice, self.role)


def _review(row, agency_id=None) -> PublicReview:
    review = PublicReview()
    (
        review.id,
        review.rating,
        review.text,
        review.role,
        review.reviewer_name,
        review.display_name_choice,
        review.submitted_at,
        reply_text,
    ) = row[:8]
    # The reply is a one-to-one row and its text is required: NULL means no reply.
    review.reply = Reply(reply_text) if reply_text is not None else None
    review.recruiter, review.recruiter_linkable = None, False
    if agency_id is not None and row[8] is not None:
        _, name, slug, is_active, member_of = row[8:]
        review.recruiter = Recruiter(row[8], name, slug)
        # The recruiter still has a public page: an active member of this review's agency.
        review.recruiter_linkable = bool(is_active) and member_of == agency_id
    return review


def agency_reviews(agency_id: int, limit: int, offset: int) -> list[PublicReview]:
    rows = AGENCY_REVIEWS.fetch(limit, offset, agency=agency_id)
    return [_review(row, agency_id) for row in rows]


def recruiter_reviews(recruiter, limit: int, offset: int) -> list[PublicReview]:
    reviews = [
        _review(row) for row in RECRUITER_REVIEWS.fetch(limit, offset, recruiter=recruiter.pk)
    ]
    for review in reviews:
        review.recruiter = recruiter  # the page's own recruiter
    return reviews


# --- the agency page's recruiters ---------------------------------------------------------------

AGENCY_RECRUITERS = CompiledQuery(
    lambda agency, **_: (
        RecruiterProfile.objects.filter(
            agency_id=agency, user__is_active=True, user__agency_id=agency
        )
        .filter(Q(user__role="recruiter") | Q(rating__count__gt=0))
        .order_by(F("rating__score").desc(nulls_last=True), "display_name", "pk")
        .values_list("id", "display_name", "slug", "rating__count", "rating__total")
    ),
    paged=False,
)


class ListedRecruiter:
    """An active recruiter of the agency page's list, with their rating's count and average."""

    __slots__ = ("id", "display_name", "slug", "rating", "public_url")

    @property
    def pk(self):
        return self.id


def agency_recruiters(agency_id: int) -> list[ListedRecruiter]:
    listed = []
    for pk, name, slug, count, total in AGENCY_RECRUITERS.fetch(agency=agency_id):
        person = ListedRecruiter()
        person.id, person.display_name, person.slug = pk, name, slug
        no_row = count is None
        person.rating = EmptyRating() if no_row else RecruiterRating(count=count, total=total)
        listed.append(person)
    return listed


# --- the page's agency or recruiter, with their rating rows --------------------------------------
#
# What `select_related` would give (the same model instances, the related rows cached, a missing
# rating row cached as missing), from one compiled query.


def _columns(model, prefix=""):
    return [prefix + f.attname for f in model._meta.concrete_fields]


def _instance(model, row, start):
    """The model instance whose columns start at `start`, or None for a LEFT JOIN's NULLs."""
    names = [f.attname for f in model._meta.concrete_fields]
    values = row[start : start + len(names)]
    if values[names.index(model._meta.pk.attname)] is None:
        return None, start + len(names)
    return model.from_db(connection.alias, names, values), start + len(names)


def _with_rating(agency, rating):
    Agency._meta.get_field("rating").set_cached_value(agency, rating)
    if rating is not None:
        AgencyRating._meta.get_field("agency").set_cached_value(rating, agency)
    return agency


AGENCY_BY_SLUG = CompiledQuery(
    lambda agency_slug, **_: (
        Agency.objects.filter(slug=agency_slug)
        .order_by()
        .values_list(*_columns(Agency), *_columns(AgencyRating, "rating__"))
    ),
    paged=False,
)


def agency_by_slug(slug: str):
    found = AGENCY_BY_SLUG.fetch(agency_slug=slug)
    if not found:
        return None
    agency, at = _instance(Agency, found[0], 0)
    rating, _ = _instance(AgencyRating, found[0], at)
    return _with_rating(agency, rating)


RECRUITER_BY_SLUGS = CompiledQuery(
    lambda agency_slug, recruiter_slug, **_: (
        RecruiterProfile.objects.filter(
            agency__slug=agency_slug,
            slug=recruiter_slug,
            user__is_active=True,
            user__agency=F("agency"),
        )
        .order_by()
        .values_list(
            *_columns(RecruiterProfile),
            *_columns(RecruiterRating, "rating__"),
            *_columns(Agency, "agency__"),
            *_columns(AgencyRating, "agency__rating__"),
        )
    ),
    paged=False,
)


def recruiter_by_slugs(agency_slug: str, recruiter_slug: str):
    """An active member's profile in their own agency (only they have a public page)."""
    found = RECRUITER_BY_SLUGS.fetch(agency_slug=agency_slug, recruiter_slug=recruiter_slug)
    if not found:
        return None
    row = found[0]
    recruiter, at = _instance(RecruiterProfile, row, 0)
    rating, at = _instance(RecruiterRating, row, at)
    agency, at = _instance(Agency, row, at)
    agency_rating, _ = _instance(AgencyRating, row, at)
    RecruiterProfile._meta.get_field("rating").set_cached_value(recruiter, rating)
    if rating is not None:
        RecruiterRating._meta.get_field("recruiter").set_cached_value(rating, recruiter)
    RecruiterProfile._meta.get_field("agency").set_cached_value(
        recruiter, _with_rating(agency, agency_rating)
    )
    return recruiter
