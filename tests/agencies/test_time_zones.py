"""The time zones offered are places by today's names; an old name an agency has still works."""

import pytest
from django.urls import reverse

from emailsync.agencies.forms import AgencySettingsForm, SignupForm, current_time_zones

pytestmark = pytest.mark.django_db


def offered(form) -> list[str]:
    return [value for value, _ in form.fields["time_zone"].choices]


def test_signup_offers_places_by_their_current_names():
    zones = offered(SignupForm())
    assert {"Europe/London", "America/New_York", "Australia/Sydney", "UTC"} <= set(zones)
    # Old and technical names are not offered: one entry per place.
    for old in ["US/Pacific", "GB", "Europe/Kiev", "Asia/Calcutta", "EST5EDT", "Etc/GMT+5"]:
        assert old not in zones
    assert zones == current_time_zones() and len(zones) == len(set(zones))


def test_an_agency_on_an_old_name_can_still_save_its_settings(admin_client, agency):
    agency.time_zone = "US/Pacific"
    agency.save()
    form = AgencySettingsForm(instance=agency)
    assert offered(form)[0] == "US/Pacific" and "America/Los_Angeles" in offered(form)
    response = admin_client.post(
        reverse("agency-settings"),
        {
            "name": "Acme Recruitment Ltd",
            "time_zone": "US/Pacific",
            "brand_colour": "#112233",
            "website": "",
            "location": "",
        },
    )
    assert response.status_code == 302
    agency.refresh_from_db()
    assert agency.name == "Acme Recruitment Ltd" and agency.time_zone == "US/Pacific"
    # Another agency's form does not offer it.
    assert "US/Pacific" not in offered(AgencySettingsForm())


def test_the_agency_app_shows_times_in_the_agencys_time_zone(agency, admin_client):
    """Sydney's business hours start at 09:00 Sydney time, 22:00 UTC the day before: the Reviews
    page must say 09:00, as the Email Sync page promises ("Times are in your agency's time
    zone"), not the server's UTC."""
    from datetime import UTC, datetime

    from tests.workspace.objects import scheduled_request

    agency.time_zone = "Australia/Sydney"
    agency.save()
    scheduled_request(
        agency, agency.admins().get().profile, send_after=datetime(2026, 11, 30, 22, tzinfo=UTC)
    )
    page = admin_client.get(reverse("agency-reviews")).content.decode()
    assert "Sends Tue 1 Dec, 09:00" in page
    assert "22:00" not in page


def test_public_pages_are_not_rendered_in_a_signed_in_members_time_zone(agency, admin_client):
    # Public pages are cached for every visitor: a member's time zone must not leak into them.
    from django.test.signals import template_rendered
    from django.utils import timezone

    agency.time_zone = "Australia/Sydney"
    agency.save()
    zones = set()

    def note_zone(**kwargs):
        zones.add(timezone.get_current_timezone_name())

    template_rendered.connect(note_zone)
    try:
        admin_client.get(reverse("profiles-agency", args=[agency.slug]))
    finally:
        template_rendered.disconnect(note_zone)
    assert zones == {"UTC"}
