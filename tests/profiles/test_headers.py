"""Caching headers, cookies, framing and the widget loader."""

import time

import pytest
from django.urls import reverse

from emailsync.profiles.models import Moderation

pytestmark = pytest.mark.django_db


def test_pages_send_etag_and_last_modified_and_answer_304(client, acme, make_review):
    review = make_review(acme, acme.sam)
    for url in (
        reverse("profiles-agency", args=[acme.slug]),
        reverse("profiles-recruiter", args=[acme.slug, acme.sam.slug]),
        reverse("profiles-widget", args=[acme.slug]),
        reverse("profiles-directory"),
    ):
        first = client.get(url)
        assert first.status_code == 200
        assert first["ETag"] and first["Last-Modified"], url
        cache = first["Cache-Control"]
        if "widget" in url:  # on agencies' own sites, for their visitors: kept five minutes
            assert "public" in cache and "max-age=300" in cache, url
        else:
            # The browser revalidates, so whoever just changed a review sees it at once.
            assert "public" in cache and "s-maxage=300" in cache, url
            assert "max-age=0" in cache and "must-revalidate" in cache, url
        assert not first.cookies, url
        head = client.head(url)
        assert head.status_code == 200 and head["ETag"] == first["ETag"] and not head.content
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304, url
        assert client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]).status_code == 304
    # Hiding the review changes every page's validator.
    url = reverse("profiles-agency", args=[acme.slug])
    etag = client.get(url)["ETag"]
    time.sleep(0.01)
    Moderation.objects.create(review=review, hidden_reason="x")
    fresh = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    assert "No verified reviews yet" in fresh.content.decode() or "has no verified" in (
        fresh.content.decode()
    )


def test_the_page_number_is_part_of_the_etag(client, acme):
    url = reverse("profiles-agency", args=[acme.slug])
    assert client.get(url)["ETag"] != client.get(url + "?page=1")["ETag"]


def test_public_pages_deny_framing_but_the_widget_allows_it(client, acme):
    page = client.get(reverse("profiles-agency", args=[acme.slug]))
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    widget = client.get(reverse("profiles-widget", args=[acme.slug]))
    assert "X-Frame-Options" not in widget
    csp = widget["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "'unsafe-inline'" not in csp
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert not widget.cookies
    body = widget.content.decode()
    assert 'target="_blank" rel="noopener"' in body
    # No third-party assets: every src/href is ours (relative) or our public URL.
    import re

    for ref in re.findall(r'(?:src|href)="([^"]+)"', body):
        assert ref.startswith("/") or ref.startswith("http://127.0.0.1:8000/"), ref


def test_widget_options(client, acme, make_review):
    for i in range(5):
        make_review(acme, acme.sam, text=f"Widget review {i} with words enough to count here.")
    make_review(acme, acme.riya, text="Riya review, also with enough words to count here.")
    url = reverse("profiles-widget", args=[acme.slug])
    assert client.get(url).content.decode().count('class="wg-review"') == 3
    assert client.get(url + "?reviews=0").content.decode().count('class="wg-review"') == 0
    assert client.get(url + "?reviews=99").content.decode().count('class="wg-review"') == 6
    only_riya = client.get(url + f"?recruiter={acme.riya.slug}&reviews=10").content.decode()
    assert only_riya.count('class="wg-review"') == 1 and "Riya review" in only_riya


def test_widget_script_is_stable_cacheable_javascript(client):
    response = client.get(reverse("profiles-widget-script"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=3600" in response["Cache-Control"] and "public" in response["Cache-Control"]
    body = response.content.decode()
    assert (
        "document.currentScript" in body and "postMessage" not in body.split("addEventListener")[0]
    )
    assert "event.origin !== origin" in body  # only our own frame may resize it
    assert not response.cookies


def test_brand_colour_comes_as_a_stylesheet(client, acme):
    acme.brand_colour = "#aa3300"
    acme.save()
    response = client.get(reverse("profiles-brand-css", args=[acme.slug]))
    assert response["Content-Type"].startswith("text/css")
    assert response.content.decode().strip() == (
        ":root{--brand:#aa3300;--brand-link:#aa3300;--brand-ink:#ffffff;}"
    )
    page = client.get(reverse("profiles-agency", args=[acme.slug])).content.decode()
    assert " style=" not in page and "<style" not in page
    # A stored value that is not #rrggbb (written around the form) is not used, nor a 500.
    type(acme).objects.filter(pk=acme.pk).update(brand_colour="#zzzzzz")
    fallback = client.get(reverse("profiles-brand-css", args=[acme.slug]))
    assert fallback.status_code == 200 and "--brand:#1f6feb;" in fallback.content.decode()
