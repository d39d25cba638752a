"""A password, role or membership change ends every other session of that person at its next
request; the person who changed their own password (or role) stays signed in where they did it.

Each test signs the same person in twice (two browsers) through the real sign-in form, so the
sessions carry the hash Django computes at sign-in."""

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from emailsync.agencies.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase 42"


def signed_in(user, password=PASSWORD) -> Client:
    browser = Client()
    response = browser.post(reverse("login"), {"username": user.email, "password": password})
    assert response.status_code == 302, response.content
    assert_signed_in(browser)
    return browser


def assert_signed_in(browser):
    response = browser.get(reverse("agency-home"))
    assert response.status_code == 200, response.status_code


def assert_signed_out(browser, flushed=True):
    response = browser.get(reverse("agency-home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    if flushed:  # …for good: the session was emptied, not just refused once.
        assert "_auth_user_id" not in browser.session


@pytest.fixture
def pair(agency, add_member):
    admin = agency.admins().get()
    recruiter = add_member(agency)
    return admin, recruiter


def test_changing_my_password_keeps_this_session_and_ends_the_others(pair):
    _, recruiter = pair
    here, elsewhere = signed_in(recruiter), signed_in(recruiter)
    response = here.post(
        reverse("password-change"),
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content
    assert_signed_in(here)
    assert_signed_out(elsewhere)
    signed_in(recruiter, NEW_PASSWORD)


def test_a_wrong_old_password_changes_nothing(pair):
    _, recruiter = pair
    here, elsewhere = signed_in(recruiter), signed_in(recruiter)
    response = here.post(
        reverse("password-change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert_signed_in(here)
    assert_signed_in(elsewhere)


def test_the_password_page_needs_a_sign_in(client):
    response = client.get(reverse("password-change"))
    assert response.status_code == 302 and reverse("login") in response.url


def test_a_password_reset_ends_every_session(pair):
    _, recruiter = pair
    one, two = signed_in(recruiter), signed_in(recruiter)
    recruiter.refresh_from_db()  # the token covers last_login, which signing in changed
    uid = urlsafe_base64_encode(force_bytes(recruiter.pk))
    token = default_token_generator.make_token(recruiter)
    anonymous = Client()
    response = anonymous.get(reverse("password_reset_confirm", args=[uid, token]))
    assert response.status_code == 302  # Django swaps the token for a session marker
    response = anonymous.post(
        response.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302, response.content
    assert_signed_out(one)
    assert_signed_out(two)


def test_an_operator_setting_the_password_in_the_django_admin_ends_every_session(pair):
    _, recruiter = pair
    one, two = signed_in(recruiter), signed_in(recruiter)
    operator = User.objects.create_superuser("ops@example.test", "operator pass 123", full_name="O")
    staff = Client()
    staff.force_login(operator)
    url = reverse("admin:auth_user_password_change", args=[recruiter.pk])
    response = staff.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302, response.content
    assert_signed_out(one)
    assert_signed_out(two)
    assert staff.get(reverse("admin:index")).status_code == 200  # the operator stays in


def test_demoting_an_admin_ends_their_sessions_not_the_actors(agency, add_member):
    boss = agency.admins().get()
    deputy = add_member(agency, role=User.Role.ADMIN)
    actor, deputy_browser = signed_in(boss), signed_in(deputy)
    response = actor.post(reverse("change-role", args=[deputy.pk]), {"role": "recruiter"})
    assert response.status_code == 302
    assert_signed_out(deputy_browser)
    assert_signed_in(actor)
    # Signing in again gives the new role: the admin pages are closed to them now.
    again = signed_in(deputy)
    assert again.get(reverse("email-sync")).status_code == 403


def test_promoting_a_recruiter_ends_their_sessions(pair):
    admin, recruiter = pair
    actor, theirs = signed_in(admin), signed_in(recruiter)
    actor.post(reverse("change-role", args=[recruiter.pk]), {"role": "admin"})
    assert_signed_out(theirs)
    assert_signed_in(actor)


def test_a_role_changed_and_changed_back_still_ends_the_sessions(pair):
    admin, recruiter = pair
    theirs = signed_in(recruiter)
    recruiter.change_role(User.Role.ADMIN, by=admin)
    recruiter.change_role(User.Role.RECRUITER, by=admin)
    assert_signed_out(theirs)


def test_an_admin_stepping_down_keeps_the_session_they_did_it_in(agency, add_member):
    boss = agency.admins().get()
    add_member(agency, role=User.Role.ADMIN)  # so boss is not the last admin
    here, elsewhere = signed_in(boss), signed_in(boss)
    response = here.post(reverse("change-role", args=[boss.pk]), {"role": "recruiter"})
    assert response.status_code == 302
    assert_signed_in(here)
    assert here.get(reverse("email-sync")).status_code == 403  # with the new role
    assert_signed_out(elsewhere)


def test_removing_a_member_ends_their_sessions(pair):
    admin, recruiter = pair
    actor, theirs = signed_in(admin), signed_in(recruiter)
    response = actor.post(reverse("remove-member", args=[recruiter.pk]))
    assert response.status_code == 302
    # Django refuses an inactive user's session without emptying it…
    assert_signed_out(theirs, flushed=False)
    assert_signed_in(actor)
    refused = Client().post(reverse("login"), {"username": recruiter.email, "password": PASSWORD})
    assert refused.status_code == 200  # the sign-in form again, with an error
    # …and taking them back does not revive it: the session version moved on.
    User.objects.filter(pk=recruiter.pk).update(is_active=True)
    assert_signed_out(theirs)


def test_a_role_change_outside_the_app_also_ends_the_sessions(pair):
    """The Django admin or a bulk update does not call change_role: the role is in the hash."""
    _, recruiter = pair
    theirs = signed_in(recruiter)
    User.objects.filter(pk=recruiter.pk).update(role=User.Role.ADMIN)
    assert_signed_out(theirs)


def admin_change(staff, user, **changes):
    """Submit the Django admin's change form for `user` with `changes`."""
    url = reverse("admin:agencies_user_change", args=[user.pk])
    form = staff.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if name in ("groups", "user_permissions"):
            data[name] = list(value or [])
        elif isinstance(value, list | tuple):  # split date and time widgets
            for i, part in enumerate(value):
                data[f"{name}_{i}"] = "" if part is None else part
        elif value is None or value is False:
            continue
        elif hasattr(field.widget, "widgets"):
            parts = field.widget.decompress(value)
            for i, part in enumerate(parts):
                data[f"{name}_{i}"] = "" if part is None else part
        else:
            data[name] = "on" if value is True else value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_deactivating_in_the_django_admin_ends_the_sessions(pair):
    _, recruiter = pair
    theirs = signed_in(recruiter)
    operator = User.objects.create_superuser("ops@example.test", "operator pass 123", full_name="O")
    staff = Client()
    staff.force_login(operator)
    admin_change(staff, recruiter, is_active=False)
    assert_signed_out(theirs, flushed=False)
    admin_change(staff, recruiter, is_active=True)
    assert_signed_out(theirs)  # reactivating does not bring the old session back


def test_a_role_changed_in_the_django_admin_ends_the_sessions(pair):
    _, recruiter = pair
    theirs = signed_in(recruiter)
    operator = User.objects.create_superuser("ops@example.test", "operator pass 123", full_name="O")
    staff = Client()
    staff.force_login(operator)
    admin_change(staff, recruiter, role="admin")
    assert_signed_out(theirs)
    assert User.objects.get(pk=recruiter.pk).role == "admin"


def test_other_members_sessions_are_untouched(agency, add_member):
    admin = agency.admins().get()
    one, two = add_member(agency), add_member(agency)
    bystander = signed_in(two)
    one.change_role(User.Role.ADMIN, by=admin)
    one.remove_from_agency(by=admin)
    assert_signed_in(bystander)


def test_the_api_takes_no_session(pair, settings):
    """/api/v1/ authenticates API keys only: a signed-in browser's cookie is not a credential,
    so there is no API session for a role or password change to end."""
    admin, _ = pair
    browser = signed_in(admin)
    response = browser.get("/api/v1/agency")
    assert response.status_code == 401
    assert re.search(rb'"code":\s*"', response.content)
