import itertools
import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls in browser tests
# are made between browser steps, never concurrently with them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def periodic_job_rows_checked_afresh():
    # Each test's database starts without the periodic jobs' rows, and ensure_rows trusts for a
    # minute that it made them: forget that before every test.
    from emailsync.outbox import jobs

    jobs._rows_checked_at = None


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Argon2 is the production hasher (a test checks it); tests hash hundreds of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests change an agency's rules and send at once; a listener may not cache them.
    settings.EMAILSYNC_LISTENER_CACHE_SECONDS = 0


@pytest.fixture
def make_agency(db):
    from emailsync.agencies.models import Agency

    def make(name=None, domains=None, password="correct horse battery", **kwargs):
        n = next(_counter)
        name = name or f"Agency {n}"
        domains = tuple(domains if domains is not None else [f"agency{n}.test"])
        agency, admin = Agency.create_with_admin(
            name=name,
            admin_email=f"admin{n}@{domains[0] if domains else 'example.test'}",
            admin_name=f"Admin {n}",
            password=password,
            domains=domains,
            **kwargs,
        )
        return agency

    return make


@pytest.fixture
def add_member(db):
    from emailsync.agencies.models import User

    def add(agency, role=User.Role.RECRUITER, email=None, password="correct horse battery"):
        n = next(_counter)
        return User.objects.create_user(
            email=email or f"member{n}@{(agency.domain_names() or ['example.test'])[0]}",
            password=password,
            full_name=f"Member {n}",
            agency=agency,
            role=role,
        )

    return add


@pytest.fixture
def agency(make_agency):
    return make_agency(name="Acme Recruitment", domains=["acme.test"])


@pytest.fixture
def admin_user(agency):
    return agency.admins().get()


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is required for browser tests: apt-get install chromium")
    return {
        **browser_type_launch_args,
        "executable_path": chromium,
        "args": [
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-gpu",
        ],
    }
