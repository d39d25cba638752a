import pytest
from django.db import connection

from tests.inbound.listener import RunningListener

from .checks import setup_agencies
from .corpus import TRUSTED_AUTHSERV
from .dkimdns import StaticDns, records, signing_keys


@pytest.fixture(scope="session")
def fuzz_keys():
    return signing_keys()


@pytest.fixture
def fuzz_bcc(transactional_db, settings):
    """Acme (DKIM) and Beta (trusts its From domain); agency key -> BCC address."""
    settings.EMAILSYNC_TRUSTED_AUTHSERV_IDS = [TRUSTED_AUTHSERV]
    return setup_agencies()


@pytest.fixture
def fuzz_listener(fuzz_bcc, fuzz_keys):
    """The listener the other inbound tests use, in this process, with the corpus's DNS."""
    running = RunningListener(dnsfunc=StaticDns(records(fuzz_keys)))
    yield running
    running.stop()
    # The listener's worker threads keep their own connections; on PostgreSQL those would stop
    # pytest-django from dropping the test database at the end.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
