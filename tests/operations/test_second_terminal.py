"""A second terminal beside `make run` on other ports and another var dir: the banner's command
works pasted as it is, `agency create`'s link points at the port the web app runs on, and a
command without DEBUG says exactly what to set and where the key is."""

import json
import os
import shlex
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

import emailsync.settings as settings_module
from emailsync.operations.management.commands import serve

BASE_DIR = Path(settings_module.BASE_DIR)
# What `make run`'s environment sets that a fresh terminal does not have.
SERVE_ONLY = {
    "DEBUG",
    "DATABASE_URL",
    "SECRET_KEY",
    "EMAILSYNC_TESTING",
    "EMAILSYNC_VAR_DIR",
    "EMAILSYNC_WEB_PORT",
    "EMAILSYNC_WEB_HOST",
    "EMAILSYNC_SMTP_PORT",
    "EMAILSYNC_SMTP_HOST",
    "EMAILSYNC_PUBLIC_URL",
    "DJANGO_SETTINGS_MODULE",
}


def fresh_terminal(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVE_ONLY}
    env.update(extra)
    return env


def cli(*args, env, cwd=BASE_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emailsync.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """What `EMAILSYNC_VAR_DIR=… make run` leaves: a migrated, seeded SQLite database under a
    var dir that is not the checkout's (with a space in its path, to test the quoting)."""
    var_dir = tmp_path_factory.mktemp("helpere") / "my var"
    env = fresh_terminal(DEBUG="1", EMAILSYNC_VAR_DIR=str(var_dir))
    for args in (("migrate", "--noinput"), ("seed_demo", "--json")):
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
    return var_dir


@pytest.fixture
def smtp_server():
    """A bare SMTP server that accepts one email and records its envelope sender."""
    import socket
    import threading
    from types import SimpleNamespace

    server = socket.create_server(("127.0.0.1", 0))
    state = SimpleNamespace(port=server.getsockname()[1], senders=[])

    def serve():
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as f:

            def reply(line):
                f.write(line.encode() + b"\r\n")
                f.flush()

            reply("220 test")
            while line := f.readline().decode():
                verb = line[:4].upper()
                if verb == "MAIL":
                    state.senders.append(line.split("<", 1)[1].split(">", 1)[0])
                    reply("250 OK")
                elif verb == "DATA":
                    reply("354 go")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    reply("250 2.0.0 OK: trigger 1")
                elif verb == "QUIT":
                    reply("221 bye")
                    break
                else:
                    reply("250 OK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    server.close()


# 1. The banner's command, pasted into another terminal as it is.


def test_the_banner_line_pasted_in_a_fresh_terminal_reaches_the_same_installation(
    installation, smtp_server, tmp_path
):
    """The tester's case: serve ran with EMAILSYNC_VAR_DIR and another SMTP port; the line is
    run by a shell whose environment has neither (its own var dir stands in for the checkout's
    default var/, which the command must not touch)."""
    serve_env = fresh_terminal(DEBUG="1", EMAILSYNC_VAR_DIR=str(installation))
    probe = (
        "import django; django.setup(); from emailsync.operations.banner import demo_lines; "
        f"print('\\n'.join(demo_lines('http://127.0.0.1:8731/', {smtp_server.port})))"
    )
    banner = subprocess.run(
        [sys.executable, "-c", probe],
        env={**serve_env, "DJANGO_SETTINGS_MODULE": "emailsync.settings"},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert banner.returncode == 0, banner.stderr
    line = next(x.strip() for x in banner.stdout.splitlines() if "emailsync sendtest" in x)
    assert line.startswith(f"EMAILSYNC_VAR_DIR={shlex.quote(str(installation))} .venv/bin/")
    assert f"--smtp-port {smtp_server.port}" in line

    elsewhere = tmp_path / "default var"
    result = subprocess.run(
        ["sh", "-c", line],
        env=fresh_terminal(EMAILSYNC_VAR_DIR=str(elsewhere)),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DATA → 250" in result.stdout
    assert smtp_server.senders == ["sam@demo-recruitment.example"]
    # Nothing created where the installation is not: no empty database, key or static dir.
    assert not elsewhere.exists()


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var dir"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--json", stdout=StringIO())
    from emailsync.operations.banner import demo_facts

    return demo_facts()


@pytest.mark.django_db
def test_the_line_names_a_var_dir_that_is_not_the_default_shell_quoted(demo, settings, monkeypatch):
    from emailsync.operations.banner import sendtest_command

    monkeypatch.delenv("DATABASE_URL", raising=False)
    var_dir = os.path.abspath(settings.VAR_DIR)
    assert sendtest_command(demo, "127.0.0.1", 2731) == (
        f"EMAILSYNC_VAR_DIR='{var_dir}' .venv/bin/emailsync sendtest --to you@example.com "
        "--smtp-port 2731"
    )
    settings.VAR_DIR = BASE_DIR / "var"  # the default: nothing to carry
    assert sendtest_command(demo, "127.0.0.1", 2525) == (
        ".venv/bin/emailsync sendtest --to you@example.com"
    )
    # A listener on every IPv6 address is reached at the loopback, not at "::".
    assert sendtest_command(demo, "::", 2525).endswith("--smtp-host ::1")


@pytest.mark.django_db
def test_a_database_url_is_never_printed_and_not_needed(demo, settings, monkeypatch):
    """With DATABASE_URL (which may hold a password) the line names the sender and the BCC
    address itself, so the other terminal needs neither the URL nor the var dir."""
    from emailsync.operations.banner import demo_lines

    monkeypatch.setenv("DATABASE_URL", "postgres://emailsync:s3cret-pw@db.internal:5432/es")
    banner = "\n".join(demo_lines("http://127.0.0.1:8731/", 2731))
    assert "s3cret" not in banner and "DATABASE_URL" not in banner and "postgres" not in banner
    line = next(x.strip() for x in banner.splitlines() if "emailsync sendtest" in x)
    assert line.startswith(".venv/bin/emailsync sendtest")
    assert f"--from sam@demo-recruitment.example --bcc {demo['bcc']}" in line


@pytest.mark.django_db
def test_a_missing_password_names_the_credentials_file(demo, settings):
    from emailsync.operations.banner import demo_lines
    from emailsync.operations.management.commands.seed_demo import credentials_path

    credentials_path().unlink()
    banner = "\n".join(demo_lines("http://127.0.0.1:8000/", 2525))
    assert f"(password not in {credentials_path()})" in banner


# 2. One rule for the public URL: where serve runs the web app.


PUBLIC_URL_PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.EMAILSYNC_PUBLIC_URL)"
)


def public_url(tmp_path, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PUBLIC_URL_PROBE],
        env=fresh_terminal(
            DEBUG="1",
            EMAILSYNC_VAR_DIR=str(tmp_path),
            DJANGO_SETTINGS_MODULE="emailsync.settings",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_default_public_url_follows_the_web_port(tmp_path):
    assert public_url(tmp_path) == "http://127.0.0.1:8000"
    assert public_url(tmp_path, EMAILSYNC_WEB_PORT="8731") == "http://127.0.0.1:8731"
    assert (
        public_url(tmp_path, EMAILSYNC_WEB_HOST="0.0.0.0", EMAILSYNC_WEB_PORT="8731")  # noqa: S104
        == "http://127.0.0.1:8731"
    )
    explicit = {"EMAILSYNC_PUBLIC_URL": "https://reviews.example.com/", "EMAILSYNC_WEB_PORT": "1"}
    assert public_url(tmp_path, **explicit) == "https://reviews.example.com"


@pytest.mark.parametrize(
    "host,port", [("127.0.0.1", 8731), ("0.0.0.0", 8000), ("::", 9000), ("10.1.2.3", 80), ("", 1)]
)
def test_settings_and_serve_give_the_same_address(host, port, monkeypatch):
    """The settings' default is what `serve` hands its children (links in `make run`'s emails)
    and what its banner prints, for the same host and port."""
    monkeypatch.delenv("EMAILSYNC_PUBLIC_URL", raising=False)
    options = {"host": host, "port": port}
    assert settings_module.browser_url(host, port) + "/" == serve.web_url(options)
    assert serve.child_environment(options)["EMAILSYNC_PUBLIC_URL"] == (
        settings_module.browser_url(host, port)
    )


def test_agency_create_from_another_terminal_links_to_the_web_port(installation):
    env = fresh_terminal(DEBUG="1", EMAILSYNC_VAR_DIR=str(installation), EMAILSYNC_WEB_PORT="8731")
    result = cli(
        "agency", "create", "--name", "Port Test", "--admin-email", "boss@porttest.example",
        "--json", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["login_url"].startswith(
        "http://127.0.0.1:8731/accounts/reset/"
    )


# 3. Without DEBUG: say what to set and where the key is.


def test_without_debug_the_error_names_the_key_file_make_run_keeps(installation):
    key = installation / "secret_key"
    assert key.exists() and key.stat().st_mode & 0o077 == 0
    result = cli(
        "agency", "list", "--json", env=fresh_terminal(EMAILSYNC_VAR_DIR=str(installation))
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "SECRET_KEY must be set" in result.stderr
    assert f"development key is in {key}" in result.stderr and "set DEBUG=1" in result.stderr
    # What it says works, with the same key the web app uses.
    with_debug = cli(
        "agency", "list", "--json",
        env=fresh_terminal(EMAILSYNC_VAR_DIR=str(installation), DEBUG="1"),
    )  # fmt: skip
    assert with_debug.returncode == 0, with_debug.stderr
    assert "demo-recruitment" in with_debug.stdout


def test_without_debug_and_no_key_file_it_says_where_one_would_be(tmp_path):
    var_dir = tmp_path / "var"
    result = cli("agency", "list", env=fresh_terminal(EMAILSYNC_VAR_DIR=str(var_dir)))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"keeps it in {var_dir / 'secret_key'}" in result.stderr
    assert "EMAILSYNC_VAR_DIR" in result.stderr and "DEBUG=1" in result.stderr
    assert not var_dir.exists()  # refusing creates nothing
