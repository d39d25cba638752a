"""Admins choose how they hear about new reviews and find their recruiters' review links."""

import pytest
from django.urls import reverse

from emailsync.agencies.models import AuditEntry
from emailsync.review_requests.models import EmailSyncSettings

pytestmark = pytest.mark.django_db


def test_admin_switches_to_the_daily_digest(client, acme):
    admin = acme.admins().get()
    client.force_login(admin)
    url = reverse("review-notifications")
    assert url == "/app/reviews/notifications/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "One daily digest" in html
    # Each active recruiter's own link, ready for an email signature.
    assert f"/r/{acme.slug}/{acme.sam.slug}/" in html
    response = client.post(url, {"review_notifications": "digest"})
    assert response.status_code == 302
    assert EmailSyncSettings.for_agency(acme).review_notifications == "digest"
    entry = AuditEntry.objects.get(agency=acme, action="reviews.notifications_changed")
    assert entry.actor == admin and entry.detail == {"review_notifications": "digest"}


def test_nonsense_is_refused(client, acme):
    client.force_login(acme.admins().get())
    response = client.post(reverse("review-notifications"), {"review_notifications": "hourly"})
    assert response.status_code == 400
    assert EmailSyncSettings.for_agency(acme).review_notifications == "each"


def test_recruiters_cannot_change_it(client, acme):
    client.force_login(acme.sam.user)
    assert (
        client.post(reverse("review-notifications"), {"review_notifications": "digest"}).status_code
        == 403
    )
    assert EmailSyncSettings.for_agency(acme).review_notifications == "each"


def test_new_review_email_links_to_the_setting(client, sent_request, answers):
    from emailsync.outbox.models import OutboundEmail

    rr = sent_request()
    client.post(reverse("review-form", args=[rr.token]), answers())
    row = OutboundEmail.objects.filter(template="review_received").first()
    assert row.context["notifications_url"].endswith("/app/reviews/notifications/")
