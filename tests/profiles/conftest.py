import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.agencies.models import User
from emailsync.review_requests.models import ReviewRequest, Source
from emailsync.reviews.models import Review

_n = itertools.count(1)


def request_for(agency, recruiter=None, email=None, now=None):
    now = now or timezone.now()
    n = next(_n)
    return ReviewRequest(
        agency=agency,
        source=Source.EMAIL_SYNC,
        email=email or f"reviewer{n}@people.test",
        recruiter=recruiter,
        token=f"tok-{n}-{agency.pk}",
        status=ReviewRequest.Status.COMPLETED,
        created_at=now,
        send_after=now,
        deadline=now + timedelta(hours=72),
    )


def review_for(agency, rr, recruiter=None, status="verified", rating=5, when=None, **fields):
    when = when or timezone.now()
    values = dict(
        agency=agency,
        review_request=rr,
        recruiter=recruiter,
        rating=rating,
        text="Found me a great role quickly and kept me informed all the way through.",
        role="candidate",
        reviewer_name="Cara Candidate",
        display_name_choice="initial",
        recommend=True,
        consent=True,
        reviewer_email=rr.email,
        status=status,
        submitted_at=when,
        updated_at=when,
        editable_until=when + timedelta(hours=24),
        verified_at=when if status == "verified" else None,
    )
    values.update(fields)
    return Review(**values)


@pytest.fixture
def make_review():
    """Create one review (verified unless told otherwise), through save() like real code."""

    def make(agency, recruiter=None, status="verified", **fields):
        rr = request_for(agency, recruiter)
        rr.save()
        review = review_for(agency, rr, recruiter, status, **fields)
        review.save()
        return review

    return make


def bulk_reviews(agency, recruiter, count, status="verified", start=None, **fields):
    """Many reviews at once (bulk_create: no signals; refresh the aggregates afterwards)."""
    start = start or timezone.now() - timedelta(days=count)
    requests = ReviewRequest.objects.bulk_create(
        [request_for(agency, recruiter, now=start) for _ in range(count)], batch_size=2000
    )
    reviews = [
        review_for(
            agency,
            rr,
            recruiter,
            status,
            rating=1 + (i * 7) % 5,
            role="client" if i % 3 == 0 else "candidate",
            when=start + timedelta(minutes=i),
            **fields,
        )
        for i, rr in enumerate(requests)
    ]
    return Review.objects.bulk_create(reviews, batch_size=2000)


@pytest.fixture
def acme(make_agency):
    """Acme Recruitment with two recruiters, Sam Carter and Riya Patel."""
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    agency.location = "Leeds, UK"
    agency.website = "https://acme.example"
    agency.save()
    agency.sam = User.objects.create_user(
        email="sam@acme.test", full_name="Sam Carter", agency=agency, role="recruiter"
    ).profile
    agency.sam.job_title = "Senior Recruiter"
    agency.sam.bio = "Ten years placing engineers in Yorkshire."
    agency.sam.specialisms = "Software, Data, DevOps"
    agency.sam.save()
    agency.riya = User.objects.create_user(
        email="riya@acme.test", full_name="Riya Patel", agency=agency, role="recruiter"
    ).profile
    return agency
