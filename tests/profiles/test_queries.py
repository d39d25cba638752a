"""A page with 10,000 reviews costs the same number of queries as one with 30."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from emailsync.profiles import aggregates
from emailsync.profiles.models import ReviewReply

from .conftest import bulk_reviews

pytestmark = pytest.mark.django_db


def page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def urls(agency):
    return [
        reverse("profiles-agency", args=[agency.slug]),
        reverse("profiles-agency", args=[agency.slug]) + "?page=3",
        reverse("profiles-recruiter", args=[agency.slug, agency.sam.slug]),
        reverse("profiles-widget", args=[agency.slug]) + "?reviews=10",
        reverse("profiles-directory"),
    ]


def seed(agency, count):
    reviews = bulk_reviews(agency, agency.sam, count)
    ReviewReply.objects.bulk_create(
        [ReviewReply(review=r, text="Thanks!") for r in reviews[: count // 2]]
    )
    aggregates.refresh(agency.pk, {agency.sam.pk})


def test_constant_queries_from_10_to_10000_reviews(client, acme, make_agency):
    small = acme
    seed(small, 30)
    small_counts = [page_queries(client, url) for url in urls(small)]

    big = make_agency(name="Big Agency")
    from emailsync.agencies.models import User

    big.sam = User.objects.create_user(
        email="sam@big.test", full_name="Sam Big", agency=big, role="recruiter"
    ).profile
    seed(big, 10_000)
    big_counts = [page_queries(client, url) for url in urls(big)]
    assert big_counts == small_counts
    assert max(big_counts) <= 4, big_counts
    body = client.get(urls(big)[0]).content.decode()
    assert "10,000 verified reviews" in body or "10000 verified reviews" in body
