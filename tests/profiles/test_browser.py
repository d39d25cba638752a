"""Public profiles in a real browser (Debian's Chromium through Playwright): the agency page, a
recruiter page, and the widget embedded by its script tag in a static page on another origin.

Each page is checked for Content Security Policy violations (the JSON-LD data block included),
with axe-core for serious or critical accessibility problems, and screenshotted into
var/screenshots/ (the committed copies are docs/screenshots/profile-*.png).
"""

import functools
import http.server
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from emailsync.profiles.models import Moderation, ReviewReply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent.parent / "reviews" / "vendor" / "axe.min.js"
SCREENSHOTS = Path(django_settings.VAR_DIR) / "screenshots"

TEXTS = [
    (
        5,
        "candidate",
        "Ann Lee",
        "full",
        "Sam found me a data engineering role in two weeks, "
        "prepared me properly for every interview and negotiated a better offer than I expected.",
    ),
    (
        4,
        "client",
        "Marcus Webb",
        "initial",
        "We needed three DevOps hires before a launch. "
        "Sam's shortlists were small and strong; two of the three are still with us a year on.",
    ),
    (
        5,
        "candidate",
        "Jo",
        "anonymous",
        "Honest about the salary range from the first call, and "
        "kept in touch after I started. I would go back to Acme without a second thought.",
    ),
    (
        3,
        "candidate",
        "Pat Kim",
        "initial",
        "Good role in the end, but feedback after the second "
        "interview took over a week and I had to chase it.",
    ),
]


def watch_csp(page):
    page.csp_errors = []
    page.on(
        "console",
        lambda msg: (
            page.csp_errors.append(msg.text)
            if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text
            else None
        ),
    )
    return page


def axe_problems(page) -> list[str]:
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.fixture
def profile(acme, make_review, live_server, settings):
    settings.EMAILSYNC_PUBLIC_URL = live_server.url
    acme.brand_colour = "#0b6e4f"
    acme.save()
    now = timezone.now()
    reviews = []
    for i, (rating, role, name, choice, text) in enumerate(TEXTS):
        reviews.append(
            make_review(
                acme,
                acme.sam if i < 3 else acme.riya,
                rating=rating,
                role=role,
                reviewer_name=name,
                display_name_choice=choice,
                text=text,
                submitted_at=now - timedelta(days=3 + 9 * i),
            )
        )
    ReviewReply.objects.create(
        review=reviews[1], text="Thank you, Marcus. It was a pleasure to help the team grow."
    )
    hidden = make_review(acme, acme.sam, rating=1, text="HIDDEN review text, never to be seen.")
    Moderation.objects.create(review=hidden, hidden_reason="Abusive")
    make_review(acme, acme.sam, "missing_verification", text="UNVERIFIED review text here.")
    make_review(
        acme,
        acme.sam,
        text="<script>alert('x')</script> inert text in a verified review.",
        rating=4,
        submitted_at=now - timedelta(days=60),
    )
    return acme


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = watch_csp(context.new_page())
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def test_agency_page(desktop, profile, live_server):
    desktop.goto(f"{live_server.url}/agencies/{profile.slug}/")
    assert desktop.get_by_role("heading", level=1).inner_text() == "Acme Recruitment"
    assert desktop.locator(".pf-big").inner_text() == "4.2"  # (5+4+5+3+4) / 5
    assert desktop.get_by_text("5 verified reviews").first.is_visible()
    assert desktop.get_by_text("Reply from Acme Recruitment").is_visible()
    body = desktop.content()
    assert "HIDDEN review" not in body and "UNVERIFIED review" not in body
    assert desktop.dialogs == []  # the script in the review text did not run
    assert desktop.locator(".pf-recruiters li").count() == 2
    # The JSON-LD block is present, parses, and caused no CSP violation.
    ld = desktop.locator('script[type="application/ld+json"]').inner_text()
    assert json.loads(ld)["aggregateRating"]["reviewCount"] == 5
    # The brand colour arrived through the stylesheet (no inline styles allowed).
    colour = desktop.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
    )
    assert colour == "#0b6e4f"
    assert desktop.csp_errors == []
    assert axe_problems(desktop) == []
    shoot(desktop, "profile-agency.png")


def test_a_wide_logo_is_shown_whole(desktop, profile, live_server, settings, tmp_path):
    # Agencies' logos are mostly wordmarks, wider than tall: the square box must not crop them.
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (400, 100), (20, 80, 140)).save(buffer, "PNG")
    profile.logo.save("wordmark.png", ContentFile(buffer.getvalue()))
    desktop.goto(f"{live_server.url}/agencies/{profile.slug}/")
    logo = desktop.locator(".pf-logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 400
    assert logo.evaluate("img => getComputedStyle(img).objectFit") == "contain"


def test_recruiter_page(desktop, profile, live_server):
    desktop.goto(f"{live_server.url}/agencies/{profile.slug}/")
    desktop.get_by_role("link", name="Sam Carter").first.click()
    desktop.wait_for_url(f"**/recruiters/{profile.sam.slug}/")
    assert desktop.get_by_role("heading", level=1).inner_text() == "Sam Carter"
    assert desktop.get_by_text("Senior Recruiter").first.is_visible()
    assert desktop.locator(".pf-tags li").all_inner_texts() == ["Software", "Data", "DevOps"]
    assert desktop.locator(".pf-review").count() == 4
    assert desktop.csp_errors == []
    assert axe_problems(desktop) == []
    shoot(desktop, "profile-recruiter.png")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def end_headers(self):
        # The embedding site's own strict policy: our loader and frame must live with it.
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'self'; script-src {self.server.widget_origin}; "
            f"frame-src {self.server.widget_origin}; style-src 'self'",
        )
        super().end_headers()


@pytest.fixture
def customer_site(tmp_path, live_server):
    """A static page on another origin (another port) that pastes the widget snippet."""
    (tmp_path / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Acme careers</title>"
        "<link rel='stylesheet' href='site.css'></head><body><main><h1>Work with Acme</h1>"
        "<p>What the people we placed say about us:</p>"
        f"<script src='{live_server.url}/widget.js' data-agency='acme-recruitment' "
        "data-reviews='3' async></script><p>Call us on 0113 000 0000.</p></main></body></html>"
    )
    (tmp_path / "site.css").write_text(
        "body{font-family:Georgia,serif;max-width:44rem;margin:2rem auto;background:#fafaf7}"
    )
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.widget_origin = live_server.url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


def test_widget_embedded_in_a_static_page(desktop, profile, customer_site, live_server):
    desktop.set_viewport_size({"width": 900, "height": 900})
    desktop.goto(customer_site)
    frame_element = desktop.locator("iframe.emailsync-widget")
    frame_element.wait_for()
    assert frame_element.get_attribute("title") == "Verified reviews"
    frame = desktop.frame_locator("iframe.emailsync-widget")
    assert frame.locator(".wg-big").inner_text() == "4.2"
    assert frame.locator(".wg-review").count() == 3
    assert "HIDDEN review" not in frame.locator("body").inner_text()
    # The frame told the page its height, and the page grew the iframe to fit (poll: under load
    # the last resize message can arrive after the first layout).
    deadline = time.monotonic() + 10
    while True:
        content_height = frame.locator("html").evaluate("e => e.scrollHeight")
        height = frame_element.bounding_box()["height"]
        if abs(height - content_height) <= 2 and height > 200:
            break
        assert time.monotonic() < deadline, (height, content_height)
        desktop.wait_for_timeout(100)
    # No cookies were set for the widget's origin, and nothing was blocked anywhere.
    assert desktop.context.cookies([live_server.url]) == []
    assert desktop.csp_errors == []
    # Links open the full profile in a new tab.
    link = frame.get_by_role("link", name="Read all verified reviews")
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("href") == f"{live_server.url}/agencies/{profile.slug}/"
    shoot(desktop, "profile-widget.png")


def test_csp_violations_are_detected(desktop, live_server):
    """Guard: the console watcher does see a violation when there is one."""
    desktop.goto(f"{live_server.url}/agencies/")
    desktop.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = '1';"
        " document.body.appendChild(s); }"
    )
    desktop.wait_for_timeout(200)
    assert desktop.csp_errors
