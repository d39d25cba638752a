"""Found in a real browser: the Email Sync rules accepted anything as a trusted signing domain
and any hourly limit, and the add-placement and reject forms stacked a "required" message on
top of the real one. Each field now says only what is wrong with it, and the CLI agrees."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from emailsync.placements.models import Placement
from emailsync.review_requests.models import EmailSyncSettings, clean_domain_list
from emailsync.reviews.models import Review
from emailsync.workspace.forms import EmailSyncSettingsForm, PlacementForm, RejectForm

pytestmark = pytest.mark.django_db

RULES = {
    "delay_hours": 2,
    "days": ["0", "2", "4"],
    "business_start": "08:00",
    "business_end": "18:00",
    "reminder_days": 3,
    "dedupe_days": 30,
    "recipient_cap": 5,
    "trusted_signing_domains": "",
    "rate_limit_per_hour": 100,
}

NEW_PLACEMENT = {
    "candidate_name": "Dee Dev",
    "candidate_email": "dee@people.test",
    "client_company": "Client Co",
    "client_contact_name": "Bo Boss",
    "client_contact_email": "",
    "job_title": "Developer",
    "start_date": "2025-01-06",
}

EITHER_EMAIL = "Give the candidate's or the client contact's email."


# --- trusted signing domains ---------------------------------------------------------------


def test_rules_refuse_entries_that_are_not_domains_and_keep_what_was_typed(acme, admin):
    before = EmailSyncSettings.for_agency(acme).trusted_signing_domains
    typed = "<script>alert(1)</script>\nnot a domain\nbullhorn.com"
    response = admin.post(
        reverse("email-sync-settings"), {**RULES, "trusted_signing_domains": typed}
    )
    assert response.status_code == 400
    assert EmailSyncSettings.for_agency(acme).trusted_signing_domains == before
    errors = response.context["form"].errors["trusted_signing_domains"]
    assert len(errors) == 1
    for bad in ("<script>alert(1)</script>", "“not”", "“a”", "“domain”"):
        assert bad in errors[0]
    assert "bullhorn.com" not in errors[0]
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page  # escaped, in the error and the textarea
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nnot a domain\nbullhorn.com</textarea>" in page
    assert 'id="id_trusted_signing_domains_error"' in page  # next to the field
    assert b"Email Sync settings saved." not in response.content


@pytest.mark.parametrize(
    "typed",
    [
        "ats.example\nmailer.example",
        "ats.example, mailer.example",
        "ats.example mailer.example",
        " ATS.Example.,\n\nmailer.example ats.example ",
    ],
)
def test_rules_take_domains_separated_by_newlines_commas_or_spaces(acme, admin, typed):
    response = admin.post(
        reverse("email-sync-settings"), {**RULES, "trusted_signing_domains": typed}
    )
    assert response.status_code == 302
    sync = EmailSyncSettings.for_agency(acme)
    assert sync.trusted_signing_domains == "ats.example\nmailer.example"
    assert sync.signing_domains() == ["ats.example", "mailer.example"]


def test_international_signing_domains_are_stored_like_agency_domains(acme, admin):
    admin.post(
        reverse("email-sync-settings"), {**RULES, "trusted_signing_domains": "Bücher.Example"}
    )
    sync = EmailSyncSettings.for_agency(acme)
    assert sync.signing_domains() == ["xn--bcher-kva.example"]
    acme_domains = acme.domains.model.add(acme, "Bücher.Example").domain
    assert sync.signing_domains() == [acme_domains]


@pytest.mark.parametrize(
    "entry", ["localhost", "a..example", "-bad.example", "mail@ats.example", "x" * 64 + ".example"]
)
def test_the_domain_rule_is_the_agency_domain_rule(entry):
    with pytest.raises(ValidationError) as failure:
        clean_domain_list(f"ok.example {entry}")
    assert entry[:60] in str(failure.value) and "ok.example" not in str(failure.value)


def test_the_model_refuses_a_bad_signing_domain_too(acme):
    sync = EmailSyncSettings.for_agency(acme)
    sync.trusted_signing_domains = "not a domain"
    with pytest.raises(ValidationError) as failure:
        sync.full_clean()
    assert "trusted_signing_domains" in failure.value.message_dict


@pytest.fixture
def weekdays(acme):
    """The `acme` fixture runs any day (business_days ""), which the CLI's full_clean refuses
    whatever is set: give it weekdays so a CLI error is about the value under test."""
    EmailSyncSettings.objects.filter(agency=acme).update(business_days="0,1,2,3,4")
    return acme


def test_operator_cli_refuses_bad_signing_domains(weekdays, acme):
    with pytest.raises(CommandError) as failure:
        call_command(
            "agency",
            "settings",
            acme.slug,
            "--set",
            "trusted_signing_domains=<script>alert(1)</script>,bullhorn.com",
        )
    message = str(failure.value)
    assert message.startswith("trusted_signing_domains:") and "\n" not in message
    assert "<script>alert(1)</script>" in message and "bullhorn.com" not in message
    assert EmailSyncSettings.for_agency(acme).trusted_signing_domains == ""


def test_operator_cli_normalises_good_signing_domains(weekdays, acme, capsys):
    call_command(
        "agency",
        "settings",
        acme.slug,
        "--json",
        "--set",
        "trusted_signing_domains=Mailer.Example. ats.example,ats.example",
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["trusted_signing_domains"] == ["ats.example", "mailer.example"]
    sync = EmailSyncSettings.for_agency(acme)
    assert sync.trusted_signing_domains == "ats.example\nmailer.example"


# --- hourly limit and the number inputs ----------------------------------------------------


def test_hourly_limit_has_a_maximum(acme, admin):
    url = reverse("email-sync-settings")
    response = admin.post(url, {**RULES, "rate_limit_per_hour": 99999999999999})
    assert response.status_code == 400
    [error] = response.context["form"].errors["rate_limit_per_hour"]
    assert "At most 10000 emails an hour" in error
    assert EmailSyncSettings.for_agency(acme).rate_limit_per_hour == 600
    assert admin.post(url, {**RULES, "rate_limit_per_hour": 10_001}).status_code == 400
    assert admin.post(url, {**RULES, "rate_limit_per_hour": 10_000}).status_code == 302
    assert EmailSyncSettings.for_agency(acme).rate_limit_per_hour == 10_000


def test_operator_cli_refuses_an_hourly_limit_over_the_maximum(weekdays, acme):
    with pytest.raises(CommandError) as failure:
        call_command("agency", "settings", acme.slug, "--set", "rate_limit_per_hour=10001")
    assert str(failure.value) == (
        "rate_limit_per_hour: At most 10000 emails an hour: a higher limit is no flood limit."
    )
    assert EmailSyncSettings.for_agency(acme).rate_limit_per_hour == 600
    call_command("agency", "settings", acme.slug, "--set", "rate_limit_per_hour=10000")
    assert EmailSyncSettings.for_agency(acme).rate_limit_per_hour == 10_000


def test_a_benchmarks_higher_limit_set_directly_still_saves(make_agency):
    agency = make_agency(name="Bench Recruitment", domains=["bench.test"])
    EmailSyncSettings.objects.filter(agency=agency).delete()
    sync = EmailSyncSettings.objects.create(agency=agency, enabled=True, rate_limit_per_hour=10**6)
    sync.refresh_from_db()
    assert sync.rate_limit_per_hour == 10**6


def test_number_inputs_offer_what_the_server_accepts(acme, admin):
    form = EmailSyncSettingsForm(instance=EmailSyncSettings.for_agency(acme))
    html = {
        name: str(form[name]) for name in ("delay_hours", "recipient_cap", "rate_limit_per_hour")
    }
    assert 'min="0"' in html["delay_hours"] and 'max="72"' in html["delay_hours"]
    assert 'min="1"' in html["recipient_cap"] and 'max="100"' in html["recipient_cap"]
    assert 'min="1"' in html["rate_limit_per_hour"]
    assert 'max="10000"' in html["rate_limit_per_hour"]
    page = admin.get(reverse("email-sync")).content.decode()
    assert 'name="rate_limit_per_hour" value="600" min="1" max="10000"' in page
    # The browser's bounds are the server's: one past either end is refused.
    url = reverse("email-sync-settings")
    for name, low, high in (
        ("delay_hours", 0, 72),
        ("recipient_cap", 1, 100),
        ("rate_limit_per_hour", 1, 10_000),
    ):
        assert admin.post(url, {**RULES, name: low - 1}).status_code == 400, name
        assert admin.post(url, {**RULES, name: high + 1}).status_code == 400, name
        assert admin.post(url, {**RULES, name: high}).status_code == 302, name


def test_an_out_of_range_number_gets_the_same_message_on_either_side_of_zero(acme):
    # The column allows 0 and up, the rule 1 and up: -3 and 0 are wrong for the same reason.
    for value in (-3, 0):
        form = EmailSyncSettingsForm(
            {**RULES, "recipient_cap": value}, instance=EmailSyncSettings.for_agency(acme)
        )
        assert form.errors["recipient_cap"] == [
            "Ensure this value is greater than or equal to 1."
        ], value


# --- one accurate message, not a contradicting "required" too ------------------------------


def test_add_placement_with_an_invalid_email_gets_only_that_error(acme, admin, make_review):
    review = make_review()
    url = reverse("review-verify-new", args=[review.pk])
    response = admin.post(url, {**NEW_PLACEMENT, "candidate_email": "not-an-email"})
    assert response.status_code == 400 and not Placement.objects.exists()
    errors = response.context["placement_form"].errors
    assert errors["candidate_email"] == ["Enter a valid email address."]
    assert EITHER_EMAIL not in response.content.decode()


def test_add_placement_needs_an_email_only_when_both_are_empty(acme):
    empty = PlacementForm({**NEW_PLACEMENT, "candidate_email": ""}, agency=acme)
    assert empty.errors["candidate_email"] == [EITHER_EMAIL]
    other_bad = PlacementForm(
        {**NEW_PLACEMENT, "candidate_email": "", "client_contact_email": "nope"}, agency=acme
    )
    assert other_bad.errors == {"client_contact_email": ["Enter a valid email address."]}
    too_long = PlacementForm(
        {**NEW_PLACEMENT, "candidate_email": "a" * 310 + "@people.test"}, agency=acme
    )
    assert EITHER_EMAIL not in too_long.errors["candidate_email"]
    assert (
        "Keep the email address to 320 characters or fewer." in too_long.errors["candidate_email"]
    )
    assert PlacementForm(NEW_PLACEMENT, agency=acme).is_valid()


def test_reject_with_a_long_note_gets_only_the_length_error(acme, admin, make_review):
    review = make_review()
    response = admin.post(
        reverse("review-reject", args=[review.pk]), {"reason": "other", "note": "x" * 300}
    )
    assert response.status_code == 400
    assert response.context["reject_form"].errors["note"] == [
        "Keep the note to 250 characters or fewer."
    ]
    assert "Say why in a few words." not in response.content.decode()
    assert Review.objects.get(pk=review.pk).status == "missing_verification"


def test_reject_for_other_still_needs_a_note(acme):
    for note in ("", "   "):
        form = RejectForm({"reason": "other", "note": note})
        assert form.errors == {"note": ["Say why in a few words."]}
    assert RejectForm({"reason": "other", "note": "Not ours."}).is_valid()


# --- what a person, and a screen reader, is told after a bad save -----------------------------


def test_a_bad_save_names_each_error_at_the_top_and_links_it_to_its_field(acme, admin):
    import re

    response = admin.post(
        reverse("email-sync-settings"), {**RULES, "dedupe_days": "", "recipient_cap": 0}
    )
    html = response.content.decode()
    # A summary the page's script focuses, each entry a link to its field.
    summary = html.split("data-error-summary", 1)[1].split("</div>", 1)[0]
    assert 'href="#id_dedupe_days"' in summary and 'href="#id_recipient_cap"' in summary
    # Every id a field's aria-describedby names is on the page (Django names them `_error`).
    described = re.findall(r'aria-describedby="([^"]+)"', html)
    for ids in described:
        for one in ids.split():
            assert f'id="{one}"' in html, one
    assert any("id_dedupe_days_error" in ids for ids in described)


def test_the_rules_address_left_in_the_bar_opens_the_page(admin):
    """After a bad save the address bar shows the form's POST address; opening it again must not
    be a bare 405."""
    response = admin.get(reverse("email-sync-settings"))
    assert response.status_code == 200 and b"Business days" in response.content


def test_business_days_say_what_no_day_ticked_means(admin):
    page = admin.get(reverse("email-sync")).content.decode()
    assert "With no day ticked, they go out at any hour of any day." in page
