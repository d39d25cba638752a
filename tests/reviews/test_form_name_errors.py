"""The reviewer's name: one message when it is too long, "enter your name" only when empty."""

import pytest
from django.urls import reverse

from emailsync.reviews.forms import ReviewForm
from emailsync.reviews.models import Review

pytestmark = pytest.mark.django_db

TOO_LONG = "Keep your name to 120 characters or fewer (you have 200)."
MISSING = "Enter your name, or choose to be shown as anonymous."


@pytest.mark.parametrize("choice", ["full", "initial", "anonymous"])
def test_a_too_long_name_gets_one_message_in_our_words(answers, choice):
    form = ReviewForm(answers(reviewer_name="A" * 200, display_name_choice=choice))
    assert not form.is_valid()
    assert form.errors["reviewer_name"] == [TOO_LONG]
    assert "Ensure this value" not in str(form.errors)


def test_an_empty_name_still_asks_for_a_name(answers):
    form = ReviewForm(answers(reviewer_name="   ", display_name_choice="full"))
    assert not form.is_valid()
    assert form.errors["reviewer_name"] == [MISSING]


def test_a_name_of_exactly_120_characters_is_fine(answers):
    form = ReviewForm(answers(reviewer_name="A" * 120, display_name_choice="full"))
    assert form.is_valid(), form.errors


def test_the_page_shows_the_one_message_beside_the_field_and_in_the_summary(
    client, sent_request, answers
):
    rr = sent_request()
    response = client.post(
        reverse("review-form", args=[rr.token]),
        answers(reviewer_name="A" * 200, display_name_choice="full"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert Review.objects.count() == 0
    assert html.count(TOO_LONG) == 2  # the error summary and beside the field
    assert MISSING not in html
    assert "Ensure this value has at most" not in html
