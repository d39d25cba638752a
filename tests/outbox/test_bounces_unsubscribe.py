"""Bounces (DSN through the VERP address, ESP webhooks) and unsubscribes suppress everywhere."""

import json
from datetime import timedelta
from email.message import EmailMessage

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import InboundAddress, TriggerRecipient
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker
from emailsync.review_requests.bounces import (
    bounce_local_part,
    process_bounce,
    verify_bounce_local,
)
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Suppression
from emailsync.review_requests.unsubscribe import (
    process_unsubscribe_mail,
    unsubscribe_local_part,
)
from tests.inbound.mail import FakeDns, SigningKey, build

pytestmark = pytest.mark.django_db


def dsn(status: str, action: str = "failed", recipient: str = "cara@candidate.test") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    return f"""From: Mail Delivery System <mailer-daemon@mx.candidate.test>
To: bounce@in.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

This is the mail system. Your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.candidate.test

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} mailbox unavailable

--BOUNDARY
Content-Type: text/rfc822-headers

From: reviews@send.example.com
Subject: Would you review us?

--BOUNDARY--
""".replace("\n", "\r\n").encode()


def sent_request(acme, make_request, email="cara@candidate.test"):
    request = make_request(acme, email)
    request.status, request.sent_at = "sent", timezone.now()
    request.expires_at = request.sent_at + timedelta(days=30)
    request.save()
    request.emails.update(status="sent", sent_at=request.sent_at)
    return request


def test_bounce_address_is_signed_and_case_insensitive(acme, make_request):
    request = make_request(acme)
    local = bounce_local_part(request)
    assert local.startswith(f"bounce-{request.pk}-")
    assert bounce_local_part(request.emails.get()) == local
    assert verify_bounce_local(local) == request.pk
    assert verify_bounce_local(local.upper()) == request.pk
    forged = f"bounce-{request.pk + 1}-{local.rsplit('-', 1)[1]}"
    assert verify_bounce_local(forged) is None
    assert verify_bounce_local("bounce-1-zz") is None and verify_bounce_local("") is None


def test_hard_bounce_suppresses_and_marks_the_request_bounced(acme, make_request):
    request = sent_request(acme, make_request)
    later = make_request(acme, "cara@candidate.test")  # something else still queued for them
    assert process_bounce(bounce_local_part(request), dsn("5.1.1")) == "hard-bounce"
    request.refresh_from_db()
    assert request.status == "bounced" and "5.1.1" in request.status_reason
    assert Suppression.suppressed(["cara@candidate.test"]) == {"cara@candidate.test"}
    assert Suppression.objects.get().reason == "bounced"
    assert later.emails.get().status == "skipped"
    # The same DSN again changes nothing more.
    assert process_bounce(bounce_local_part(request), dsn("5.1.1")) == "hard-bounce"
    assert Suppression.objects.count() == 1


def test_soft_bounce_is_noted_only(acme, make_request):
    request = sent_request(acme, make_request)
    outcome = process_bounce(bounce_local_part(request), dsn("4.2.2", action="delayed"))
    assert outcome == "soft-bounce"
    request.refresh_from_db()
    assert request.status == "sent" and not Suppression.objects.exists()
    assert "4.2.2" in request.emails.get().last_error


def test_forged_or_unrelated_messages_change_nothing(acme, make_request):
    request = sent_request(acme, make_request)
    assert process_bounce("bounce-1-0000000000000000", dsn("5.1.1")).startswith("rejected")
    ooo = EmailMessage()
    ooo["Subject"] = "Out of office"
    ooo.set_content("I am away until Monday.")
    assert process_bounce(bounce_local_part(request), ooo.as_bytes()).startswith("ignored")
    assert not Suppression.objects.exists()


def test_abuse_report_is_a_complaint(acme, make_request):
    request = sent_request(acme, make_request)
    report = (
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report\r\n"
        b"--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\nUser-Agent: SomeISP/1.0\r\nVersion: 1\r\n--B--\r\n"
    )
    assert process_bounce(bounce_local_part(request), report) == "complaint"
    assert Suppression.objects.get().reason == "complained"


def test_get_shows_a_confirm_page_and_changes_nothing(acme, make_request):
    request = sent_request(acme, make_request)
    response = Client().get(f"/unsubscribe/{request.token}/")
    assert response.status_code == 200 and not Suppression.objects.exists()
    html = response.content.decode()
    assert '<html lang="en">' in html and "<main" in html and "<h1>" in html
    assert 'method="post"' in html and ">Unsubscribe</button>" in html
    assert "/static/css/app.css" in html
    assert "style=" not in html and "<script" not in html  # our CSP forbids inline code
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "Acme Recruitment" in html


def test_one_click_post_needs_no_login_or_csrf_and_is_idempotent(acme, make_request):
    request = sent_request(acme, make_request)
    client = Client(enforce_csrf_checks=True)
    for _ in range(2):
        response = client.post(
            f"/unsubscribe/{request.token}/",
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert suppression.reason == "unsubscribed"
    assert "cara" not in suppression.address_hash  # only a hash is kept


def test_confirm_then_undo_from_the_same_page(acme, make_request):
    request = sent_request(acme, make_request)
    client = Client(enforce_csrf_checks=True)
    page = client.post(f"/unsubscribe/{request.token}/", {"action": "unsubscribe"})
    assert "You are unsubscribed" in page.content.decode() and "Undo" in page.content.decode()
    # The reviewer pages' frame: whose request it was, which address, and where their data is.
    html = page.content.decode()
    assert f'<span class="rv-agency">{acme.name}</span>' in html
    assert request.email in html and 'href="/privacy/"' in html
    assert Suppression.objects.count() == 1
    undone = client.post(f"/unsubscribe/{request.token}/", {"action": "undo"})
    assert not Suppression.objects.exists()
    assert ">Unsubscribe</button>" in undone.content.decode()


def test_undo_never_lifts_a_bounce(acme, make_request):
    request = sent_request(acme, make_request)
    process_bounce(bounce_local_part(request), dsn("5.1.1"))
    Client().post(f"/unsubscribe/{request.token}/", {"action": "undo"})
    assert Suppression.objects.get().reason == "bounced"


def test_unsubscribing_a_tagged_address_covers_the_mailbox_and_undo_lifts_both(acme, make_request):
    request = sent_request(acme, make_request, email="cara+jobs@candidate.test")
    client = Client()
    client.post(f"/unsubscribe/{request.token}/", {"action": "unsubscribe"})
    assert Suppression.suppressed(
        {"cara@candidate.test", "cara+other@candidate.test", "dan@candidate.test"}
    ) == {"cara@candidate.test", "cara+other@candidate.test"}
    client.post(f"/unsubscribe/{request.token}/", {"action": "undo"})
    assert not Suppression.objects.exists()


def test_a_complaint_about_the_mailbox_outranks_the_address_s_own_unsubscribe(acme, make_request):
    from emailsync.review_requests.unsubscribe import suppression_state

    request = sent_request(acme, make_request, email="cara+jobs@candidate.test")
    Suppression.add("cara@candidate.test", Suppression.Reason.COMPLAINED)
    Suppression.add("cara+jobs@candidate.test", Suppression.Reason.UNSUBSCRIBED)
    assert suppression_state(request) == "complained"  # so the page offers no undo


def test_a_bounce_of_a_tagged_address_suppresses_that_address_only(acme, make_request):
    # Mail systems that know no tags refuse jo+x@ while jo@ works.
    request = sent_request(acme, make_request, email="cara+jobs@candidate.test")
    process_bounce(bounce_local_part(request), dsn("5.1.1"))
    assert Suppression.suppressed({"cara+jobs@candidate.test", "cara@candidate.test"}) == {
        "cara+jobs@candidate.test"
    }


def test_unknown_token_is_404():
    assert Client().get("/unsubscribe/nope/").status_code == 404
    assert Client().post("/unsubscribe/nope/").status_code == 404


def test_mailto_unsubscribe(acme, make_request):
    request = sent_request(acme, make_request)
    assert process_unsubscribe_mail(unsubscribe_local_part(request)) == "unsubscribed"
    assert process_unsubscribe_mail("unsubscribe-1-0000000000000000").startswith("rejected")
    assert Suppression.objects.get().reason == "unsubscribed"


def test_a_suppressed_address_is_never_asked_again_by_any_agency(
    acme, make_request, make_agency, sink, settings
):
    settings.EMAILSYNC_INBOUND_DOMAIN = "in.example.com"
    request = sent_request(acme, make_request)
    Client().post(
        f"/unsubscribe/{request.token}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    # Another agency had already queued a request for them: it is skipped at send time.
    other = make_agency(name="Beta Staffing", domains=["beta.test"])
    EmailSyncSettings.objects.create(agency=other, enabled=True, business_days="")
    queued = make_request(other, "cara@candidate.test", recruiter=None)
    Worker().run_once()
    assert sink.received == [] and queued.emails.get().status == "skipped"
    # A new trigger at that agency does not even create a request for them.
    key = SigningKey("beta.test")
    bcc = InboundAddress.current_for(other).address
    raw = key.sign(build(sender="Ben <ben@beta.test>", to=("Cara <cara@candidate.test>",)))
    header, body = split_message(raw)
    ingest([bcc], header, body, gather_evidence(header, body, FakeDns(key)), "smtp")
    outcome = TriggerRecipient.objects.get(email="cara@candidate.test", trigger__agency=other)
    assert outcome.outcome == "skipped" and outcome.review_request_id is None
    assert ReviewRequest.objects.filter(agency=other).count() == 1  # only the earlier one


def anymail_event(kind, **kwargs):
    return AnymailTrackingEvent(event_type=kind, **kwargs)


def test_esp_bounce_and_complaint_events(acme, make_request):
    bounced = sent_request(acme, make_request, "b@x.test")
    row = bounced.emails.get()
    tracking.send(
        sender=object,
        esp_name="Test",
        event=anymail_event(
            "bounced",
            recipient="b@x.test",
            metadata={"outbound_id": str(row.pk)},
            description="Mailbox does not exist",
        ),
    )
    bounced.refresh_from_db()
    assert bounced.status == "bounced" and "Mailbox" in bounced.status_reason
    complained = sent_request(acme, make_request, "c@x.test")
    OutboundEmail.objects.filter(review_request=complained).update(provider_message_id="esp-42")
    tracking.send(
        sender=object,
        esp_name="Test",
        event=anymail_event("complained", recipient="c@x.test", message_id="esp-42"),
    )
    tracking.send(
        sender=object, esp_name="Test", event=anymail_event("unsubscribed", recipient="u@x.test")
    )
    reasons = dict(Suppression.objects.values_list("reason", "address_hash"))
    assert set(reasons) == {"bounced", "complained", "unsubscribed"}
    tracking.send(
        sender=object, esp_name="Test", event=anymail_event("delivered", recipient="d@x.test")
    )
    assert Suppression.objects.count() == 3


def test_esp_webhook_url_is_wired(acme, make_request, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}
    request = sent_request(acme, make_request)
    row = request.emails.get()
    payload = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "ID": 1,
        "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "Email": "cara@candidate.test",
        "Description": "The server was unable to deliver your message",
        "Details": "550 no user",
        "BouncedAt": "2026-11-27T10:00:00Z",
        "Metadata": {"outbound_id": str(row.pk)},
        "Tag": "",
        "ServerID": 1,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "x",
    }
    response = Client().post(
        "/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic aG9vazpzZWNyZXQ=",
    )
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.status == "bounced" and Suppression.objects.get().reason == "bounced"


def test_a_fault_of_ours_with_an_esp_event_is_a_500_the_esp_retries(
    acme, make_request, settings, monkeypatch
):
    """A bounce we fail to record must be sent again, not answered as the ESP's mistake (a
    4xx, which some ESPs do not retry): the address would never be suppressed."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}

    def broken(event):
        raise ValueError("a bug of ours")

    monkeypatch.setattr("emailsync.outbox.tracking.handle_event", broken)
    payload = {"RecordType": "Bounce", "Type": "HardBounce", "ID": 1, "Email": "x@y.test"}
    payload |= {"MessageID": "m", "BouncedAt": "2026-11-27T10:00:00Z", "Metadata": {}}
    response = Client().post(
        "/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic aG9vazpzZWNyZXQ=",
    )
    assert response.status_code == 500 and response.json()["error"] == "not_recorded"
    bad = Client().post(
        "/anymail/postmark/tracking/",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic aG9vazpzZWNyZXQ=",
    )
    assert bad.status_code == 400 and bad.json()["error"] == "malformed_payload"


def test_sent_through_an_esp_backend_keeps_its_id_for_webhooks(acme, make_request, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {}
    request = make_request(acme)
    Worker().run_once()
    row = request.emails.get()
    assert row.status == "sent" and row.provider_message_id
    from django.core import mail

    [message] = mail.outbox
    assert message.metadata == {"outbound_id": str(row.pk)}
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_operator_settings_cli(acme, capsys):
    call_command("agency", "settings", acme.slug, "--json")
    shown = json.loads(capsys.readouterr().out)
    assert shown["delay_hours"] == 24 and shown["enabled"] is True
    call_command(
        "agency",
        "settings",
        acme.slug,
        "--json",
        "--set",
        "delay_hours=4",
        "--set",
        "business_hours=08:30-18:00",
        "--set",
        "business_days=mon-fri,sun",
        "--set",
        "reminder_days=0",
        "--set",
        "enabled=off",
    )
    changed = json.loads(capsys.readouterr().out)
    assert changed["delay_hours"] == 4 and changed["business_hours"] == "08:30-18:00"
    assert changed["business_days"] == [0, 1, 2, 3, 4, 6] and changed["reminder_days"] == 0
    assert changed["enabled"] is False
    assert acme.audit_entries.filter(action="email_sync.settings_changed").exists()
    # No day named: any day, as the settings page's "no day ticked" says.
    call_command("agency", "settings", acme.slug, "--json", "--set", "business_days=")
    assert json.loads(capsys.readouterr().out)["business_days"] == []


@pytest.mark.parametrize(
    "assignment, reason",
    [
        ("delay_hours=99", "delay_hours"),
        ("delay_hours=soon", "delay_hours"),
        ("business_hours=17:00-09:00", "business_end"),
        ("business_days=funday", "business_days"),
        ("recipient_cap=0", "recipient_cap"),
        ("colour=red", "not a setting"),
    ],
)
def test_operator_settings_cli_rejects_bad_values(acme, assignment, reason):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as failure:
        call_command("agency", "settings", acme.slug, "--set", assignment)
    assert reason in str(failure.value) and "\n" not in str(failure.value)
    assert EmailSyncSettings.objects.get(agency=acme).delay_hours == 24


def soft_bounce_payloads(email, outbound_id):
    """Each ESP's own temporary bounce, as its tracking webhook documents it (JSON bodies)."""
    ses = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [
                {"emailAddress": email, "status": "4.2.2", "diagnosticCode": "smtp; 452 full"}
            ],
            "timestamp": "2026-11-27T10:00:00.000Z",
            "feedbackId": "0102015fd91a6479",
        },
        "mail": {
            "timestamp": "2026-11-27T09:59:59.000Z",
            "source": "reviews@send.example.com",
            "messageId": "0102015fd91a5ca3",
            "destination": [email],
            "headers": [{"name": "X-Metadata", "value": json.dumps({"outbound_id": outbound_id})}],
        },
    }
    return {
        "postmark": {
            "RecordType": "Bounce",
            "Type": "SoftBounce",
            "TypeCode": 4096,
            "ID": 2,
            "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
            "Email": email,
            "Description": "The server could not temporarily deliver your message.",
            "Details": "452 mailbox full",
            "BouncedAt": "2026-11-27T10:00:00Z",
            "Metadata": {"outbound_id": outbound_id},
            "Inactive": False,
            "CanActivate": True,
        },
        "amazon_ses": {
            "Type": "Notification",
            "MessageId": "a6f6ed8e-6f38-5a0d-8bd1-1c6e0a0d6a88",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
            "Message": json.dumps(ses),
            "Timestamp": "2026-11-27T10:00:01.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        },
        "sendgrid": [
            {
                "email": email,
                "timestamp": 1795773600,
                "event": "bounce",
                "type": "blocked",
                "status": "4.7.1",
                "reason": "451 4.7.1 greylisted, try again later",
                "sg_event_id": "c2dW5EFy9DDDAB0BhkbgQJ",
                "outbound_id": outbound_id,
            }
        ],
        "brevo": {
            "event": "soft_bounce",
            "email": email,
            "id": 1,
            "date": "2026-11-27 11:00:00",
            "ts": 1795773600,
            "message-id": "<202611271000.1@smtp-relay.mailin.fr>",
            "reason": "mailbox full",
            "tag": "",
            "X-Mailin-custom": json.dumps({"outbound_id": outbound_id}),
        },
        "mailjet": [
            {
                "event": "bounce",
                "time": 1795773600,
                "MessageID": 19421777835146490,
                "email": email,
                "mj_campaign_id": 0,
                "mj_contact_id": 0,
                "customcampaign": "",
                "CustomID": "",
                "Payload": json.dumps({"outbound_id": outbound_id}),
                "blocked": False,
                "hard_bounce": False,
                "error_related_to": "recipient",
                "error": "quota exceeded",
            }
        ],
        "sparkpost": [
            {
                "msys": {
                    "message_event": {
                        "type": "bounce",
                        "bounce_class": "22",
                        "rcpt_to": email,
                        "raw_rcpt_to": email,
                        "message_id": "000443ee14578172be22",
                        "event_id": "92356927693813856",
                        "timestamp": "1795773600",
                        "reason": "452 4.2.2 mailbox full",
                        "rcpt_meta": {"outbound_id": outbound_id},
                    }
                }
            }
        ],
        "resend": {
            "type": "email.bounced",
            "created_at": "2026-11-27T10:00:00.000Z",
            "data": {
                "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
                "from": "reviews@send.example.com",
                "to": [email],
                "subject": "Would you review us?",
                "created_at": "2026-11-27T09:59:59.000Z",
                "bounce": {
                    "message": "The recipient's email provider sent a bounce message because "
                    "the recipient's inbox was full.",
                    "subType": "MailboxFull",
                    "type": "Transient",
                },
                "headers": [
                    {"name": "X-Metadata", "value": json.dumps({"outbound_id": outbound_id})}
                ],
            },
        },
    }


@pytest.mark.parametrize(
    "esp", ["postmark", "amazon_ses", "sendgrid", "brevo", "mailjet", "sparkpost", "resend"]
)
def test_an_esp_s_temporary_bounce_is_noted_only(esp, acme, make_request, settings):
    """anymail reports these soft bounces as "bounced", like a mailbox that does not exist; a full
    mailbox must not stop every agency from ever asking the person again."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}
    request = sent_request(acme, make_request)
    row = request.emails.get()
    payload = soft_bounce_payloads("cara@candidate.test", str(row.pk))[esp]
    headers = {"HTTP_AUTHORIZATION": "Basic aG9vazpzZWNyZXQ="}
    if esp == "amazon_ses":
        headers["HTTP_X_AMZ_SNS_MESSAGE_TYPE"] = "Notification"
        headers["HTTP_X_AMZ_SNS_MESSAGE_ID"] = payload["MessageId"]
    response = Client().post(
        f"/anymail/{esp}/tracking/", json.dumps(payload), content_type="application/json", **headers
    )
    assert response.status_code == 200, response.content
    request.refresh_from_db()
    assert request.status == "sent"
    assert not Suppression.objects.exists()
    assert request.emails.get().last_error.startswith("Soft bounce")
