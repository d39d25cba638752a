"""Every page names its icon, and /favicon.ico, which browsers ask for anyway, leads to it."""

import pytest
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url == static("img/icon.svg")


def test_pages_link_the_icon(client):
    page = client.get("/accounts/login/").content.decode()
    assert f'<link rel="icon" href="{static("img/icon.svg")}" type="image/svg+xml">' in page
