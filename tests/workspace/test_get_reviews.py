"""The Get Reviews page: every way of asking, for admins and recruiters alike."""

import pytest
from django.urls import reverse

from emailsync.inbound.models import InboundAddress
from emailsync.review_requests.models import EmailSyncSettings

pytestmark = pytest.mark.django_db


def test_a_recruiter_sees_the_address_to_bcc_while_email_sync_is_on(acme, client):
    client.force_login(acme.sam)
    page = client.get(reverse("get-reviews")).content.decode()
    address = InboundAddress.current_for(acme).address
    assert address in page and "Email Sync is off" not in page
    sync = EmailSyncSettings.for_agency(acme)
    sync.enabled = False
    sync.save()
    page = client.get(reverse("get-reviews")).content.decode()
    assert address not in page and "Email Sync is off" in page


def test_an_admin_sees_the_address_and_the_settings_link(acme, admin):
    page = admin.get(reverse("get-reviews")).content.decode()
    assert InboundAddress.current_for(acme).address in page
    assert "Email Sync settings" in page
