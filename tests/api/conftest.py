import pytest

from emailsync.agencies.models import User
from emailsync.api.models import ApiKey, ApiSettings
from emailsync.review_requests.models import EmailSyncSettings


def enable_api(agency, method="both"):
    settings = ApiSettings.for_agency(agency)
    settings.method = method
    settings.save()
    return settings


@pytest.fixture
def acme(make_agency):
    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    enable_api(agency)
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    return agency


@pytest.fixture
def sam(acme):
    return User.objects.create_user(
        email="sam@acme.test",
        password="x" * 12,
        full_name="Sam Carter",
        agency=acme,
        role=User.Role.RECRUITER,
    )


@pytest.fixture
def acme_key(acme):
    _row, raw = ApiKey.issue(acme, "ATS", by=acme.admins().get())
    return raw


class ApiClient:
    """Django's test client with an API key and JSON bodies."""

    def __init__(self, client, key):
        self.client, self.key = client, key

    def headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path, params=None, **extra):
        return self.client.get(path, params or {}, headers=self.headers(), **extra)

    def post(self, path, body=None, **extra):
        return self.client.post(
            path,
            body if body is not None else {},
            content_type="application/json",
            headers=self.headers(),
            **extra,
        )

    def patch(self, path, body, **extra):
        return self.client.patch(
            path, body, content_type="application/json", headers=self.headers(), **extra
        )


@pytest.fixture
def api(client, acme_key):
    return ApiClient(client, acme_key)
