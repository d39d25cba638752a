"""The agency app in a real browser (Debian's Chromium through Playwright), desktop-sized.

The admin verifies a review with the top suggestion, verifies another by adding a placement
inline, rejects one, edits and cancels a scheduled invite, imports 1,000 placements and watches
the progress bar finish, and runs the live setup test with a real SMTP email to the listener.
No Content Security Policy violation may occur. Screenshots land in var/screenshots/ (the set in
docs/screenshots/ is copied from there).
"""

import smtplib
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.outbox.models import OutboundEmail
from emailsync.placements import csvio
from emailsync.placements.models import Placement, PlacementImport
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest
from emailsync.reviews.models import Review
from tests.inbound.listener import RunningListener
from tests.workspace.objects import scheduled_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
SCREENSHOTS = Path(django_settings.VAR_DIR) / "screenshots"


@pytest.fixture
def signed_in(browser, live_server, acme):
    """A desktop page signed in as Acme's admin; records CSP violations."""
    client = Client()
    client.force_login(acme.admin)
    context = browser.new_context(viewport=DESKTOP)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.csp_errors = []
    page.on(
        "console",
        lambda msg: (
            page.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    page.base = live_server.url
    yield page
    assert not page.csp_errors, page.csp_errors
    context.close()


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_verify_add_inline_reject_and_edit_cancel_an_invite(signed_in, acme, make_review):
    page = signed_in
    top = Placement.objects.create(
        agency=acme,
        candidate_name="Cara Candidate",
        candidate_email="cara@candidate.test",
        client_company="Northwind",
        job_title="Analyst",
        start_date=date.today(),
        recruiter=acme.sam.profile,
    )
    Placement.objects.create(
        agency=acme, candidate_name="Carl Other", start_date=date.today() - timedelta(days=20)
    )
    first = make_review()
    second = make_review(email="boss@client.test", reviewer_name="Bo Boss", role="client")
    third = make_review(email="spam@junk.test", reviewer_name="Spammy", rating=1)
    invite = scheduled_request(acme, acme.sam.profile, email="ivy@people.test")
    OutboundEmail.objects.create(
        kind="review_request",
        template="review_request",
        agency=acme,
        review_request=invite,
        to_email=invite.email,
        send_after=invite.send_after,
    )

    page.goto(page.base + "/app/reviews/")
    page.wait_for_selector('[data-count="missing"]')
    assert page.inner_text('#col-missing [data-count="missing"]') == "3"
    shot(page, "agency-reviews.png")

    # 1. Verify with the top suggestion, in the dialog.
    page.click(f'[data-review="{first.pk}"] >> text=Verify')
    page.wait_for_selector("dialog#dialog[open] .suggestion.top")
    assert "Cara Candidate" in page.inner_text(".suggestion.top")
    shot(page, "agency-verify.png")
    page.click('dialog [data-testid="verify-top"]')
    page.wait_for_selector(".messages >> text=Verified")
    assert Review.objects.get(pk=first.pk).placement == top
    assert page.inner_text('#col-verified [data-count="verified"]') == "1"

    # 2. Verify another by adding its placement inline.
    page.click(f'[data-review="{second.pk}"] >> text=Verify')
    page.wait_for_selector("dialog#dialog[open]")
    page.click("dialog >> text=Add a new placement and verify")
    page.fill("dialog #id_candidate_name", "Dee Dev")
    page.fill("dialog #id_client_company", "Client Co")
    page.fill("dialog #id_start_date", "2025-01-06")
    page.click("dialog >> text=Add placement and verify")
    page.wait_for_selector(".messages >> text=Added")
    second.refresh_from_db()
    assert second.status == "verified" and second.placement.client_company == "Client Co"
    assert second.placement.client_contact_email == "boss@client.test"  # pre-filled from review

    # 3. Reject one with a reason.
    page.click(f'[data-review="{third.pk}"] >> text=Verify')
    page.wait_for_selector("dialog#dialog[open]")
    page.click("dialog >> text=Reject this review")
    page.select_option("dialog #id_reason", "spam")
    page.click("dialog button.danger >> text=Reject")
    page.wait_for_selector(".messages >> text=Rejected")
    assert Review.objects.get(pk=third.pk).rejected_reason == "spam"
    assert page.inner_text('#col-rejected [data-count="rejected"]') == "1"

    # 4. Edit the scheduled invite, then cancel it.
    page.click(f'[data-request="{invite.pk}"] >> text=Edit')
    page.wait_for_selector("dialog#dialog[open] #id_email")
    page.fill("dialog #id_name", "Ivy Newname")
    page.fill("dialog #id_personal_message", "Thanks for a great first month!")
    page.click("dialog >> text=Save")
    page.wait_for_selector(".messages >> text=saved")
    invite.refresh_from_db()
    assert invite.name == "Ivy Newname" and invite.personal_message.startswith("Thanks")
    page.once("dialog", lambda d: d.accept())  # the browser's confirm()
    page.click(f'[data-request="{invite.pk}"] >> text=Cancel')
    page.wait_for_selector(".messages >> text=cancelled")
    assert ReviewRequest.objects.get(pk=invite.pk).status == "cancelled"
    assert page.inner_text('[data-count="scheduled"]') == "0"


def test_import_a_thousand_placements_and_watch_progress(signed_in, acme, tmp_path):
    page = signed_in
    path = tmp_path / "placements.csv"
    rows = "".join(
        f"ATS-{i},Person {i},person{i}@people.test,Client {i % 7},2025-0{1 + i % 9}-15,"
        f"{'sam@acme.test' if i % 2 else ''}\n"
        for i in range(1000)
    )
    path.write_text(
        "reference,candidate_name,candidate_email,client_company,start_date,recruiter_email\n"
        + rows
        + ",,broken@people.test,,not a date,\n"
    )
    page.goto(page.base + "/app/placements/import/")
    page.set_input_files("#id_file", str(path))
    page.click("text=Upload and import")
    page.wait_for_selector('#import-progress[data-status="pending"]')
    job = PlacementImport.objects.get()
    # The worker's job, run here while the page polls.
    csvio.process_pending_imports()
    page.wait_for_selector('#import-progress[data-status="done"]', timeout=15_000)
    assert "1001 of 1001 rows" in page.inner_text("#import-progress")
    assert "1000 created" in page.inner_text("#import-progress")
    assert page.get_attribute("#import-progress progress", "value") == "100"
    shot(page, "agency-placements-import.png")
    job.refresh_from_db()
    assert job.status == "done" and Placement.objects.filter(agency=acme).count() == 1000


def test_live_setup_test_with_a_real_smtp_email(signed_in, acme):
    page = signed_in
    sync = EmailSyncSettings.for_agency(acme)
    sync.trust_from_domain = True  # unsigned local mail from acme.test counts
    sync.save()
    bcc = InboundAddress.current_for(acme).address
    listener = RunningListener()
    try:
        page.goto(page.base + "/app/email-sync/")
        assert bcc in page.inner_text("#bcc-address")
        shot(page, "agency-email-sync.png")
        page.click("text=Start setup test")
        page.wait_for_selector('#setup-test[data-state="waiting"]')

        message = EmailMessage()
        message["From"] = f"Admin <{acme.admin.email}>"
        message["To"] = "Friend One <friend@people.test>, colleague@acme.test"
        message["Subject"] = "Testing Email Sync from Outlook"
        message["Date"] = timezone.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
        message["Message-ID"] = "<setup-test-1@acme.test>"
        message.set_content("Hello, this is a test.")
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
            smtp.sendmail(
                acme.admin.email,
                ["friend@people.test", "colleague@acme.test", bcc],
                message.as_bytes(),
            )

        page.wait_for_selector('#setup-test[data-state="arrived"]', timeout=15_000)
        panel = page.inner_text("#setup-test")
        assert "Testing Email Sync from Outlook" in panel
        assert "friend@people.test" in panel and "colleague@acme.test" in panel
        assert "setup test only asks the admin" in panel  # friend: would be invited
        assert "belongs to your agency" in panel  # colleague: skipped, with the reason
        shot(page, "agency-setup-test.png")
    finally:
        listener.stop()
    trigger = Trigger.objects.get(agency=acme)
    assert trigger.is_setup_test and trigger.status == "accepted"
    own = ReviewRequest.objects.get(agency=acme)
    assert own.email == acme.admin.email and own.send_after <= timezone.now()


def test_a_bad_rules_save_takes_the_reader_to_what_to_fix(signed_in):
    """The rules form sent back with errors: focus lands on the summary (not the top of the
    page), and its link moves focus to the field, which names its error to a screen reader."""
    page = signed_in
    page.goto(page.base + "/app/email-sync/")
    page.fill("#id_recipient_cap", "0")
    page.click("form[action$='/rules/'] button[type=submit]")
    page.wait_for_selector("[data-error-summary]")
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    page.click("[data-error-summary] a[href='#id_recipient_cap']")
    assert page.evaluate("document.activeElement.id") == "id_recipient_cap"
    described = page.get_attribute("#id_recipient_cap", "aria-describedby")
    assert "greater than or equal to" in page.inner_text(f"#{described.split()[-1]}")


def test_activity_and_email_sync_fit_a_phone(signed_in, acme):
    """At 375 px, long recipient addresses and the BCC address wrap; the page never scrolls
    sideways (it did, by 75 px, on Activity)."""
    from tests.workspace.objects import quarantined_trigger

    quarantined_trigger(
        acme,
        recipients=("christopher.montgomery-fitzgerald@international-recruitment.example",),
    )
    # A setup test that arrived, with a long unbroken verdict, in the panel.
    from datetime import timedelta

    from django.utils import timezone

    from emailsync.inbound.models import Trigger
    from emailsync.review_requests.models import EmailSyncSettings

    EmailSyncSettings.objects.filter(agency=acme).update(
        setup_test_until=timezone.now() + timedelta(minutes=20)
    )
    Trigger.objects.create(
        agency=acme,
        message_id_hash="setup",
        sender=acme.admins().get().email,
        status="quarantined",
        reason="sender_unauthenticated",
        is_setup_test=True,
        auth_detail="dkim=fail;d=mail.international-recruitment.example;s=selector2024;"
        "reason=body_hash_mismatch",
    )
    page = signed_in
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/app/activity/", "/app/email-sync/", "/app/team/", "/app/audit/"):
        page.goto(page.base + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
    # Each outcome is one word on one line ("Held in quarantine" stays whole too).
    page.goto(page.base + "/app/activity/")
    lines = page.evaluate(
        """[...document.querySelectorAll('.recipients td:nth-child(2)')].map(td => {
            const range = document.createRange(); range.selectNodeContents(td);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; })"""
    )
    assert lines and all(n == 1 for n in lines), lines


def test_a_table_that_scrolls_on_a_phone_can_be_scrolled_from_the_keyboard(signed_in, acme):
    """At 375 px a wide table scrolls inside its card. One with nothing to focus in it (the
    dashboard's per-recruiter figures, the audit log) could not be reached by the keyboard,
    so its last columns (Verified, Public average) could not be read (axe-core:
    scrollable-region-focusable)."""
    acme.record(acme.admin, "email_sync.settings_changed", "Email Sync rules")
    page = signed_in
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/app/dashboard/", "/app/audit/"):
        page.goto(page.base + path)
        unreachable = page.evaluate(
            """[...document.querySelectorAll('main table')]
                .filter(t => t.scrollWidth > t.clientWidth
                    && t.tabIndex < 0 && !t.querySelector('a[href], button, input, select'))
                .map(t => t.outerHTML.slice(0, 80))"""
        )
        assert not unreachable, (path, unreachable)
        named = page.evaluate(
            "[...document.querySelectorAll('main table[tabindex]')].map(t => t.getAttribute("
            "'aria-labelledby') && document.getElementById(t.getAttribute('aria-labelledby'))"
            "?.textContent.trim())"
        )
        assert named and all(named), (path, named)  # a stop the screen reader can name


def test_the_boards_column_counts_stay_round_when_a_heading_wraps(signed_in, make_review):
    """At desktop width "Missing Verification" takes two lines and its count was stretched
    into a tall pill beside it (a flex item's default is to fill the heading's height)."""
    make_review()
    page = signed_in
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(page.base + "/app/reviews/")
    heights = page.evaluate(
        """[...document.querySelectorAll('.column h2')].map(h => [
            h.getBoundingClientRect().height,
            h.querySelector('.count').getBoundingClientRect().height])"""
    )
    shortest = min(h for h, _ in heights)
    assert any(h > 1.5 * shortest for h, _ in heights), heights  # a heading does wrap
    counts = {round(c) for _, c in heights}
    assert len(counts) == 1, heights
