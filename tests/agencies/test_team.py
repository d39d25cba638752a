import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from emailsync.agencies.models import (
    Agency,
    AgencyDomain,
    AuditEntry,
    Invitation,
    LastAdminError,
    SenderAddress,
    User,
)

PASSWORD = "correct horse battery"


def invitation_path(message) -> str:
    return re.search(r"(/accounts/invitations/[^/\s]+/)", message.body).group(1)


@pytest.mark.django_db
def test_admin_invites_and_the_invitee_joins_in_that_role(admin_client, agency, mailoutbox, client):
    response = admin_client.post(
        reverse("invite"), {"email": "New.Person@Acme.test", "role": "recruiter"}
    )
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new.person@acme.test"]
    path = invitation_path(mailoutbox[0])
    admin_client.logout()
    page = client.get(path)
    assert page.status_code == 200 and b"Join Acme Recruitment" in page.content
    joined = client.post(
        path,
        {
            "full_name": "New Person",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert joined.status_code == 302
    member = User.objects.get(email="new.person@acme.test")
    assert member.agency == agency and member.role == User.Role.RECRUITER
    assert AuditEntry.objects.filter(agency=agency, action="member.joined").exists()


@pytest.mark.django_db
def test_a_name_with_a_line_break_is_one_line_in_the_invitations_subject(
    admin_client, admin_user, agency, mailoutbox
):
    """Names reach the subject; a line break in one (an agency or member name posted by a
    script) must neither add a header nor fail every invitation with BadHeaderError."""
    agency.name = "Acme\r\nBcc: spy@evil.test"
    agency.save(update_fields=["name"])
    admin_user.full_name = "Ann\nAdmin"
    admin_user.save(update_fields=["full_name"])
    response = admin_client.post(reverse("invite"), {"email": "new@acme.test", "role": "recruiter"})
    assert response.status_code == 302
    [message] = mailoutbox
    assert message.subject == "Ann Admin invited you to Acme Bcc: spy@evil.test on Email Sync"
    assert message.recipients() == ["new@acme.test"] and message.message()["Bcc"] is None


@pytest.mark.django_db
def test_the_invitations_plain_text_shows_names_as_written(
    admin_client, admin_user, agency, mailoutbox
):
    # The text part is not HTML: "Harbour & Finch" must not arrive as "Harbour &amp; Finch".
    agency.name = "Harbour & Finch Talent"
    agency.save(update_fields=["name"])
    admin_user.full_name = "Olivia O'Hart"
    admin_user.save(update_fields=["full_name"])
    admin_client.post(reverse("invite"), {"email": "new@acme.test", "role": "recruiter"})
    [message] = mailoutbox
    assert message.body.startswith("Olivia O'Hart invited you to join Harbour & Finch Talent on")
    html = message.alternatives[0][0]
    assert "Harbour &amp; Finch Talent" in html and "O&#x27;Hart" in html


@pytest.mark.django_db
def test_invitation_link_is_single_use(admin_client, mailoutbox, client):
    admin_client.post(reverse("invite"), {"email": "once@acme.test", "role": "admin"})
    path = invitation_path(mailoutbox[0])
    admin_client.logout()
    data = {
        "full_name": "Once",
        "password1": "a-long-passphrase-9",
        "password2": "a-long-passphrase-9",
    }
    assert client.post(path, data).status_code == 302
    client.logout()
    reused = client.get(path)
    assert reused.status_code == 410 and b"already been accepted" in reused.content
    assert client.post(path, data).status_code == 410
    assert User.objects.filter(email="once@acme.test").count() == 1


@pytest.mark.django_db
def test_inviting_someone_again_replaces_their_invitation(admin_client, agency, mailoutbox, client):
    for _ in range(2):
        admin_client.post(reverse("invite"), {"email": "newbie@acme.test", "role": "recruiter"})
    first, second = (invitation_path(m) for m in mailoutbox)
    assert list(
        Invitation.objects.filter(accepted_at=None, revoked_at=None).values_list("email")
    ) == [("newbie@acme.test",)]
    team = admin_client.get(reverse("team")).content.decode()
    assert team.count("newbie@acme.test ·") == 1  # one open invitation listed
    admin_client.logout()
    old = client.get(first)
    assert old.status_code == 410  # the old link no longer works, and says why
    assert b"A newer invitation was sent" in old.content and b"withdrawn" not in old.content
    data = {"full_name": "Newbie", "password1": "a-long-passphrase-9"}
    data["password2"] = data["password1"]
    assert client.post(second, data).status_code == 302
    assert not Invitation.objects.filter(accepted_at=None, revoked_at=None).exists()


@pytest.mark.django_db
def test_an_old_link_sends_nobody_to_a_newer_invitation_that_was_withdrawn(agency, admin_user):
    old, _ = Invitation.issue(agency, "twice@acme.test", "recruiter", admin_user)
    newer, _ = Invitation.issue(agency, "twice@acme.test", "recruiter", admin_user)
    newer.replace_earlier()
    old.refresh_from_db()
    assert old.state == "replaced"
    Invitation.objects.filter(pk=newer.pk).update(revoked_at=timezone.now())
    assert old.state == "revoked"


@pytest.mark.django_db
def test_joining_closes_every_other_open_invitation_to_that_address(agency, admin_user, client):
    _, other = Invitation.issue(agency, "twice@acme.test", "recruiter", admin_user)
    beta = Agency.create_with_admin(name="Beta Staffing", admin_email="boss@beta.test")[0]
    _, token = Invitation.issue(beta, "twice@acme.test", "recruiter", beta.admins().get())
    Invitation.find(token).accept("Twice", "a-long-passphrase-9")
    assert Invitation.find(other).state == "revoked"


@pytest.mark.django_db
def test_expired_invitation_is_refused(agency, admin_user, client):
    invitation, token = Invitation.issue(agency, "late@acme.test", "recruiter", admin_user)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(reverse("accept-invitation", args=[token]))
    assert response.status_code == 410 and b"expired" in response.content
    posted = client.post(
        reverse("accept-invitation", args=[token]),
        {
            "full_name": "Late",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert posted.status_code == 410
    assert not User.objects.filter(email="late@acme.test").exists()


@pytest.mark.django_db
def test_revoked_and_unknown_invitations(agency, admin_user, admin_client, client):
    invitation, token = Invitation.issue(agency, "maybe@acme.test", "recruiter", admin_user)
    admin_client.post(reverse("revoke-invitation", args=[invitation.pk]))
    assert client.get(reverse("accept-invitation", args=[token])).status_code == 410
    assert client.get(reverse("accept-invitation", args=["not-a-token"])).status_code == 404


@pytest.mark.django_db
def test_only_hashes_of_invitation_tokens_are_stored(agency, admin_user):
    invitation, token = Invitation.issue(agency, "hash@acme.test", "recruiter", admin_user)
    assert token not in invitation.token_hash and len(token) >= 40


@pytest.mark.django_db
def test_invite_form_errors_keep_input(admin_client, admin_user):
    response = admin_client.post(reverse("invite"), {"email": admin_user.email, "role": "admin"})
    assert response.status_code == 400
    assert b"already a member" in response.content
    assert f'value="{admin_user.email}"'.encode() in response.content


@pytest.mark.django_db
def test_admin_changes_roles(admin_client, agency, add_member):
    member = add_member(agency)
    admin_client.post(reverse("change-role", args=[member.pk]), {"role": "admin"})
    member.refresh_from_db()
    assert member.role == User.Role.ADMIN
    assert AuditEntry.objects.filter(action="member.role_changed", subject=member.email).exists()


@pytest.mark.django_db
def test_last_admin_cannot_be_demoted_or_removed(admin_client, admin_user, agency, add_member):
    add_member(agency)  # a recruiter does not count as an admin
    response = admin_client.post(
        reverse("change-role", args=[admin_user.pk]), {"role": "recruiter"}, follow=True
    )
    assert b"at least one admin" in response.content
    admin_client.post(reverse("remove-member", args=[admin_user.pk]))
    admin_user.refresh_from_db()
    assert admin_user.role == User.Role.ADMIN and admin_user.is_active
    with pytest.raises(LastAdminError):
        admin_user.change_role(User.Role.RECRUITER, by=admin_user)


@pytest.mark.django_db
def test_with_two_admins_one_may_step_down(agency, admin_user, add_member):
    other = add_member(agency, role=User.Role.ADMIN)
    admin_user.change_role(User.Role.RECRUITER, by=other)
    with pytest.raises(ValidationError):
        other.remove_from_agency(by=other)


@pytest.mark.django_db
def test_admin_assigns_sender_addresses(admin_client, agency, add_member):
    member = add_member(agency)
    admin_client.post(reverse("member", args=[member.pk]), {"email": "Sam.Alt@Gmail.test"})
    assert list(member.profile.senders.values_list("email", flat=True)) == sorted(
        [member.email, "sam.alt@gmail.test"]
    )
    duplicate = admin_client.post(
        reverse("member", args=[member.pk]), {"email": "sam.alt@gmail.test"}
    )
    assert duplicate.status_code == 400 and b"already assigned" in duplicate.content


@pytest.mark.django_db
def test_a_removed_members_sending_address_can_be_given_to_someone_else(
    admin_client, agency, add_member
):
    """A removed member's addresses no longer count as theirs (their page is gone, so nobody
    could remove them): the shared mailbox they sent from was refused as 'already assigned'
    and could then belong to no one."""
    leaver, heir = add_member(agency), add_member(agency)
    admin_client.post(reverse("member", args=[leaver.pk]), {"email": "desk@mailbox.test"})
    leaver.remove_from_agency(by=agency.admins().get())
    added = admin_client.post(reverse("member", args=[heir.pk]), {"email": "desk@mailbox.test"})
    assert added.status_code == 302
    assert SenderAddress.objects.get(agency=agency, email="desk@mailbox.test").profile == (
        heir.profile
    )


@pytest.mark.django_db
def test_a_sending_address_is_not_one_of_the_platforms_own(
    admin_client, agency, add_member, settings
):
    """Our own From address and the BCC addresses were accepted, and mail From our address
    then counted as the recruiter's trigger."""
    settings.EMAILSYNC_FROM_EMAIL = "reviews@emailsync.test"
    settings.DEFAULT_FROM_EMAIL = "Email Sync <reviews@emailsync.test>"
    member = add_member(agency)
    page = reverse("member", args=[member.pk])
    for address, why in [
        ("Reviews@EmailSync.test", b"Email Sync itself sends"),
        (f"acme-x1y2z3@{settings.EMAILSYNC_INBOUND_DOMAIN}", b"BCC address"),
    ]:
        refused = admin_client.post(page, {"email": address})
        assert refused.status_code == 400 and why in refused.content
        assert address.encode() in refused.content  # what was typed is kept
    assert list(member.profile.senders.values_list("email", flat=True)) == [member.email]
    added = admin_client.post(page, {"email": "sam@acme-mail.test"}, follow=True)
    assert b"sam@acme-mail.test added" in added.content  # and says so


@pytest.mark.django_db
def test_admin_manages_domains_and_settings(admin_client, agency):
    admin_client.post(reverse("add-domain"), {"domain": "Acme-Careers.test"})
    assert "acme-careers.test" in agency.domain_names()
    # The website's address pasted as it is: its domain is meant.
    admin_client.post(reverse("add-domain"), {"domain": "https://www.acme-talent.com.au/jobs"})
    admin_client.post(reverse("add-domain"), {"domain": "http://acme-hr.test:443/?ref=x"})
    assert {"acme-talent.com.au", "acme-hr.test"} <= set(agency.domain_names())
    bad = admin_client.post(reverse("add-domain"), {"domain": "not a domain"})
    assert bad.status_code == 400 and b"domain such as" in bad.content
    # A mailbox anyone can sign up to is nobody's agency domain; the form keeps what was typed.
    shared = admin_client.post(reverse("add-domain"), {"domain": "GMail.com"})
    assert shared.status_code == 400 and b"public mailbox provider" in shared.content
    assert b'value="GMail.com"' in shared.content
    assert "gmail.com" not in agency.domain_names()
    with pytest.raises(ValidationError):
        AgencyDomain.add(agency, "outlook.com")
    response = admin_client.post(
        reverse("agency-settings"),
        {
            "name": "Acme Recruitment Ltd",
            "time_zone": "Australia/Sydney",
            "brand_colour": "#112233",
            "website": "",
            "location": "Sydney",
        },
    )
    assert response.status_code == 302
    agency.refresh_from_db()
    assert agency.time_zone == "Australia/Sydney" and agency.name == "Acme Recruitment Ltd"
    invalid = admin_client.post(
        reverse("agency-settings"),
        {"name": "Kept Name", "time_zone": "Mars/Olympus", "brand_colour": "red"},
    )
    assert invalid.status_code == 400 and b'value="Kept Name"' in invalid.content


@pytest.mark.django_db
def test_member_edits_own_profile(client, agency, add_member):
    member = add_member(agency)
    client.force_login(member)
    response = client.post(
        reverse("my-profile"),
        {
            "display_name": "Sam C.",
            "job_title": "Tech Recruiter",
            "bio": "Ten years in tech hiring.",
            "specialisms": "Python, Data",
        },
    )
    assert response.status_code == 302
    member.profile.refresh_from_db()
    assert member.profile.job_title == "Tech Recruiter"
    page = client.get(reverse("my-profile")).content.decode()
    public = reverse("profiles-recruiter", args=[agency.slug, member.profile.slug])
    assert f'href="{public}"' in page  # a recruiter finds their own public profile
    assert client.get(public).status_code == 200


@pytest.mark.django_db
def test_audit_log_reads_in_words(admin_client, agency, add_member):
    member = add_member(agency)
    admin_client.post(reverse("change-role", args=[member.pk]), {"role": "admin"})
    page = admin_client.get(reverse("audit-log")).content.decode()
    assert "member.role_changed" not in page and member.email in page


@pytest.mark.django_db
def test_audit_log_says_which_address_to_whom_and_who_was_asked(admin_client, agency, add_member):
    member = add_member(agency)
    admin_client.post(reverse("member", args=[member.pk]), {"email": "tom@gmail.example"})
    agency.record(None, "reviews.manual_request", "1/3", trigger=7, recruiter="Sam Carter")
    agency.record(
        None, "email_sync.sender_mapped", "kate@x.test", recruiter="Sam Carter", requests=2
    )
    page = admin_client.get(reverse("audit-log")).content.decode()
    assert "address: tom@gmail.example" in page
    assert "1 of 3 people asked" in page and "recruiter: Sam Carter" in page
    assert "requests credited: 2" in page
    assert "trigger: 7" not in page  # ids are for support, not the page


@pytest.mark.django_db
def test_a_members_name_opens_them_where_the_manage_column_is_off_screen(
    admin_client, agency, add_member
):
    member = add_member(agency)
    page = admin_client.get(reverse("team")).content.decode()
    assert f'<a href="{reverse("member", args=[member.pk])}">{member.full_name}</a>' in page


@pytest.mark.django_db
def test_an_admin_who_leaves_or_steps_down_takes_their_open_invitations_with_them(
    agency, admin_user, add_member
):
    """An admin could invite another address of their own as an admin, then be removed, and
    join again through that link. Their open invitations are withdrawn when they leave or stop
    being an admin; other admins' invitations stay open."""
    leaver = add_member(agency, role=User.Role.ADMIN)
    demoted = add_member(agency, role=User.Role.ADMIN)
    _, back_door = Invitation.issue(agency, "leaver@home.test", "admin", leaver)
    _, demoted_sent = Invitation.issue(agency, "pal@home.test", "admin", demoted)
    _, kept = Invitation.issue(agency, "new.hire@acme.test", "recruiter", admin_user)
    leaver.remove_from_agency(by=admin_user)
    demoted.change_role(User.Role.RECRUITER, by=admin_user)
    assert Invitation.find(back_door).state == "revoked"
    assert Invitation.find(demoted_sent).state == "revoked"
    assert Invitation.find(kept).state == "pending"
    with pytest.raises(ValidationError):
        Invitation.find(back_door).accept("Leaver Again", "a-long-passphrase-9")
    withdrawn = AuditEntry.objects.filter(action="member.invitation_revoked", actor=admin_user)
    assert set(withdrawn.values_list("subject", flat=True)) == {"leaver@home.test", "pal@home.test"}


@pytest.mark.django_db
def test_an_invitation_stops_working_when_its_inviter_is_demoted_outside_the_app(
    agency, admin_user, add_member
):
    """An operator's bulk update or the Django admin changes a role without the app's own
    steps: the invitations that admin sent must stop letting people in all the same."""
    inviter = add_member(agency, role=User.Role.ADMIN)
    invitation, token = Invitation.issue(agency, "pal@home.test", "admin", inviter)
    User.objects.filter(pk=inviter.pk).update(role=User.Role.RECRUITER)
    found = Invitation.find(token)
    assert not found.usable and found.state == "revoked"
    with pytest.raises(ValidationError):
        found.accept("Pal", "a-long-passphrase-9")
    _, kept = Invitation.issue(agency, "new.hire@acme.test", "recruiter", admin_user)
    assert Invitation.find(kept).usable
