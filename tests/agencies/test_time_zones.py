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
