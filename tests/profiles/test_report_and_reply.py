"""Reporting a review (visitors), hiding it (operators), replying to it (agency admins)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from emailsync.agencies.models import AuditEntry, User
from emailsync.profiles.models import AgencyRating, Moderation, ReviewReply, ReviewReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(acme, make_review):
    return make_review(acme, acme.sam, text="A perfectly ordinary review that someone dislikes.")


def report_url(review):
    return reverse("profiles-report", args=[review.agency.slug, review.pk])


def test_a_visitor_reports_a_review(client, review):
    form = client.get(report_url(review))
    assert form.status_code == 200 and "no-store" in form["Cache-Control"]
    assert "noindex" in form["X-Robots-Tag"]
    response = client.post(
        report_url(review), {"reason": "fake", "detail": "Never worked there.", "website": ""}
    )
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    report = ReviewReport.objects.get()
    assert (report.review, report.reason, report.status) == (review, "fake", "open")
    assert report.client_hash and "127.0.0.1" not in report.client_hash


def test_reporting_needs_a_reason_and_keeps_what_was_typed(client, review):
    response = client.post(report_url(review), {"detail": "Kept text", "website": ""})
    assert response.status_code == 400 and "Kept text" in response.content.decode()
    assert "Choose what is wrong with this review." in response.content.decode()
    assert not ReviewReport.objects.exists()


def test_report_form_needs_csrf(review):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(report_url(review), {"reason": "fake", "website": ""})
    assert response.status_code == 403 and not ReviewReport.objects.exists()


def test_honeypot_reports_are_thanked_and_dropped(client, review):
    response = client.post(report_url(review), {"reason": "fake", "website": "http://spam"})
    assert response.status_code == 200 and not ReviewReport.objects.exists()


def test_reports_are_rate_limited_per_client_address(client, review, settings):
    settings.EMAILSYNC_REPORTS_PER_IP = 2
    for _ in range(2):
        assert client.post(report_url(review), {"reason": "other"}).status_code == 200
    limited = client.post(report_url(review), {"reason": "other"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert ReviewReport.objects.count() == 2
    other = client.post(report_url(review), {"reason": "other"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("ops@emailsync.test", "x" * 12, full_name="Ops")


def test_operator_hides_reported_reviews_with_a_reason(client, review, operator, acme):
    ReviewReport.objects.create(review=review, reason="offensive")
    client.force_login(operator)
    changelist = reverse("admin:profiles_reviewreport_changelist")
    queue = client.get(changelist + "?status__exact=open")
    assert "A perfectly ordinary review" in queue.content.decode()
    selected = [str(r.pk) for r in ReviewReport.objects.all()]
    ask = client.post(changelist, {"action": "hide_reviews", ACTION_CHECKBOX_NAME: selected})
    assert ask.status_code == 200 and "reason" in ask.content.decode()
    done = client.post(
        changelist,
        {
            "action": "hide_reviews",
            ACTION_CHECKBOX_NAME: selected,
            "apply": "1",
            "reason": "Personal abuse of a named person",
        },
    )
    assert done.status_code == 302
    moderation = Moderation.objects.get(review=review)
    assert moderation.hidden_reason == "Personal abuse of a named person"
    assert moderation.hidden_by == operator
    assert ReviewReport.objects.get().status == "hidden"
    assert AgencyRating.objects.get(agency=acme).count == 0
    assert AuditEntry.objects.filter(agency=acme, action="review.hidden").exists()
    # The agency's admins see it and why.
    admin = Client()
    admin.force_login(acme.admins().get())
    page = admin.get(reverse("profiles-admin")).content.decode()
    assert "Personal abuse of a named person" in page
    # Showing it again puts it back.
    client.post(
        reverse("admin:profiles_moderation_changelist"),
        {"action": "show_again", ACTION_CHECKBOX_NAME: [str(moderation.pk)]},
    )
    assert not Moderation.objects.exists()
    assert AgencyRating.objects.get(agency=acme).count == 1
    assert AuditEntry.objects.filter(agency=acme, action="review.unhidden").exists()


@pytest.fixture
def admin_client(acme):
    client = Client()
    client.force_login(acme.admins().get())
    return client


def test_admin_publishes_edits_and_removes_one_public_reply(admin_client, acme, review):
    url = reverse("profiles-reply", args=[review.pk])
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"text": "Thank you for the kind words.", "action": "save"})
    admin_client.post(url, {"text": "Thank you — edited.", "action": "save"})
    assert ReviewReply.objects.get(review=review).text == "Thank you — edited."
    assert ReviewReply.objects.count() == 1
    public = Client().get(reverse("profiles-agency", args=[acme.slug])).content.decode()
    assert "Thank you — edited." in public
    admin_client.post(url, {"action": "remove"})
    assert not ReviewReply.objects.exists()
    actions = list(
        AuditEntry.objects.filter(agency=acme, action__startswith="review.reply")
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["review.reply_published", "review.reply_edited", "review.reply_removed"]
    edited = AuditEntry.objects.get(action="review.reply_edited")
    assert edited.detail["previous"] == "Thank you for the kind words."


def test_two_first_replies_at_once_keep_one_reply_without_an_error(
    admin_client, acme, review, monkeypatch
):
    """Both admins opened the page before either replied: the second save edits the first
    reply instead of failing on the one-reply-per-review key."""
    from emailsync.profiles import agency_views

    real = agency_views.ReplyForm.is_valid

    def is_valid(form):  # the other admin's reply is saved between our read and our write
        if not ReviewReply.objects.filter(review=review).exists():
            ReviewReply.objects.create(review=review, text="First!", author=acme.admins().get())
        return real(form)

    monkeypatch.setattr(agency_views.ReplyForm, "is_valid", is_valid)
    url = reverse("profiles-reply", args=[review.pk])
    response = admin_client.post(url, {"text": "Thank you, Cara.", "action": "save"})
    assert response.status_code == 302
    assert ReviewReply.objects.get(review=review).text == "Thank you, Cara."


def test_an_empty_or_overlong_reply_is_refused(admin_client, review):
    url = reverse("profiles-reply", args=[review.pk])
    assert admin_client.post(url, {"text": "", "action": "save"}).status_code == 400
    assert admin_client.post(url, {"text": "x" * 2001, "action": "save"}).status_code == 400
    assert not ReviewReply.objects.exists()


def test_a_rejected_review_cannot_be_replied_to(admin_client, review):
    """It will never be public, and the page said the reply would appear "once it is"."""
    from emailsync.reviews.models import Review

    Review.objects.filter(pk=review.pk).update(status=Review.Status.REJECTED)
    url = reverse("profiles-reply", args=[review.pk])
    page = admin_client.get(url).content.decode()
    assert "You rejected this review" in page and "Publish reply" not in page
    assert reverse("agency-reviews") in page  # and the way back
    refused = admin_client.post(url, {"text": "Thanks anyway.", "action": "save"})
    assert refused.status_code == 400 and not ReviewReply.objects.exists()


def test_reply_page_is_for_the_agencys_admins_only(client, acme, review, add_member, make_agency):
    url = reverse("profiles-reply", args=[review.pk])
    client.force_login(add_member(acme))
    assert client.post(url, {"text": "Not allowed", "action": "save"}).status_code == 403
    rival = make_agency(name="Rival")
    client.force_login(rival.admins().get())
    assert client.post(url, {"text": "Not allowed", "action": "save"}).status_code == 404
    assert not ReviewReply.objects.exists()
