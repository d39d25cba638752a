"""The listener as its own process: pre-forked children share the port and never outlive it."""

import signal
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
