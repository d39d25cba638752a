"""Error pages: a recruiter on an admin-only page, a missing page and a server error get a short,
human page in the site's layout (with DEBUG off, as in production), not Django's bare text."""

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import reverse
from django.views import defaults

from emailsync.agencies.models import User

pytestmark = pytest.mark.django_db


def test_tests_run_with_debug_off():
    assert settings.DEBUG is False  # error templates are only used with DEBUG off


def test_a_recruiter_on_an_admin_page_is_told_it_is_for_admins(client, make_agency, add_member):
    agency = make_agency(name="Acme Recruitment")
    client.force_login(add_member(agency, role=User.Role.RECRUITER))
    response = client.get(reverse("email-sync"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "403 Forbidden" not in html
    assert "This page is for your agency's admins" in html
    assert "Only the admins of Acme Recruitment can open it." in html
    assert f'href="{reverse("agency-home")}"' in html
    assert 'class="topbar"' in html  # the site's layout, with the member's navigation


def test_a_refused_page_is_logged_once_in_one_line(client, make_agency, add_member, caplog):
    """An expected 403 is one warning line: no traceback, and no second copy from Django's own
    console handler beside the root's."""
    import logging

    agency = make_agency(name="Acme Recruitment")
    client.force_login(add_member(agency, role=User.Role.RECRUITER))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(reverse("email-sync")).status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert "Forbidden" in record.getMessage() and record.exc_info is None
    assert logging.getLogger("django").handlers == []


def test_an_admin_still_opens_the_admin_page(client, make_agency):
    agency = make_agency()
    client.force_login(agency.admins().get())
    assert client.get(reverse("email-sync")).status_code == 200


def test_an_unknown_url_is_a_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We can't find that page" in html
    assert f'href="{reverse("login")}"' in html
    assert 'class="topbar"' in html


def test_a_signed_in_member_gets_a_link_back_to_their_agency(client, make_agency, add_member):
    agency = make_agency(name="Acme Recruitment")
    client.force_login(add_member(agency))
    response = client.get("/app/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We can't find that page" in html
    assert "Back to Acme Recruitment" in html


def test_the_500_page_needs_no_request_context_and_no_database(django_assert_num_queries):
    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = defaults.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert 'href="/"' in html
    # The site CSP (style-src 'self') would block inline styles.
    assert "<style" not in html and "style=" not in html


def test_the_400_page_renders_without_the_request():
    response = defaults.bad_request(RequestFactory().get("/"), Exception("bad"))
    assert response.status_code == 400
    assert "We couldn't read that request" in response.content.decode()


def test_a_form_sent_without_its_csrf_token_gets_a_page_that_says_what_to_do():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "a@b.test", "password": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "CSRF verification failed" not in html
    assert "Please send that again" in html
    assert 'href="/accounts/login/"' in html
