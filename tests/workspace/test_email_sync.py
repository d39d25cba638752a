"""The Email Sync page: the agency-wide switch and rules (audited), rotation, the setup test
partial with the verdict and what to fix, release and block from quarantine, mapping unknown
senders, the DNS check, "get help" with diagnostics but no content, the activity log and its
export, and the dashboard."""

import csv
from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.agencies.models import AuditEntry
from emailsync.inbound.models import BlockedSender, InboundAddress, Trigger, TriggerRecipient
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest
from emailsync.workspace import dnscheck
from emailsync.workspace.models import HelpRequest
from tests.workspace.objects import quarantined_trigger

pytestmark = pytest.mark.django_db


def test_switch_and_rules_are_agency_wide_and_audited(acme, admin, client):
    admin.post(reverse("email-sync-switch"), {"enabled": "off"})
    assert not EmailSyncSettings.for_agency(acme).enabled
    data = {
        "delay_hours": 2,
        "days": ["0", "2", "4"],
        "business_start": "08:00",
        "business_end": "18:00",
        "reminder_days": 3,
        "dedupe_days": 30,
        "recipient_cap": 5,
        "trusted_signing_domains": "ats.example\nmailer.example",
        "rate_limit_per_hour": 100,
    }
    assert admin.post(reverse("email-sync-settings"), data).status_code == 302
    sync = EmailSyncSettings.for_agency(acme)
    assert (sync.delay_hours, sync.business_days, sync.recipient_cap) == (2, "0,2,4", 5)
    assert sync.signing_domains() == ["ats.example", "mailer.example"]
    bad = admin.post(reverse("email-sync-settings"), {**data, "delay_hours": 99})
    assert bad.status_code == 400
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"email_sync.disabled", "email_sync.settings_changed"} <= actions


def test_rotation_shows_the_grace_period(acme, admin):
    old = InboundAddress.current_for(acme)
    admin.post(reverse("email-sync-rotate"))
    page = admin.get(reverse("email-sync"))
    assert old.address not in page.content.decode()
    assert InboundAddress.current_for(acme).address in page.content.decode()
    assert b"keeps working until" in page.content


def quarantined_test(acme, **fields) -> Trigger:
    """A setup test from the admin that failed the sender check."""
    return Trigger.objects.create(
        agency=acme,
        message_id_hash=fields.pop("message_id_hash", f"t{Trigger.objects.count()}"),
        sender=acme.admin.email,
        status=Trigger.Status.QUARANTINED,
        reason="sender_unauthenticated",
        is_setup_test=True,
        **fields,
    )


def test_setup_test_partial_shows_subject_verdict_and_recipients(acme, admin):
    assert b"Start setup test" in admin.get(reverse("email-sync")).content
    waiting = admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in waiting.content
    assert EmailSyncSettings.for_agency(acme).in_setup_test()
    trigger = quarantined_test(acme, subject="Hello from my test", auth_detail="no DKIM signature")
    TriggerRecipient.objects.create(
        trigger=trigger, email="friend@people.test", outcome="held", reason="quarantined"
    )
    arrived = admin.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()
    assert "Hello from my test" in arrived and "friend@people.test" in arrived
    assert "Turn on DKIM signing" in arrived  # what to fix
    assert "hx-trigger" not in arrived.split("Run another test")[0]  # polling stopped


def test_a_signature_broken_in_transit_is_not_told_to_turn_on_dkim(acme, admin):
    """The domain signed; a footer or a relay changed the body after. Turning DKIM on would not
    help, so the page says what would."""
    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    quarantined_test(acme, auth_detail="dkim=fail d=acme.test s=sel (body_hash_mismatch)")
    arrived = admin.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()
    assert "content changed after it was signed" in arrived
    assert "Turn on DKIM signing" not in arrived


def test_a_waiting_setup_test_says_when_someone_else_s_email_arrived_and_can_be_stopped(
    acme, admin
):
    """The demo's `sendtest` sends as a recruiter; a setup test counts only the admin's own
    email, so the page said nothing and waited for half an hour."""
    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    Trigger.objects.create(
        agency=acme, message_id_hash="o1", sender="sam@acme.test", status="accepted"
    )
    waiting = admin.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="waiting"' in waiting
    assert "An email from sam@acme.test arrived at" in waiting
    assert f"from {acme.admin.email}" in waiting
    stopped = admin.post(reverse("setup-test-stop"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="idle"' in stopped and "Start setup test" in stopped
    assert not EmailSyncSettings.for_agency(acme).in_setup_test()
    assert AuditEntry.objects.filter(action="email_sync.setup_test_stopped").exists()


def test_the_admins_real_emails_after_a_test_are_not_shown_as_its_result(acme, admin):
    """The test email ends the test (its arrival becomes the test's end); the admin's next
    emails, to real candidates, replaced it in the panel as if they were the test."""
    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    arrived = timezone.now()
    Trigger.objects.create(
        agency=acme,
        message_id_hash="test",
        sender=acme.admin.email,
        status="accepted",
        is_setup_test=True,
        subject="My setup test",
        received_at=arrived,
    )
    EmailSyncSettings.objects.filter(agency=acme).update(setup_test_until=arrived)
    real = Trigger.objects.create(
        agency=acme,
        message_id_hash="real",
        sender=acme.admin.email,
        status="accepted",
        received_at=arrived + timedelta(minutes=5),
    )
    TriggerRecipient.objects.create(trigger=real, email="renee@people.test", outcome="invited")
    panel = admin.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()
    assert "My setup test" in panel and "renee@people.test" not in panel


def test_another_admin_looking_at_the_panel_sees_the_testers_email_awaited(acme, admin):
    """Admin B opens the page while admin A's test runs: B's own real email is not A's test,
    and the panel says whose email it waits for."""
    from django.test import Client

    from emailsync.agencies.models import User

    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")  # admin A starts it
    bob = User.objects.create_user(
        email="bob@acme.test", password="x" * 12, full_name="Bob", agency=acme, role="admin"
    )
    Trigger.objects.create(agency=acme, message_id_hash="b1", sender=bob.email, status="accepted")
    other = Client()
    other.force_login(bob)
    panel = other.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="waiting"' in panel and f"from {acme.admin.email}" in panel


def test_no_setup_test_while_email_sync_is_off(acme, admin):
    """The BCC address refuses mail while Email Sync is off, so no test email could arrive:
    the page says so instead of offering a test that would wait forever."""
    admin.post(reverse("email-sync-switch"), {"enabled": "off"})
    page = admin.get(reverse("email-sync")).content.decode()
    assert "refuses mail" in page and "Start setup test" not in page
    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    assert not EmailSyncSettings.for_agency(acme).in_setup_test()


def test_release_asks_the_held_recipients_by_todays_rules(acme, admin):
    trigger = quarantined_trigger(
        acme, sender="sam@acme.test", recipients=("ann@people.test", "boss@acme.test")
    )
    TriggerRecipient.objects.filter(email="boss@acme.test").update(outcome="held")
    page = admin.get(reverse("email-sync")).content.decode()
    assert "Its 2 recipients will be asked for a review now." in page  # Release confirms first
    released = admin.post(reverse("trigger-release", args=[trigger.pk]), follow=True)
    assert "Released: 1 person will be asked for a review." in released.content.decode()
    trigger.refresh_from_db()
    assert trigger.status == "released"
    outcomes = dict(trigger.recipients.values_list("email", "reason"))
    assert outcomes == {"ann@people.test": "", "boss@acme.test": "colleague"}
    rr = ReviewRequest.objects.get()
    assert rr.email == "ann@people.test" and rr.status == "scheduled"
    assert AuditEntry.objects.filter(action="email_sync.trigger_released").exists()


def test_releasing_a_trigger_someone_else_just_released_says_so(acme, admin, monkeypatch):
    """Two admins release the same quarantined email: the second is told it is no longer in
    quarantine (no server error, nobody asked twice)."""
    from emailsync.review_requests import manual

    trigger = quarantined_trigger(acme, recipients=("ann@people.test",))
    real = manual.release

    def release(t, by, now=None):
        real(t, by)  # the other admin's release commits first
        return real(t, by, now)

    monkeypatch.setattr(manual, "release", release)
    response = admin.post(reverse("trigger-release", args=[trigger.pk]), follow=True)
    assert response.status_code == 200
    assert b"no longer in quarantine" in response.content
    assert ReviewRequest.objects.filter(email="ann@people.test").count() == 1


def test_block_the_sender_of_a_quarantined_email(acme, admin):
    first = quarantined_trigger(acme)
    second = quarantined_trigger(acme)
    admin.post(reverse("trigger-block", args=[first.pk]))
    assert BlockedSender.objects.filter(agency=acme, email=first.sender).exists()
    assert set(Trigger.objects.values_list("status", flat=True)) == {"blocked"}
    assert second.recipients.get().outcome == "skipped"
    assert not ReviewRequest.objects.exists()


def test_a_blocked_sender_is_listed_and_can_be_unblocked(acme, admin, make_agency):
    trigger = quarantined_trigger(acme, sender="noisy@partner.test")
    admin.post(reverse("trigger-block", args=[trigger.pk]))
    blocked = BlockedSender.objects.get(agency=acme)
    page = admin.get(reverse("email-sync")).content.decode()
    assert "Blocked senders" in page and "noisy@partner.test" in page
    assert reverse("sender-unblock", args=[blocked.pk]) in page

    # Another agency's admin cannot see or lift it.
    other = make_agency(name="Globex")
    stranger = admin.__class__()
    stranger.force_login(other.admins().get())
    assert "noisy@partner.test" not in stranger.get(reverse("email-sync")).content.decode()
    assert stranger.post(reverse("sender-unblock", args=[blocked.pk])).status_code == 404
    # Nor can a recruiter of the same agency: unblocking is an admin's decision.
    recruiter = admin.__class__()
    recruiter.force_login(acme.sam)
    assert recruiter.post(reverse("sender-unblock", args=[blocked.pk])).status_code in (302, 403)
    assert BlockedSender.objects.filter(pk=blocked.pk).exists()

    done = admin.post(reverse("sender-unblock", args=[blocked.pk]), follow=True)
    assert "noisy@partner.test is no longer blocked" in done.content.decode()
    assert not BlockedSender.objects.exists()
    # What was blocked stays blocked; the log says who lifted it.
    trigger.refresh_from_db()
    assert trigger.status == "blocked"
    entry = AuditEntry.objects.get(action="email_sync.sender_unblocked")
    assert (entry.actor, entry.subject) == (acme.admin, "noisy@partner.test")


def test_a_long_block_list_shows_the_most_recent_and_the_total(acme, admin):
    BlockedSender.objects.bulk_create(
        BlockedSender(agency=acme, email=f"spam{n}@bad.test", blocked_at=timezone.now())
        for n in range(51)
    )
    page = admin.get(reverse("email-sync")).content.decode()
    assert '<span class="count">51</span>' in page
    assert "The 50 most recent are shown." in page
    assert page.count('action="/app/email-sync/blocked/') == 50


def test_map_an_unknown_sender(acme, admin):
    from emailsync.inbound.models import UnmappedSender

    sender = UnmappedSender.objects.create(agency=acme, email="jo@acme.test")
    admin.post(reverse("unmapped-map", args=[sender.pk]), {"recruiter": acme.sam.profile.pk})
    assert UnmappedSender.objects.get().mapped_to == acme.sam.profile


def test_mapping_a_sender_credits_the_reviews_already_given_and_the_rating(
    acme, admin, make_review
):
    """A review given for one of the sender's requests before the mapping reaches the
    recruiter's profile and rating once the sender is mapped."""
    from emailsync.inbound.models import UnmappedSender
    from emailsync.placements.models import Placement
    from emailsync.profiles.models import RecruiterRating

    review = make_review(email="cara@c.test")
    rr = review.review_request
    ReviewRequest.objects.filter(pk=rr.pk).update(recruiter=None)
    type(review).objects.filter(pk=review.pk).update(recruiter=None)
    trigger = Trigger.objects.create(
        agency=acme,
        received_at=timezone.now(),
        message_id_hash="m" * 64,
        sender="new.guy@acme.test",
        status=Trigger.Status.ACCEPTED,
    )
    TriggerRecipient.objects.create(
        trigger=trigger, email="cara@c.test", outcome="invited", review_request=rr
    )
    sender = UnmappedSender.objects.create(agency=acme, email="new.guy@acme.test")
    p = Placement.objects.create(agency=acme, candidate_name="Cara", candidate_email="cara@c.test")
    admin.post(reverse("review-verify", args=[review.pk]), {"placement_id": str(p.pk)})
    admin.post(reverse("unmapped-map", args=[sender.pk]), {"recruiter": acme.sam.profile.pk})
    rr.refresh_from_db()
    review.refresh_from_db()
    assert rr.recruiter == acme.sam.profile
    assert review.recruiter == acme.sam.profile and review.status == "verified"
    rating = RecruiterRating.objects.get(recruiter=acme.sam.profile)
    assert (rating.count, rating.total) == (1, 5)


def uncredited_request_from(acme, sender: str, email: str = "lukasz@people.test"):
    trigger = Trigger.objects.create(
        agency=acme, message_id_hash=f"from-{sender}", sender=sender, status="accepted"
    )
    request = ReviewRequest.objects.create(
        agency=acme, email=email, send_after=timezone.now(), deadline=timezone.now()
    )
    TriggerRecipient.objects.create(
        trigger=trigger, email=email, outcome="invited", review_request=request
    )
    return trigger, request


def test_an_address_added_on_the_team_page_is_mapped_and_credits_what_it_sent(acme, admin):
    """Adding the address to a member on the Team page left it under "Unknown senders" and its
    earlier requests uncredited; mapping it there too then split it between two people."""
    from emailsync.agencies.models import SenderAddress
    from emailsync.inbound.models import UnmappedSender

    trigger, request = uncredited_request_from(acme, "kate.ng@acme.test")
    unknown = UnmappedSender.objects.create(agency=acme, email="kate.ng@acme.test")
    page = admin.post(
        reverse("member", args=[acme.sam.pk]), {"email": "Kate.Ng@acme.test"}, follow=True
    )
    assert "1 earlier request from it is now credited to Sam Carter" in page.content.decode()
    request.refresh_from_db()
    trigger.refresh_from_db()
    unknown.refresh_from_db()
    assert request.recruiter == trigger.recruiter == unknown.mapped_to == acme.sam.profile
    assert "kate.ng@acme.test" not in admin.get(reverse("email-sync")).content.decode()
    assert SenderAddress.objects.get(email="kate.ng@acme.test").profile == acme.sam.profile
    # One entry says what was credited: the mapping's, not the address's too.
    added = AuditEntry.objects.get(action="member.sender_added")
    mapped = AuditEntry.objects.get(action="email_sync.sender_mapped")
    assert "requests" not in added.detail and mapped.detail["requests"] == 1


def test_an_address_outside_the_domains_added_after_a_release_credits_its_requests(acme, admin):
    """A quarantined email released before its address was added: the leak email's advice."""
    _, request = uncredited_request_from(acme, "tom@gmail.example", "lea@people.test")
    admin.post(reverse("member", args=[acme.sam.pk]), {"email": "tom@gmail.example"})
    request.refresh_from_db()
    assert request.recruiter == acme.sam.profile


def test_an_unknown_sender_a_member_was_given_before_is_no_longer_listed(acme, admin):
    from emailsync.agencies.models import SenderAddress
    from emailsync.inbound.models import UnmappedSender

    UnmappedSender.objects.create(agency=acme, email="kate.ng@acme.test")
    UnmappedSender.objects.create(agency=acme, email="still.unknown@acme.test")
    SenderAddress.objects.create(agency=acme, profile=acme.sam.profile, email="kate.ng@acme.test")
    page = admin.get(reverse("email-sync")).content.decode()
    assert "still.unknown@acme.test" in page and "kate.ng@acme.test" not in page


def test_mapping_an_address_credits_what_it_sent_with_a_plus_tag(acme, admin):
    from emailsync.inbound.models import UnmappedSender

    _, tagged = uncredited_request_from(acme, "Kate.Ng+ATS@acme.test", "a@people.test")
    _, other = uncredited_request_from(acme, "kate.ngx+ats@acme.test", "b@people.test")
    unknown = UnmappedSender.objects.create(agency=acme, email="kate.ng@acme.test")
    admin.post(reverse("unmapped-map", args=[unknown.pk]), {"recruiter": acme.sam.profile.pk})
    tagged.refresh_from_db()
    other.refresh_from_db()
    assert tagged.recruiter == acme.sam.profile and other.recruiter is None


def test_mapping_an_address_another_recruiter_has_moves_it(acme, admin):
    from emailsync.agencies.models import RecruiterProfile, SenderAddress, User
    from emailsync.inbound.models import UnmappedSender

    priya = User.objects.create_user(
        email="priya@acme.test", password="x" * 12, full_name="Priya Nair", agency=acme
    )
    SenderAddress.objects.create(
        agency=acme, profile=RecruiterProfile.for_user(priya), email="kate.ng@acme.test"
    )
    unknown = UnmappedSender.objects.create(agency=acme, email="kate.ng@acme.test")
    admin.post(reverse("unmapped-map", args=[unknown.pk]), {"recruiter": acme.sam.profile.pk})
    [address] = SenderAddress.objects.filter(email="kate.ng@acme.test")
    assert address.profile == acme.sam.profile
    [entry] = AuditEntry.objects.filter(action="email_sync.sender_mapped")
    assert entry.detail["previous"] == "Priya Nair"
    # A second click (or a page left open) maps nothing again.
    again = admin.post(
        reverse("unmapped-map", args=[unknown.pk]),
        {"recruiter": RecruiterProfile.for_user(priya).pk},
        follow=True,
    )
    assert "kate.ng@acme.test already belongs to Sam Carter." in again.content.decode()
    assert SenderAddress.objects.get(email="kate.ng@acme.test").profile == acme.sam.profile
    assert AuditEntry.objects.filter(action="email_sync.sender_mapped").count() == 1


def test_dns_check_reports_what_is_missing(acme, admin, monkeypatch):
    import dns.resolver

    records = {
        "acme.test": ["v=spf1 include:_spf.google.com ~all"],
        "google._domainkey.acme.test": ["v=DKIM1; k=rsa; p=MIIB"],
    }

    class Answer:
        def __init__(self, text):
            self.strings = [text.encode()]

    def resolve(name, rdtype):
        if name not in records:
            raise dns.resolver.NXDOMAIN
        return [Answer(t) for t in records[name]]

    report = dnscheck.check("acme.test", lookup=resolve)
    assert report.spf.startswith("v=spf1") and report.dkim == ["google"] and not report.dmarc
    assert any("DMARC" in p for p in report.problems)
    monkeypatch.setattr(
        dnscheck, "resolver", lambda: type("R", (), {"resolve": staticmethod(resolve)})
    )
    page = admin.get(reverse("email-sync-dns", args=[acme.domains.get().pk]))
    assert b"google" in page.content and b"No DMARC record" in page.content


def test_get_help_attaches_diagnostics_never_content(acme, admin):
    Trigger.objects.create(
        agency=acme,
        message_id_hash="s",
        sender="admin@acme.test",
        status="accepted",
        is_setup_test=True,
        subject="Secret subject line",
    )
    admin.post(reverse("email-sync-help"), {"message": "Nothing arrives"})
    help_request = HelpRequest.objects.get()
    assert help_request.diagnostics["enabled"] is True
    assert help_request.diagnostics["triggers_30d"] == {"accepted:-": 1}
    assert help_request.diagnostics["reminder_days"] == 5
    assert help_request.diagnostics["rate_limit_per_hour"] == 600
    assert "Secret subject line" not in str(help_request.diagnostics)


def test_last_30_days_counts_email_sync_s_own_emails_and_requests(acme, admin):
    Trigger.objects.create(agency=acme, message_id_hash="e", sender="sam@acme.test")
    # A setup test is left out of the emails as its request is left out of the requests.
    Trigger.objects.create(
        agency=acme, message_id_hash="t", sender="ann@acme.test", is_setup_test=True
    )
    admin.post(
        reverse("manual-request"), {"people": "ann@people.test", "recruiter": acme.sam.profile.pk}
    )
    assert ReviewRequest.objects.filter(source="manual").count() == 1
    page = admin.get(reverse("email-sync")).content.decode()
    assert "1 email · 0 requests · 0 reviews" in page


def test_activity_log_lists_every_recipient_and_exports(acme, admin):
    trigger = quarantined_trigger(acme, recipients=("a@people.test", "b@people.test"))
    page = admin.get(reverse("activity-log"), {"q": "b@people"})
    assert list(page.context["page"]) == [trigger]
    assert b"Would be invited if you release" in page.content
    export = admin.get(reverse("activity-export"))
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 3 and "a@people.test" in lines[1] and "quarantined" in lines[1]


def test_activity_filters_say_when_nothing_matches_and_refuse_a_backward_range(acme, admin):
    trigger = quarantined_trigger(acme, recipients=("renee@people.test",))
    TriggerRecipient.objects.filter(trigger=trigger).update(name="Renée O'Connor")
    by_name = admin.get(reverse("activity-log"), {"q": "o'connor"})
    assert list(by_name.context["page"]) == [trigger]
    none = admin.get(reverse("activity-log"), {"q": "nobody@nowhere.example"}).content.decode()
    assert "Nothing matches these filters." in none and "Run the setup test" not in none
    backward_range = {"status": "quarantined", "since": "2026-05-02", "until": "2026-05-01"}
    backward = admin.get(reverse("activity-log"), backward_range)
    assert "The To date is before the From date." in backward.content.decode()
    assert list(backward.context["page"]) == []
    export = admin.get(reverse("activity-export"), backward_range)
    assert len(b"".join(export.streaming_content).decode("utf-8-sig").splitlines()) == 1
    blank = admin.get(reverse("activity-log"), {"q": "", "status": ""}).content.decode()
    assert "Nothing matches" not in blank


def test_activity_names_the_recruiter_a_manual_request_was_for(acme, admin):
    from emailsync.review_requests.manual import Person, request_manually

    request_manually(
        acme, [Person("ann@people.test", "Ann")], by=acme.admin, recruiter=acme.sam.profile
    )
    page = admin.get(reverse("activity-log")).content.decode()
    assert f"Manual request by {acme.admin.email}, for Sam Carter" in page


def test_the_status_line_says_a_passed_setup_test_sent_its_request_at_once(acme, admin):
    Trigger.objects.create(
        agency=acme, message_id_hash="t", sender=acme.admin.email, status="accepted",
        is_setup_test=True,
    )  # fmt: skip
    page = admin.get(reverse("email-sync")).content.decode()
    assert "Setup test passed: its request was sent at once" in page
    assert "Requests scheduled" not in page.split("Last email received")[1].split("</dd>")[0]


def test_activity_shows_and_exports_structured_data_problems_to_their_agency_only(
    acme, admin, client, make_agency
):
    from emailsync.inbound.structured import PROBLEMS
    from emailsync.workspace.labels import STRUCTURED

    trigger = quarantined_trigger(acme, recipients=("a@people.test",))
    trigger.structured_problems = "structured_invalid_json,structured_conflict"
    trigger.save()
    clean = quarantined_trigger(acme, sender="other@elsewhere.test", recipients=("c@people.test",))
    page = admin.get(reverse("activity-log")).content.decode()
    record = page.split(f'data-trigger="{trigger.pk}"')[1].split("</section>")[0]
    assert "The structured data block is not valid JSON, so it was ignored." in record
    assert "<code>structured_invalid_json</code>" in record
    assert "the header was used." in record and "<code>structured_conflict</code>" in record
    assert "structured" not in page.split(f'data-trigger="{clean.pk}"')[1].split("</section>")[0]

    export = admin.get(reverse("activity-export"))
    rows = list(csv.DictReader(b"".join(export.streaming_content).decode("utf-8-sig").splitlines()))
    by_recipient = {row["recipient"]: row for row in rows}
    problem = by_recipient["a@people.test"]
    assert problem["structured_problems"] == "structured_invalid_json,structured_conflict"
    assert problem["structured_problems_text"].startswith(
        "The structured data block is not valid JSON"
    )
    assert by_recipient["c@people.test"]["structured_problems"] == ""
    assert by_recipient["c@people.test"]["structured_problems_text"] == ""

    rival = make_agency(name="Rival Recruitment", domains=["rival.test"])
    client.force_login(rival.admins().get())
    theirs = client.get(reverse("activity-log"))
    assert b"structured_invalid_json" not in theirs.content
    assert b"not valid JSON" not in theirs.content
    their_export = b"".join(client.get(reverse("activity-export")).streaming_content)
    assert b"structured_invalid_json" not in their_export
    assert set(STRUCTURED) == set(PROBLEMS)


def test_activity_says_which_header_of_a_skipped_email_could_not_be_read(acme, admin):
    trigger = quarantined_trigger(acme, recipients=("a@people.test",))
    trigger.status, trigger.reason = Trigger.Status.SKIPPED, "header_defects"
    trigger.header_defects = "to_parse_defect,to_no_domain,headers_malformed"
    trigger.save()
    page = admin.get(reverse("activity-log")).content.decode()
    record = page.split(f'data-trigger="{trigger.pk}"')[1].split("</section>")[0]
    assert "To: an address is not well-formed" in record
    assert "To: an address has no domain after the @." in record
    assert "The header block is malformed" in record and "<code>to_no_domain</code>" in record
    export = admin.get(reverse("activity-export"))
    [row] = csv.DictReader(b"".join(export.streaming_content).decode("utf-8-sig").splitlines())
    assert row["header_defects"] == "to_parse_defect,to_no_domain,headers_malformed"
    assert "To: an address has no domain after the @." in row["header_defects_text"]


def test_every_header_defect_the_parser_reports_has_words():
    """The codes are read off headers.py itself, so a new one without wording fails here."""
    import re
    from pathlib import Path

    from emailsync.inbound import headers
    from emailsync.workspace.labels import header_defect

    source = Path(headers.__file__).read_text()
    fixed = set(re.findall(r'"((?:from|headers)_[a-z0-9_]+)"', source))
    per_header = set(re.findall(r"\{code\}_([a-z0-9_]+)", source))
    assert {"headers_malformed", "headers_unparseable", "from_missing"} <= fixed
    assert {"no_domain", "invalid_utf8"} <= per_header
    codes = fixed | {f"{h}_{kind}" for h in ("from", "to", "cc") for kind in per_header}
    unworded = [code for code in sorted(codes) if header_defect(code) == code]
    assert unworded == []


def test_dashboard_draws_svg_charts(acme, admin, make_review, django_assert_max_num_queries):
    from emailsync.placements.models import Placement

    make_review(rating=4)  # still missing verification: not in the public average
    verified = make_review(email="x@people.test", rating=2)
    verified.verify(
        Placement.objects.create(agency=acme, candidate_name="X", start_date=timezone.now()),
        by=acme.admin,
    )
    with django_assert_max_num_queries(12):
        page = admin.get(reverse("dashboard"))
    body = page.content.decode()
    assert body.count("<svg") == 3
    # Sam's public average, as his profile shows it; not 3.0 with the pending review.
    assert "2.0★" in body and "3.0★" not in body and "Public average" in body


def test_dns_check_without_javascript_is_a_whole_page(acme, admin, monkeypatch):
    """ "Check DNS" is a link that htmx turns into an in-place report. Followed without
    JavaScript (or opened in a new tab) it showed the bare report: no page, no title, no way
    back, not even which domain it was about."""
    report = dnscheck.Report(domain="acme.test", spf="v=spf1 -all", dmarc="", dkim=[])
    monkeypatch.setattr(dnscheck, "check", lambda domain: report)
    url = reverse("email-sync-dns", args=[acme.domains.get().pk])
    page = admin.get(url).content.decode()
    assert "<title>" in page and "<h1>" in page and "acme.test" in page
    assert f'href="{reverse("email-sync")}"' in page and "v=spf1 -all" in page
    partial = admin.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<title>" not in partial and "v=spf1 -all" in partial


def test_the_setup_guides_never_have_an_agency_copy_every_email(acme, admin):
    """Salesforce's Compliance BCC and a Workspace rule for all outbound mail copy every email:
    prospects and candidates who were not placed would be asked for reviews. The guides say
    to copy placement emails only, and warn against the copy-everything settings."""
    page = admin.get(reverse("email-sync")).content.decode()
    assert "Every email sent from Salesforce then copies us" not in page
    assert "Do not use Compliance BCC Email" in page
    assert "Do not copy all outbound mail" in page
    assert "Without the subject condition every email they send is copied" in page


def test_the_activity_export_filters_days_as_the_page_does_in_the_agencys_zone(acme, admin):
    """The page shows and filters days in the agency's zone; the export streams its rows after
    the request's zone is switched off, so it filtered the same dates in UTC, up to half a day
    apart for a Sydney agency."""
    from datetime import datetime

    acme.time_zone = "Australia/Sydney"
    acme.save()
    at = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)  # 2 May, 01:00 in Sydney
    trigger = quarantined_trigger(acme, recipients=("zoe@people.test",))
    Trigger.objects.filter(pk=trigger.pk).update(received_at=at)
    day = {"since": "2026-05-02", "until": "2026-05-02"}
    assert list(admin.get(reverse("activity-log"), day).context["page"]) == [trigger]
    export = admin.get(reverse("activity-export"), day)
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "zoe@people.test" in lines[1]
    before = {"since": "2026-05-01", "until": "2026-05-01"}
    assert list(admin.get(reverse("activity-log"), before).context["page"]) == []
