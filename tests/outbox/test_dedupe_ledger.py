"""The dedupe ledger keeps each person once per agency, under their mailbox."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from emailsync.review_requests.models import AskedRecipient

pytestmark = pytest.mark.django_db
WINDOW = timedelta(days=90)


def test_two_addresses_of_one_mailbox_in_one_claim_win_once(acme):
    now = timezone.now()
    won = AskedRecipient.claim_many(
        [
            (acme.pk, "zoe+jobs@candidate.test", WINDOW),
            (acme.pk, "zoe@candidate.test", WINDOW),
            (acme.pk, "dan@candidate.test", WINDOW),
        ],
        now,
    )
    assert won == {(acme.pk, "zoe+jobs@candidate.test"), (acme.pk, "dan@candidate.test")}
    assert sorted(AskedRecipient.objects.values_list("email", flat=True)) == [
        "dan@candidate.test",
        "zoe@candidate.test",
    ]
    # Within the window, any address of the mailbox is refused.
    assert not AskedRecipient.claim(acme.pk, "Zoe+Other@candidate.test", now, WINDOW)


def test_recently_asked_and_release_go_by_mailbox(acme):
    now = timezone.now()
    AskedRecipient.claim(acme.pk, "zoe+jobs@candidate.test", now, WINDOW)
    # An entry written under a tagged address before the ledger went by mailbox.
    AskedRecipient.objects.create(agency=acme, email="cara+cv@candidate.test", last_asked_at=now)
    asked = AskedRecipient.recently_asked(
        acme.pk,
        ["zoe@candidate.test", "zoe+x@candidate.test", "cara+cv@candidate.test", "dan@x.test"],
        now,
        WINDOW,
    )
    assert asked == {"zoe@candidate.test", "zoe+x@candidate.test", "cara+cv@candidate.test"}
    AskedRecipient.release(acme.pk, "zoe+jobs@candidate.test")
    assert not AskedRecipient.objects.filter(email="zoe@candidate.test").exists()


def test_the_migration_folds_tagged_entries_and_keeps_the_latest_ask(acme, make_agency):
    migration = importlib.import_module(
        "emailsync.review_requests.migrations.0007_ledger_by_mailbox"
    )
    other = make_agency(name="Beta Staffing", domains=["beta.test"])
    now = timezone.now()
    for agency, email, days_ago in [
        (acme, "zoe@candidate.test", 30),
        (acme, "zoe+jobs@candidate.test", 2),  # later than the untagged entry: it wins
        (acme, "zoe+old@candidate.test", 60),
        (acme, "cara+cv@candidate.test", 5),  # the only entry for Cara: renamed
        (other, "zoe+jobs@candidate.test", 9),  # another agency's ledger is its own
    ]:
        AskedRecipient.objects.create(
            agency=agency, email=email, last_asked_at=now - timedelta(days=days_ago)
        )
    migration.fold_tagged_entries(apps, None)
    rows = {
        (a, e): round((now - t) / timedelta(days=1))
        for a, e, t in AskedRecipient.objects.values_list("agency_id", "email", "last_asked_at")
    }
    assert rows == {
        (acme.pk, "zoe@candidate.test"): 2,
        (acme.pk, "cara@candidate.test"): 5,
        (other.pk, "zoe@candidate.test"): 9,
    }
