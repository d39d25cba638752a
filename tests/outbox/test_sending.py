"""The worker against a real SMTP server: headers, wording, safety, retries and re-checks."""

import email.utils
import re
from datetime import timedelta

import dkim
import pytest
from django.core.management import call_command
from django.utils import timezone

from emailsync.outbox.worker import Worker, oldest_due_age
from emailsync.review_requests.bounces import verify_bounce_local
from emailsync.review_requests.models import (
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
)
from emailsync.review_requests.unsubscribe import verify_unsubscribe_local
from tests.inbound.mail import FakeDns, SigningKey

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sending_addresses")]


def only(sink):
    [received] = sink.received
    return received, received.message


def text_and_html(message) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def test_a_due_request_goes_out_once_with_aligned_headers(sink, acme, make_request):
    request = make_request(acme, role="candidate")
    row = request.emails.get()
    call_command("worker", "--once")
    call_command("worker", "--once")  # nothing is sent twice
    received, message = only(sink)

    assert email.utils.parseaddr(message["From"]) == (
        "Sam Carter at Acme Recruitment",
        "reviews@send.example.com",
    )
    assert message["Reply-To"] == "sam@acme.test"
    assert message["To"] == "Cara Candidate <cara@candidate.test>"
    assert received.rcpt_tos == ["cara@candidate.test"]
    assert message["Message-ID"] == row.message_id
    # VERP: the envelope sender names the request, signed.
    local, _, domain = received.mail_from.partition("@")
    assert domain == "in.example.com" and verify_bounce_local(local) == request.pk
    unsubscribe = message["List-Unsubscribe"]
    https, mailto = re.findall(r"<([^>]+)>", unsubscribe)
    assert https == f"https://reviews.example.com/unsubscribe/{request.token}/"
    mail_local = mailto.removeprefix("mailto:").partition("@")[0]
    assert mailto.startswith("mailto:") and "@in.example.com" in mailto
    assert verify_unsubscribe_local(mail_local) == request.pk
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text, html = text_and_html(message)
    link = f"https://reviews.example.com/review/{request.token}/"
    assert link in text and link in html
    for rating in range(1, 6):
        assert f'href="{link}?rating={rating}"' in html
    assert html.count("?rating=") == 5 and html.count("Write your review") == 1
    assert "Sam Carter" in text and https in text

    request.refresh_from_db()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    assert request.status == "sent" and request.sent_at == row.sent_at
    assert request.expires_at == request.sent_at + timedelta(days=30)


def test_dkim_signature_verifies_and_covers_the_promised_headers(
    sink, acme, make_request, settings, tmp_path
):
    key = SigningKey("send.example.com", selector="es1")
    (tmp_path / "dkim.pem").write_bytes(key.private_pem)
    settings.EMAILSYNC_DKIM_DOMAIN = "send.example.com"
    settings.EMAILSYNC_DKIM_SELECTOR = "es1"
    settings.EMAILSYNC_DKIM_KEY_FILE = str(tmp_path / "dkim.pem")
    make_request(acme)
    Worker().run_once()
    received, message = only(sink)
    assert dkim.verify(received.raw, dnsfunc=FakeDns(key))
    tags = dict(
        t.strip().split("=", 1) for t in " ".join(message["DKIM-Signature"].split()).split(";")
    )
    signed = {h.strip().lower() for h in tags["h"].split(":")}
    assert tags["d"] == "send.example.com" and tags["s"] == "es1"
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "auto-submitted",
    } <= signed
    # From is signed once more than it appears: a second From added on the way breaks it.
    assert [h.strip().lower() for h in tags["h"].split(":")].count("from") == 2
    second_from = received.raw.replace(b"\r\nFrom:", b"\r\nFrom: ceo@evil.example\r\nFrom:", 1)
    assert not dkim.verify(second_from, dnsfunc=FakeDns(key))
    # A tampered copy no longer verifies: the signature really covers the unsubscribe header.
    tampered = received.raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"
    )
    assert not dkim.verify(tampered, dnsfunc=FakeDns(key))


def test_candidate_client_and_neutral_wording_differ(sink, acme, make_request):
    make_request(acme, "cara@candidate.test", role="candidate")
    make_request(acme, "clive@client.test", name="Clive Client", role="client")
    make_request(acme, "nina@neutral.test", name="Nina", role="")
    Worker().run_once()
    by_rcpt = {r.rcpt_tos[0]: r.message for r in sink.received}
    candidate, client, neutral = (
        by_rcpt["cara@candidate.test"],
        by_rcpt["clive@client.test"],
        by_rcpt["nina@neutral.test"],
    )
    assert "job search" in candidate["Subject"]
    assert "hire" in client["Subject"]
    assert neutral["Subject"] == "Would you review Sam Carter at Acme Recruitment?"
    c_text, c_html = text_and_html(candidate)
    k_text, _ = text_and_html(client)
    n_text, _ = text_and_html(neutral)
    assert "Congratulations on your new role" in c_text and "Congratulations" in c_html
    assert "Thank you for hiring through Acme Recruitment" in k_text
    assert "Congratulations" not in n_text and "hiring" not in n_text
    assert c_text.startswith("Hi Cara,") and k_text.startswith("Hi Clive,")


@pytest.mark.parametrize(
    ("display_name", "greeting"),
    [
        ("Smith, Karen (Acme Ltd)", "Hi Karen,"),  # Outlook's directory form
        ("Dr. Karen Smith", "Hi Karen,"),
        ("Karen Smith, PhD", "Hi Karen,"),
        ("[External] Bob Jones", "Hi Bob,"),
        ("karen.smith@client.test", "Hello,"),  # no name, only an address
        ("WATSON Amelia", "Hi Amelia,"),  # the family name first, in capitals
        ("DUPONT Jean-Pierre (Acme)", "Hi Jean-Pierre,"),
        ("AJ Smith", "Hi AJ,"),  # initials used as a first name
        ("JOHN SMITH", "Hi JOHN,"),  # all in capitals: nothing tells which is which
        ("J. R. Smith", "Hi J. R. Smith,"),  # not "Hi J,"
        ("Dr. K Smith", "Hi K. Smith,"),
        ("王 伟", "Hi 王,"),  # one character is a whole name in Chinese, not an initial
        ("김 민수", "Hi 김,"),
        ("🎉 Zoe Candidate", "Hi Zoe,"),  # an emoji is decoration, not a first name
        ("– Zoe –", "Hi Zoe,"),
        ("🎉🎉", "Hello,"),
    ],
)
def test_the_greeting_finds_the_first_name_in_real_display_names(
    sink, acme, make_request, display_name, greeting
):
    make_request(acme, "karen@client.test", name=display_name, role="client")
    Worker().run_once()
    _, message = only(sink)
    text, _ = text_and_html(message)
    assert text.splitlines()[0] == greeting


def test_branding_personal_message_and_escaping(sink, acme, make_request):
    acme.brand_colour = "#ffdd00"  # light: the button text must turn dark
    acme.save()
    make_request(acme, name="<b>Cara</b>", personal_message="Thanks for a <great> search!")
    Worker().run_once()
    _, message = only(sink)
    text, html = text_and_html(message)
    assert "#ffdd00" in html and "color:#111111" in html
    assert "Thanks for a &lt;great&gt; search!" in html and "<great>" not in html
    assert '"Thanks for a <great> search!"' in text  # plain text is not HTML-escaped
    assert "Acme Recruitment" in html and 'alt="' not in html  # no logo: the name instead


def test_a_message_an_admin_wrote_for_a_recruiter_is_signed_by_the_admin(sink, acme):
    """The email said "Sam Carter writes:" above words Sam never wrote."""
    from emailsync.review_requests.manual import Person, request_manually

    admin = acme.admins().get()
    admin.full_name = "Alex Admin"
    admin.save()
    request_manually(
        acme,
        [Person("noemie@candidate.test", "Noémie")],
        by=admin,
        recruiter=acme.sam,
        personal_message="Merci Noémie !",
        send_now=True,
    )
    request_manually(
        acme,
        [Person("olga@candidate.test", "Olga")],
        by=acme.sam.user,
        recruiter=acme.sam,
        personal_message="Thank you, Olga.",
        send_now=True,
    )
    Worker().run_once()
    texts = {}
    for received in sink.received:
        texts[received.rcpt_tos[0]] = text_and_html(received.message)[0]
    assert "Alex Admin at Acme Recruitment writes:" in texts["noemie@candidate.test"]
    assert "Sam Carter writes:" not in texts["noemie@candidate.test"]
    assert "Sam Carter writes:" in texts["olga@candidate.test"]


def test_names_cannot_inject_headers(sink, acme, make_request):
    acme.sam.display_name = "Bob\r\nBcc: x@evil.test"
    acme.sam.save()
    acme.name = "Acme\nX-Injected: yes"
    acme.save()
    make_request(acme, name="Cara\r\nBcc: y@evil.test\r\n\r\nbody")
    Worker().run_once()
    received, message = only(sink)
    assert received.rcpt_tos == ["cara@candidate.test"]
    headers = received.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert not re.search(r"(?im)^(bcc|x-injected):", headers)
    assert "\n" not in message["From"] and "\r" not in message["From"]
    assert email.utils.parseaddr(message["From"])[1] == "reviews@send.example.com"
    assert email.utils.parseaddr(message["To"])[1] == "cara@candidate.test"


def test_transient_errors_retry_with_backoff_and_keep_the_message_id(sink, acme, make_request):
    request = make_request(acme)
    row = request.emails.get()
    sink.handler.refuse["cara@candidate.test"] = "451 4.3.0 try again later"
    now = timezone.now()
    stats = Worker().run_once(now=now)
    row.refresh_from_db()
    assert stats.retried == 1 and row.status == "queued" and row.attempts == 1
    assert "451" in row.last_error
    assert now + timedelta(seconds=30) <= row.next_attempt_at <= now + timedelta(seconds=60)
    assert Worker().run_once(now=now + timedelta(seconds=10)).claimed == 0  # not yet
    sink.handler.refuse.clear()
    Worker().run_once(now=now + timedelta(minutes=2))
    row.refresh_from_db()
    received, message = only(sink)
    assert row.status == "sent" and row.attempts == 2 and message["Message-ID"] == row.message_id


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    from emailsync.outbox.worker import BACKOFF_CAP, backoff

    for attempts in range(1, 15):
        ceiling = min(BACKOFF_CAP, 60 * 2 ** (attempts - 1))
        values = {backoff(attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(values) > 1  # jitter


def test_permanent_rejection_fails_with_the_servers_reply(sink, acme, make_request):
    request = make_request(acme)
    sink.handler.refuse["cara@candidate.test"] = "550 5.1.1 no such user"
    stats = Worker().run_once()
    row = request.emails.get()
    request.refresh_from_db()
    assert (
        stats.failed == 1 and row.status == "failed" and "550 5.1.1 no such user" in row.last_error
    )
    assert request.status == "failed" and "550" in request.status_reason


def test_the_servers_reply_is_logged_without_the_reviewers_address(
    sink, acme, make_request, caplog
):
    """Operators see the whole reply on the row; the log (shipped wherever the host's logs go)
    gets it with addresses redacted."""
    permanent = make_request(acme, "cara@candidate.test")
    transient = make_request(acme, "dan@candidate.test")
    sink.handler.refuse["cara@candidate.test"] = "550 5.1.1 <cara@candidate.test>: no such user"
    sink.handler.refuse["dan@candidate.test"] = "451 4.2.0 dan@candidate.test: mailbox busy"
    with caplog.at_level("INFO", logger="emailsync.worker"):
        Worker().run_once()
    assert "cara@candidate.test" in permanent.emails.get().last_error
    assert "dan@candidate.test" in transient.emails.get().last_error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "550 5.1.1" in logged and "451 4.2.0" in logged
    assert "@candidate.test" not in logged


def test_an_unreachable_server_means_retry_not_failure(acme, make_request, settings):
    from tests.processes import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    request = make_request(acme)
    stats = Worker().run_once()
    row = request.emails.get()
    assert stats.retried == 1 and row.status == "queued" and row.next_attempt_at
    assert "connection" in row.last_error.lower() or "refused" in row.last_error.lower()


def test_gives_up_after_the_last_attempt(sink, acme, make_request):
    from emailsync.outbox.worker import MAX_ATTEMPTS

    request = make_request(acme)
    request.emails.update(attempts=MAX_ATTEMPTS - 1)
    sink.handler.refuse["cara@candidate.test"] = "421 4.7.0 busy"
    Worker().run_once()
    assert request.emails.get().status == "failed"


def test_checks_again_before_sending(sink, acme, make_request, make_agency):
    suppressed = make_request(acme, "gone@x.test")
    Suppression.add("gone@x.test", Suppression.Reason.UNSUBSCRIBED)
    cancelled = make_request(acme, "cancel@x.test")
    ReviewRequest.objects.filter(pk=cancelled.pk).update(status="cancelled")
    earlier = make_request(acme, "twice@x.test")
    ReviewRequest.objects.filter(pk=earlier.pk).update(status="sent", sent_at=timezone.now())
    earlier.emails.update(status="sent")
    again = make_request(acme, "twice@x.test")
    ok = make_request(acme, "ok@x.test")

    other = make_agency(name="Off Agency")
    EmailSyncSettings.objects.create(agency=other, enabled=False)
    off = make_request(other, "off@x.test", recruiter=None)
    manual = make_request(other, "manual@x.test", recruiter=None, source=Source.MANUAL)

    stats = Worker().run_once()
    assert sorted(r.rcpt_tos[0] for r in sink.received) == ["manual@x.test", "ok@x.test"]
    assert stats.skipped == 4
    expect = {
        suppressed: ("skipped", "suppressed", "skipped"),
        cancelled: ("cancelled", "cancelled", "cancelled"),
        again: ("skipped", "recently_asked", "skipped"),
        off: ("skipped", "email_sync_off", "skipped"),
    }
    for request, (row_status, code, request_status) in expect.items():
        row = request.emails.get()
        request.refresh_from_db()
        assert (row.status, row.status_reason, request.status) == (row_status, code, request_status)
    assert ok.emails.get().status == manual.emails.get().status == "sent"


def test_a_cancel_or_edit_committed_after_loading_wins_over_the_loaded_copy(
    sink, acme, make_request, monkeypatch
):
    """The worker reads each request again, locked, just before sending: a cancellation or an
    address change that committed after the batch was loaded is not sent from the stale copy."""
    from emailsync.outbox import worker as worker_mod

    cancelled = make_request(acme, "cancel@x.test")
    moved = make_request(acme, "old@x.test")
    ok = make_request(acme, "ok@x.test")
    real = worker_mod.recheck

    def recheck(rows, now):
        ReviewRequest.objects.filter(pk=cancelled.pk).update(status="cancelled")
        ReviewRequest.objects.filter(pk=moved.pk).update(email="new@x.test")
        return real(rows, now)

    monkeypatch.setattr(worker_mod, "recheck", recheck)
    stats = Worker(run_jobs=False).process_batch()
    assert [r.rcpt_tos[0] for r in sink.received] == ["ok@x.test"]
    assert stats.skipped == 2
    assert (cancelled.emails.get().status, cancelled.emails.get().status_reason) == (
        "cancelled",
        "cancelled",
    )
    assert (moved.emails.get().status, moved.emails.get().status_reason) == ("skipped", "changed")
    assert ok.emails.get().status == "sent"


def test_a_dead_workers_rows_come_back_after_the_lease(sink, acme, make_request):
    request = make_request(acme)
    now = timezone.now()
    crashed = Worker(name="crashed", lease=timedelta(minutes=5))
    assert crashed.claim(now) == [request.emails.get().pk]  # ...and then it dies
    assert Worker().run_once(now=now + timedelta(minutes=1)).claimed == 0
    stats = Worker().run_once(now=now + timedelta(minutes=6))
    assert stats.sent == 1 and len(sink.received) == 1
    row = request.emails.get()
    assert row.attempts == 2 and row.status == "sent"


def test_a_future_request_waits_and_the_oldest_due_age_is_reported(sink, acme, make_request):
    now = timezone.now()
    make_request(acme, "later@x.test", send_after=now + timedelta(hours=3))
    make_request(acme, "due@x.test", send_after=now - timedelta(minutes=10))
    assert timedelta(minutes=9) < oldest_due_age(now) < timedelta(minutes=11)
    Worker().run_once(now=now)
    assert [r.rcpt_tos[0] for r in sink.received] == ["due@x.test"]
    assert oldest_due_age(now) is None
    assert oldest_due_age(now + timedelta(hours=4)) == timedelta(hours=1)
    Worker().run_once(now=now + timedelta(hours=3, seconds=1))
    assert len(sink.received) == 2


def test_status_command_prints_the_promise_figure(acme, make_request, capsys):
    import json

    make_request(acme, send_after=timezone.now() - timedelta(minutes=30))
    call_command("worker", "--status", "--json")
    status = json.loads(capsys.readouterr().out)
    assert 29 * 60 <= status["oldest_due_seconds"] <= 31 * 60
    assert status["due"] == 1 and status["counts"]["queued"] == 1


def test_notifications_render_their_own_template_and_context(sink, acme, settings, tmp_path):
    from emailsync.outbox.models import enqueue

    folder = tmp_path / "emails" / "hello_admin"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("New review for {{ agency.name }} & co\n")
    (folder / "body.txt").write_text("{{ who }} <wrote> at {{ public_url }}\n")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    row = enqueue(
        "notification",
        to_email="Admin@Acme.test",
        template="hello_admin",
        context={"who": "Cara"},
        agency=acme,
    )
    Worker().run_once()
    received, message = only(sink)
    assert message["Subject"] == "New review for Acme Recruitment & co"
    assert message.get_body(("plain",)).get_content().strip() == (
        "Cara <wrote> at https://reviews.example.com"
    )
    assert received.mail_from == "reviews@send.example.com" and "List-Unsubscribe" not in message
    row.refresh_from_db()
    assert row.status == "sent"


def test_the_development_outbox_shows_the_request_with_working_links(
    acme, make_request, settings, client
):
    settings.DEBUG, settings.DEVELOPMENT_OUTBOX = True, True
    settings.EMAIL_BACKEND = "emailsync.operations.outbox.DevelopmentOutboxBackend"
    request = make_request(acme, role="client")
    Worker().run_once()
    from emailsync.operations.models import DevelopmentMessage

    kept = DevelopmentMessage.objects.get()
    assert "hire" in kept.subject
    page = client.get(f"/dev/outbox/{kept.pk}/")
    assert page.status_code == 200
    html = client.get(f"/dev/outbox/{kept.pk}/html/").content.decode()
    assert '<base target="_blank">' in html  # links leave the preview frame
    assert f"https://reviews.example.com/review/{request.token}/?rating=5" in html
    text = client.get(f"/dev/outbox/{kept.pk}/text/").content.decode()
    assert f"/unsubscribe/{request.token}/" in text


def test_who_a_personal_message_is_signed_by():
    from emailsync.outbox.rendering import wording

    def writes(recruiter, message_by):
        return wording("", "Acme", recruiter, "", False, message_by)["writes"]

    assert writes("Sam Carter", "") == "Sam Carter writes:"
    assert writes("", "") == "Acme writes:"
    assert writes("Sam Carter", "Alex Admin") == "Alex Admin at Acme writes:"
    assert writes("Sam Carter", "Acme") == "Acme writes:"  # the agency's own words
