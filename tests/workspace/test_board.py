"""The Reviews page's columns: counts equal the database's on thousands of rows, in a bounded
number of queries; filters; recruiters see only their own; scheduled invites can be edited,
cancelled and sent now (one or in bulk) until they are sent; the manual request."""

import secrets
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.inbound.models import Trigger
from emailsync.outbox.models import OutboundEmail
from emailsync.review_requests.models import (
    AskedRecipient,
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
)
from emailsync.reviews.models import Review
from tests.workspace.objects import scheduled_request

pytestmark = pytest.mark.django_db
RS = ReviewRequest.Status


def seed(acme, n=3000):
    """n requests in every status, and a review for every completed one (bulk, fast)."""
    now = timezone.now()
    statuses = [RS.SCHEDULED, RS.SENT, RS.OPENED, RS.REMINDED, RS.COMPLETED, RS.CANCELLED]
    recruiters = [acme.sam.profile, acme.admin.profile, None]
    requests = ReviewRequest.objects.bulk_create(
        [
            ReviewRequest(
                agency=acme,
                source=Source.EMAIL_SYNC,
                email=f"person{i}@people.test",
                name=f"Person {i}",
                role="candidate" if i % 2 else "client",
                recruiter=recruiters[i % 3],
                token=secrets.token_urlsafe(12) + str(i),
                status=statuses[i % len(statuses)],
                created_at=now - timedelta(days=i % 40),
                send_after=now,
                deadline=now + timedelta(hours=72),
            )
            for i in range(n)
        ]
    )
    review_statuses = ["missing_verification", "verified", "rejected", "unconfirmed"]
    Review.objects.bulk_create(
        [
            Review(
                agency=acme,
                review_request=rr,
                recruiter=rr.recruiter,
                rating=1 + i % 5,
                text="Helpful and quick, kept me informed all the way through the process.",
                role=rr.role,
                reviewer_name=rr.name,
                recommend=True,
                reviewer_email=rr.email,
                status=review_statuses[i % 4],
                submitted_at=now - timedelta(days=i % 40),
                editable_until=now,
            )
            for i, rr in enumerate(r for r in requests if r.status == RS.COMPLETED)
        ]
    )


def column_counts(response) -> dict:
    return {key: count for key, _label, count, _cards in response.context["columns"]}


def test_counts_equal_the_database_with_bounded_queries(acme, admin, django_assert_max_num_queries):
    seed(acme)
    with django_assert_max_num_queries(16):
        response = admin.get(reverse("agency-reviews"))
    assert response.status_code == 200
    requests = ReviewRequest.objects.filter(agency=acme)
    reviews = Review.objects.filter(agency=acme)
    assert column_counts(response) == {
        "scheduled": requests.filter(status=RS.SCHEDULED).count(),
        "sent": requests.filter(status__in=[RS.SENT, RS.OPENED, RS.REMINDED]).count(),
        "missing": reviews.filter(status="missing_verification").count(),
        "verified": reviews.filter(status="verified").count(),
        "rejected": reviews.filter(status="rejected").count(),
    }
    assert column_counts(response)["scheduled"] == 500
    body = response.content.decode()
    assert 'data-count="missing">{}<'.format(column_counts(response)["missing"]) in body
    # A single column, paginated, costs the same.
    with django_assert_max_num_queries(16):
        page = admin.get(reverse("agency-reviews"), {"col": "verified", "page": 2})
    assert len(page.context["column"][3].object_list) == 50

    # Filters: recruiter, rating, role, search — counts follow the database.
    sam = acme.sam.profile
    filtered = admin.get(reverse("agency-reviews"), {"recruiter": sam.pk, "rating": 5})
    assert (
        column_counts(filtered)["verified"]
        == reviews.filter(status="verified", recruiter=sam, rating=5).count()
    )
    assert column_counts(filtered)["scheduled"] == 0  # invites have no rating
    searched = admin.get(reverse("agency-reviews"), {"q": "person12"})
    assert (
        column_counts(searched)["scheduled"]
        == requests.filter(status=RS.SCHEDULED, email__contains="person12").count()
    )


def client_for(user):
    from django.test import Client

    other = Client()
    other.force_login(user)
    return other


def test_recruiters_see_only_their_own_and_cannot_act(acme, client, make_review):
    mine = make_review(email="mine@people.test")
    make_review(email="theirs@people.test", recruiter=acme.admin.profile)
    client.force_login(acme.sam)
    response = client.get(reverse("agency-reviews"))
    assert column_counts(response)["missing"] == 1
    assert b"mine@people.test" in response.content
    assert b"theirs@people.test" not in response.content
    assert reverse("review-verify", args=[mine.pk]).encode() not in response.content
    # Nor is there a choice of recruiter to filter by: theirs is the only one.
    assert b'name="recruiter"' not in response.content
    assert b'name="recruiter"' in client_for(acme.admin).get(reverse("agency-reviews")).content


def test_edit_a_scheduled_invite_changes_what_goes_out(acme, admin):
    invite = scheduled_request(acme, acme.sam.profile)
    email = OutboundEmail.objects.create(
        kind="review_request",
        template="review_request",
        agency=acme,
        review_request=invite,
        to_email=invite.email,
        send_after=invite.send_after,
    )
    AskedRecipient.claim(acme.pk, invite.email, timezone.now(), timedelta(days=90))
    url = reverse("invite-edit", args=[invite.pk])
    assert admin.get(url).status_code == 200
    data = {
        "name": "Ivy New",
        "email": "ivy.new@example.org",
        "recruiter": acme.admin.profile.pk,
        "role": "client",
        "personal_message": "Thanks for a great year!",
    }
    assert admin.post(url, data).status_code == 302
    invite.refresh_from_db()
    email.refresh_from_db()
    assert (invite.email, invite.name, invite.role) == ("ivy.new@example.org", "Ivy New", "client")
    assert invite.recruiter == acme.admin.profile and email.to_email == "ivy.new@example.org"
    # The old address is free again; the new one is taken in the dedupe ledger.
    assert not AskedRecipient.objects.filter(agency=acme, email="invitee@example.org").exists()
    assert AskedRecipient.objects.filter(agency=acme, email="ivy.new@example.org").exists()
    # A colleague's address breaks the same rule as Email Sync, with its reason.
    refused = admin.post(url, {**data, "email": "someone@acme.test"})
    assert refused.status_code == 400 and b"belongs to your agency" in refused.content


def test_words_an_admin_adds_to_a_recruiters_invite_are_signed_by_the_admin(acme, admin):
    invite = scheduled_request(acme, acme.sam.profile)
    data = {
        "name": invite.name,
        "email": invite.email,
        "recruiter": acme.sam.profile.pk,
        "role": "candidate",
        "personal_message": "Thank you from all of us.",
    }
    assert admin.post(reverse("invite-edit", args=[invite.pk]), data).status_code == 302
    invite.refresh_from_db()
    assert invite.message_by == (acme.admin.full_name or acme.admin.email)
    # Sam's own words moved to another recruiter stay Sam's.
    own = scheduled_request(acme, acme.sam.profile, email="own@example.org")
    own.personal_message = "It was a pleasure."
    own.save()
    moved = {**data, "email": own.email, "personal_message": own.personal_message}
    moved["recruiter"] = acme.admin.profile.pk
    assert admin.post(reverse("invite-edit", args=[own.pk]), moved).status_code == 302
    own.refresh_from_db()
    assert own.recruiter == acme.admin.profile and own.message_by == "Sam Carter"
    # Words sent for no recruiter (an API request without one) stay the agency's.
    agencys = scheduled_request(acme, None, email="api@example.org")
    agencys.personal_message = "Thank you for working with us."
    agencys.save()
    moved = {**moved, "email": agencys.email, "personal_message": agencys.personal_message}
    assert admin.post(reverse("invite-edit", args=[agencys.pk]), moved).status_code == 302
    agencys.refresh_from_db()
    assert agencys.message_by == acme.name


def test_an_invite_can_move_to_another_form_of_the_same_mailbox(acme, admin):
    invite = scheduled_request(acme, acme.sam.profile, email="ivy+cv@example.org")
    AskedRecipient.claim(acme.pk, invite.email, timezone.now(), timedelta(days=90))
    data = {
        "name": "Ivy",
        "email": "ivy@example.org",
        "recruiter": acme.sam.profile.pk,
        "role": "candidate",
        "personal_message": "",
    }
    assert admin.post(reverse("invite-edit", args=[invite.pk]), data).status_code == 302
    invite.refresh_from_db()
    assert invite.email == "ivy@example.org"
    # Still one ask in the ledger, the same one, under the mailbox.
    assert list(AskedRecipient.objects.values_list("email", flat=True)) == ["ivy@example.org"]


def test_cancel_and_send_now_one_or_in_bulk(acme, admin):
    a, b, c = (scheduled_request(acme, None, email=f"{x}@people.test") for x in "abc")
    for rr in (a, b, c):
        OutboundEmail.objects.create(
            kind="review_request",
            template="review_request",
            agency=acme,
            review_request=rr,
            to_email=rr.email,
            send_after=rr.send_after,
        )
    admin.post(reverse("invite-cancel", args=[a.pk]))
    admin.post(reverse("invite-send-now", args=[b.pk]))
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == RS.CANCELLED and a.emails.get().status == "cancelled"
    assert b.send_after <= timezone.now() and b.emails.get().send_after <= timezone.now()
    admin.post(reverse("invite-bulk"), {"request_ids": [b.pk, c.pk], "action": "cancel"})
    assert set(ReviewRequest.objects.values_list("status", flat=True)) == {RS.CANCELLED}
    # Once not scheduled, nothing changes any more.
    response = admin.post(reverse("invite-send-now", args=[a.pk]))
    assert response.status_code == 302 and ReviewRequest.objects.get(pk=a.pk).status == "cancelled"


def test_send_now_while_email_sync_is_off_says_it_would_not_be_sent(acme, admin):
    """The worker skips Email Sync's requests while it is off: "on its way" would be untrue."""
    rr = scheduled_request(acme, None)
    EmailSyncSettings.objects.filter(agency=acme).update(enabled=False)
    page = admin.post(reverse("invite-send-now", args=[rr.pk]), follow=True).content.decode()
    assert "Email Sync is off, so this invite would not be sent" in page
    assert "on its way" not in page
    bulk = admin.post(
        reverse("invite-bulk"), {"request_ids": [rr.pk], "action": "send"}, follow=True
    )
    assert "would not be sent" in bulk.content.decode()
    assert "will be sent now" not in bulk.content.decode()
    rr.refresh_from_db()
    assert rr.status == RS.SCHEDULED and rr.send_after > timezone.now()  # left as it was
    manual = scheduled_request(acme, None, email="m@people.test", source=Source.MANUAL)
    admin.post(reverse("invite-send-now", args=[manual.pk]))
    manual.refresh_from_db()
    assert manual.send_after <= timezone.now()  # a manual invite does not need Email Sync


def test_an_invite_the_worker_is_sending_cannot_be_cancelled_or_edited(
    acme, admin, monkeypatch, settings
):
    """The admin's cancel or edit lands while the worker holds the invite's email (claimed,
    `sending`): it is refused with a clear message, and what goes out matches the request."""
    from django.core import mail

    from emailsync.outbox import worker as worker_mod

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    invite = scheduled_request(
        acme,
        acme.sam.profile,
        email="wrong@person.test",
        send_after=timezone.now() - timedelta(minutes=1),
    )  # due: the worker queues its email as it claims it
    pages = []
    real = worker_mod.recheck

    def recheck(rows, now):  # the admin's POSTs arrive while the worker holds the rows
        pages.append(admin.post(reverse("invite-cancel", args=[invite.pk]), follow=True))
        edit = {
            "name": "Right",
            "email": "right@person.test",
            "recruiter": acme.sam.profile.pk,
            "role": "candidate",
            "personal_message": "",
        }
        pages.append(admin.post(reverse("invite-edit", args=[invite.pk]), edit))
        return real(rows, now)

    monkeypatch.setattr(worker_mod, "recheck", recheck)
    worker_mod.Worker(run_jobs=False).process_batch()
    cancelled, edited = pages
    assert b"being sent right now" in cancelled.content
    assert edited.status_code == 400 and b"being sent right now" in edited.content
    invite.refresh_from_db()
    assert (invite.status, invite.email) == (RS.SENT, "wrong@person.test")
    assert [m.to for m in mail.outbox] == [["Ivy Invitee <wrong@person.test>"]]


def test_every_bad_line_of_a_manual_request_is_named_at_once(acme, admin):
    typed = "Ann Lee <ann@people.test>\nno address here\nBo <bo@>\nCy, cy@people.test"
    response = admin.post(
        reverse("manual-request"), {"people": typed, "recruiter": acme.sam.profile.pk}
    )
    assert response.status_code == 400 and not ReviewRequest.objects.exists()
    errors = response.context["form"].errors["people"]
    assert [e.split(":")[0] for e in errors] == ["Line 2", "Line 3"]
    assert response.context["form"]["people"].value() == typed  # what was typed is kept


def test_manual_request_uses_email_syncs_rules(acme, admin):
    Suppression.add("gone@people.test", "unsubscribed")
    AskedRecipient.claim(acme.pk, "asked@people.test", timezone.now(), timedelta(days=90))
    response = admin.post(
        reverse("manual-request"),
        {
            "people": "Ann Lee <ann@people.test>\ngone@people.test\nasked@people.test, Ask Ed\n"
            "colleague@acme.test\nnoreply@people.test",
            "role": "candidate",
            "recruiter": acme.sam.profile.pk,
        },
    )
    assert response.status_code == 200
    outcomes = {o.email: o.reason for o in response.context["outcomes"]}
    assert outcomes == {
        "ann@people.test": "",
        "gone@people.test": "suppressed",
        "asked@people.test": "recently_asked",
        "colleague@acme.test": "colleague",
        "noreply@people.test": "role_address",
    }
    rr = ReviewRequest.objects.get(email="ann@people.test")
    assert (rr.source, rr.name, rr.recruiter, rr.role) == (
        "manual",
        "Ann Lee",
        acme.sam.profile,
        "candidate",
    )
    assert rr.status == "scheduled" and not rr.emails.exists()  # queued when it falls due
    trigger = Trigger.objects.get(source="manual")
    assert trigger.recipients.count() == 5  # the fairness audit shows all of them
    # Asked once: a second manual request for Ann is skipped (one dedupe across every way).
    again = admin.post(
        reverse("manual-request"), {"people": "ann@people.test", "recruiter": acme.sam.profile.pk}
    )
    assert [o.reason for o in again.context["outcomes"]] == ["recently_asked"]


def test_a_manual_request_for_more_people_than_email_syncs_cap_asks_them_all(acme, admin):
    """Email Sync's recipient cap (10) tells a bulk email from a placement email; a typed list is
    not an email, so only the form's own limit applies, and the other reasons still do."""
    from emailsync.inbound import recipients as rules
    from emailsync.inbound.facts import AgencyFacts
    from emailsync.review_requests.manual import Person, decisions_for

    people = "\n".join(f"Person {i} <p{i}@candidates.test>" for i in range(11))
    response = admin.post(
        reverse("manual-request"),
        {
            "people": people + "\ncolleague@acme.test",
            "role": "candidate",
            "recruiter": acme.sam.profile.pk,
        },
    )
    assert response.status_code == 200
    assert ReviewRequest.objects.filter(agency=acme, source=Source.MANUAL).count() == 11
    reasons = {o.email: o.reason for o in response.context["outcomes"]}
    assert reasons["colleague@acme.test"] == "colleague"
    assert Trigger.objects.get(source="manual").status == "accepted"
    # An email trigger (and a released quarantine) keeps the agency's cap.
    many = [Person(f"q{i}@candidates.test") for i in range(11)]
    decided = decisions_for(AgencyFacts.load(acme.pk), many, "sam@acme.test", timezone.now())
    assert {d.reason for d in decided} == {rules.BULK_SEND}


def test_recruiters_may_only_ask_for_themselves(acme, client):
    client.force_login(acme.sam)
    response = client.post(
        reverse("manual-request"),
        {"people": "ann@people.test", "recruiter": acme.admin.profile.pk},
    )
    assert response.status_code == 400 and not ReviewRequest.objects.exists()
    client.post(
        reverse("manual-request"), {"people": "ann@people.test", "recruiter": acme.sam.profile.pk}
    )
    assert ReviewRequest.objects.get().recruiter == acme.sam.profile


def test_an_admin_can_reply_in_public_from_a_verified_card(acme, admin, make_review, client):
    """The reply page and the public-profile page were reachable only by typing their URLs."""
    from emailsync.profiles.models import ReviewReply

    answered = make_review(email="a@candidate.test", status=Review.Status.VERIFIED)
    ReviewReply.objects.create(review=answered, text="Thank you!", author=acme.admin)
    fresh = make_review(email="b@candidate.test", status=Review.Status.VERIFIED)
    waiting = make_review(email="c@candidate.test")
    for url in (reverse("agency-reviews"), reverse("agency-reviews") + "?col=verified"):
        page = admin.get(url).content.decode()
        assert reverse("profiles-reply", args=[fresh.pk]) in page
        assert reverse("profiles-reply", args=[answered.pk]) in page
        assert "Edit public reply" in page and "Reply publicly" in page
        assert reverse("profiles-reply", args=[waiting.pk]) not in page
        assert reverse("profiles-admin") in page  # the navigation's "Public profile"
    client.force_login(acme.sam)
    page = client.get(reverse("agency-reviews")).content.decode()
    assert "Reply publicly" not in page and reverse("profiles-admin") not in page


def test_a_sent_invite_says_when_it_went_and_when_it_was_opened(acme, admin):
    """The card read "Opened 26 Nov" with the date it was sent, and an unsubscribe did not show."""
    from datetime import datetime

    from django.utils import timezone as tz

    sent = datetime(2026, 11, 20, 10, tzinfo=tz.get_current_timezone())
    opened = scheduled_request(acme, acme.sam.profile, email="o@people.test")
    ReviewRequest.objects.filter(pk=opened.pk).update(
        status=RS.OPENED, sent_at=sent, opened_at=sent + timedelta(days=3)
    )
    left = scheduled_request(acme, acme.sam.profile, email="erin@people.test")
    ReviewRequest.objects.filter(pk=left.pk).update(
        status=RS.OPENED, sent_at=sent, opened_at=sent, status_reason="Unsubscribed"
    )
    page = admin.get(reverse("agency-reviews")).content.decode()
    card = page[page.index(f'data-request="{opened.pk}"') :]
    assert "Sent 20 Nov · opened 23 Nov" in card[: card.index("</article>")]
    card = page[page.index(f'data-request="{left.pk}"') :]
    assert "unsubscribed" in card[: card.index("</article>")]
