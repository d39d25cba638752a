"""Email Sync page wording: the sender check says a thing once, the grace period counts days."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emailsync.inbound.models import InboundAddress, Trigger

pytestmark = pytest.mark.django_db


def grace_notice(html: str) -> str:
    match = re.search(r'<p class="small notice" data-testid="old-address">(.*?)</p>', html, re.S)
    assert match, "no grace-period notice on the page"
    return " ".join(match.group(1).split())


def setup_test_result(acme, admin, **trigger) -> str:
    """The setup-test panel once a test email with these verdict fields has arrived."""
    admin.post(reverse("setup-test-start"), HTTP_HX_REQUEST="true")
    Trigger.objects.create(
        agency=acme,
        sender=acme.admin.email,
        status=Trigger.Status.ACCEPTED,
        is_setup_test=True,
        **trigger,
    )
    return admin.get(reverse("setup-test-status"), HTTP_HX_REQUEST="true").content.decode()


def test_trusted_from_domain_verdict_is_said_once(acme, admin):
    html = setup_test_result(
        acme,
        admin,
        message_id_hash="t-trusted",
        subject="Trust test",
        auth_method="trusted_from_domain",
        auth_detail="accepted on the From domain alone (agency setting)",
    )
    assert "Trust test" in html
    assert html.lower().count("accepted on the from domain alone") == 1
    assert "(agency setting)" not in html


def test_technical_detail_still_shown_for_dkim(acme, admin):
    html = setup_test_result(
        acme,
        admin,
        message_id_hash="t-dkim",
        subject="DKIM test",
        auth_method="dkim_aligned",
        auth_detail="dkim=pass d=acme.test s=sel1",
    )
    assert "Signed with DKIM by your own domain" in html
    assert "dkim=pass d=acme.test s=sel1" in html


def test_straight_after_rotating_fourteen_days_are_left(acme, admin):
    InboundAddress.current_for(acme)
    admin.post(reverse("email-sync-rotate"))
    notice = grace_notice(admin.get(reverse("email-sync")).content.decode())
    assert "(14 days left)" in notice
    assert "week" not in notice


@pytest.mark.parametrize(
    "left, expected",
    [
        (timedelta(days=13, hours=1), "(14 days left)"),
        (timedelta(days=7), "(7 days left)"),
        (timedelta(days=1, minutes=5), "(2 days left)"),
        (timedelta(days=1, seconds=30), "(2 days left)"),
    ],
)
def test_days_left_are_whole_days_rounded_up(acme, admin, left, expected):
    now = timezone.now()
    InboundAddress.objects.create(
        agency=acme, token="oldtoken00000001", retired_at=now, accept_until=now + left
    )
    notice = grace_notice(admin.get(reverse("email-sync")).content.decode())
    assert expected in notice


def test_on_the_last_day_hours_are_shown(acme, admin):
    now = timezone.now()
    InboundAddress.objects.create(
        agency=acme,
        token="oldtoken00000002",
        retired_at=now,
        accept_until=now + timedelta(hours=5, minutes=30),
    )
    notice = grace_notice(admin.get(reverse("email-sync")).content.decode())
    assert re.search(r"\(5 hours, (29|30) minutes left\)", notice), notice
    assert "day" not in notice
