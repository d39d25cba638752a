"""A leaked BCC address: a stranger's email sends nothing and the admins hear once per address.

The emails go in through the real `ingest` (as the listener hands them over) and out through the
real worker, which runs the `leak_alerts` job and sends what it queued; the clock is passed in, so
nothing here waits."""

import re
from datetime import timedelta
from email.utils import parseaddr

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from emailsync.agencies.models import User
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import split_message
from emailsync.inbound.ingest import ingest
from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest
from emailsync.workspace.leaks import alert_leaked_addresses
from emailsync.workspace.models import LeakAlert
from tests.inbound.mail import FakeDns, build

pytestmark = pytest.mark.django_db

SECRET_SUBJECT = "Offer letter ZEBRA-SUBJECT-7731"
SECRET_BODY = "Confidential salary ZEBRA-BODY-4410"
HELD = "held.person@candidate.test"


class Clock:
    """The listener's and worker's notion of now, moved on by hand so each job is due when we
    need it. It starts an hour ahead, so every address the test makes (at the real time) exists
    before the emails sent to it arrive, as it must in life."""

    def __init__(self):
        self.now = timezone.now() + timedelta(hours=1)

    def advance(self, minutes=2):
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rival(make_agency):
    agency = make_agency(name="Rival Recruitment", domains=["rival.test"])
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    return agency


@pytest.fixture
def second_admin(acme, add_member):
    return add_member(acme, role=User.Role.ADMIN)


def send_to_bcc(agency, sender, clock, address=None, to=HELD):
    """One email from `sender` BCC'd to the agency's (current, unless given) address."""
    address = address or InboundAddress.current_for(agency)
    raw = build(sender=sender, to=(to,), subject=SECRET_SUBJECT, body=SECRET_BODY)
    header, body = split_message(raw)
    evidence = gather_evidence(header, body, FakeDns())
    [result] = ingest([address.address], header, body, evidence, "smtp", now=clock.now)
    return Trigger.objects.get(pk=result.trigger_id)


def work(clock) -> list:
    """One worker pass (due jobs, then due email) a little later; returns the emails it sent."""
    before = len(mail.outbox)
    Worker().run_once(now=clock.advance())
    return mail.outbox[before:]


def alert_emails(messages):
    return [m for m in messages if "used your BCC address" in m.subject]


def to(message) -> str:
    return parseaddr(message.to[0])[1]


def test_a_stranger_is_quarantined_and_each_admin_is_told_once(acme, second_admin, rival, clock):
    trigger = send_to_bcc(acme, "Mallory <mallory@stranger.example>", clock)
    assert (trigger.status, trigger.reason) == ("quarantined", "sender_not_agency")

    sent = work(clock)

    alerts = alert_emails(sent)
    assert sorted(to(m) for m in alerts) == sorted([acme.admin.email, second_admin.email])
    recipients = {parseaddr(a)[1] for m in sent for a in m.to}
    assert acme.sam.email not in recipients  # recruiters are not told
    assert HELD not in recipients  # and nobody was asked
    assert not ReviewRequest.objects.filter(agency=acme).exists()
    assert not {u.email for u in rival.users.all()} & recipients
    alert = LeakAlert.objects.get(agency=acme)
    assert alert.sender == "mallory@stranger.example" and alert.trigger == trigger
    assert alert.address == InboundAddress.current_for(acme)
    assert acme.audit_entries.filter(action="email_sync.address_leaked").count() == 1


def test_the_email_says_what_happened_and_nothing_of_the_message(acme, clock):
    send_to_bcc(acme, "Mallory <mallory@stranger.example>", clock)
    [email] = alert_emails(work(clock))
    html = email.alternatives[0][0]
    for part in (email.subject, email.body, html):
        assert "ZEBRA" not in part  # neither subject nor body of the stranger's email…
        assert HELD not in part  # …nor whom it was written to
        assert InboundAddress.current_for(acme).token not in part  # nor the whole address
    assert "mallory@stranger.example" in email.body and "mallory@stranger.example" in html
    assert "quarantine" in email.body
    assert reverse("email-sync") in email.body and reverse("email-sync") in html
    assert str(clock.now.year) in email.body  # the time, in the agency's zone
    assert email.extra_headers["From"].startswith("Email Sync <")


def test_further_strangers_to_the_same_address_send_nothing_more(acme, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    assert len(alert_emails(work(clock))) == 1
    send_to_bcc(acme, "eve@another-stranger.example", clock)
    send_to_bcc(acme, "mallory@stranger.example", clock)
    assert alert_emails(work(clock)) == []
    assert alert_emails(work(clock)) == []
    assert LeakAlert.objects.filter(agency=acme).count() == 1
    assert OutboundEmail.objects.filter(template="address_leaked").count() == 1


def test_after_rotating_a_stranger_using_the_new_address_alerts_again(acme, admin, clock):
    old = InboundAddress.current_for(acme)
    send_to_bcc(acme, "mallory@stranger.example", clock)
    assert len(alert_emails(work(clock))) == 1

    assert admin.post(reverse("email-sync-rotate")).status_code == 302
    new = InboundAddress.current_for(acme)
    assert new != old
    # Mallory keeps using the old address in its grace period: that leak was already reported.
    send_to_bcc(acme, "mallory@stranger.example", clock, address=old)
    assert alert_emails(work(clock)) == []
    # Someone else has the new address too: that is news.
    send_to_bcc(acme, "eve@another-stranger.example", clock, address=new)
    [again] = alert_emails(work(clock))
    assert to(again) == acme.admin.email and "eve@another-stranger.example" in again.body
    assert LeakAlert.objects.get(address=new).sender == "eve@another-stranger.example"


def test_another_agency_hears_nothing_of_its_neighbours_leak(acme, rival, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    sent = work(clock)
    rival_people = set(rival.users.values_list("email", flat=True))
    assert alert_emails(sent) and not {to(m) for m in sent} & rival_people
    assert not LeakAlert.objects.filter(agency=rival).exists()
    # …and the rival's own stranger alerts only the rival.
    send_to_bcc(rival, "mallory@stranger.example", clock)
    [email] = alert_emails(work(clock))
    assert to(email) == rival.admins().get().email


def test_the_agencys_own_people_never_raise_the_alarm(acme, clock):
    # Sam, on the agency's domain, without a DKIM signature: quarantined, but not a stranger.
    trigger = send_to_bcc(acme, "Sam Carter <sam@acme.test>", clock)
    assert (trigger.status, trigger.reason) == ("quarantined", "sender_unauthenticated")
    assert alert_emails(work(clock)) == []
    assert not LeakAlert.objects.exists()


def test_a_released_trigger_is_no_longer_a_leak(acme, admin, clock):
    trigger = send_to_bcc(acme, "sam.personal@gmail.example", clock)
    admin.post(reverse("trigger-release", args=[trigger.pk]))
    assert alert_emails(work(clock)) == []


def test_the_job_alerts_once_even_when_run_twice_at_once(acme, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    assert alert_leaked_addresses(clock.advance())["alerts"] == 1
    assert alert_leaked_addresses(clock.now)["alerts"] == 0
    assert OutboundEmail.objects.filter(template="address_leaked").count() == 1


def test_the_stranger_is_forgotten_with_the_triggers(acme, clock, settings):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    later = clock.now + timedelta(days=settings.EMAILSYNC_TRIGGER_RETENTION_DAYS + 1)
    alert_leaked_addresses(later)
    assert LeakAlert.objects.get(agency=acme).sender == ""


# --- the notice, the rotate button and dismissing ---------------------------------------------


NOTICE = b'id="leak-alert"'


def test_admins_see_the_notice_on_email_sync_and_the_dashboard(acme, admin, clock):
    assert NOTICE not in admin.get(reverse("email-sync")).content
    send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    for page in ("email-sync", "dashboard"):
        body = admin.get(reverse(page)).content
        assert NOTICE in body, page
        assert b"mallory@stranger.example" in body
        assert f'action="{reverse("email-sync-rotate")}"'.encode() in body
        assert b"Rotate address" in body and b"csrfmiddlewaretoken" in body


def test_the_notice_says_what_became_of_the_email(acme, admin, clock):
    trigger = send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    assert (
        b"Nothing was sent: the email is in quarantine." in admin.get(reverse("email-sync")).content
    )
    admin.post(reverse("trigger-release", args=[trigger.pk]))
    for page in ("email-sync", "dashboard"):
        body = admin.get(reverse(page)).content.decode()
        assert "You released the email from quarantine, so its recipients were asked." in body
        assert "in quarantine." not in body.split('id="leak-alert"')[1].split("</section>")[0]
        assert "Nothing was sent" not in body


def test_recruiters_neither_see_the_notice_nor_rotate_nor_dismiss(acme, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    recruiter = Client()
    recruiter.force_login(acme.sam)
    address = InboundAddress.current_for(acme)
    for page in ("email-sync", "dashboard"):
        response = recruiter.get(reverse(page))
        assert response.status_code == 403 and NOTICE not in response.content
    for page in ("agency-home", "agency-reviews", "team"):
        assert NOTICE not in recruiter.get(reverse(page)).content
    assert recruiter.post(reverse("email-sync-rotate")).status_code == 403
    assert recruiter.post(reverse("email-sync-leak-dismiss")).status_code == 403
    assert InboundAddress.current_for(acme) == address
    assert LeakAlert.objects.get(agency=acme).dismissed_at is None


def test_the_rotate_button_in_the_notice_rotates_with_csrf(acme, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(acme.admin)
    old = InboundAddress.current_for(acme)
    page = browser.get(reverse("email-sync")).content.decode()
    notice = page[page.index('id="leak-alert"') :]
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', notice, re.S)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2)).group(1)
    assert form.group(1) == reverse("email-sync-rotate") and "Rotate address" in form.group(2)
    assert browser.post(form.group(1)).status_code == 403  # no token, no rotation
    response = browser.post(form.group(1), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == reverse("email-sync")
    new = InboundAddress.current_for(acme)
    assert new != old
    old.refresh_from_db()
    assert old.retired_at is not None and old.accepts_mail()  # the usual grace period
    assert NOTICE not in browser.get(reverse("email-sync")).content  # the new one has no alert
    assert NOTICE not in browser.get(reverse("dashboard")).content


def test_dismissing_hides_the_notice_and_sends_nothing(acme, admin, clock):
    send_to_bcc(acme, "mallory@stranger.example", clock)
    work(clock)
    response = admin.post(reverse("email-sync-leak-dismiss"), {"next": "dashboard"})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert NOTICE not in admin.get(reverse("email-sync")).content
    assert NOTICE not in admin.get(reverse("dashboard")).content
    alert = LeakAlert.objects.get(agency=acme)
    assert alert.dismissed_by == acme.admin
    assert acme.audit_entries.filter(action="email_sync.leak_alert_dismissed").exists()
    send_to_bcc(acme, "eve@another-stranger.example", clock)
    assert alert_emails(work(clock)) == []  # still the same address: still "once"
    assert admin.get(reverse("email-sync-leak-dismiss")).status_code == 405


def test_one_agency_cannot_dismiss_anothers_alert(acme, rival, clock):
    send_to_bcc(rival, "mallory@stranger.example", clock)
    work(clock)
    acme_admin = Client()
    acme_admin.force_login(acme.admin)
    acme_admin.post(reverse("email-sync-leak-dismiss"))
    assert LeakAlert.objects.get(agency=rival).dismissed_at is None
