"""The data-request pages in a real browser (Debian's Chromium through Playwright), phone-sized:
the form's post and the emailed link's post both pass the CSRF check as a browser sends them."""

import json
from pathlib import Path

import pytest

from emailsync.privacy.models import DataRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def test_a_candidate_asks_for_a_copy_and_downloads_it(phone, live_server):
    phone.goto(live_server.url + "/privacy/")
    phone.get_by_label("Your email address").fill("erin.cand@example.com")
    phone.get_by_label("Send me a copy of my data").check()
    phone.get_by_role("button", name="Email me a link").click()
    phone.wait_for_load_state()
    assert "Forbidden" not in phone.content() and "Please send that again" not in phone.content()
    assert DataRequest.objects.filter(email="erin.cand@example.com").exists()

    # The emailed link: its page's own button posts, again as the browser sends it.
    _, token = DataRequest.open("erin.cand@example.com", DataRequest.Action.EXPORT)
    phone.goto(f"{live_server.url}/privacy/confirm/{token}/")
    with phone.expect_download() as download:
        phone.get_by_role("button", name="Download my data").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["email"] == "erin.cand@example.com"


def test_a_mistyped_address_is_pointed_out_where_it_is(phone, live_server):
    phone.goto(live_server.url + "/privacy/")
    phone.get_by_label("Your email address").fill("erin.cand@")
    phone.get_by_role("button", name="Email me a link").click()
    phone.wait_for_load_state()
    field = phone.get_by_label("Your email address")
    assert field.input_value() == "erin.cand@"  # kept as typed
    assert field.evaluate("el => el === document.activeElement")
    described = field.get_attribute("aria-describedby")
    message = phone.locator(f"#{described}")
    assert message.inner_text() == "Enter an email address like name@example.com."
    choice = phone.locator("fieldset[aria-describedby]")
    assert (
        "Choose a copy of your data, or erasure."
        in phone.locator("#" + choice.get_attribute("aria-describedby")).inner_text()
    )
