"""Bounces and mailto unsubscribes of the requests we sent arrive at the same listener."""

from datetime import timedelta

from django.utils import timezone

from emailsync.review_requests.bounces import bounce_local_part
from emailsync.review_requests.models import ReviewRequest, Source, Suppression
from emailsync.review_requests.unsubscribe import unsubscribe_local_part

DOMAIN = "in.emailsync.localhost"


def sent_request(agency, email="cara@candidate.test"):
    now = timezone.now()
    return ReviewRequest.objects.create(
        agency=agency,
        source=Source.EMAIL_SYNC,
        email=email,
        send_after=now,
        deadline=now + timedelta(hours=72),
        status=ReviewRequest.Status.SENT,
        sent_at=now,
    )


def dsn(status: str, action: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.candidate.test>\r\n"
        f"To: <bounce@{DOMAIN}>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mailbox does not exist.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.candidate.test\r\n\r\n"
        f"Final-Recipient: rfc822; cara@candidate.test\r\nAction: {action}\r\n"
        f"Status: {status}\r\nDiagnostic-Code: smtp; 550 {status} No such user\r\n"
        "--B--\r\n"
    ).encode()


def test_hard_bounce_suppresses_and_marks_the_request(listener, sync_agency):
    request = sent_request(sync_agency)
    code, _ = listener.send(
        dsn("5.1.1", "failed"), [f"{bounce_local_part(request)}@{DOMAIN}"], mail_from=""
    )
    request.refresh_from_db()
    assert code == 250 and request.status == ReviewRequest.Status.BOUNCED
    assert Suppression.suppressed({"cara@candidate.test"}) == {"cara@candidate.test"}


def test_soft_bounce_does_not_suppress(listener, sync_agency):
    request = sent_request(sync_agency)
    listener.send(dsn("4.2.2", "delayed"), [f"{bounce_local_part(request)}@{DOMAIN}"], mail_from="")
    request.refresh_from_db()
    assert request.status == ReviewRequest.Status.SENT
    assert not Suppression.suppressed({"cara@candidate.test"})


def test_forged_return_addresses_are_refused_at_rcpt(listener, sync_agency):
    request = sent_request(sync_agency)
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("")
        assert smtp.rcpt(f"bounce-{request.pk}-0000000000000000@{DOMAIN}")[0] == 550
        assert smtp.rcpt(f"unsubscribe-{request.pk + 1}-abc@{DOMAIN}")[0] == 550


def test_mailto_unsubscribe(listener, sync_agency):
    request = sent_request(sync_agency)
    raw = b"From: cara@candidate.test\r\nTo: x\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n"
    code, _ = listener.send(
        raw, [f"{unsubscribe_local_part(request)}@{DOMAIN}"], mail_from="cara@candidate.test"
    )
    assert code == 250
    assert Suppression.suppressed({"cara@candidate.test"}) == {"cara@candidate.test"}
