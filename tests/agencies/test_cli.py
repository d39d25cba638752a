import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emailsync.agencies.models import Agency, User


def run_cli(*args, env_extra=None, db_url=None):
    env = {**os.environ, "EMAILSYNC_TESTING": "1", **(env_extra or {})}
    if db_url:
        env["DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "emailsync.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.django_db
def test_agency_create_prints_one_json_object_with_a_login_link(client):
    out = StringIO()
    call_command(
        "agency",
        "create",
        "--name",
        "Bright Hire",
        "--admin-email",
        "Boss@Bright.test",
        "--domain",
        "bright.test",
        "--domain",
        "brighthire.test",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert {"id", "slug", "name", "admin_email", "login_url"} <= data.keys()
    assert data["slug"] == "bright-hire" and data["admin_email"] == "boss@bright.test"
    assert sorted(data["domains"]) == ["bright.test", "brighthire.test"]
    agency = Agency.objects.get(pk=data["id"])
    assert agency.admins().get().email == "boss@bright.test"
    # The link is a one-time password-set page for that admin.
    page = client.get(data["login_url"].split("8000", 1)[-1], follow=True)
    assert b"Set a password" in page.content


@pytest.mark.django_db
def test_agency_list_json():
    call_command("agency", "create", "--name", "One", "--admin-email", "a@one.test")
    call_command("agency", "create", "--name", "Two", "--admin-email", "a@two.test")
    out = StringIO()
    call_command("agency", "list", "--json", stdout=out)
    assert [a["slug"] for a in json.loads(out.getvalue())] == ["one", "two"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, reason",
    [
        (["--name", "", "--admin-email", "a@b.test"], "--name must not be empty"),
        (["--name", "X", "--admin-email", "not-an-email"], "not a valid email"),
        (["--name", "X", "--admin-email", "a@b.test", "--domain", "not a domain"], "domain"),
        (["--name", "X", "--admin-email", "a@b.test", "--time-zone", "Mars/Base"], "time zone"),
    ],
)
def test_agency_create_rejects_bad_arguments_and_creates_nothing(args, reason):
    with pytest.raises(CommandError, match=reason):
        call_command("agency", "create", *args)
    assert not Agency.objects.exists() and not User.objects.exists()


@pytest.mark.django_db
def test_duplicate_admin_email_is_refused(agency, admin_user):
    with pytest.raises(CommandError, match="already exists"):
        call_command("agency", "create", "--name", "Again", "--admin-email", admin_user.email)


@pytest.mark.slow
def test_cli_error_exits_are_non_zero_with_one_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    assert run_cli("migrate", "-v0", db_url=db).returncode == 0
    missing = run_cli("agency", "create", "--name", "X", db_url=db)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "--admin-email" in missing.stderr
    bad = run_cli("agency", "create", "--name", "X", "--admin-email", "nope", db_url=db)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "not a valid email" in bad.stderr
    ok = run_cli(
        "agency", "create", "--name", "X", "--admin-email", "x@x.test", "--json", db_url=db
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["slug"] == "x"
    unknown = run_cli("agency", "show", "nope", db_url=db)
    assert unknown.returncode == 1 and "No agency" in unknown.stderr


def test_a_missing_secret_key_is_one_line_not_a_traceback():
    """An operator command run in production mode without SECRET_KEY (as from a second
    terminal beside `make run`) says what to set and exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-m", "emailsync.cli", "agency", "list", "--json"],
        capture_output=True,
        text=True,
        env={**env, "EMAILSYNC_TESTING": "0", "DEBUG": "0"},
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "SECRET_KEY must be set" in result.stderr and "DEBUG=1" in result.stderr
