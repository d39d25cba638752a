"""`emailsync agency delete SLUG --yes`: an agency goes with all its data, and nothing else does.

The doomed agency is the full demo seed (requests and reviews in every column, triggers,
placements, replies, audit log, photos) plus API keys and webhooks; a second agency is seeded
beside it. Afterwards no row anywhere points at the doomed agency, no table mentions its slug,
members, reviewers or BCC address, and the other agency is whole.
"""

import json
import os
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client

from emailsync.agencies.models import Agency
from emailsync.api import webhooks
from emailsync.api.models import WebhookEndpoint
from emailsync.inbound.models import InboundAddress
from emailsync.profiles.models import ReviewReport
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review
from emailsync.throttling.models import Counter
from tests.api.seed import seed_agency


def project_models():
    return [m for m in apps.get_models() if m.__module__.startswith("emailsync.")]


def agency_fields(model):
    return [
        f.name
        for f in model._meta.get_fields()
        if f.concrete and f.is_relation and f.related_model is Agency
    ]


def dump() -> str:
    """Every row of every table (Django's and ours), as lower-case text."""
    parts = []
    for model in apps.get_models():
        parts.append(json.dumps(list(model.objects.values()), default=str))
    return "\n".join(parts).lower()


@pytest.fixture
def doomed(db, settings, tmp_path, make_agency, add_member):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    agency = Agency.objects.get(slug=json.loads(out.getvalue())["agency"])
    # What the demo does not have: the API side, a report, a session, a throttle counter.
    from tests.api.conftest import enable_api

    enable_api(agency)
    from emailsync.api.models import ApiKey

    ApiKey.issue(agency, "doomed key")
    # Its scheduled invites' emails, as a worker queues them once they fall due.
    from django.db import transaction
    from django.utils import timezone

    from emailsync.outbox.due_requests import release_due

    with transaction.atomic():
        assert release_due(timezone.now() + timedelta(days=3), 100)
    endpoint = WebhookEndpoint.objects.create(agency=agency, url="https://hooks.example.com/x")
    endpoint.deliveries.create(
        agency=agency, event="review.created", event_id="e1",
        body=webhooks.encode({"reviewer_email": "x@y.test"}),
    )  # fmt: skip
    review = Review.objects.filter(agency=agency, status="verified").first()
    ReviewReport.objects.create(review=review, reason="other", contact_email="r@reporter.test")
    admin = agency.admins().first()
    Client().force_login(admin)
    Counter.hit(f"login:{admin.email}", 5, 60)
    return agency


def test_agency_delete_leaves_nothing_behind(
    doomed, make_agency, add_member, django_capture_on_commit_callbacks
):
    other = seed_agency(make_agency, add_member)
    other_counts = {
        m: sum(m.objects.filter(**{f: other.agency.pk}).count() for f in agency_fields(m))
        for m in project_models()
        if agency_fields(m)
    }
    # The fixture really has data in every app that holds agency data.
    linked = {m: sum(m.objects.filter(**{f: doomed.pk}).count() for f in agency_fields(m))
              for m in project_models() if agency_fields(m)}  # fmt: skip
    apps_with_data = {m._meta.app_label for m, n in linked.items() if n}
    assert apps_with_data >= {"agencies", "review_requests", "outbox", "inbound", "reviews",
                              "profiles", "placements", "api"}  # fmt: skip
    needles = {doomed.slug, *doomed.users.values_list("email", flat=True)}
    needles |= set(ReviewRequest.objects.filter(agency=doomed).values_list("email", flat=True))
    needles |= set(InboundAddress.objects.filter(agency=doomed).values_list("token", flat=True))
    needles.discard("")
    photos = [p.photo.path for p in doomed.profiles.exclude(photo="")]
    assert photos, "the demo seed gives recruiters photos"
    assert Session.objects.exists()
    sessions_before = Session.objects.count()

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("agency", "delete", "no-such-agency", "--yes", stdout=out)
    with django_capture_on_commit_callbacks(execute=True):  # the photos go after the commit
        call_command("agency", "delete", doomed.slug, "--yes", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["deleted"] is True and result["rows"]["reviews.Review"] > 0

    for model in project_models():
        for field in agency_fields(model):
            assert not model.objects.filter(**{field: doomed.pk}).exists(), (model, field)
    text = dump()
    left = sorted(n for n in needles if n.lower() in text)
    assert not left, f"still mentioned after deletion: {left[:5]}"
    assert Session.objects.count() == sessions_before - 1
    assert not Counter.objects.filter(key__contains="demo").exists()
    for path in photos:
        assert not os.path.exists(path)
    # The other agency is whole.
    for model, count in other_counts.items():
        fields = agency_fields(model)
        assert sum(model.objects.filter(**{f: other.agency.pk}).count() for f in fields) == count


def test_agency_delete_asks_first(make_agency, monkeypatch):
    agency = make_agency()
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing deleted"):
        call_command("agency", "delete", agency.slug, stdout=StringIO())
    assert Agency.objects.filter(pk=agency.pk).exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("agency", "delete", agency.slug, stdout=StringIO())
    assert not Agency.objects.filter(pk=agency.pk).exists()


def test_without_a_terminal_the_commands_say_to_pass_yes(make_agency, monkeypatch):
    def no_terminal(prompt):
        raise EOFError  # what input() does with stdin at /dev/null, a pipe or cron

    agency = make_agency()
    monkeypatch.setattr("builtins.input", no_terminal)
    with pytest.raises(CommandError, match="No terminal to confirm on: pass --yes"):
        call_command("agency", "delete", agency.slug, stdout=StringIO())
    with pytest.raises(CommandError, match="No terminal to confirm on: pass --yes"):
        call_command("privacy", "erase", "someone@example.org", stdout=StringIO())
    assert Agency.objects.filter(pk=agency.pk).exists()
