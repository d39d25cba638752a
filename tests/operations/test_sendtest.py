"""`emailsync sendtest`: a BCC copy of a welcome email over real SMTP to the listener."""

import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.review_requests.models import ReviewRequest
from tests.inbound.listener import RunningListener
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--json", stdout=StringIO())
    from emailsync.agencies.models import Agency

    return Agency.objects.get(slug="demo-recruitment")


@pytest.fixture
def listener():
    running = RunningListener()
    yield running
    running.stop()


def sendtest(*args) -> str:
    out = StringIO()
    call_command("sendtest", *args, stdout=out)
    return out.getvalue()


def test_a_welcome_email_from_a_demo_recruiter_becomes_a_trigger(demo, listener):
    before = ReviewRequest.objects.filter(agency=demo).count()
    out = sendtest("--to", "jordan.reyes@example.com", "--smtp-port", str(listener.port))
    bcc = InboundAddress.current_for(demo).address
    assert f"RCPT TO:<{bcc}> → 250" in out
    assert "DATA → 250" in out and "trigger" in out
    trigger = Trigger.objects.filter(agency=demo).order_by("-id").first()
    assert trigger.status == "accepted" and trigger.sender == "sam@demo-recruitment.example"
    assert trigger.recruiter.display_name == "Sam Carter"
    request = ReviewRequest.objects.filter(agency=demo).order_by("-id").first()
    assert ReviewRequest.objects.filter(agency=demo).count() == before + 1
    assert request.email == "jordan.reyes@example.com" and request.name == ""


def test_from_cc_and_another_agency(demo, listener, make_agency):
    from emailsync.review_requests.models import EmailSyncSettings

    other = make_agency(name="Other Agency", domains=["other.test"])
    sync = EmailSyncSettings.for_agency(other)
    sync.enabled, sync.trust_from_domain, sync.business_days = True, True, ""
    sync.save()
    out = sendtest(
        "--agency", other.slug, "--from", other.admins().get().email,
        "--to", "a@example.org", "--cc", "b@example.org", "--smtp-port", str(listener.port),
    )  # fmt: skip
    assert "DATA → 250" in out
    trigger = Trigger.objects.get(agency=other)
    assert sorted(trigger.recipients.values_list("email", flat=True)) == [
        "a@example.org",
        "b@example.org",
    ]


def test_explicit_from_and_bcc_need_no_database_lookup(demo, listener, django_assert_num_queries):
    bcc = InboundAddress.current_for(demo).address
    with django_assert_num_queries(0):
        out = sendtest(
            "--to", "x@example.com", "--from", "priya@demo-recruitment.example", "--bcc", bcc,
            "--smtp-port", str(listener.port),
        )  # fmt: skip
    assert "DATA → 250" in out


def test_an_unknown_bcc_address_is_refused_at_rcpt(demo, listener):
    with pytest.raises(CommandError, match="refused the BCC address"):
        sendtest(
            "--to", "x@example.com", "--from", "sam@demo-recruitment.example",
            "--bcc", "nobody-aaaaaaaaaaaaaaaa@in.emailsync.localhost",
            "--smtp-port", str(listener.port),
        )  # fmt: skip


def test_no_listener_says_what_to_do(demo):
    port = free_port()
    with pytest.raises(CommandError, match=f"Cannot connect to 127.0.0.1:{port}.*make run"):
        sendtest("--to", "x@example.com", "--smtp-port", str(port), "--timeout", "2")


def test_unknown_agency_and_bad_addresses(demo):
    with pytest.raises(CommandError, match="No agency 'nope'"):
        sendtest("--to", "x@example.com", "--agency", "nope")
    with pytest.raises(CommandError, match="--to: 'not-an-address'"):
        sendtest("--to", "not-an-address")


def test_the_message_looks_like_a_real_welcome_email(demo):
    """Captured by a bare socket server: headers and both parts, no Bcc header."""
    import email
    import email.policy
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    captured = {}

    def serve():
        conn, _ = server.accept()
        f = conn.makefile("rwb")

        def reply(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        reply("220 test")
        data = []
        while True:
            line = f.readline().decode()
            verb = line[:4].upper()
            if verb == "EHLO":
                reply("250 test")
            elif verb == "DATA":
                reply("354 go")
                while (body := f.readline()) != b".\r\n":
                    data.append(body)
                captured["raw"] = b"".join(data)
                reply("250 2.0.0 OK: trigger 1")
            elif verb == "QUIT":
                reply("221 bye")
                break
            else:
                reply("250 OK")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = sendtest("--to", "jordan@example.com", "--smtp-port", str(port))
    thread.join(5)
    server.close()
    assert "DATA → 250 2.0.0 OK: trigger 1" in out
    message = email.message_from_bytes(captured["raw"], policy=email.policy.default)
    assert message["From"] == "Sam Carter <sam@demo-recruitment.example>"
    assert message["To"] == "jordan@example.com" and message["Bcc"] is None
    assert message["Message-ID"].endswith("@demo-recruitment.example>") and message["Date"]
    assert message.get_body(("plain",)).get_content().startswith("Hi Jordan,")
    assert "<strong>Senior Software Engineer</strong>" in message.get_body(("html",)).get_content()


def test_the_banner_line_is_short_with_the_default_database_and_ports(demo, monkeypatch, settings):
    from emailsync.operations.banner import demo_facts, demo_lines, sendtest_command

    monkeypatch.delenv("DATABASE_URL", raising=False)
    facts = demo_facts()
    # The default var dir too (another one is named on the line: test_helpere_second_terminal).
    settings.VAR_DIR = settings.BASE_DIR / "var"
    assert sendtest_command(facts, "127.0.0.1", 2525) == (
        ".venv/bin/emailsync sendtest --to you@example.com"
    )
    assert sendtest_command(facts, "127.0.0.1", 2526).endswith("--smtp-port 2526")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    line = sendtest_command(facts, "127.0.0.1", 2525)
    assert f"--from sam@demo-recruitment.example --bcc {facts['bcc']}" in line
    lines = "\n".join(demo_lines("http://127.0.0.1:8000/", 2525))
    assert "admin login      admin@demo-recruitment.example / " in lines
    assert "recruiter login  sam@demo-recruitment.example / " in lines


def test_no_demo_agency_no_demo_lines(db):
    from emailsync.operations.banner import demo_lines

    assert demo_lines("http://127.0.0.1:8000/", 2525) == []


def test_the_closing_hint_names_the_demo_delay_only_for_the_demo(
    demo, listener, make_agency, settings
):
    from emailsync.review_requests.models import EmailSyncSettings

    settings.DEBUG, settings.DEVELOPMENT_OUTBOX = True, True
    out = sendtest("--to", "jordan.reyes@example.com", "--smtp-port", str(listener.port))
    assert "the demo agency's is 0" in out and "quarantined" in out
    other = make_agency(name="Other Agency", domains=["other.test"])
    sync = EmailSyncSettings.for_agency(other)
    sync.enabled, sync.trust_from_domain = True, True
    sync.save()
    out = sendtest(
        "--agency", other.slug, "--from", other.admins().get().email,
        "--to", "a@example.org", "--smtp-port", str(listener.port),
    )  # fmt: skip
    assert "DATA → 250" in out and "demo agency" not in out


def test_a_quarantined_trigger_is_not_reported_as_accepted(demo, listener, make_agency):
    # An agency whose mail cannot be authenticated (unsigned, From domain not trusted): the
    # listener still answers 250, having received it, but asks no one.
    from emailsync.review_requests.models import EmailSyncSettings

    other = make_agency(name="Unsigned Agency", domains=["unsigned.test"])
    sync = EmailSyncSettings.for_agency(other)
    sync.enabled, sync.trust_from_domain = True, False
    sync.save()
    with pytest.raises(CommandError, match="received the email but quarantined it"):
        sendtest("--agency", other.slug, "--to", "a@example.org", "--smtp-port", str(listener.port))
    assert Trigger.objects.get(agency=other).status == "quarantined"
    assert not ReviewRequest.objects.filter(agency=other).exists()


def test_an_accepted_trigger_still_says_accepted(demo, listener):
    out = sendtest("--to", "sam.lee@example.com", "--smtp-port", str(listener.port))
    assert "Accepted: a welcome email" in out and "quarantined" not in out
