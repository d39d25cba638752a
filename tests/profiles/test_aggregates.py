"""The stored ratings always equal a from-scratch recomputation, whatever happens to reviews."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.profiles import aggregates
from emailsync.profiles.models import AgencyRating, Moderation, RecruiterRating
from emailsync.reviews.models import Review

from .conftest import bulk_reviews, request_for, review_for

pytestmark = pytest.mark.django_db

STATUSES = ["unconfirmed", "missing_verification", "verified", "rejected"]

operation = st.one_of(
    st.tuples(st.just("verify"), st.integers(0, 5)),
    st.tuples(st.just("reject"), st.integers(0, 5)),
    st.tuples(st.just("undo"), st.integers(0, 5)),
    st.tuples(st.just("hide"), st.integers(0, 5)),
    st.tuples(st.just("unhide"), st.integers(0, 5)),
    st.tuples(st.just("move"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("rate"), st.integers(0, 5), st.integers(1, 5)),
    st.tuples(st.just("role"), st.integers(0, 5), st.sampled_from(["candidate", "client"])),
    st.tuples(st.just("delete"), st.integers(0, 5)),
)


def expected(reviews, hidden, recruiter_id=None, agency_id=None):
    """An independent oracle: the numbers straight from the Python objects."""
    public = [
        r
        for r in reviews
        if r.status == "verified"
        and r.pk not in hidden
        and (recruiter_id is None or r.recruiter_id == recruiter_id)
        and (agency_id is None or r.agency_id == agency_id)
    ]
    values = {
        "count": len(public),
        "total": sum(r.rating for r in public),
        **{f"star_{n}": sum(r.rating == n for r in public) for n in range(1, 6)},
        "candidate_count": sum(r.role == "candidate" for r in public),
        "client_count": sum(r.role == "client" for r in public),
        "client_total": sum(r.rating for r in public if r.role == "client"),
        "last_review_at": max((r.submitted_at for r in public), default=None),
    }
    return values


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    initial=st.lists(
        st.tuples(st.sampled_from(STATUSES), st.integers(1, 5), st.integers(0, 2)),
        min_size=6,
        max_size=6,
    ),
    operations=st.lists(operation, max_size=25),
)
def test_aggregates_equal_a_recomputation_after_any_sequence(
    acme, make_agency, initial, operations
):
    other = getattr(acme, "_other", None) or make_agency(name="Other Agency")
    acme._other = other
    recruiters = [acme.sam, acme.riya, None]
    with transaction.atomic():
        reviews, hidden = [], set()
        now = timezone.now()
        for i, (status, rating, who) in enumerate(initial):
            rr = request_for(acme, recruiters[who])
            rr.save()
            review = review_for(
                acme, rr, recruiters[who], status, rating, when=now - timedelta(days=i)
            )
            review.save()
            reviews.append(review)
        for op in operations:
            review = reviews[op[1]]
            if review is None:
                continue
            kind = op[0]
            if kind == "verify":
                review.status, review.verified_at = "verified", timezone.now()
                review.save()
            elif kind == "reject":
                review.status = "rejected"
                review.save()
            elif kind == "undo":
                review.status, review.verified_at = "missing_verification", None
                review.save()
            elif kind == "hide" and review.pk not in hidden:
                Moderation.objects.create(review=review, hidden_reason="test")
                hidden.add(review.pk)
            elif kind == "unhide" and review.pk in hidden:
                Moderation.objects.get(review=review).delete()
                hidden.discard(review.pk)
            elif kind == "move":
                review.recruiter = recruiters[op[2]]
                review.save()
            elif kind == "rate":
                review.rating = op[2]
                review.save()
            elif kind == "role":
                review.role = op[2]
                review.save()
            elif kind == "delete":
                hidden.discard(review.pk)
                review.delete()
                reviews[op[1]] = None
        alive = [r for r in reviews if r is not None]
        assert aggregates.check() == []
        stored = AgencyRating.objects.get(agency=acme)
        for name, value in expected(alive, hidden, agency_id=acme.pk).items():
            assert getattr(stored, name) == value, name
        for recruiter in (acme.sam, acme.riya):
            stored = RecruiterRating.objects.get(recruiter=recruiter)
            for name, value in expected(alive, hidden, recruiter_id=recruiter.pk).items():
                assert getattr(stored, name) == value, (recruiter, name)
        assert AgencyRating.objects.get(agency=other).count == 0
        transaction.set_rollback(True)


def test_score_is_bayesian_so_one_five_star_review_does_not_win():
    assert aggregates.bayesian(1, 5) < aggregates.bayesian(20, 90)  # 5.0 once vs 4.5 twenty times
    assert aggregates.bayesian(0, 0) == aggregates.PRIOR_MEAN
    now = timezone.now()
    fresh = aggregates.rank(10, 45, now - timedelta(days=10), now)
    stale = aggregates.rank(10, 45, now - timedelta(days=200), now)
    assert fresh - stale == pytest.approx(0.1)


def test_check_and_repair_command_catches_changes_behind_the_signals(acme, make_review, capsys):
    make_review(acme, acme.sam, rating=5)
    bulk_reviews(acme, acme.riya, 30)  # bulk_create sends no signals
    Review.objects.filter(agency=acme, rating=5).update(rating=2)  # nor does update()
    with pytest.raises(SystemExit) as exit:
        call_command("profiles", "check-aggregates", "--json")
    assert exit.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["mismatches"] == 3  # the agency, Sam, Riya
    assert {(row["kind"], row["id"]) for row in result["rows"]} == {
        ("agency", acme.pk),
        ("recruiter", acme.sam.pk),
        ("recruiter", acme.riya.pk),
    }
    call_command("profiles", "check-aggregates", "--repair", "--json")
    assert json.loads(capsys.readouterr().out)["remaining"] == 0
    call_command("profiles", "check-aggregates")
    assert "0 mismatch(es) found." in capsys.readouterr().out
    assert AgencyRating.objects.get(agency=acme).count == 31


def test_saving_private_fields_does_not_recompute(acme, make_review, django_assert_num_queries):
    review = make_review(acme, acme.sam)
    review.admins_notified_at = timezone.now()
    with django_assert_num_queries(2):  # pre_save's lookup and the UPDATE itself
        review.save(update_fields=["admins_notified_at"])


def test_replies_and_profile_edits_bump_changed_at(acme, make_review):
    review = make_review(acme, acme.sam)
    before = AgencyRating.objects.get(agency=acme).changed_at
    from emailsync.profiles.models import ReviewReply

    ReviewReply.objects.create(review=review, text="Thanks!")
    after_reply = AgencyRating.objects.get(agency=acme).changed_at
    assert after_reply > before
    assert RecruiterRating.objects.get(recruiter=acme.sam).changed_at == after_reply
    acme.name = "Acme Recruitment Ltd"
    acme.save()
    assert AgencyRating.objects.get(agency=acme).changed_at > after_reply


def test_deleting_an_agency_with_reviews_replies_and_hidden_ones_works(acme, make_review):
    from emailsync.agencies.models import Agency
    from emailsync.profiles.models import ReviewReply

    review = make_review(acme, acme.sam)
    ReviewReply.objects.create(review=review, text="Thanks")
    Moderation.objects.create(review=make_review(acme, acme.riya), hidden_reason="x")
    with transaction.atomic():
        Agency.objects.get(pk=acme.pk).delete()
    assert not AgencyRating.objects.filter(agency_id=acme.pk).exists()
    assert not RecruiterRating.objects.filter(agency_id=acme.pk).exists()
    assert aggregates.check() == []


def test_deleting_a_member_removes_their_rating_and_keeps_the_agencys(acme, make_review):
    make_review(acme, acme.riya, rating=2)
    make_review(acme, acme.sam, rating=4)
    acme.riya.user.delete()  # reviews keep counting for the agency, without a recruiter
    assert AgencyRating.objects.get(agency=acme).count == 2
    assert not RecruiterRating.objects.filter(recruiter_id=acme.riya.pk).exists()
    assert aggregates.check() == []
