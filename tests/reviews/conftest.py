from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.agencies.models import User
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source


@pytest.fixture
def acme(make_agency):
    """Acme Recruitment (Email Sync on, sending at any hour) with a recruiter, Sam Carter."""
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled, sync.business_days = True, ""
    sync.save()
    agency.sam = User.objects.create_user(
        email="sam@acme.test",
        password="x" * 12,
        full_name="Sam Carter",
        agency=agency,
        role=User.Role.RECRUITER,
    ).profile
    return agency


@pytest.fixture
def sent_request(acme):
    """A review request as the worker leaves it once sent: link valid for 30 days."""

    def make(email="cara@candidate.test", name="Cara Candidate", role="", **fields):
        now = timezone.now()
        values = dict(
            agency=acme,
            source=Source.EMAIL_SYNC,
            email=email,
            name=name,
            role=role,
            recruiter=acme.sam,
            status=ReviewRequest.Status.SENT,
            created_at=now - timedelta(days=1),
            send_after=now - timedelta(days=1),
            deadline=now + timedelta(days=2),
            sent_at=now - timedelta(hours=1),
            expires_at=now + timedelta(days=30),
        )
        values.update(fields)
        return ReviewRequest.objects.create(**values)

    return make


@pytest.fixture
def answers():
    """A complete, valid form submission."""

    def make(**changes):
        data = {
            "rating": "4",
            "text": "Sam found me a great role within two weeks and kept me informed throughout.",
            "role": "candidate",
            "reviewer_name": "Cara Candidate",
            "display_name_choice": "initial",
            "recommend": "yes",
            "consent": "on",
            "leave_blank": "",
        }
        data.update(changes)
        return {k: v for k, v in data.items() if v is not None}

    return make
