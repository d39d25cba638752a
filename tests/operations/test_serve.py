import contextlib
import http.cookiejar
import os
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.processes import Served, alive, children_of, wait_for_http

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only look (banner, links, media)."""
    server = Served(tmp_path_factory.mktemp("shared"))
    yield server
    server.stop()


def sign_in(base: str, email: str, password: str) -> tuple[int, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": email, "password": password}
    ).encode()
    request = urllib.request.Request(
        base + "/accounts/login/", data=data, headers={"Referer": base + "/accounts/login/"}
    )
    with opener.open(request) as response:
        return response.status, response.geturl(), response.read().decode()


def test_serve_brings_up_a_login_page_where_the_demo_admin_signs_in(served):
    email = "admin@demo-recruitment.example"
    status, final_url, body = sign_in(served.url, email, served.demo["logins"][email])
    assert status == 200 and final_url.endswith("/app/")
    assert "Demo Recruitment" in body and "Sam Carter" in body
    assert "web" in served.output() and f"127.0.0.1:{served.web_port}" in served.output()


def test_static_files_are_served(served):
    with urllib.request.urlopen(served.url + "/static/css/app.css") as response:
        assert response.status == 200 and b"--brand" in response.read()


def test_ctrl_c_leaves_no_process_behind(served):
    tree = children_of(served.process.pid)
    assert tree
    everything = tree + [g for c in tree for g in children_of(c)]
    assert served.stop(signal.SIGINT) == 0
    deadline = time.monotonic() + 10
    while any(alive(p) for p in everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in everything if alive(p)]


def test_a_dead_child_is_restarted(served):
    before = set(children_of(served.process.pid))
    web = min(before)  # the web server is started first
    os.kill(web, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = set(children_of(served.process.pid))
        if now - before and all(alive(p) for p in now):
            break
        time.sleep(0.2)
    wait_for_http(served.url + "/health")
    assert "web killed by SIGKILL; restarting" in served.output()


def test_serve_runs_the_smtp_listener_and_a_trigger_lands(served):
    import json
    import smtplib

    from tests.inbound.mail import build
    from tests.processes import manage

    bcc = served.demo["bcc address"]
    raw = build(
        sender="Sam Carter <sam@demo-recruitment.example>",
        to=("Cara Candidate <cara@candidate.test>",),
    )
    deadline = time.monotonic() + 20
    while True:  # the listener starts beside the web server; give it a moment
        try:
            smtp = smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with smtp:
        smtp.sendmail("sam@demo-recruitment.example", [bcc], raw)
    triggers = json.loads(manage(served.env, "triggers", "demo-recruitment", "--json"))
    # The demo history has triggers of its own; ours is the one that asked Cara.
    [trigger] = [t for t in triggers if t["recipients"][0]["email"] == "cara@candidate.test"]
    assert trigger["status"] == "accepted"
    assert trigger["recipients"][0]["email"] == "cara@candidate.test"
    assert f"127.0.0.1:{served.smtp_port}" in served.output()


def child_pid(served, name: str, after: int = 0) -> int:
    """The pid `serve` logged for its `name` child (the latest one started)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.findall(rf"\[serve\] {name} started \(pid (\d+)\)", served.output())
        if found and int(found[-1]) != after:
            return int(found[-1])
        time.sleep(0.2)
    raise AssertionError(f"no {name} child started:\n{served.output()}")


def descendants(pid: int) -> list[int]:
    found = []
    for child in children_of(pid):
        found += [child, *descendants(child)]
    return found


def wait_for_banner(served) -> str:
    deadline = time.monotonic() + 60
    while "Email Sync is running" not in served.output():
        assert time.monotonic() < deadline, served.output()
        time.sleep(0.2)
    time.sleep(0.3)
    return served.output()


def test_the_banner_names_logins_bcc_outbox_and_a_sendtest_line(shared):
    banner = wait_for_banner(shared).split("Email Sync is running", 1)[1]
    for email, password in shared.demo["logins"].items():
        assert f"{email} / {password}" in banner
    assert shared.demo["bcc address"] in banner
    assert f"http://127.0.0.1:{shared.web_port}/dev/outbox/" in banner
    assert f"http://127.0.0.1:{shared.web_port}/agencies/demo-recruitment/" in banner
    line = next(x.strip() for x in banner.splitlines() if "sendtest" in x)
    assert line.startswith(".venv/bin/emailsync sendtest --to you@example.com")
    assert f"--smtp-port {shared.smtp_port}" in line


def test_the_banner_sendtest_line_works_as_printed(shared):
    """Run the printed command (minus the venv path) exactly as a user would paste it."""
    import shlex
    import subprocess
    import sys

    banner = wait_for_banner(shared)
    line = next(x.strip() for x in banner.splitlines() if "emailsync sendtest" in x)
    words = shlex.split(line)
    # A fresh terminal: no DEBUG, no DATABASE_URL. serve ran with DATABASE_URL set, so the line
    # names the sender and BCC address itself and needs no database.
    assert "--bcc" in words and "--from" in words
    env = {k: v for k, v in shared.env.items() if k not in ("DEBUG", "DATABASE_URL")}
    env["EMAILSYNC_VAR_DIR"] = str(shared.var_dir / "elsewhere")
    result = subprocess.run(
        [sys.executable, "-m", "emailsync.cli", *words[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "DATA → 250" in result.stdout


def test_email_links_point_at_the_port_serve_runs_on(shared):
    """Children get EMAILSYNC_PUBLIC_URL for serve's own port unless the environment set one."""
    assert "EMAILSYNC_PUBLIC_URL" not in shared.env
    worker = child_pid(shared, "worker")
    with open(f"/proc/{worker}/environ", "rb") as f:
        environ = f.read().split(b"\0")
    assert f"EMAILSYNC_PUBLIC_URL={shared.url}".encode() in environ


def test_recruiter_photos_are_served(shared):
    page = (
        urllib.request.urlopen(shared.url + "/agencies/demo-recruitment/recruiters/sam-carter/")
        .read()
        .decode()
    )
    src = re.search(r'<img class="pf-photo" src="([^"]+)"', page).group(1)
    with urllib.request.urlopen(shared.url + src) as response:
        assert response.status == 200
        assert response.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_killed_worker_is_restarted(served):
    worker = child_pid(served, "worker")
    os.kill(worker, signal.SIGKILL)
    replacement = child_pid(served, "worker", after=worker)
    assert replacement != worker and alive(replacement)
    assert "worker killed by SIGKILL; restarting" in served.output()


def test_a_killed_listener_leaves_no_forks_holding_the_port(tmp_path):
    import smtplib

    server = Served(tmp_path, "--smtp-processes", "2")
    try:
        wait_for_banner(server)
        smtpd = child_pid(server, "smtpd")
        forks = children_of(smtpd)
        assert len(forks) == 2
        os.kill(smtpd, signal.SIGKILL)
        replacement = child_pid(server, "smtpd", after=smtpd)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in forks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in forks if alive(p)]  # swept with their process group
        deadline = time.monotonic() + 30
        while True:  # the replacement binds the port again and answers
            try:
                with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=5) as smtp:
                    assert smtp.noop()[0] == 250
                break
            except OSError:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.3)
        assert alive(replacement)
    finally:
        server.stop()


def test_ctrl_c_stops_web_workers_listener_forks_and_worker(tmp_path):
    server = Served(tmp_path, "--smtp-processes", "2", "--web-workers", "2")
    try:
        wait_for_banner(server)
        everything = descendants(server.process.pid)
        smtpd = child_pid(server, "smtpd")
        worker = child_pid(server, "worker")
        assert len(children_of(smtpd)) == 2 and worker in everything
        assert len(everything) >= 1 + 2 + 1 + 2 + 1  # web + workers, smtpd + forks, worker
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0
    deadline = time.monotonic() + 10
    while any(alive(p) for p in everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in everything if alive(p)]
    assert "[serve] stopped" in (tmp_path / "serve.log").read_text()


def test_serve_refuses_ports_already_in_use_instead_of_announcing_itself():
    """A second `serve` on the same ports used to print "Email Sync is running" (the first one
    answered its readiness check) and then restart children that could not bind, for ever."""
    import socket

    from django.core.management import call_command
    from django.core.management.base import CommandError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=rf"127.0.0.1:{port} is already in use.*--port"):
            call_command("serve", "--port", str(port), "--no-smtp", "--no-worker")
        with pytest.raises(CommandError, match=r"already in use.*EMAILSYNC_SMTP_PORT"):
            call_command("serve", "--port", "0", "--smtp-port", str(port), "--no-worker")


def test_access_and_request_logs_carry_no_tokens(shared):
    wait_for_banner(shared)
    token = "Zq7FakeTokenForTheLogTest123456"
    for path in (f"/review/{token}/", f"/accounts/reset/Mw/abcdef-{token.lower()}/"):
        with contextlib.suppress(urllib.error.HTTPError):  # an unknown link: 404
            urllib.request.urlopen(shared.url + path)
    deadline = time.monotonic() + 10
    while not all(s in shared.output() for s in ("/review/Zq7…/", "/reset/Mw/abc…/")):
        assert time.monotonic() < deadline, shared.output()[-3000:]
        time.sleep(0.2)
    output = shared.output()
    assert token not in output and token.lower() not in output
    assert "/accounts/reset/Mw/abc…/" in output
