"""The API page in the agency app: integration method, keys (shown once), webhooks."""

import pytest

from emailsync.api.models import ApiKey, ApiSettings, WebhookEndpoint
from emailsync.review_requests.models import EmailSyncSettings

pytestmark = pytest.mark.django_db


def test_nav_links_the_api_page_for_admins_only(admin_client, agency, add_member, client):
    assert b'href="/app/api/"' in admin_client.get("/app/reviews/").content
    client.force_login(add_member(agency))
    assert b'href="/app/api/"' not in client.get("/app/reviews/").content
    assert client.get("/app/api/").status_code == 403


def test_integration_method_is_agency_wide_and_audited(admin_client, agency):
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    assert not ApiSettings.for_agency(agency).api_enabled  # Email Sync only until an admin says
    response = admin_client.post("/app/api/method/", {"method": "api"})
    assert response.status_code == 302
    assert ApiSettings.for_agency(agency).method == "api"
    sync.refresh_from_db()
    assert not sync.enabled  # API only: the BCC address stops asking people
    assert agency.audit_entries.filter(action="api.method_changed").exists()
    assert admin_client.post("/app/api/method/", {"method": "bogus"}).status_code == 400


def test_key_is_shown_once_then_only_its_prefix(admin_client, agency):
    response = admin_client.post("/app/api/keys/new/", {"name": "JobAdder"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(agency=agency)
    raw = response.context["new_key"]
    assert ApiKey.lookup(raw) == key and raw.encode() in response.content
    page = admin_client.get("/app/api/")
    assert raw.encode() not in page.content and key.display.encode() in page.content
    assert agency.audit_entries.filter(action="api.key_created").exists()
    admin_client.post(f"/app/api/keys/{key.pk}/revoke/")
    assert ApiKey.lookup(raw) is None
    assert agency.audit_entries.filter(action="api.key_revoked").exists()


def test_webhook_form_refuses_http_and_private_addresses_in_production(
    admin_client, agency, settings
):
    settings.EMAILSYNC_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://ats.example.com/h", "https://192.168.1.10/h"):
        response = admin_client.post(
            "/app/api/webhooks/new/", {"url": url, "event_types": ["review.verified"]}
        )
        assert response.status_code == 400
    response = admin_client.post(
        "/app/api/webhooks/new/",
        {"url": "https://ats.example.com/h", "event_types": ["review.verified"], "active": "on"},
    )
    endpoint = WebhookEndpoint.objects.get(agency=agency)
    assert response.url == f"/app/api/webhooks/{endpoint.pk}/"
    assert endpoint.event_list() == ["review.verified"] and endpoint.secret.startswith("whsec_")
    old = endpoint.secret
    admin_client.post(f"/app/api/webhooks/{endpoint.pk}/secret/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    page = admin_client.get(f"/app/api/webhooks/{endpoint.pk}/")
    assert endpoint.secret.encode() in page.content


@pytest.mark.django_db
def test_switching_email_sync_on_while_api_only_means_both(agency):
    from emailsync.api.models import ApiSettings
    from emailsync.review_requests.models import EmailSyncSettings

    api = ApiSettings.for_agency(agency)
    api.method = ApiSettings.Method.API
    api.save()
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled = True
    sync.save()
    api.refresh_from_db()
    assert api.method == ApiSettings.Method.BOTH
