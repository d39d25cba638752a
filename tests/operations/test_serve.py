import http.cookiejar
import os
import re
import signal
import time
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
    [trigger] = json.loads(manage(served.env, "triggers", "demo-recruitment", "--json"))
    assert trigger["status"] == "accepted"
    assert trigger["recipients"][0]["email"] == "cara@candidate.test"
    assert f"127.0.0.1:{served.smtp_port}" in served.output()
