"""Every table column is named to a screen reader, and the full-page verify view has its
heading (axe-core: empty-table-header, page-has-heading-one)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["team", "placements"])
def test_no_table_column_is_unnamed(acme, admin, name):
    from datetime import date

    from emailsync.placements.models import Placement

    Placement.objects.create(agency=acme, candidate_name="Cara C", start_date=date.today())
    page = admin.get(reverse(name)).content.decode()
    assert "<th>" in page and "<th></th>" not in page
    assert '<th><span class="visually-hidden">' in page  # the actions column, named


def test_the_verify_page_has_a_heading(admin, make_review):
    review = make_review()
    page = admin.get(reverse("review-verify", args=[review.pk])).content.decode()
    assert '<h1 class="visually-hidden">Review verification</h1>' in page
