"""A long name without spaces wraps inside the review card (phone-sized, real browser)."""

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_long_name_without_spaces_stays_inside_the_card(browser, live_server, sent_request):
    rr = sent_request(name="")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("review-form", args=[rr.token]))
        page.fill("#id_reviewer_name", "Bartholomew" + "x" * 109)  # 120, the most allowed
        page.locator("#id_reviewer_name").dispatch_event("input")
        assert page.locator("[data-preview=full]").inner_text().startswith("Bartholomew")
        overflow = page.evaluate(
            """() => {
              const card = document.querySelector('.rv-card').getBoundingClientRect();
              const out = [...document.querySelectorAll('.rv-choice, .rv-choice > span')]
                .filter(el => el.getBoundingClientRect().right > card.right + 1)
                .map(el => el.outerHTML.slice(0, 80));
              return {
                out,
                page: document.documentElement.scrollWidth > window.innerWidth,
              };
            }"""
        )
        assert overflow == {"out": [], "page": False}
    finally:
        context.close()
