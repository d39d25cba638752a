"""The demo agency `make run` seeds: realistic, in every column, with photos — and idempotent."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from emailsync.agencies.models import Agency, AuditEntry, RecruiterProfile, User
from emailsync.inbound.models import InboundAddress, Trigger, TriggerRecipient
from emailsync.inbound.recipients import COLLEAGUE, ROLE_ADDRESS, SENDER, exclusion
from emailsync.inbound.roles import is_role_address
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker
from emailsync.placements.models import Placement
from emailsync.profiles.models import AgencyRating, RecruiterRating, ReviewReply, public_reviews
from emailsync.review_requests.models import AskedRecipient, ReviewRequest
from emailsync.reviews.models import Review
from emailsync.workspace.reviews import counts

MODELS = [
    Agency, User, RecruiterProfile, Placement, ReviewRequest, Review, ReviewReply, Trigger,
    TriggerRecipient, AskedRecipient, OutboundEmail, AuditEntry, InboundAddress, AgencyRating,
    RecruiterRating,
]  # fmt: skip


@pytest.fixture
def seeded(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"

    def seed() -> dict:
        out = StringIO()
        call_command("seed_demo", "--json", stdout=out)
        return json.loads(out.getvalue())

    seed.agency = lambda: Agency.objects.get(slug="demo-recruitment")
    return seed


def snapshot() -> dict:
    """Every row of every model the seed touches, as plain values."""
    return {
        model.__name__: sorted(
            (tuple(sorted((k, str(v)) for k, v in row.items())) for row in model.objects.values()),
        )
        for model in MODELS
    }


def test_every_column_of_the_reviews_page_has_cards(seeded):
    seeded()
    agency = seeded.agency()
    found = counts(
        ReviewRequest.objects.filter(agency=agency), Review.objects.filter(agency=agency)
    )
    assert all(found[column] >= 1 for column in ("scheduled", "sent", "rejected")), found
    assert found["missing"] >= 3 and found["verified"] >= 8, found


def test_a_few_months_of_history_with_replies_triggers_and_placements(seeded):
    seeded()
    agency = seeded.agency()
    now = timezone.now()
    reviews = Review.objects.filter(agency=agency)
    assert reviews.order_by("submitted_at").first().submitted_at < now - timedelta(days=90)
    months = {r.submitted_at.strftime("%Y-%m") for r in reviews}
    assert len(months) >= 4
    assert ReviewReply.objects.filter(review__agency=agency).count() >= 3
    assert {r.rating for r in reviews} >= {3, 4, 5}
    assert {r.role for r in reviews} == {"candidate", "client"}
    # Each verified review hangs off a placement of the agency, with its audit entry.
    for review in reviews.filter(status=Review.Status.VERIFIED):
        assert review.placement.agency == agency and review.verified_by is not None
    assert AuditEntry.objects.filter(agency=agency, action="review.verified").count() >= 8
    assert Placement.objects.filter(agency=agency).count() >= 10
    # The activity log shows the rules at work: invited, skipped and held recipients.
    outcomes = set(TriggerRecipient.objects.filter(trigger__agency=agency).values_list(
        "outcome", "reason"))  # fmt: skip
    assert ("invited", "") in outcomes
    assert {("skipped", "colleague"), ("skipped", "role_address"), ("skipped", "bulk_send")} <= (
        outcomes
    )
    assert Trigger.objects.filter(agency=agency, status=Trigger.Status.QUARANTINED).exists()
    # A scheduled invite waits for its time, as a real one does; then the worker sends it.
    scheduled = list(ReviewRequest.objects.filter(agency=agency, status="scheduled"))
    assert scheduled and not OutboundEmail.objects.filter(review_request__in=scheduled).exists()
    due = max(r.send_after for r in scheduled)
    Worker(run_jobs=False).run_once(now=due)
    for request in scheduled:
        assert OutboundEmail.objects.filter(review_request=request, status="sent").exists()
    # Both recruiters appear on the public profiles with honest aggregates.
    public = public_reviews(Review.objects.filter(agency=agency))
    rating = AgencyRating.objects.get(agency=agency)
    assert rating.count == public.count() >= 8
    assert rating.total == sum(r.rating for r in public)
    by_recruiter = {r.recruiter.display_name for r in public}
    assert by_recruiter == {"Sam Carter", "Priya Nair"}


def test_only_reserved_example_domains_are_ever_addressed(seeded):
    seeded()
    reserved = (".example", "example.com", "example.net", "example.org")
    for email in ReviewRequest.objects.values_list("email", flat=True):
        assert email.endswith(reserved), email
    for email in TriggerRecipient.objects.values_list("email", flat=True):
        assert email.endswith(reserved), email


def test_recruiters_get_generated_photos_in_media_root(seeded, settings):
    seeded()
    for profile in RecruiterProfile.objects.filter(agency=seeded.agency()):
        assert profile.photo, profile
        path = settings.MEDIA_ROOT / profile.photo.name
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (256, 256)
        assert profile.bio and profile.specialisms


def test_seeding_twice_changes_nothing(seeded, settings):
    first = seeded()
    before = snapshot()
    photos = sorted(p.name for p in (settings.MEDIA_ROOT / "recruiter-photos").iterdir())
    second = seeded()
    assert snapshot() == before
    assert second["logins"] == first["logins"]
    assert first["created"]["reviews"] >= 13
    assert second["created"] == {"placements": 0, "requests": 0, "reviews": 0, "triggers": 0}
    assert sorted(p.name for p in (settings.MEDIA_ROOT / "recruiter-photos").iterdir()) == photos


def test_seeding_again_never_undoes_what_the_user_did(seeded):
    seeded()
    agency = seeded.agency()
    admin = agency.admins().get()
    review = Review.objects.filter(agency=agency, status="missing_verification").first()
    review.verify(Placement.objects.filter(agency=agency).first(), admin)
    cancelled = ReviewRequest.objects.filter(agency=agency, status="scheduled").first()
    cancelled.delete()
    seeded()
    assert Review.objects.get(pk=review.pk).status == "verified"
    assert not ReviewRequest.objects.filter(pk=cancelled.pk).exists()


def test_a_lost_photo_file_is_made_again(seeded, settings):
    seeded()
    profile = RecruiterProfile.objects.get(user__email="sam@demo-recruitment.example")
    (settings.MEDIA_ROOT / profile.photo.name).unlink()
    seeded()
    profile.refresh_from_db()
    assert (settings.MEDIA_ROOT / profile.photo.name).exists()


def test_the_human_readable_output_says_what_was_added(seeded, settings):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "admin login      admin@demo-recruitment.example / " in out.getvalue()
    assert "bcc address      demo-recruitment-" in out.getvalue()
    assert "reviews" in out.getvalue() and "added" in out.getvalue()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "already in place (nothing changed)" in out.getvalue()


def test_no_demo_trigger_is_old_enough_for_the_retention_job_to_purge(seeded):
    """The worker's first retention run must not eat the history a new user is shown."""
    from emailsync.outbox.jobs import purge

    seeded()
    before = Trigger.objects.count()
    assert before >= 15
    assert purge(timezone.now())["triggers_purged"] == 0
    assert Trigger.objects.count() == before


# The demo's activity log follows the real recipient rules: every skip it shows is the reason
# the rules in emailsync/inbound/recipients.py would give for that address.


def test_every_role_address_skip_is_a_role_address_by_the_real_rules(seeded):
    seeded()
    skipped = TriggerRecipient.objects.filter(trigger__agency=seeded.agency(), reason=ROLE_ADDRESS)
    emails = sorted(skipped.values_list("email", flat=True))
    assert emails  # the log shows the rule at work
    assert [e for e in emails if not is_role_address(e)] == []
    # hr@ is a person in a small company: the rules deliberately do not skip it.
    assert not is_role_address("hr@lumen-analytics.example")


def test_every_recipient_of_an_accepted_trigger_gets_the_reason_the_rules_give(seeded, settings):
    seeded()
    agency = seeded.agency()
    members = {u.email.lower() for u in agency.members()}
    checked = 0
    for recipient in TriggerRecipient.objects.filter(
        trigger__agency=agency, trigger__status=Trigger.Status.ACCEPTED
    ).select_related("trigger"):
        if recipient.outcome == TriggerRecipient.Outcome.SKIPPED:
            assert recipient.reason in {SENDER, COLLEAGUE, ROLE_ADDRESS}, recipient.reason
        elif recipient.outcome != TriggerRecipient.Outcome.INVITED:
            continue
        expected = recipient.reason if recipient.outcome == "skipped" else ""
        found = exclusion(
            recipient.email,
            sender=recipient.trigger.sender,
            inbound_domain=settings.EMAILSYNC_INBOUND_DOMAIN,
            agency_domains=agency.domain_names(),
            member_emails=members,
        )
        assert found == expected, (recipient.email, recipient.reason, found)
        checked += 1
    assert checked >= 10
