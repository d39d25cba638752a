import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k, None) for k in ['SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'DEBUG', 'EMAIL_BACKEND', 'ALLOWED_HOSTS']}))"
)


def probe(**env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "EMAILSYNC_TESTING", "DATABASE_URL"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="emailsync.settings", EMAILSYNC_TESTING="0", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=clean, timeout=60
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = probe()
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_production_settings_are_safe():
    result = probe(
        SECRET_KEY="x" * 50, ALLOWED_HOSTS="reviews.example.com", EMAILSYNC_HSTS_SECONDS="31536000"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["ALLOWED_HOSTS"] == ["reviews.example.com"]
    # No outbound server configured and DEBUG off: real SMTP, never the development outbox.
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"


def test_development_outbox_only_with_debug():
    dev = json.loads(probe(DEBUG="1").stdout)
    assert dev["EMAIL_BACKEND"].endswith("DevelopmentOutboxBackend")


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client):
    response = client.get("/accounts/login/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_no_debug_pages(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Traceback" not in response.content and b"URLconf" not in response.content


def test_default_database_is_sqlite_in_wal_mode(tmp_path):
    check = (
        "import django; django.setup(); from django.db import connection as c; "
        "cur = c.cursor(); cur.execute('PRAGMA journal_mode'); print(cur.fetchone()[0]); "
        "print(c.settings_dict['OPTIONS']['transaction_mode'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="emailsync.settings", EMAILSYNC_VAR_DIR=str(tmp_path), DEBUG="1"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.split() == ["wal", "IMMEDIATE"], result.stderr
    assert (tmp_path / "emailsync.sqlite3").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_an_unanswering_postgresql_host_fails_fast_instead_of_hanging(tmp_path):
    """A server that accepts the connection and then says nothing (a wedged host, a black hole
    behind a proxy): connecting gives up after DATABASE_CONNECT_TIMEOUT with an error, so the
    listener can answer 451, instead of waiting for the operating system's minutes-long limit."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    held = []
    threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
    port = silent.getsockname()[1]
    check = (
        "import django; django.setup(); from django.db import connection as c\n"
        "try:\n    c.ensure_connection()\nexcept Exception as e:\n    print('ERROR', e)\n"
        "o = c.settings_dict['OPTIONS']; print(o['connect_timeout'], o['keepalives'])"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="emailsync.settings",
        EMAILSYNC_VAR_DIR=str(tmp_path),
        DEBUG="1",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nothing",
        DATABASE_CONNECT_TIMEOUT="1",
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        silent.close()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ERROR") and "timeout" in lines[0].lower(), result.stdout
    assert lines[-1] == "1 1"
