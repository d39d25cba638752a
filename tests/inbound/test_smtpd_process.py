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


def refused_rcpts_against(tmp_path, database_url: str, tries: int, **env) -> tuple[list, str]:
    """A listener whose database is `database_url`, a sending server trying `tries` times to
    give it a message: the RCPT replies, and what the listener logged."""
    env = product_env(
        tmp_path, database_url, EMAILSYNC_INBOUND_DOMAIN="in.emailsync.localhost", **env
    )
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
        for _ in range(tries):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.ehlo("mta.example.org")
                smtp.mail("sam@acme.test")
                replies.append(smtp.rcpt("acme-abcdefghjkmnpqrs@in.emailsync.localhost"))
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    return replies, output


def test_with_the_database_down_the_listener_says_so_in_one_line_and_answers_451(tmp_path):
    # PostgreSQL on a port where nothing listens: connection refused, as when it is down.
    down = f"postgres://postgres@127.0.0.1:{free_port()}/emailsync"
    replies, output = refused_rcpts_against(tmp_path, down, tries=3)  # a server retrying
    assert all(code == 451 for code, _ in replies), replies
    assert "database not reachable (" in output, output
    failures = [line for line in output.splitlines() if "address lookup failed" in line]
    assert len(failures) == 3 and all("database unavailable (" in line for line in failures)
    assert "Traceback" not in output, output


def test_a_database_that_never_answers_is_an_outage_in_one_line_too(tmp_path):
    """A host that accepts the connection and says nothing (a dead server behind a live
    address, a firewall dropping packets) is what DATABASE_CONNECT_TIMEOUT is for. psycopg
    raises ConnectionTimeout, a subclass of its OperationalError, for it: still an outage,
    one warning per refused RCPT, not a traceback at ERROR each time a sender retries."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent_url = f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/emailsync"
        replies, output = refused_rcpts_against(
            tmp_path, silent_url, tries=2, DATABASE_CONNECT_TIMEOUT="1"
        )
    assert all(code == 451 for code, _ in replies), replies
    failures = [line for line in output.splitlines() if "address lookup failed" in line]
    assert len(failures) == 2 and all("database unavailable (" in line for line in failures)
    assert "Traceback" not in output, output


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_lets_a_message_in_data_finish_before_the_listener_exits(tmp_path, processes):
    """A restart (certificate renewal, upgrade) must not cut off a sender mid-message: it would
    have to retry later, on its own schedule. The listener stops taking connections at once
    and waits for open sessions (up to 10 s) before it exits."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emailsync.cli", "smtpd", "--port", str(port)]
        + ["--processes", str(processes)],
        env=product_env(tmp_path, EMAILSYNC_INBOUND_DOMAIN="in.emailsync.localhost"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            reader = client.makefile("rb")

            def say(line: bytes) -> bytes:
                client.sendall(line + b"\r\n")
                reply = reader.readline()
                while reply[3:4] == b"-":
                    reply = reader.readline()
                return reply

            assert reader.readline().startswith(b"220 ")
            assert say(b"EHLO mta.example.org").startswith(b"250")
            assert say(b"MAIL FROM:<sam@acme.test>").startswith(b"250")
            assert say(b"RCPT TO:<postmaster@in.emailsync.localhost>").startswith(b"250")
            assert say(b"DATA").startswith(b"354")
            client.sendall(b"From: sam@acme.test\r\nSubject: half-way\r\n\r\n")
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(1.5)  # the listener would have exited by now if it did not wait
            assert process.poll() is None
            with pytest.raises(OSError):  # no new sessions meanwhile: senders go elsewhere
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            client.sendall(b"the rest\r\n.\r\n")
            assert reader.readline().startswith(b"250 ")
            # A sending server reusing the connection starts no new message that the grace's
            # end could cut off: it is told to come back (to this host's restart, or another MX).
            assert say(b"MAIL FROM:<sam@acme.test>").startswith(b"250")
            assert say(b"RCPT TO:<postmaster@in.emailsync.localhost>").startswith(b"421 4.3.2")
            assert say(b"QUIT").startswith(b"221")
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output, _ = process.communicate(timeout=20)
    assert "Traceback" not in output, output
