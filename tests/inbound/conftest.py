import pytest

from emailsync.agencies.models import User
from emailsync.inbound.models import InboundAddress
from emailsync.review_requests.models import EmailSyncSettings

from .listener import RunningListener
from .mail import FakeDns, SigningKey


@pytest.fixture(scope="session")
def acme_key():
    return SigningKey("acme.test")


@pytest.fixture
def dns(acme_key):
    return FakeDns(acme_key)


@pytest.fixture
def sync_agency(make_agency):
    """Acme, on acme.test, Email Sync on, with a recruiter Sam who sends as sam@acme.test."""
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    User.objects.create_user(
        email="sam@acme.test",
        password="x" * 12,
        full_name="Sam Carter",
        agency=agency,
        role=User.Role.RECRUITER,
    )
    agency.bcc = InboundAddress.current_for(agency).address
    return agency


@pytest.fixture
def listener(dns, transactional_db):
    running = RunningListener(dnsfunc=dns)
    yield running
    running.stop()
