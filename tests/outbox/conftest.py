from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.agencies.models import User
from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source

from .sink import Sink


@pytest.fixture
def sink(settings):
    running = Sink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", running.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    yield running
    running.stop()


@pytest.fixture
def acme(make_agency):
    """Acme Recruitment with Email Sync on and a recruiter, Sam Carter."""
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled, sync.business_days = True, ""  # send as soon as due unless a test says else
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
def make_request():
    def make(
        agency,
        email="cara@candidate.test",
        *,
        name="Cara Candidate",
        recruiter=None,
        role="",
        send_after=None,
        source=Source.EMAIL_SYNC,
        personal_message="",
    ):
        now = timezone.now()
        send_after = send_after or now - timedelta(minutes=1)
        request = ReviewRequest.objects.create(
            agency=agency,
            source=source,
            email=email,
            name=name,
            role=role,
            recruiter=recruiter if recruiter is not None else getattr(agency, "sam", None),
            personal_message=personal_message,
            created_at=min(now, send_after),
            send_after=send_after,
            deadline=min(now, send_after) + timedelta(hours=72),
        )
        if send_after <= now:  # fallen due: queued, as a worker's claim would have done
            OutboundEmail.objects.create(
                kind=OutboundEmail.Kind.REVIEW_REQUEST,
                template="review_request",
                agency=agency,
                review_request=request,
                to_email=request.email,
                to_name=request.name,
                send_after=request.send_after,
            )
            ReviewRequest.objects.filter(pk=request.pk).update(queued_at=now)
        return request

    return make


@pytest.fixture
def sending_addresses(settings):
    """The public URL, From address and inbound domain the sending tests read back."""
    settings.EMAILSYNC_PUBLIC_URL = "https://reviews.example.com"
    settings.EMAILSYNC_FROM_EMAIL = "reviews@send.example.com"
    settings.EMAILSYNC_INBOUND_DOMAIN = "in.example.com"
