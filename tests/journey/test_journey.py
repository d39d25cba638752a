"""The whole product, end to end, as a new user meets it after `make run`.

`emailsync serve` runs on free ports against a fresh database with the demo agency seeded. A
recruiter's welcome email reaches the listener over SMTP with the agency's BCC address; the
worker sends the candidate a review request, which the development outbox keeps; the browser
follows the link from that email and submits a review; the admin follows the link in their
notification email, signs in on that review's page and verifies it by adding the placement
there; the recruiter's and the agency's public pages then show it.

Each step is screenshotted to var/screenshots/journey-*.png (docs/screenshots/ holds the set the
README shows). No Content Security Policy violation may occur on any page.
"""

import re
import smtplib
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.inbound.mail import build
from tests.processes import Served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(django_settings.VAR_DIR) / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
CANDIDATE = "jordan.reyes@candidate.example"
TEXT = (
    "Sam found me a role that fits my skills and my commute, prepared me for every interview "
    "and answered my questions the same day. The whole process took under three weeks."
)


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.csp_errors = []
    page.on(
        "console",
        lambda msg: (
            page.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    yield page
    assert not page.csp_errors, page.csp_errors
    context.close()


def shot(page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"journey-{name}.png"), full_page=full_page)


def send_trigger(served) -> str:
    """Sam's welcome email to a new candidate, BCC the agency, as Sam's mail server sends it."""
    raw = build(
        sender="Sam Carter <sam@demo-recruitment.example>",
        to=(f"Jordan Reyes <{CANDIDATE}>",),
        subject="Welcome to Brightline Software!",
        body="Hi Jordan,\n\nCongratulations on the new role! Your first day is Monday.\n\nSam\n",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            smtp = smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=10)
            break
        except OSError:
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.2)
    with smtp:
        smtp.ehlo("mail.demo-recruitment.example")
        smtp.mail("sam@demo-recruitment.example")
        assert smtp.rcpt(served.demo["bcc address"])[0] == 250
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return reply.decode()


def worker_lines(served) -> str:
    """The server's output without the web server's access lines, which a page reloaded every
    half second would otherwise push out of the failure message."""
    access = re.compile(r'^\S+ - - \[[^]]+\] "')
    lines = [line for line in served.output().splitlines() if not access.match(line)]
    return "\n".join(lines[-60:])


def open_from_outbox(page, served, recipient: str, subject: re.Pattern):
    """Reload the outbox until the worker's email to `recipient` is there; open it."""
    deadline = time.monotonic() + 30
    row = page.locator("tbody tr", has_text=recipient).filter(has_text=subject)
    while True:
        page.goto(served.url + "/dev/outbox/")
        if row.count():
            break
        assert time.monotonic() < deadline, f"no email to {recipient}:\n{worker_lines(served)}"
        time.sleep(0.5)
    return row.first


def test_from_a_bcc_email_to_a_verified_review_on_the_public_profiles(served, page):
    # 1. A recruiter's ordinary email, with the BCC address, reaches our listener.
    reply = send_trigger(served)
    assert re.search(r"2\.0\.0 OK: trigger \d+", reply)

    # 2. The worker sends the review request; the development outbox keeps it.
    row = open_from_outbox(page, served, CANDIDATE, re.compile("Sam Carter|Demo Recruitment"))
    shot(page, "1-outbox")
    row.locator("a").click()
    page.wait_for_selector("iframe.email-preview")
    email = page.frame_locator("iframe.email-preview")
    button = email.get_by_role("link", name="Write your review")
    button.wait_for()
    shot(page, "2-review-request", full_page=True)

    # 3. The candidate follows the link (it opens in a new tab, as from a mail client).
    with page.context.expect_page() as opened:
        button.click()
    form = opened.value
    form.csp_errors = page.csp_errors
    form.on(
        "console",
        lambda msg: (
            page.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    form.wait_for_load_state()
    assert form.url.startswith(served.url + "/review/")
    assert form.get_by_role("heading", level=1).inner_text() == "How was working with Sam Carter?"
    form.locator("label[for=rating-4]").click()
    form.get_by_role("textbox", name="Your review", exact=True).fill(TEXT)
    form.get_by_role("radio", name=re.compile("^Candidate")).check()
    form.get_by_role("radio", name="Yes", exact=True).check()
    form.locator("#id_reviewer_name").fill("Jordan Reyes")
    form.get_by_label("I agree that Demo Recruitment may publish").check()
    shot(form, "3-review-form", full_page=True)
    form.get_by_role("button", name="Send my review").click()
    form.wait_for_url(re.compile(r"/thanks/$"))
    assert "Thank you" in form.content()
    shot(form, "4-thanks")
    form.close()

    # 4. The admin hears about it by email, follows the link and signs in.
    row = open_from_outbox(
        page, served, "admin@demo-recruitment.example", re.compile("review", re.I)
    )
    row.locator("a").click()
    notification = page.frame_locator("iframe.email-preview")
    link = notification.get_by_role("link", name="Verify the review")
    href = link.get_attribute("href")
    assert re.match(re.escape(served.url) + r"/app/reviews/\d+/verify/$", href), href
    page.goto(href)  # what clicking does, in this tab
    page.wait_for_url(re.compile(r"/accounts/login/"))
    admin = "admin@demo-recruitment.example"
    page.fill("#id_username", admin)
    page.fill("#id_password", served.demo["logins"][admin])
    page.get_by_role("button", name="Sign in").click()

    # 5. Signed in, the admin is on that review's page: it waits for verification.
    page.wait_for_url(re.compile(r"/app/reviews/\d+/verify/$"))
    page.get_by_role("heading", name="Verify this review").wait_for()
    summary = page.locator(".review-summary")
    assert "Jordan" in summary.inner_text() and "★★★★☆" in summary.inner_text()
    shot(page, "5-missing-verification")

    # 6. Verified by adding the placement on that page.
    page.click("text=Add a new placement and verify")
    page.fill("#id_candidate_name", "Jordan Reyes")
    page.fill("#id_client_company", "Brightline Software")
    page.fill("#id_job_title", "Senior Software Engineer")
    page.fill("#id_start_date", "2025-03-03")
    shot(page, "6-verify-new-placement")
    page.click("text=Add placement and verify")
    page.wait_for_url(re.compile(r"/app/reviews/$"))
    page.wait_for_selector(".messages >> text=Added")
    verified = page.locator("#col-verified article.review", has_text="Jordan")
    verified.wait_for()
    verified.scroll_into_view_if_needed()
    shot(page, "7-verified")

    # 7. Both public pages show it.
    page.goto(served.url + "/agencies/demo-recruitment/recruiters/sam-carter/")
    review = page.locator("article", has_text="prepared me for every interview").first
    review.wait_for()
    assert "Jordan R." in page.content()
    review.scroll_into_view_if_needed()
    shot(page, "8-recruiter-profile")
    page.goto(served.url + "/agencies/demo-recruitment/")
    page.locator("article", has_text="prepared me for every interview").first.wait_for()
    shot(page, "9-agency-profile")
