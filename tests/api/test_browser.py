"""The API reference and the API admin pages in Chromium, with no CSP violation.

Swagger UI is served from our static files (django-ninja's, through "ninja" in INSTALLED_APPS):
no request may leave for a CDN."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from emailsync.api.models import ApiKey, WebhookDelivery
from tests.api.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(django_settings.VAR_DIR) / "screenshots"


def watched(context, base):
    page = context.new_page()
    page.csp_errors, page.foreign = [], []
    page.on(
        "console",
        lambda msg: (
            page.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    page.on(
        "request",
        lambda req: (
            page.foreign.append(req.url)
            if not req.url.startswith((base, "data:", "blob:"))
            else None
        ),
    )
    return page


def test_api_reference_renders_from_our_static_files(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watched(context, live_server.url)
    response = page.goto(live_server.url + "/api/v1/docs")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    page.locator(".opblock-summary-path", has_text="/api/v1/placements").first.wait_for(
        timeout=15000
    )
    page.get_by_text("POST", exact=True).first.wait_for()
    assert page.locator(".opblock").count() >= 12
    # Open an operation (its parameters, example bodies and schemas render on demand) and the
    # schemas section: Swagger UI's dynamic parts must run under the policy too.
    page.locator(".opblock-summary", has_text="/api/v1/review-requests").first.click()
    page.locator(".opblock-body").first.wait_for()
    page.locator(".highlight-code, .microlight").first.wait_for()
    page.locator("section.models").click()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    assert not page.csp_errors, page.csp_errors
    assert not page.foreign, page.foreign
    context.close()


def test_admin_creates_a_key_and_a_webhook_and_sends_a_test_event(browser, live_server, agency):
    receiver = Receiver()
    client = Client()
    client.force_login(agency.admins().get())
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = watched(context, live_server.url)
    try:
        page.goto(live_server.url + "/app/api/")
        page.get_by_label("ATS integration (API) only").check()
        page.get_by_role("button", name="Save").click()
        page.get_by_label("Name").fill("Bullhorn production")
        page.get_by_role("button", name="Create a key").click()
        raw = page.locator("#new-api-key").inner_text().strip()
        assert ApiKey.lookup(raw).name == "Bullhorn production"
        page.goto(live_server.url + "/app/api/")
        assert raw not in page.content()  # shown once
        assert "Bullhorn production" in page.content()

        page.get_by_role("link", name="Add an endpoint").click()
        page.get_by_label("Endpoint URL (https)").fill(receiver.url)
        page.get_by_role("button", name="Save").click()
        page.get_by_role("button", name="Send test event").click()
        page.wait_for_selector("text=Test event delivered")
        assert "webhook.test" in page.locator("table").inner_text()
        assert WebhookDelivery.objects.get().status == "delivered"
        assert len(receiver.requests) == 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "api-webhook.png"), full_page=True)
        assert not page.csp_errors, page.csp_errors
    finally:
        receiver.stop()
        context.close()
