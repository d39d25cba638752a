import pytest

from emailsync.agencies.models import User
from emailsync.review_requests.models import EmailSyncSettings


@pytest.fixture
def acme(make_agency):
    """Acme Recruitment (Email Sync on, any hour) with a recruiter, Sam Carter."""
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled, sync.business_days = True, ""
    sync.save()
    agency.admin = agency.admins().get()
    agency.sam = User.objects.create_user(
        email="sam@acme.test",
        password="correct horse battery",
        full_name="Sam Carter",
        agency=agency,
        role=User.Role.RECRUITER,
    )
    return agency


@pytest.fixture
def admin(acme, client):
    client.force_login(acme.admin)
    return client


@pytest.fixture
def make_review(acme):
    """A review in Missing Verification, from `email`, for Sam unless told otherwise."""
    from datetime import timedelta

    from django.utils import timezone

    from emailsync.review_requests.models import ReviewRequest, Source
    from emailsync.reviews.models import Review

    def make(email="cara@candidate.test", name="Cara Candidate", recruiter=None, **fields):
        now = timezone.now()
        recruiter = recruiter or acme.sam.profile
        rr = ReviewRequest.objects.create(
            agency=acme,
            source=Source.EMAIL_SYNC,
            email=email,
            name=name,
            recruiter=recruiter,
            status=ReviewRequest.Status.COMPLETED,
            send_after=now,
            deadline=now + timedelta(hours=72),
            sent_at=now,
            completed_at=now,
            placement_ref=fields.pop("placement_ref", ""),
        )
        values = dict(
            agency=acme,
            review_request=rr,
            recruiter=recruiter,
            placement_ref=rr.placement_ref,
            rating=5,
            text="Sam found me a great role within two weeks and kept me informed.",
            role="candidate",
            reviewer_name=name,
            recommend=True,
            consent=True,
            reviewer_email=email,
            status=Review.Status.MISSING_VERIFICATION,
            editable_until=now + timedelta(hours=24),
        )
        values.update(fields)
        return Review.objects.create(**values)

    return make
