"""`emailsync seed-scale`: realistic data whose aggregates check out and whose pages render."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emailsync.agencies.models import Agency, RecruiterProfile, User
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.profiles import aggregates
from emailsync.reviews.models import Review
from tests.processes import manage, product_env


@pytest.fixture
def seeded(db):
    out = StringIO()
    call_command("seed-scale", "--agencies", "3", "--reviews", "200", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_small_seed_has_every_kind_of_row_and_passes_check_aggregates(seeded):
    assert seeded["agencies"] == 3 and seeded["reviews"] == 200
    assert Agency.objects.count() == 3
    assert User.objects.filter(role="admin").count() == 3
    assert set(Review.objects.values_list("status", flat=True)) == set(Review.Status.values)
    assert Trigger.objects.exists()
    assert {"invited", "skipped"} <= set(TriggerRecipient.objects.values_list("outcome", flat=True))
    for agency in Agency.objects.all():
        assert agency.email_sync.enabled and agency.domain_names()
        assert agency.sender_addresses.count() == agency.profiles.count() == 10
    assert aggregates.check() == []
    out = StringIO()
    call_command("profiles", "check-aggregates", "--json", stdout=out)  # exits 1 on a mismatch
    assert json.loads(out.getvalue())["mismatches"] == 0


def test_public_pages_render_for_seeded_data(seeded, client):
    assert client.get("/agencies/").status_code == 200
    for agency in Agency.objects.all():
        assert client.get(f"/agencies/{agency.slug}/").status_code == 200
        profile = RecruiterProfile.objects.filter(agency=agency, rating__count__gt=0).first()
        response = client.get(f"/agencies/{agency.slug}/recruiters/{profile.slug}/")
        assert response.status_code == 200
        assert profile.display_name in response.content.decode()


def test_a_database_with_agencies_is_refused_and_left_unchanged(seeded):
    before = Review.objects.count()
    with pytest.raises(CommandError, match="already holds 3 agencies"):
        call_command("seed-scale", "--agencies", "2", "--reviews", "10", stdout=StringIO())
    assert Review.objects.count() == before and Agency.objects.count() == 3


@pytest.mark.slow
def test_the_emailsync_command_runs_seed_scale(tmp_path):
    # Through the console entry point (emailsync.cli), with the hyphenated command name.
    env = product_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    result = json.loads(manage(env, "seed-scale", "--agencies", "2", "--reviews", "30", "--json"))
    assert result["agencies"] == 2 and result["reviews"] == 30
    assert "0 mismatch(es)" in manage(env, "profiles", "check-aggregates")
