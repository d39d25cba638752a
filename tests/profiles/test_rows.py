"""The pages' compiled queries return exactly what the plain ORM querysets return."""

import pytest
from django.db import connection
from django.db.models import F, Q

from emailsync.agencies.models import Agency, RecruiterProfile, User
from emailsync.profiles import rows
from emailsync.profiles.models import (
    AgencyRating,
    Moderation,
    ReviewReply,
    public_reviews,
    rating_of,
)
from emailsync.reviews.models import Review

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(acme, make_review, make_agency):
    other = make_agency(name="Other Agency")
    made = []
    for i in range(14):
        made.append(make_review(acme, acme.sam if i % 2 else acme.riya, rating=1 + i % 5))
    made.append(make_review(acme, None, text="No recruiter named."))
    made.append(make_review(acme, acme.sam, "missing_verification"))
    made.append(make_review(acme, acme.sam, "rejected"))
    made.append(make_review(other, None))
    Moderation.objects.create(review=made[3], hidden_reason="Abusive")
    ReviewReply.objects.create(review=made[4], text="Thank you!")
    ReviewReply.objects.create(review=made[5], text="We are sorry to hear it.")
    return made


def expected(queryset, limit, offset):
    return list(
        public_reviews(queryset)
        .select_related("recruiter__user", "reply")
        .order_by("-submitted_at", "-id")[offset : offset + limit]
    )


def same(found, want, agency):
    assert [r.pk for r in found] == [r.pk for r in want]
    for got, review in zip(found, want, strict=True):
        assert (got.rating, got.text, got.role, got.submitted_at) == (
            review.rating,
            review.text,
            review.role,
            review.submitted_at,
        )
        assert got.display_name == review.display_name
        reply = getattr(review, "reply", None)
        assert (got.reply.text if got.reply else None) == (reply.text if reply else None)


@pytest.mark.parametrize("offset", [0, 10])
def test_agency_reviews(acme, history, offset):
    found = rows.agency_reviews(acme.pk, 10, offset)
    want = expected(Review.objects.filter(agency=acme), 10, offset)
    same(found, want, acme)
    for got, review in zip(found, want, strict=True):
        assert (got.recruiter.pk if got.recruiter else None) == review.recruiter_id
        if review.recruiter:
            user = review.recruiter.user
            assert got.recruiter_linkable == (user.is_active and user.agency_id == acme.pk)
            assert got.recruiter.slug == review.recruiter.slug


def test_agency_reviews_know_who_left(acme, history):
    user = acme.riya.user
    user.is_active = False
    user.save()
    found = rows.agency_reviews(acme.pk, 20, 0)
    linkable = {r.recruiter.pk: r.recruiter_linkable for r in found if r.recruiter}
    assert linkable == {acme.sam.pk: True, acme.riya.pk: False}


def test_recruiter_reviews(acme, history):
    found = rows.recruiter_reviews(acme.sam, 10, 0)
    same(found, expected(Review.objects.filter(recruiter=acme.sam), 10, 0), acme)
    assert {r.recruiter for r in found} == {acme.sam}


def test_agency_recruiters(acme, history, add_member):
    add_member(acme, role=User.Role.ADMIN)  # an admin without reviews is not listed
    found = rows.agency_recruiters(acme.pk)
    want = list(
        RecruiterProfile.objects.filter(agency=acme, user__is_active=True, user__agency=acme)
        .filter(Q(user__role="recruiter") | Q(rating__count__gt=0))
        .select_related("rating")
        .order_by(F("rating__score").desc(nulls_last=True), "display_name", "pk")
    )
    assert [(p.pk, p.display_name, p.slug) for p in found] == [
        (p.pk, p.display_name, p.slug) for p in want
    ]
    for got, profile in zip(found, want, strict=True):
        assert (got.rating.count, got.rating.average) == (
            rating_of(profile).count,
            rating_of(profile).average,
        )


def fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_agency_by_slug_is_select_related(acme, history, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = rows.agency_by_slug(acme.slug)
        rating = rating_of(found)
    want = Agency.objects.select_related("rating").get(pk=acme.pk)
    assert fields(found) == fields(want)
    assert fields(rating) == fields(want.rating)
    assert rows.agency_by_slug("no-such-agency") is None


def test_an_agency_without_a_rating_row(acme, django_assert_num_queries):
    AgencyRating.objects.filter(agency=acme).delete()
    with django_assert_num_queries(1):
        assert rating_of(rows.agency_by_slug(acme.slug)).count == 0


def test_recruiter_by_slugs_is_select_related(acme, history, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = rows.recruiter_by_slugs(acme.slug, acme.sam.slug)
        agency, rating, agency_rating = found.agency, rating_of(found), rating_of(found.agency)
    want = RecruiterProfile.objects.select_related("agency__rating", "rating").get(pk=acme.sam.pk)
    assert fields(found) == fields(want)
    assert fields(rating) == fields(want.rating)
    assert fields(agency) == fields(want.agency)
    assert fields(agency_rating) == fields(want.agency.rating)
    assert rows.recruiter_by_slugs(acme.slug, "nobody") is None
    assert rows.recruiter_by_slugs("other-agency", acme.sam.slug) is None
    user = acme.sam.user
    user.is_active = False
    user.save()
    assert rows.recruiter_by_slugs(acme.slug, acme.sam.slug) is None


def test_prepared_on_postgresql_and_the_same_without(acme, history, settings):
    settings.EMAILSYNC_PREPARED_QUERIES = False
    plain = [r.pk for r in rows.agency_reviews(acme.pk, 10, 0)]
    settings.EMAILSYNC_PREPARED_QUERIES = True
    for _ in range(2):
        assert [r.pk for r in rows.agency_reviews(acme.pk, 10, 0)] == plain
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any("reviews_review" in s for s in statements), statements


def test_the_logged_statement_has_its_values(acme, history):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        rows.agency_reviews(acme.pk, 10, 0)
    (query,) = captured.captured_queries
    assert "$1" not in query["sql"]
    assert f"= {acme.pk}" in query["sql"] and "LIMIT 10" in query["sql"]


def test_averages_round_halves_up_to_one_decimal():
    from emailsync.profiles.models import one_decimal

    assert one_decimal(17, 4) == 4.3  # 4.25: float rounding said 4.2
    assert [one_decimal(t, c) for t, c in [(13, 3), (14, 3), (5, 1), (9, 2), (449, 100)]] == [
        4.3,
        4.7,
        5.0,
        4.5,
        4.5,
    ]
    assert one_decimal(0, 0) is None
