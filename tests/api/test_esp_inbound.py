"""Inbound mail through an ESP (anymail's inbound webhooks) makes exactly what the same email makes
over our SMTP listener. Payloads follow each ESP's documented format: Postmark's inbound JSON with
RawEmail, Mailgun's MIME route (form fields, signed with the webhook signing key), Amazon SES's
SNS notification with the base64 message, SendGrid's Inbound Parse with "send raw"."""

import base64
import email.utils
import hashlib
import hmac
import json
import time
import uuid

import pytest

from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.review_requests.models import AskedRecipient, ReviewRequest
from tests.inbound.listener import RunningListener
from tests.inbound.mail import FakeDns, SigningKey, build

SECRET = "hook-user:hook-pass"
SIGNING_KEY = "mailgun-signing-key-for-tests"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def key():
    return SigningKey("acme.test")


@pytest.fixture
def dns(key, monkeypatch):
    fake = FakeDns(key)
    monkeypatch.setattr("emailsync.api.esp.DNSFUNC", fake)
    return fake


@pytest.fixture(autouse=True)
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


@pytest.fixture
def acme(make_agency):
    from emailsync.agencies.models import User
    from emailsync.review_requests.models import EmailSyncSettings
    from tests.api.conftest import enable_api

    agency = make_agency(name="Acme Recruitment", domains=["acme.test"])
    enable_api(agency, "email_sync")
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    User.objects.create_user(
        email="sam@acme.test",
        password="x" * 12,
        full_name="Sam Carter",
        agency=agency,
        role=User.Role.RECRUITER,
    )
    agency.bcc = InboundAddress.current_for(agency).address
    return agency


def message(key) -> bytes:
    raw = build(
        to=("Cara Candidate <cara@candidate.test>", "noreply@candidate.test"),
        cc=("Bob Boss <bob@client.test>", "jo@acme.test"),
        message_id=f"<{uuid.uuid4().hex}@mail.acme.test>",
        extra_headers=[("X-EmailSync-Placement", "PL-42")],
    )
    return key.sign(raw)


def outcome(agency) -> dict:
    """What a delivery made, without ids and times."""
    trigger = Trigger.objects.get(agency=agency)
    return {
        "trigger": (trigger.status, trigger.reason, trigger.auth_method, trigger.placement_ref),
        "recipients": sorted(
            (r.email, r.name, r.outcome, r.reason) for r in trigger.recipients.all()
        ),
        "requests": sorted(
            (
                r.email,
                r.name,
                r.status,
                r.recruiter.user.email,
                r.placement_ref,
                str(r.deadline - trigger.received_at),
            )
            for r in ReviewRequest.objects.filter(agency=agency).select_related("recruiter__user")
        ),
        "scheduled": ReviewRequest.objects.filter(agency=agency, status="scheduled").count(),
    }


def forget():
    Trigger.objects.all().delete()
    ReviewRequest.objects.all().delete()
    AskedRecipient.objects.all().delete()


def over_smtp(acme, raw, dns):
    listener = RunningListener(dnsfunc=dns)
    try:
        code, _text = listener.send(raw, [acme.bcc])
    finally:
        listener.stop()
    assert code == 250
    made = outcome(acme)
    forget()
    return made


def postmark(client, raw, acme, first_recipient=None):
    payload = {
        "FromName": "Sam Carter",
        "MessageStream": "inbound",
        "From": "sam@acme.test",
        "FromFull": {"Email": "sam@acme.test", "Name": "Sam Carter", "MailboxHash": ""},
        "To": "Cara Candidate <cara@candidate.test>, noreply@candidate.test",
        "ToFull": [{"Email": "cara@candidate.test", "Name": "Cara Candidate", "MailboxHash": ""}],
        "Cc": "Bob Boss <bob@client.test>, jo@acme.test",
        "CcFull": [{"Email": "bob@client.test", "Name": "Bob Boss", "MailboxHash": ""}],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": first_recipient or acme.bcc,
        "Subject": "Welcome to your new role",
        "MessageID": str(uuid.uuid4()),
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 3 Mar 2025 09:00:00 +0000",
        "TextBody": "Hi Cara",
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [{"Name": "X-Spam-Status", "Value": "No"}],
        "Attachments": [],
        "RawEmail": raw.decode(),
    }
    return client.post(
        "/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json", **AUTH
    )


def mailgun(client, raw, acme, sender="sam@acme.test"):
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(
        SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    fields = {
        "recipient": acme.bcc,
        "sender": sender,
        "from": "Sam Carter <sam@acme.test>",
        "subject": "Welcome to your new role",
        "body-mime": raw.decode(),
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }
    return client.post("/anymail/mailgun/inbound_mime/", fields, **AUTH)


def amazon_ses(client, raw, acme):
    ses_event = {
        "notificationType": "Received",
        "mail": {
            "timestamp": "2025-03-03T09:00:00.000Z",
            "source": "sam@acme.test",
            "messageId": uuid.uuid4().hex,
            "destination": [acme.bcc],
            "headersTruncated": False,
            "headers": [],
            "commonHeaders": {"from": ["Sam Carter <sam@acme.test>"], "to": [acme.bcc]},
        },
        "receipt": {
            "timestamp": "2025-03-03T09:00:00.000Z",
            "processingTimeMillis": 300,
            "recipients": [acme.bcc],
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "dmarcVerdict": {"status": "PASS"},
            "action": {
                "type": "SNS",
                "topicArn": "arn:aws:sns:us-east-1:123456789012:inbound",
                "encoding": "BASE64",
            },
        },
        "content": base64.b64encode(raw).decode(),
    }
    message_id = str(uuid.uuid4())
    sns = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:inbound",
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2025-03-03T09:00:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    return client.post(
        "/anymail/amazon_ses/inbound/",
        json.dumps(sns),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        HTTP_X_AMZ_SNS_MESSAGE_ID=message_id,
        **AUTH,
    )


def sendgrid(client, raw, acme):
    fields = {
        "email": raw.decode(),
        "envelope": json.dumps({"to": [acme.bcc], "from": "sam@acme.test"}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "SPF": "pass",
        "dkim": "{@acme.test : pass}",
    }
    return client.post("/anymail/sendgrid/inbound/", fields, **AUTH)


def sparkpost(client, raw, acme):
    """SparkPost's relay webhook: a batch of events, each with the raw message (here base64,
    as SparkPost sends one that is not plain ASCII)."""
    batch = [
        {
            "msys": {
                "relay_message": {
                    "content": {
                        "email_rfc822": base64.b64encode(raw).decode(),
                        "email_rfc822_is_base64": True,
                        "headers": [],
                        "html": "",
                        "subject": "Welcome to your new role",
                        "text": "Hi Cara",
                        "to": [acme.bcc],
                    },
                    "customer_id": "1337",
                    "friendly_from": "sam@acme.test",
                    "msg_from": "sam@acme.test",
                    "protocol": "smtp",
                    "rcpt_to": acme.bcc,
                    "webhook_id": "4839201967643219",
                }
            }
        }
    ]
    return client.post(
        "/anymail/sparkpost/inbound/", json.dumps(batch), content_type="application/json", **AUTH
    )


ESPS = {
    "postmark": postmark,
    "mailgun": mailgun,
    "amazon_ses": amazon_ses,
    "sendgrid": sendgrid,
    "sparkpost": sparkpost,
}


@pytest.mark.parametrize("esp", sorted(ESPS))
def test_esp_payload_makes_what_smtp_makes(esp, acme, key, dns, client):
    raw = message(key)
    expected = over_smtp(acme, raw, dns)
    assert expected["trigger"][0] == "accepted" and expected["scheduled"] == 2  # cara and bob

    response = ESPS[esp](client, raw, acme)
    assert response.status_code == 200, response.content
    assert outcome(acme) == expected
    assert Trigger.objects.get(agency=acme).source == f"esp:{esp}"

    # The ESP retries a delivery: the same Message-ID creates nothing new.
    assert ESPS[esp](client, raw, acme).status_code == 200
    assert Trigger.objects.filter(agency=acme).count() == 1
    assert ReviewRequest.objects.filter(agency=acme).count() == 2


def test_a_null_envelope_sender_through_an_esp_is_an_automatic_message(acme, key, dns, client):
    """As over SMTP: the ESP's envelope sender, empty, marks a bounce or an automatic reply."""
    raw = key.sign(build(to=("Cara <cara@candidate.test>",), message_id="<auto@acme.test>"))
    assert mailgun(client, raw, acme, sender="").status_code == 200
    trigger = Trigger.objects.get(agency=acme)
    assert (trigger.status, trigger.reason) == ("skipped", "auto_submitted")
    assert not ReviewRequest.objects.filter(agency=acme).exists()


def test_agency_found_from_delivered_to_when_the_esp_reports_another_recipient(
    acme, key, dns, client, make_agency
):
    other = make_agency(name="Other", domains=["other.test"])
    other_bcc = InboundAddress.current_for(other).address
    raw = b"Delivered-To: " + acme.bcc.encode() + b"\r\n" + message(key)
    response = postmark(client, raw, acme, first_recipient=other_bcc)
    assert response.status_code == 200
    assert Trigger.objects.get(agency=acme).status == "accepted"
    assert ReviewRequest.objects.filter(agency=acme).count() == 2


def test_webhooks_without_the_shared_secret_are_refused(acme, key, dns, client):
    raw = message(key)
    response = client.post(
        "/anymail/postmark/inbound/",
        json.dumps({"RawEmail": raw.decode(), "OriginalRecipient": acme.bcc}),
        content_type="application/json",
    )
    assert response.status_code in (400, 401, 403)
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    forged = client.post(
        "/anymail/mailgun/inbound_mime/",
        {
            "recipient": acme.bcc,
            "body-mime": raw.decode(),
            "timestamp": timestamp,
            "token": token,
            "signature": "0" * 64,
        },
        **AUTH,
    )
    assert forged.status_code == 400
    assert not Trigger.objects.exists()


def test_unknown_address_creates_nothing(acme, key, dns, client):
    raw = message(key)
    response = postmark(client, raw, acme, first_recipient="nobody-aaaaaaaaaaaaaaaa@example.com")
    # Only the headers could name an agency, and they do not (the BCC is not in them).
    assert response.status_code == 200
    assert not Trigger.objects.exists()


def test_agency_addresses_are_found_in_every_recipient_header_by_the_inbound_parser():
    from emailsync.inbound.headers import parse_address_values

    found = parse_address_values(
        ["Acme <Acme-Abc@In.Example.COM>, b@x.test", "=?utf-8?q?J=C3=B6?= <jo@x.test>"]
    )
    assert [(a.display_name, a.addr_spec) for a in found] == [
        ("Acme", "acme-abc@in.example.com"),
        ("", "b@x.test"),
        ("Jö", "jo@x.test"),
    ]
    assert parse_address_values(["acme-abc@in.example.com"])[0].addr_spec == (
        "acme-abc@in.example.com"
    )  # a Delivered-To value: a bare address
    assert parse_address_values([]) == []


def test_a_forged_authentication_results_header_counts_for_nothing_through_an_esp(
    client, acme, settings
):
    # Our front MTA's authserv-id is trusted over SMTP, where that MTA removes forgeries; a
    # message an ESP received never passed it, so the same header here is the sender's word.
    settings.EMAILSYNC_TRUSTED_AUTHSERV_IDS = ["mx1.reviews.example"]
    raw = build(
        message_id=f"<{uuid.uuid4().hex}@mail.acme.test>",
        extra_headers=[
            ("Authentication-Results", "mx1.reviews.example; dmarc=pass header.from=acme.test")
        ],
    )
    assert postmark(client, raw, acme).status_code == 200
    trigger = Trigger.objects.get(agency=acme)
    assert trigger.status == "quarantined" and trigger.reason == "sender_unauthenticated"
    assert not ReviewRequest.objects.exists()


@pytest.mark.parametrize("path", ["/anymail/postmark/inbound/", "/anymail/postmark/tracking/"])
def test_without_a_webhook_secret_the_webhooks_are_closed(client, acme, key, settings, path):
    from emailsync.review_requests.models import Suppression

    settings.ANYMAIL = {}
    payload = {"RecordType": "Bounce", "Type": "HardBounce", "Email": "cara@candidate.test"}
    if path.endswith("inbound/"):
        payload = {"OriginalRecipient": acme.bcc, "RawEmail": message(key).decode()}
    response = client.post(path, json.dumps(payload), content_type="application/json")
    assert response.status_code == 503
    assert response.json()["error"] == "webhooks_not_configured"
    assert not Trigger.objects.exists() and not Suppression.objects.exists()


def test_a_dns_outage_through_an_esp_is_quarantined_not_deferred(acme, key, monkeypatch):
    # An ESP stops posting again within minutes (SES) or hours (Mailgun, Postmark), before a
    # deferral would end: the email is kept in quarantine, where the admin can release it.
    import dkim
    from django.test import Client

    def outage(name, timeout=5):
        raise dkim.DnsTimeoutError("SERVFAIL")

    monkeypatch.setattr("emailsync.api.esp.DNSFUNC", outage)
    raw = key.sign(
        build(
            message_id=f"<{uuid.uuid4().hex}@mail.acme.test>",
            date=email.utils.formatdate(localtime=False),
        )
    )
    response = postmark(Client(raise_request_exception=False), raw, acme)
    assert response.status_code == 200
    trigger = Trigger.objects.get()
    assert trigger.status == "quarantined" and "(dns_error)" in trigger.auth_detail


def test_an_agency_over_its_hourly_limit_is_asked_to_retry_through_an_esp(acme, key, dns, client):
    """The flood limit held over SMTP only; a flood posted by an ESP went straight through."""
    from emailsync.review_requests.models import EmailSyncSettings

    EmailSyncSettings.objects.filter(agency=acme).update(rate_limit_per_hour=1)
    assert postmark(client, message(key), acme).status_code == 200
    refused = postmark(client, message(key), acme)
    assert refused.status_code == 503 and refused["Retry-After"] == "600"
    assert refused.json()["error"] == "rate_limited"
    assert Trigger.objects.filter(agency=acme).count() == 1


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/anymail/postmark/inbound/", "{not json", "application/json"),
        ("/anymail/amazon_ses/inbound/", "", "application/json"),
        ("/anymail/sendgrid/inbound/", "", "multipart/form-data; boundary=x"),
    ],
)
def test_a_payload_that_is_not_the_esps_format_is_a_clear_400(client, path, body, content_type):
    """A post that cannot be read (not JSON, fields missing) answered a 500 error page: the ESP
    retried it for days, and the operator saw a traceback for someone else's mistake."""
    response = client.post(path, body, content_type=content_type, **AUTH)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "malformed_payload"


def test_a_fault_of_ours_is_a_500_the_esp_retries(acme, key, dns, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("emailsync.api.esp.ingest", broken)
    response = postmark(client, message(key), acme)
    assert response.status_code == 500 and response.json()["error"] == "not_recorded"
    assert not Trigger.objects.exists()
