"""The listener over real sockets: exact reply lines for each case, then the database."""

import smtplib
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from emailsync.inbound import smtp as smtp_module
from emailsync.inbound.authenticity import CachedTxtResolver
from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest

from .listener import RunningListener
from .mail import build


def transcript(port: int, lines: list[bytes]) -> list[str]:
    """Speak SMTP line by line over a raw socket and collect every reply line."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def read_reply():
            while True:
                line = reader.readline().decode().rstrip("\r\n")
                replies.append(line)
                if len(line) < 4 or line[3] != "-":
                    return

        read_reply()
        for line in lines:
            sock.sendall(line)
            if line.endswith(b"\r\n") and not line.startswith(b"Subject") and line != b"\r\n":
                read_reply()
    return replies


def test_greeting_names_our_host(listener):
    with listener.client() as smtp:
        code, text = smtp.ehlo()
    assert code == 250 and text.decode().startswith("mx.emailsync.localhost")


def test_signed_trigger_gets_250_naming_the_trigger(listener, sync_agency, acme_key):
    raw = acme_key.sign(build(to=("Cara <cara@candidate.test>",)))
    code, text = listener.send(raw, [sync_agency.bcc])
    trigger = Trigger.objects.get()
    assert (code, text) == (250, f"2.0.0 OK: trigger {trigger.pk}")
    assert trigger.status == "accepted"
    assert ReviewRequest.objects.get().email == "cara@candidate.test"


def test_retried_delivery_is_250_and_creates_nothing(listener, sync_agency, acme_key):
    raw = acme_key.sign(build(message_id="<retry@acme.test>"))
    listener.send(raw, [sync_agency.bcc])
    code, text = listener.send(raw, [sync_agency.bcc])
    trigger = Trigger.objects.get()
    assert (code, text) == (250, f"2.0.0 OK: already received as trigger {trigger.pk}")
    assert ReviewRequest.objects.count() == 1


def test_rcpt_replies(listener, sync_agency):
    domain = sync_agency.bcc.split("@")[1]
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(f"acme-aaaaaaaaaaaaaaaa@{domain}") == (
            550,
            b"5.1.1 This Email Sync address does not exist or is no longer in use",
        )
        assert smtp.rcpt("someone@elsewhere.test") == (550, b"5.1.1 No such mailbox here")
        assert smtp.rcpt(f"postmaster@{domain}") == (250, b"2.1.5 OK")
        assert smtp.rcpt(sync_agency.bcc) == (250, b"2.1.5 OK")


def test_postmaster_without_a_domain_is_accepted(listener, sync_agency):
    """RFC 5321 4.5.1: `RCPT TO:<Postmaster>` with no domain MUST be supported."""
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("someone@elsewhere.test")
        assert smtp.rcpt("Postmaster") == (250, b"2.1.5 OK")
        assert smtp.rcpt("postmaster") == (250, b"2.1.5 OK")
        assert smtp.data(build())[0] == 250
    assert not Trigger.objects.exists()


def test_a_refused_address_near_a_real_one_keeps_its_token_out_of_the_log(
    listener, sync_agency, caplog
):
    local, domain = sync_agency.bcc.split("@")
    token = local.rsplit("-", 1)[1]
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        for near in (f"{local}+tag", f"{local}x", f"{local[:-1]}"):
            assert smtp.rcpt(f"{near}@{domain}")[0] == 550
    assert "rcpt refused" in caplog.text
    assert token[3:12] not in caplog.text


def test_a_refused_address_elsewhere_is_a_persons_and_is_logged_by_its_domain_only(
    listener, caplog
):
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt("zoe.candidate@example.org")[0] == 550
    assert "rcpt refused: z…@example.org" in caplog.text
    assert "zoe.candidate" not in caplog.text


def test_rotated_out_and_disabled_addresses_are_refused(listener, sync_agency):
    old = sync_agency.bcc
    InboundAddress.rotate(sync_agency)
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(old)[0] == 250  # inside the grace period
    InboundAddress.objects.filter(retired_at__isnull=False).update(
        accept_until=timezone.now() - timedelta(seconds=1)
    )
    new = InboundAddress.current_for(sync_agency).address
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(old)[0] == 550
        assert smtp.rcpt(new)[0] == 250
    EmailSyncSettings.objects.filter(agency=sync_agency).update(enabled=False)
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        # The recruiter who BCC'd us reads this in the bounce.
        assert smtp.rcpt(new) == (
            550,
            b"5.1.1 Email Sync is switched off for this agency; its admin can switch it on",
        )
        # Rotated out: no longer in use, whatever the switch says.
        assert smtp.rcpt(old) == (
            550,
            b"5.1.1 This Email Sync address does not exist or is no longer in use",
        )


def test_a_null_reverse_path_is_an_automatic_message(listener, sync_agency, acme_key):
    """MAIL FROM:<> marks bounces and automatic replies (RFC 5321 4.5.5, RFC 3834 3.3), which
    are never triggers, whatever their headers say; an ATS's structured data still is one."""
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("<>")
        assert smtp.rcpt(sync_agency.bcc)[0] == 250
        code, text = smtp.data(acme_key.sign(build(to=("Bo <bo@candidate.test>",))))
        assert code == 250
        data = [("X-EmailSync-Placement", "PL-77"), ("X-EmailSync-Role", "candidate")]
        smtp.mail("<>")
        assert smtp.rcpt(sync_agency.bcc)[0] == 250
        raw = acme_key.sign(build(to=("Di <di@candidate.test>",), extra_headers=data))
        assert smtp.data(raw)[0] == 250
    automatic, meant = Trigger.objects.order_by("pk")
    assert text.decode() == f"2.0.0 OK: trigger {automatic.pk}"
    assert (automatic.status, automatic.reason) == ("skipped", "auto_submitted")
    assert meant.status == "accepted"
    assert list(ReviewRequest.objects.values_list("email", flat=True)) == ["di@candidate.test"]


def test_too_many_recipients_in_one_transaction(listener, sync_agency):
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        for _ in range(20):
            assert smtp.rcpt(sync_agency.bcc)[0] == 250
        assert smtp.rcpt(sync_agency.bcc) == (452, b"4.5.3 Too many recipients in one message")


def test_rate_limit_answers_450(listener, sync_agency, acme_key):
    EmailSyncSettings.objects.filter(agency=sync_agency).update(rate_limit_per_hour=2)
    with listener.client() as smtp:
        smtp.ehlo()
        for n in range(2):
            smtp.mail("sam@acme.test")
            assert smtp.rcpt(sync_agency.bcc)[0] == 250
            assert smtp.data(acme_key.sign(build(to=(f"person{n}@candidate.test",))))[0] == 250
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(sync_agency.bcc) == (
            450,
            b"4.7.1 Too many messages for this address, please try again later",
        )


def test_the_rate_limit_counts_messages_not_rcpt_commands(listener, sync_agency, acme_key):
    """Transactions that are reset, and an address repeated in one transaction, deliver nothing
    and must not use up the agency's hour: anyone who knows the address could otherwise stop
    its email with RCPT and RSET alone."""
    EmailSyncSettings.objects.filter(agency=sync_agency).update(rate_limit_per_hour=2)
    with listener.client() as smtp:
        smtp.ehlo()
        for _ in range(5):
            smtp.mail("sam@acme.test")
            assert smtp.rcpt(sync_agency.bcc)[0] == 250
            assert smtp.rcpt(sync_agency.bcc)[0] == 250
            smtp.rset()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(sync_agency.bcc)[0] == 250
        assert smtp.rcpt(sync_agency.bcc)[0] == 250
        assert smtp.data(acme_key.sign(build()))[0] == 250
    assert Trigger.objects.count() == 1


def test_oversized_message_gets_552(dns, transactional_db, sync_agency, acme_key):
    small = RunningListener(dnsfunc=dns, data_size_limit=10_000)
    try:
        raw = acme_key.sign(build(body="x" * 20_000))
        with small.client() as smtp:
            smtp.ehlo()
            smtp.mail("sam@acme.test")
            smtp.rcpt(sync_agency.bcc)
            too_big = (552, b"5.3.4 Message too big: the limit here is 10,000 bytes")
            assert smtp.data(raw) == too_big
            smtp.rset()  # a size declared up front is refused at MAIL, with the same reply
            assert smtp.mail("sam@acme.test", options=["SIZE=20000"]) == too_big
        assert not Trigger.objects.exists()
    finally:
        small.stop()


def test_session_cap_answers_421(dns, transactional_db):
    capped = RunningListener(dnsfunc=dns, max_sessions=1)
    try:
        first = capped.client()
        first.ehlo()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            capped.client()
        assert refused.value.smtp_code == 421
        first.quit()
        capped.client().quit()  # a slot is free again
    finally:
        capped.stop()


def test_database_failure_answers_451_and_keeps_nothing(
    listener, sync_agency, acme_key, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("emailsync.inbound.smtp.ingest_batch", broken)
    code, text = listener.send(acme_key.sign(build()), [sync_agency.bcc])
    assert (code, text) == (451, "4.3.0 Temporary failure, please try again later")
    assert not Trigger.objects.exists()
    # Logged once, with its traceback: not once by the committer and again by the session.
    assert len([r for r in caplog.records if r.exc_info]) == 1


def test_postmaster_only_message_is_accepted_and_discarded(listener, sync_agency):
    domain = sync_agency.bcc.split("@")[1]
    code, _ = listener.send(build(), [f"postmaster@{domain}"])
    assert code == 250 and not Trigger.objects.exists()


def test_raw_transcript(listener, sync_agency, acme_key):
    raw = acme_key.sign(build(message_id="<transcript@acme.test>"))
    replies = transcript(
        listener.port,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<sam@acme.test>\r\n",
            b"RCPT TO:<nobody@in.emailsync.localhost>\r\n",
            f"RCPT TO:<{sync_agency.bcc}>\r\n".encode(),
            b"DATA\r\n",
            raw + b".\r\n",
            b"QUIT\r\n",
        ],
    )
    trigger = Trigger.objects.get()
    assert replies[0].startswith("220 mx.emailsync.localhost")
    assert "250 2.1.0 OK" in replies or any(r.startswith("250 ") for r in replies[1:])
    assert "550 5.1.1 No such mailbox here" in replies
    assert "354 End data with <CR><LF>.<CR><LF>" in replies
    assert f"250 2.0.0 OK: trigger {trigger.pk}" in replies
    assert replies[-1].startswith("221")


def self_signed(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.emailsync.localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_opportunistic_starttls(tmp_path, dns, transactional_db, sync_agency, acme_key):
    import ssl

    from emailsync.inbound.smtp import tls_context

    secure = RunningListener(dnsfunc=dns, tls=tls_context(*self_signed(tmp_path)))
    try:
        with secure.client() as smtp:  # without TLS: still accepted (an MX must not insist)
            assert smtp.ehlo()[0] == 250 and smtp.has_extn("starttls")
        client_context = ssl.create_default_context()
        client_context.check_hostname, client_context.verify_mode = False, ssl.CERT_NONE
        with secure.client() as smtp:
            smtp.ehlo()
            assert smtp.starttls(context=client_context)[0] == 220
            smtp.ehlo()
            # An MX that takes no logins must not offer any (RFC 4954 3): a sending server set
            # to authenticate wherever it can would try, fail and defer instead of delivering.
            assert not smtp.has_extn("auth")
            assert smtp.docmd("AUTH", "PLAIN AHVzZXIAcGFzcw==")[0] in {502, 504}
            code, commands = smtp.docmd("HELP")
            assert code == 250 and b"DATA" in commands and b"AUTH" not in commands
            smtp.mail("sam@acme.test")
            smtp.rcpt(sync_agency.bcc)
            code, text = smtp.data(acme_key.sign(build()))
        assert code == 250 and Trigger.objects.get().status == "accepted"
    finally:
        secure.stop()


def test_smtpd_command_refuses_half_a_certificate(tmp_path):
    from django.core.management import CommandError, call_command

    cert, _ = self_signed(tmp_path)
    with pytest.raises(CommandError, match="go together"):
        call_command("smtpd", "--tls-cert", cert)


class RecordingResolver(CachedTxtResolver):
    """The production resolver's cache in front of FakeDns; records where lookups ran."""

    def __init__(self, dns):
        super().__init__()
        self.dns, self.lookup_threads = dns, []

    def _lookup(self, name, timeout):
        self.lookup_threads.append(threading.current_thread().name)
        return self.dns(name)


def test_a_cached_key_is_verified_on_the_loop_and_a_new_one_on_a_thread(
    transactional_db, sync_agency, acme_key, dns, monkeypatch
):
    ran_in = []
    real_prepare = smtp_module.prepare

    def recording_prepare(*args):
        ran_in.append(threading.current_thread().name)
        return real_prepare(*args)

    monkeypatch.setattr(smtp_module, "prepare", recording_prepare)
    resolver = RecordingResolver(dns)
    running = RunningListener(dnsfunc=resolver)
    try:
        for n in range(2):
            raw = acme_key.sign(build(to=(f"Cara <cara{n}@candidate.test>",)))
            code, _ = running.send(raw, [sync_agency.bcc])
            assert code == 250
    finally:
        running.stop()
    # First message: tried on the loop, the key was not cached, so redone on a lookup thread
    # (which made the one DNS lookup); second message: all on the loop, no lookup.
    loop_thread = running.thread.name
    assert ran_in[0] == loop_thread and ran_in[1].startswith("smtpd-lookup")
    assert ran_in[2:] == [loop_thread]
    assert len(resolver.lookup_threads) == 1 and resolver.lookup_threads[0].startswith(
        "smtpd-lookup"
    )
    assert list(Trigger.objects.values_list("status", "auth_method")) == [
        ("accepted", "dkim_aligned"),
        ("accepted", "dkim_aligned"),
    ]


@pytest.mark.parametrize(
    ("vendor", "host", "cpus", "expected"),
    [
        ("postgresql", "127.0.0.1", 2, 1),  # the database needs a core of its own
        ("postgresql", "", 8, 7),  # a Unix socket: on this machine too
        ("postgresql", "/var/run/postgresql", 8, 7),
        ("postgresql", "db.internal", 8, 8),  # elsewhere: every core is the listener's
        ("postgresql", "127.0.0.1", 1, 1),
        ("sqlite", "", 4, 3),  # SQLite works inside the listeners
        ("sqlite", "", 2, 1),
    ],
)
def test_listener_processes_default_leaves_a_core_for_a_local_database(
    monkeypatch, vendor, host, cpus, expected
):
    from django.db import connections

    from emailsync.inbound.management.commands import smtpd

    database = connections["default"]
    monkeypatch.setattr(smtpd.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(database, "vendor", vendor)
    monkeypatch.setitem(database.settings_dict, "HOST", host)
    assert smtpd.default_processes() == expected


def test_a_silent_client_is_told_421_before_the_connection_closes(dns, transactional_db):
    quick = RunningListener(dnsfunc=dns, timeout=1.0)
    try:
        with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
            stream = sock.makefile("rb")
            assert stream.readline().startswith(b"220 ")
            sock.sendall(b"EHLO client.test\r\n")
            while not stream.readline().startswith(b"250 "):
                pass
            last = stream.readline()  # nothing more is sent: the timeout answers
            assert last.startswith(b"421 4.4.2 ")
            assert stream.readline() == b""  # and then the connection is closed
    finally:
        quick.stop()


def test_a_client_that_keeps_talking_past_the_timeout_is_not_cut_off(dns, transactional_db):
    """The session keeps one timer; a command moves its deadline, and when the timer fires
    before that deadline it waits again, so talking for longer than the timeout in all is
    fine and the first silence still ends the session."""
    import time

    quick = RunningListener(dnsfunc=dns, timeout=1.0)
    try:
        with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
            stream = sock.makefile("rb")
            assert stream.readline().startswith(b"220 ")
            for _ in range(5):  # 3 s of talking against a 1 s timeout
                time.sleep(0.6)
                sock.sendall(b"NOOP\r\n")
                assert stream.readline().startswith(b"250 ")
            silent_from = time.monotonic()
            assert stream.readline().startswith(b"421 4.4.2 ")
            assert time.monotonic() - silent_from >= 0.9  # not before a whole timeout of silence
    finally:
        quick.stop()


def test_a_session_arms_one_timer_and_sends_ehlo_in_one_write(dns, transactional_db, monkeypatch):
    """aiosmtpd arms a new timer for every command and writes each line of a multi-line reply
    on its own; the listener keeps one timer per session and writes EHLO's reply whole (the
    protocol work every email pays, docs/PERFORMANCE.md)."""
    sessions, writes = [], []
    original = smtp_module.ListenerSMTP.connection_made

    def connection_made(self, transport):
        sessions.append(self)
        write = transport.write
        transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]
        original(self, transport)

    monkeypatch.setattr(smtp_module.ListenerSMTP, "connection_made", connection_made)
    quick = RunningListener(dnsfunc=dns)
    try:
        with quick.client() as smtp:
            timers = []
            for command in ("EHLO client.test", "NOOP", "RSET", "NOOP", "HELP"):
                assert smtp.docmd(command)[0] in {214, 250}
                timers.append(sessions[0]._timeout_handle)
            assert len(set(map(id, timers))) == 1 and not timers[0].cancelled()
        ehlo = [w for w in writes if w.startswith(b"250-")]
        assert len(ehlo) == 1
        lines = ehlo[0].split(b"\r\n")
        assert lines[-1] == b"" and lines[-2] == b"250 HELP"
        assert all(line.startswith(b"250-") for line in lines[:-2])
        assert b"250-SIZE 26214400" in lines and b"250-8BITMIME" in lines
    finally:
        quick.stop()


def test_a_slow_message_that_keeps_arriving_is_not_cut_off(
    dns, transactional_db, sync_agency, acme_key
):
    """The DATA timeout is for silence: a message whose lines keep coming, for longer in all
    than the timeout, is read to the end and accepted."""
    import time

    quick = RunningListener(dnsfunc=dns, timeout=2.0)
    lines = acme_key.sign(build()).split(b"\r\n")
    try:
        with quick.client() as smtp:
            smtp.ehlo()
            smtp.mail("sam@acme.test")
            smtp.rcpt(sync_agency.bcc)
            assert smtp.docmd("DATA")[0] == 354
            sent_for = 0.0
            chunks = [lines[i : i + 3] for i in range(0, len(lines), 3)]
            for chunk in chunks:
                smtp.send(b"\r\n".join(chunk) + b"\r\n")
                if sent_for < 5.0:
                    time.sleep(0.4)
                    sent_for += 0.4
            smtp.send(b".\r\n")
            code, _ = smtp.getreply()
        assert code == 250
        assert Trigger.objects.get().status == "accepted"
    finally:
        quick.stop()


def test_sessions_that_passed_rcpt_together_cannot_all_pass_the_limit(
    listener, sync_agency, acme_key
):
    """RCPT only looks for room; DATA looks again and counts, with nothing in between, so two
    sessions let through at RCPT by the last free slot do not both deliver."""
    EmailSyncSettings.objects.filter(agency=sync_agency).update(rate_limit_per_hour=1)
    first, second = listener.client(), listener.client()
    try:
        for smtp in (first, second):
            smtp.ehlo()
            smtp.mail("sam@acme.test")
            assert smtp.rcpt(sync_agency.bcc)[0] == 250
        assert first.data(acme_key.sign(build(to=("one@candidate.test",))))[0] == 250
        assert second.data(acme_key.sign(build(to=("two@candidate.test",)))) == (
            450,
            b"4.7.1 Too many messages for this address, please try again later",
        )
    finally:
        first.close()
        second.close()
    assert Trigger.objects.count() == 1


def test_an_unexpected_error_is_451_so_the_sender_retries(
    listener, sync_agency, monkeypatch, caplog
):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(smtp_module.Handler, "handle_RCPT", broken)
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        assert smtp.rcpt(sync_agency.bcc) == (
            451,
            b"4.3.0 Temporary failure, please try again later",
        )
    assert "a bug of ours" in caplog.text  # logged in full for us, not told to the sender


def test_a_failed_starttls_is_one_line_in_the_log(tmp_path, dns, transactional_db, caplog):
    import logging

    from emailsync.inbound.smtp import tls_context

    secure = RunningListener(dnsfunc=dns, tls=tls_context(*self_signed(tmp_path)))
    try:
        with socket.create_connection(("127.0.0.1", secure.port), timeout=30) as sock:
            stream = sock.makefile("rb")
            stream.readline()
            sock.sendall(b"EHLO client.test\r\n")
            while not stream.readline().startswith(b"250 "):
                pass
            sock.sendall(b"STARTTLS\r\n")
            assert stream.readline().startswith(b"220")
            sock.sendall(b"this is not a TLS client hello\r\n" * 4)
            assert stream.read() is not None  # the listener closes the connection
    finally:
        secure.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "STARTTLS failed" in caplog.text
