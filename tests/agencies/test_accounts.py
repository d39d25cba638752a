import re

import pytest
from django.conf import settings
from django.urls import reverse

from emailsync.agencies.models import Agency, User

PASSWORD = "correct horse battery"


def test_argon2_is_the_production_hasher():
    # The test suite swaps in MD5 for speed, so read the module, not the overridden settings.
    from emailsync import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.django_db
def test_signup_creates_agency_and_first_admin_and_signs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "agency_name": "Northwind Talent",
            "full_name": "Nora North",
            "email": "Nora@Northwind.test",
            "time_zone": "Europe/London",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert response.status_code == 302 and response.url == reverse("agency-home")
    agency = Agency.objects.get(name="Northwind Talent")
    admin = User.objects.get(email="nora@northwind.test")
    assert admin.agency == agency and admin.role == User.Role.ADMIN
    assert agency.slug == "northwind-talent" and agency.time_zone == "Europe/London"
    assert admin.profile.display_name == "Nora North"
    home = client.get(reverse("agency-home"))
    assert home.status_code == 200 and b"Northwind Talent" in home.content


@pytest.mark.django_db
def test_signup_errors_keep_what_was_typed(client, agency, admin_user):
    response = client.post(
        reverse("signup"),
        {
            "agency_name": "Typed Agency Name",
            "full_name": "Tess Typed",
            "email": admin_user.email,
            "time_zone": "Europe/London",
            "password1": "short",
            "password2": "different",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="Typed Agency Name"' in body and 'value="Tess Typed"' in body
    assert "already exists" in body and "passwords differ" in body
    assert not Agency.objects.filter(name="Typed Agency Name").exists()


@pytest.mark.django_db
def test_login_and_logout(client, admin_user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    response = client.post(
        reverse("login"), {"username": admin_user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("agency-home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("agency-home")).status_code == 302


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_clear_message(client, admin_user):
    response = client.post(reverse("login"), {"username": admin_user.email, "password": "nope"})
    assert response.status_code == 200
    assert b"do not match an account" in response.content


@pytest.mark.django_db
def test_repeated_failed_logins_are_throttled_even_with_the_right_password(client, admin_user):
    for _ in range(settings.EMAILSYNC_LOGIN_FAILURES_ALLOWED):
        client.post(reverse("login"), {"username": admin_user.email, "password": "wrong"})
    response = client.post(reverse("login"), {"username": admin_user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_throttle_is_per_client_address_too(client, make_agency):
    victims = [make_agency().admins().get() for _ in range(3)]
    for person in victims:  # spraying many accounts from one address trips the address limit
        for _ in range(2):
            client.post(reverse("login"), {"username": person.email, "password": "wrong"})
    fresh = make_agency().admins().get()
    response = client.post(reverse("login"), {"username": fresh.email, "password": PASSWORD})
    assert b"Too many failed sign-ins" in response.content


@pytest.mark.django_db
def test_removed_member_cannot_sign_in(client, agency, add_member):
    member = add_member(agency)
    member.remove_from_agency(by=agency.admins().get())
    response = client.post(reverse("login"), {"username": member.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200


@pytest.mark.django_db
def test_password_reset_by_email(client, admin_user, mailoutbox):
    client.post(reverse("password_reset"), {"email": admin_user.email})
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [admin_user.email]
    link = re.search(r"https?://\S+/accounts/reset/\S+/", message.body).group(0)
    assert link.startswith(settings.EMAILSYNC_PUBLIC_URL)
    path = link.removeprefix(settings.EMAILSYNC_PUBLIC_URL)
    form_page = client.get(path, follow=True)
    assert b"Set a password" in form_page.content
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url,
        {"new_password1": "brand-new-passphrase-1", "new_password2": "brand-new-passphrase-1"},
    )
    assert done.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.check_password("brand-new-passphrase-1")
    # The link is single-use: the token no longer matches once the password changed.
    again = client.get(path, follow=True)
    assert b"expired or was already used" in again.content


@pytest.mark.django_db
def test_password_reset_for_unknown_address_reveals_nothing(client, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "nobody@nowhere.test"})
    assert response.status_code == 302 and mailoutbox == []


@pytest.mark.django_db
def test_the_home_page_offers_a_recruiter_the_team_to_see_not_to_manage(client, agency, add_member):
    """Only admins manage the team: a recruiter's home page said "Manage the team" and led to
    a page they can only read."""
    recruiter = add_member(agency)
    client.force_login(recruiter)
    home = client.get(reverse("agency-home")).content.decode()
    assert "See the team" in home and "Manage the team" not in home
    client.force_login(agency.admins().get())
    assert "Manage the team" in client.get(reverse("agency-home")).content.decode()


@pytest.mark.django_db
def test_password_reset_emails_to_one_address_are_limited(client, admin_user, mailoutbox, settings):
    """Anyone may ask for a reset link for anyone: without a limit a stranger could fill a
    member's inbox with our emails (the privacy form and recruiter links limit theirs). Over the
    limit the page answers exactly as before, so it tells nothing about the address."""
    settings.EMAILSYNC_PASSWORD_RESETS_PER_ADDRESS = 3
    answers = [
        client.post(reverse("password_reset"), {"email": admin_user.email.upper()})
        for _ in range(5)
    ]
    assert {(a.status_code, a["Location"]) for a in answers} == {
        (302, reverse("password_reset_done"))
    }
    assert len(mailoutbox) == 3
    # Another address has its own allowance.
    other = User.objects.create_user(
        email="other@acme.test", password=PASSWORD, full_name="Other", agency=admin_user.agency
    )
    client.post(reverse("password_reset"), {"email": other.email})
    assert len(mailoutbox) == 4
    # The stranger's asks did not use up the member's own: from their network, a link comes.
    client.post(reverse("password_reset"), {"email": admin_user.email}, REMOTE_ADDR="198.51.100.7")
    assert len(mailoutbox) == 5
    # Asked from everywhere together, no more than ten an hour reach one address.
    for n in range(20):
        client.post(
            reverse("password_reset"), {"email": admin_user.email}, REMOTE_ADDR=f"10.0.0.{n}"
        )
    to_admin = [m for m in mailoutbox if m.to == [admin_user.email]]
    assert len(to_admin) == 10


@pytest.mark.django_db
def test_sign_up_attempts_per_client_address_are_limited(client, admin_user, settings):
    """The sign-up form says when an address already has an account (that helps the person
    signing up); without a limit a script could test any list of addresses for members."""
    settings.EMAILSYNC_SIGNUPS_PER_ADDRESS = 3
    data = {
        "agency_name": "Probe Ltd",
        "full_name": "Pro Be",
        "time_zone": "Europe/London",
        "password1": "a-long-passphrase-9",
        "password2": "a-long-passphrase-9",
    }
    for _ in range(3):
        page = client.post(reverse("signup"), {**data, "email": admin_user.email}).content
        assert b"already exists" in page
    page = client.post(reverse("signup"), {**data, "email": admin_user.email}).content.decode()
    assert "Too many sign-ups from your network" in page and "already exists" not in page
    assert 'value="Probe Ltd"' in page  # what was typed is kept
    elsewhere = client.post(
        reverse("signup"), {**data, "email": "new@probe.test"}, REMOTE_ADDR="203.0.113.9"
    )
    assert elsewhere.status_code == 302 and User.objects.filter(email="new@probe.test").exists()


@pytest.mark.django_db
def test_account_emails_are_dressed_as_our_others(
    admin_client, admin_user, client, mailoutbox, settings, tmp_path
):
    """Invitations and password resets leave at once, not through the outbox, and went out
    unsigned, with no Auto-Submitted (an out-of-office answered them) and a Message-ID on the
    server's host name."""
    from tests.inbound.mail import FakeDns, SigningKey

    key = SigningKey("send.example.com", selector="es1")
    (tmp_path / "dkim.pem").write_bytes(key.private_pem)
    settings.EMAILSYNC_DKIM_DOMAIN = "send.example.com"
    settings.EMAILSYNC_DKIM_SELECTOR = "es1"
    settings.EMAILSYNC_DKIM_KEY_FILE = str(tmp_path / "dkim.pem")
    settings.EMAILSYNC_FROM_EMAIL = "reviews@send.example.com"
    settings.DEFAULT_FROM_EMAIL = "webmaster@host.internal"  # set apart by an operator
    admin_client.post(reverse("invite"), {"email": "new@acme.test", "role": "recruiter"})
    client.post(reverse("password_reset"), {"email": admin_user.email})
    assert len(mailoutbox) == 2
    import dkim

    for sent in mailoutbox:
        raw = sent.message().as_bytes(linesep="\r\n")
        assert sent.extra_headers["Auto-Submitted"] == "auto-generated"
        assert sent.extra_headers["Message-ID"].endswith("@send.example.com>")
        assert sent.from_email == "Email Sync <reviews@send.example.com>"
        assert raw.startswith(b"DKIM-Signature:") and dkim.verify(raw, dnsfunc=FakeDns(key))


@pytest.mark.django_db
def test_an_ipv6_client_is_counted_by_its_64(client, admin_user, mailoutbox, settings):
    """One subscriber holds a whole /64 and can ask from a fresh address each time: counted by
    host, they would get a fresh allowance for every ask."""
    settings.EMAILSYNC_PASSWORD_RESETS_PER_ADDRESS = 2
    for n in range(5):
        client.post(
            reverse("password_reset"),
            {"email": admin_user.email},
            REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}",
        )
    assert len(mailoutbox) == 2
    client.post(reverse("password_reset"), {"email": admin_user.email}, REMOTE_ADDR="2001:db8:9::1")
    assert len(mailoutbox) == 3  # another subscriber
