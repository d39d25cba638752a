"""Verify, reject and undo: only admins, only in Missing Verification, always audited; the
suggestions rank the right placement first; adding a placement inline verifies in one submit."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from emailsync.agencies.models import AuditEntry
from emailsync.placements.matching import suggest
from emailsync.placements.models import Placement, VerificationSettings
from emailsync.reviews.models import Review

pytestmark = pytest.mark.django_db


def placement(acme, **fields):
    values = dict(agency=acme, candidate_name="Someone Else", start_date=date.today())
    values.update(fields)
    return Placement.objects.create(**values)


def test_verify_reject_undo_are_audited_and_guarded(acme, make_review):
    review = make_review()
    p = placement(acme, candidate_email="cara@candidate.test")
    review.verify(p, by=acme.admin)
    review.refresh_from_db()
    assert (review.status, review.placement, review.verified_by) == ("verified", p, acme.admin)
    with pytest.raises(ValidationError):
        review.reject("spam", by=acme.admin)
    review.undo(by=acme.admin)
    review.refresh_from_db()
    assert review.status == "missing_verification" and review.placement is None
    with pytest.raises(ValidationError):
        review.reject("other", by=acme.admin)  # "other" needs a note
    review.reject("spam", by=acme.admin)
    review.refresh_from_db()
    assert review.status == "rejected" and review.rejected_by == acme.admin
    assert review.rejected_reason_label == "Spam"
    review.undo(by=acme.admin)
    actions = list(AuditEntry.objects.filter(agency=acme).values_list("action", flat=True))
    for action in (
        "review.verified",
        "review.verification_undone",
        "review.rejected",
        "review.rejection_undone",
    ):
        assert action in actions


def test_a_placement_of_another_agency_cannot_verify(acme, make_review, make_agency):
    other = placement(make_agency())
    with pytest.raises(ValidationError):
        make_review().verify(other, by=acme.admin)


def test_suggestions_rank_reference_then_email_then_recruiter(acme, make_review):
    review = make_review(email="cara@candidate.test", placement_ref="PL-7")
    near = placement(acme, recruiter=acme.sam.profile, start_date=date.today())
    by_email = placement(acme, candidate_email="cara@candidate.test")
    by_ref = placement(acme, external_ref="PL-7", start_date=date.today() - timedelta(days=50))
    placement(acme, start_date=date.today() - timedelta(days=400))  # unrelated: not suggested
    ranked = [s.placement for s in suggest(review)]
    assert ranked == [by_ref, by_email, near]


def test_admin_verifies_with_a_suggestion_through_the_page(acme, admin, make_review):
    review = make_review()
    p = placement(acme, candidate_email="cara@candidate.test", candidate_name="Cara Candidate")
    page = admin.get(reverse("review-verify", args=[review.pk]))
    assert page.status_code == 200 and b"Verify with this placement" in page.content
    response = admin.post(reverse("review-verify", args=[review.pk]), {"placement_id": p.pk})
    assert response.status_code == 302
    assert Review.objects.get(pk=review.pk).placement == p


def test_add_a_placement_inline_creates_and_verifies(acme, admin, make_review):
    review = make_review(email="boss@client.test", role="client", reviewer_name="Bo Boss")
    url = reverse("review-verify-new", args=[review.pk])
    bad = admin.post(url, {"candidate_name": "", "start_date": ""})
    assert bad.status_code == 400 and not Placement.objects.exists()
    response = admin.post(
        url,
        {
            "candidate_name": "Dee Dev",
            "candidate_email": "dee@people.test",
            "client_company": "Client Co",
            "client_contact_name": "Bo Boss",
            "client_contact_email": "boss@client.test",
            "job_title": "Developer",
            "start_date": "2025-01-06",
            "recruiter": acme.sam.profile.pk,
        },
    )
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == "verified" and review.placement.client_company == "Client Co"
    assert review.placement.created_by == acme.admin


def test_reject_needs_a_reason_and_undo_restores(acme, admin, make_review):
    review = make_review()
    assert admin.post(reverse("review-reject", args=[review.pk]), {}).status_code == 400
    admin.post(reverse("review-reject", args=[review.pk]), {"reason": "not_a_placement"})
    assert Review.objects.get(pk=review.pk).status == "rejected"
    admin.post(reverse("review-undo", args=[review.pk]))
    assert Review.objects.get(pk=review.pk).status == "missing_verification"


def test_recruiters_cannot_verify(acme, client, make_review):
    review = make_review()
    p = placement(acme)
    client.force_login(acme.sam)
    response = client.post(reverse("review-verify", args=[review.pk]), {"placement_id": p.pk})
    assert response.status_code == 403
    assert Review.objects.get(pk=review.pk).status == "missing_verification"


def test_automatic_verification_on_an_exact_reference_when_opted_in(acme, make_review):
    p = placement(acme, external_ref="ATS-1")
    assert make_review(placement_ref="ATS-1").status == "missing_verification"  # not opted in
    settings = VerificationSettings.for_agency(acme)
    settings.auto_verify_exact_ref = True
    settings.save()
    review = make_review(email="x@people.test", placement_ref="ATS-1")
    review.refresh_from_db()
    assert review.status == "verified" and review.placement == p and review.verified_by is None
    assert AuditEntry.objects.filter(action="review.auto_verified").exists()
    other = make_review(email="y@people.test", placement_ref="ATS-2")  # no such placement
    assert Review.objects.get(pk=other.pk).status == "missing_verification"


def test_automatic_verification_needs_the_reviewer_to_be_the_placements_person(acme, make_review):
    """The sender of a trigger email chooses both the reference and the recipient: a reference
    to a real placement beside a friend's address must not verify the friend's review. When the
    placement records its people's addresses, the reviewer must be one of them; the review
    then waits for an admin, with the placement still suggested by its reference."""
    VerificationSettings.objects.create(agency=acme, auto_verify_exact_ref=True)
    p = placement(
        acme,
        external_ref="ATS-7",
        candidate_email="cara@people.test",
        client_contact_email="clive@client.test",
    )
    friend = make_review(email="friend@people.test", placement_ref="ATS-7")
    assert Review.objects.get(pk=friend.pk).status == "missing_verification"
    cara = make_review(email="Cara@People.test", placement_ref="ATS-7")
    cara.refresh_from_db()
    assert cara.status == "verified" and cara.placement == p
    clive = make_review(email="clive+jobs@client.test", placement_ref="ATS-7")  # a plus tag
    assert Review.objects.get(pk=clive.pk).status == "verified"


def test_undo_of_an_automatic_verification_stays_undone_and_can_be_rejected(
    acme, admin, make_review
):
    """Undo puts the review back in Missing Verification for a second look; automatic
    verification must not verify it again on that save (nor on a reviewer's later edit)."""
    settings = VerificationSettings.for_agency(acme)
    settings.auto_verify_exact_ref = True
    settings.save()
    placement(acme, external_ref="ATS-9")
    review = make_review(placement_ref="ATS-9")
    review.refresh_from_db()
    assert review.status == "verified"  # automatic, on arrival
    assert admin.post(reverse("review-undo", args=[review.pk])).status_code == 302
    review.refresh_from_db()
    assert review.status == "missing_verification"
    review.text = "Edited: Sam found me a great role within two weeks and kept me informed."
    review.save()  # a reviewer's edit within the window saves it in Missing Verification again
    assert Review.objects.get(pk=review.pk).status == "missing_verification"
    admin.post(reverse("review-reject", args=[review.pk]), {"reason": "spam", "note": ""})
    review.refresh_from_db()
    assert review.status == "rejected"
    admin.post(reverse("review-undo", args=[review.pk]))
    assert Review.objects.get(pk=review.pk).status == "missing_verification"


def test_a_suggestion_one_day_from_the_email_says_day():
    from types import SimpleNamespace

    from emailsync.placements.matching import score

    review = SimpleNamespace(
        reviewer_email="",
        placement_ref="",
        recruiter_id=None,
        reviewer_name="",
        review_request=SimpleNamespace(name=""),
    )
    anchor = date(2026, 3, 2)
    for days, words in ((1, "started 1 day from the email"), (3, "started 3 days from the email")):
        placement = Placement(
            start_date=anchor + timedelta(days=days), candidate_name="", client_contact_name=""
        )
        assert words in score(review, placement, anchor).why


def test_recruiter_and_date_alone_are_never_the_one_click_answer(acme, admin, make_review):
    # A placement that fits only by recruiter and start date fits many reviews: it is listed,
    # but the admin has to choose it; one that names the reviewer is offered at once.
    review = make_review(email="cara@candidate.test")
    placement(acme, recruiter=acme.sam.profile, start_date=date.today(), candidate_name="Oscar")
    [guess] = suggest(review)
    assert not guess.identifies and not guess.one_click and guess.score > 0
    page = admin.get(reverse("review-verify", args=[review.pk])).content.decode()
    assert "Oscar" in page and "Verify with this placement" not in page
    placement(acme, candidate_email="cara@candidate.test", candidate_name="Cara Candidate")
    page = admin.get(reverse("review-verify", args=[review.pk])).content.decode()
    assert 'data-testid="verify-top">Verify with this placement' in page


def test_a_client_contact_on_several_placements_gets_no_one_click_answer(acme, admin, make_review):
    # The client contact's email is on every placement for that client: it says who is writing,
    # not which placement the review is about.
    review = make_review(email="boss@client.test", role="client", reviewer_name="Bo Boss")
    for name in ("Ann", "Ben"):
        placement(
            acme,
            candidate_name=name,
            client_contact_email="boss@client.test",
            recruiter=acme.sam.profile,
            start_date=date.today(),
        )
    suggestions = suggest(review)
    assert len(suggestions) == 2 and all(s.identifies for s in suggestions)
    assert not any(s.one_click for s in suggestions)
    page = admin.get(reverse("review-verify", args=[review.pk])).content.decode()
    assert "Verify with this placement" not in page


def test_a_similar_but_different_name_does_not_identify(acme, make_review):
    review = make_review(email="jane@people.test", reviewer_name="Jane Smith")
    placement(acme, candidate_name="John Smith", start_date=date.today())
    [guess] = suggest(review)
    assert "similar name" in ", ".join(guess.why) and not guess.one_click


def test_a_placement_whose_candidate_already_reviewed_it_is_not_the_one_click_answer(
    acme, admin, make_review
):
    """Two candidates with nearly the same name: the placement already verified with the first
    one's review is still listed for the second, with a warning, never as the one-click
    answer. A client review is not held back: a placement may have several client reviewers."""
    taken = placement(acme, candidate_name="Jon Smith", recruiter=acme.sam.profile)
    first = make_review(email="jon@people.test", reviewer_name="Jon Smith")
    first.verify(taken, by=acme.admins().get())
    second = make_review(email="john@people.test", reviewer_name="John Smith")
    [guess] = suggest(second)
    assert guess.identifies and guess.candidate_reviewed
    assert guess.candidate_reviewed_by == "jon@people.test"
    assert not guess.one_click
    page = admin.get(reverse("review-verify", args=[second.pk])).content.decode()
    assert "Already verified with a candidate review from jon@people.test" in page
    assert "Verify with this placement" not in page

    # The same person reviewing again (a second request) is not warned about themselves.
    again = make_review(email="JON@people.test", reviewer_name="Jon Smith")
    [own] = suggest(again)
    assert not own.candidate_reviewed and own.one_click

    client = make_review(email="hr@client.test", reviewer_name="Jon Smith", role="client")
    [for_client] = suggest(client)
    assert not for_client.candidate_reviewed


def test_an_erased_candidate_review_still_holds_its_placement_back(acme, admin, make_review):
    """Erasure blanks a verified review's address but keeps the review: its placement is
    still taken, and the dialog says so without the address."""
    from emailsync.privacy.people import erase_person

    taken = placement(acme, candidate_name="Jon Smith", recruiter=acme.sam.profile)
    first = make_review(email="jon@people.test", reviewer_name="Jon Smith")
    first.verify(taken, by=acme.admins().get())
    erase_person("jon@people.test")
    second = make_review(email="john@people.test", reviewer_name="John Smith")
    [guess] = suggest(second)
    assert guess.candidate_reviewed and guess.candidate_reviewed_by == ""
    assert not guess.one_click
    page = admin.get(reverse("review-verify", args=[second.pk])).content.decode()
    assert "its reviewer's data was erased" in page
    assert "Verify with this placement" not in page


def test_the_boards_reject_button_opens_the_reject_form(acme, admin, make_review):
    review = make_review()
    board = admin.get(reverse("agency-reviews")).content.decode()
    link = reverse("review-verify", args=[review.pk]) + "?reject=1#reject"
    assert f'href="{link}"' in board
    opened = admin.get(link.split("#")[0]).content.decode()
    assert '<details class="reject" id="reject" open>' in opened
    plain = admin.get(reverse("review-verify", args=[review.pk])).content.decode()
    assert '<details class="reject" id="reject">' in plain


def test_a_placement_taken_by_another_candidate_ranks_last_and_search_warns_too(
    acme, admin, make_review
):
    """It was the first suggestion (one click attached a second candidate to it), and the
    dialog's search listed it without the warning the suggestions give."""
    yesterday = date.today() - timedelta(days=1)
    taken = placement(
        acme,
        candidate_name="Bob Long",
        recruiter=acme.sam.profile,
        start_date=date.today(),
        external_ref="DR-2403",
    )
    free = placement(
        acme, candidate_name="Oscar Hughes", recruiter=acme.sam.profile, start_date=yesterday
    )
    make_review(email="bob@people.test", reviewer_name="Bob Long").verify(taken, by=acme.admin)
    new = make_review(email="tabby@people.test", reviewer_name="Tabby One")
    ranked = suggest(new)
    assert [s.placement for s in ranked] == [free, taken]
    assert ranked[1].candidate_reviewed and not ranked[0].candidate_reviewed
    url = reverse("placement-search")
    hx = {"HTTP_HX_REQUEST": "true"}  # the dialog's search, swapped in by htmx
    found = admin.get(url, {"q": "DR-2403", "review_id": new.pk}, **hx).content.decode()
    assert "Already verified with a candidate review from bob@people.test" in found
    other = admin.get(url, {"q": "Oscar", "review_id": new.pk}, **hx).content.decode()
    assert "Already verified" not in other
    assert 'aria-label="Verify with Oscar Hughes\'s placement"' in other  # which one
    # A placement that names this reviewer (their address on it) keeps its place, warned:
    # it is more likely theirs than any date-only guess, however many there are.
    for n in range(6):
        placement(
            acme, candidate_name=f"Other {n}", recruiter=acme.sam.profile, start_date=yesterday
        )
    own = placement(
        acme,
        candidate_name="Tabby One",
        candidate_email="tabby@people.test",
        recruiter=acme.sam.profile,
        start_date=date.today(),
    )
    make_review(email="t.one@work.test", reviewer_name="Tabby One").verify(own, by=acme.admin)
    first = suggest(new)[0]
    assert first.placement == own and first.candidate_reviewed and not first.one_click
    client = make_review(email="hr@client.test", reviewer_name="Hana", role="client")
    for_client = admin.get(url, {"q": "DR-2403", "review_id": client.pk}, **hx).content.decode()
    assert "Already verified" not in for_client  # a placement may have several client reviews


def test_searching_placements_without_javascript_stays_on_the_verify_page(acme, admin, make_review):
    """The verify page works without JavaScript, but its "Search all placements" form landed
    on the bare list of results the dialog swaps in: no page, no review, no way back."""
    review = make_review()
    placement(acme, candidate_name="Oscar Hughes", external_ref="DR-2412")
    url = reverse("placement-search")
    page = admin.get(url, {"q": "Oscar", "review_id": review.pk}).content.decode()
    assert "<title>" in page and "Verify this review" in page and "Oscar Hughes" in page
    assert 'value="Oscar"' in page  # the search box keeps what was typed
    assert 'name="placement_id"' in page  # and each result still verifies
    partial = admin.get(url, {"q": "Oscar", "review_id": review.pk}, HTTP_HX_REQUEST="true")
    assert "<title>" not in partial.content.decode() and b"Oscar Hughes" in partial.content


def test_a_form_error_keeps_where_the_admin_came_from(acme, admin, make_review):
    """Verifying from one column (a phone's tab): a mistake in the new placement or the
    rejection showed the form again without the column, so putting it right went back to
    the whole board instead."""
    review = make_review()
    back = reverse("agency-reviews") + "?col=missing"
    bad = admin.post(
        reverse("review-verify-new", args=[review.pk]), {"candidate_name": "", "next": back}
    )
    assert bad.status_code == 400 and f'name="next" value="{back}"' in bad.content.decode()
    bad = admin.post(reverse("review-reject", args=[review.pk]), {"reason": "", "next": back})
    assert bad.status_code == 400 and f'name="next" value="{back}"' in bad.content.decode()
    fixed = admin.post(reverse("review-reject", args=[review.pk]), {"reason": "spam", "next": back})
    assert fixed.url == back
