"""Export and erasure of one person's data, across agencies (docs/PRIVACY.md)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from emailsync.agencies.models import AuditEntry
from emailsync.api.models import WebhookDelivery, WebhookEndpoint
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.operations.models import DevelopmentMessage
from emailsync.outbox.models import OutboundEmail, enqueue
from emailsync.placements.models import Placement
from emailsync.privacy.people import erase_person, export_person
from emailsync.profiles.models import AgencyRating, ReviewReport
from emailsync.review_requests.models import AskedRecipient, ReviewRequest, Suppression
from emailsync.reviews.models import Review
from emailsync.throttling.models import Counter
from tests.profiles.conftest import request_for, review_for

PERSON = "Cara.Person@People.test"
ADDRESS = PERSON.lower()


@pytest.fixture
def held(make_agency, add_member):
    """The person asked by two agencies: a verified review at one, an unverified one at the
    other, plus a trigger row, emails, the dedupe ledger, a placement, a report and a webhook."""
    one, two = make_agency(name="One"), make_agency(name="Two")
    rec_one, rec_two = add_member(one).profile, add_member(two).profile
    now = timezone.now()
    placement = Placement.objects.create(
        agency=one, external_ref="P-1", candidate_name="Cara Person", candidate_email=ADDRESS,
        client_contact_name="Clive Other", client_contact_email="clive@client.test",
        start_date=now.date(), recruiter=rec_one,
    )  # fmt: skip
    rr1 = request_for(one, rec_one, email=ADDRESS)
    rr1.name = "Cara Person"
    rr1.save()
    verified = review_for(one, rr1, rec_one, "missing_verification", reviewer_name="Cara Person")
    verified.save()
    verified.verify(placement, by=one.admins().get())
    rr2 = request_for(two, rec_two, email=ADDRESS)
    rr2.save()
    unverified = review_for(two, rr2, rec_two, "missing_verification", rating=2)
    unverified.save()
    rr3 = request_for(two, rec_two, email=ADDRESS)
    rr3.status = ReviewRequest.Status.SCHEDULED
    rr3.save()
    trigger = Trigger.objects.create(
        agency=two, sender=f"boss@{two.domain_names()[0]}", message_id_hash="h1", status="accepted"
    )
    TriggerRecipient.objects.create(
        trigger=trigger, email=ADDRESS, name="Cara Person", outcome="invited", reason="",
        review_request=rr3,
    )  # fmt: skip
    enqueue("review_request", to_email=ADDRESS, template="review_request", agency=two,
            review_request=rr3)  # fmt: skip
    enqueue("notification", to_email=ADDRESS, template="review_confirm", agency=one)
    AskedRecipient.claim(two.pk, ADDRESS, now, timezone.timedelta(days=90))
    ReviewReport.objects.create(review=verified, reason="other", contact_email=ADDRESS)
    endpoint = WebhookEndpoint.objects.create(agency=one, url="https://hooks.one.test/x")
    WebhookDelivery.objects.create(
        endpoint=endpoint, agency=one, event="review.created", event_id="e1",
        body=json.dumps({"reviewer_email": ADDRESS, "reviewer_name": "Cara Person", "rating": 5}),
    )  # fmt: skip
    Counter.hit(f"test:{ADDRESS}", 5, 60)
    DevelopmentMessage.objects.create(
        sender="x@emailsync.test", recipients=ADDRESS, subject="Hi", raw=f"To: {ADDRESS}"
    )
    # Someone else at the same agencies, who must be untouched.
    other = request_for(one, rec_one, email="someone@else.test")
    other.save()
    review_for(one, other, rec_one, "verified", reviewer_name="Sam Else").save()
    return {"one": one, "two": two, "verified": verified, "unverified": unverified}


def test_export_gathers_everything_across_agencies(held):
    data = export_person(PERSON)
    assert data["email"] == ADDRESS
    assert len(data["review_requests"]) == 3
    assert {r["status"] for r in data["reviews"]} == {"verified", "missing_verification"}
    assert {r["agency"]["name"] for r in data["reviews"]} == {"One", "Two"}
    assert len(data["trigger_recipients"]) == 1
    assert len(data["emails"]) == 2
    assert len(data["last_asked"]) == 1
    assert data["placements"][0]["as"] == "candidate"
    assert data["placements"][0]["name"] == "Cara Person"
    assert "Clive Other" not in json.dumps(data)  # the other side of the placement is not theirs
    assert len(data["review_reports"]) == 1
    assert data["suppression"] is None
    assert "someone@else.test" not in json.dumps(data)
    assert "Sam Else" not in json.dumps(data)


def test_export_of_an_unknown_address_is_empty(db):
    data = export_person("nobody@nowhere.test")
    assert data["review_requests"] == data["reviews"] == data["emails"] == []
    assert data["suppression"] is None and data["account"] is None


def everything_as_text() -> str:
    rows = []
    for model in (ReviewRequest, Review, TriggerRecipient, OutboundEmail, AskedRecipient,
                  Placement, ReviewReport, WebhookDelivery, AuditEntry, Counter,
                  DevelopmentMessage):  # fmt: skip
        rows += [json.dumps(list(model.objects.values()), default=str)]
    return "\n".join(rows).lower()


def test_erase_removes_the_person_and_keeps_them_unsubscribed(held):
    one, two = held["one"], held["two"]
    assert AgencyRating.objects.get(agency=one).count == 2
    result = erase_person(PERSON)

    text = everything_as_text()
    assert ADDRESS not in text
    # The name goes too, except from the agency's own placement record (docs/PRIVACY.md).
    assert "cara person" not in text.replace('"candidate_name": "cara person"', "")
    # Unverified reviews go; the verified one stays, anonymous, with its rating and text.
    assert not Review.objects.filter(pk=held["unverified"].pk).exists()
    kept = Review.objects.get(pk=held["verified"].pk)
    assert kept.reviewer_email == kept.reviewer_name == ""
    assert kept.display_name.startswith("Anonymous")
    assert kept.status == "verified" and kept.rating == 5
    assert kept.review_request.email == ""
    assert AgencyRating.objects.get(agency=one).count == 2  # still public, still counted
    assert ReviewRequest.objects.filter(agency=two).count() == 0
    assert TriggerRecipient.objects.get().outcome == "invited"  # the fairness audit keeps it
    assert not OutboundEmail.objects.exists()
    assert not AskedRecipient.objects.exists()
    assert Placement.objects.get().candidate_email == ""
    assert json.loads(WebhookDelivery.objects.get().body)["rating"] == 5
    # Still unsubscribed, as a hash only.
    assert Suppression.suppressed([PERSON.upper()]) == {PERSON.upper()}
    assert Suppression.objects.get().reason == "erased"
    # One audit entry per agency, with counts and without the address.
    for agency in (one, two):
        entry = AuditEntry.objects.get(agency=agency, action="privacy.erased")
        assert ADDRESS not in json.dumps(entry.detail) + entry.subject
    assert (
        AuditEntry.objects.get(agency=two, action="privacy.erased").detail["reviews_deleted"] == 1
    )
    assert result["reviews_deleted"] == 1 and result["reviews_anonymised"] == 1
    # The other person is untouched.
    assert Review.objects.filter(reviewer_name="Sam Else", reviewer_email="someone@else.test")


def test_erasing_refreshes_the_public_aggregates(make_agency, add_member):
    agency = make_agency()
    recruiter = add_member(agency).profile
    rr = request_for(agency, recruiter, email=ADDRESS)
    rr.save()
    review_for(agency, rr, recruiter, "verified", rating=1).save()
    AgencyRating.objects.filter(agency=agency).update(count=99)  # stale on purpose
    erase_person(ADDRESS)
    assert AgencyRating.objects.get(agency=agency).count == 1  # recomputed; still public


def test_erasing_twice_is_harmless(held):
    erase_person(PERSON)
    second = erase_person(PERSON)
    assert not any(v for k, v in second.items() if k != "agencies")
    assert Suppression.objects.count() == 1


def test_operator_commands(held):
    out = StringIO()
    call_command("privacy", "export", PERSON, "--json", stdout=out)
    assert len(json.loads(out.getvalue())["reviews"]) == 2
    with pytest.raises(CommandError):
        call_command("privacy", "export", "not-an-address", stdout=StringIO())
    out = StringIO()
    call_command("privacy", "erase", PERSON, "--yes", "--json", stdout=out)
    assert json.loads(out.getvalue())["reviews_deleted"] == 1
    assert export_person(PERSON)["reviews"] == []


def test_erase_command_asks_first(held, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="Nothing erased"):
        call_command("privacy", "erase", PERSON, stdout=StringIO())
    assert Review.objects.filter(reviewer_email=ADDRESS).count() == 2


def test_an_erased_person_is_never_asked_again_by_any_agency(held, make_agency):
    from emailsync.review_requests.manual import Person, request_manually

    erase_person(PERSON)
    newcomer = make_agency(name="Newcomer")
    for agency in (held["one"], newcomer):
        _trigger, outcomes = request_manually(
            agency, [Person(PERSON, "Cara Person", "candidate")], by=None, now=timezone.now()
        )
        assert [o.request for o in outcomes] == [None]
    assert not ReviewRequest.objects.filter(email=ADDRESS).exists()


def test_the_anonymised_review_stays_public_without_the_name(client, held):
    one = held["one"]
    page = client.get(f"/agencies/{one.slug}/")
    assert b"Cara P." in page.content
    erase_person(PERSON)
    page = client.get(f"/agencies/{one.slug}/")
    assert page.status_code == 200
    assert b"Cara" not in page.content and b"Anonymous candidate" in page.content
    assert b"Sam E." in page.content  # the other reviewer is untouched


def test_the_audit_log_says_it_in_words(held):
    from emailsync.workspace.labels import ACTIONS

    erase_person(PERSON)
    assert AuditEntry.objects.filter(action="privacy.erased").count() == 2
    assert "privacy.erased" in ACTIONS
