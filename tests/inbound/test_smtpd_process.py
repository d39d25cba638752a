"""The listener as its own process: pre-forked children share the port and never outlive it."""

import signal
import smtplib
import socket
import subprocess
import sys
import time

import pytest

from tests.processes import alive, children_of, free_port, product_env

pytestmark = pytest.mark.slow


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(port)


def test_killing_the_listener_takes_its_forks_with_it(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emailsync.cli", "smtpd", "--port", str(port), "--processes", "2"],
        env=product_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        deadline = time.monotonic() + 10
        while len(children_of(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        forks = children_of(process.pid)
        assert len(forks) == 2
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            assert client.recv(100).startswith(b"220 ")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in forks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in forks if alive(p)]
    finally:
        if process.poll() is None:
            process.kill()


def test_with_the_database_down_the_listener_says_so_in_one_line_and_answers_451(tmp_path):
    # PostgreSQL on a port where nothing listens: connection refused, as when it is down.
    env = product_env(tmp_path)
    env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{free_port()}/emailsync"
    env["EMAILSYNC_INBOUND_DOMAIN"] = "in.emailsync.localhost"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emailsync.cli", "smtpd", "--port", str(port), "--processes", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)
        replies = []
        for _ in range(3):  # a sending server retrying
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.ehlo("mta.example.org")
                smtp.mail("sam@acme.test")
                replies.append(smtp.rcpt("acme-abcdefghjkmnpqrs@in.emailsync.localhost"))
        assert all(code == 451 for code, _ in replies), replies
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert "database not reachable (" in output, output
    failures = [line for line in output.splitlines() if "address lookup failed" in line]
    assert len(failures) == 3 and all("database unavailable (" in line for line in failures)
    assert "Traceback" not in output, output
