from django.contrib.auth import views as auth_views
from django.urls import path

from . import accounts, team

# Pages about getting in: no agency in the URL, no membership needed.
account_urls = [
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", accounts.signup, name="signup"),
    path("invitations/<str:token>/", accounts.accept_invitation, name="accept-invitation"),
    path("password/", accounts.PasswordChangeView.as_view(), name="password-change"),
    path("password-reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="agencies/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="agencies/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="agencies/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]

# The signed-in agency's pages: the agency always comes from the member, never from the URL.
agency_urls = [
    path("", team.home, name="agency-home"),
    path("team/", team.team, name="team"),
    path("team/invite/", team.invite, name="invite"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        team.revoke_invitation,
        name="revoke-invitation",
    ),
    path("team/members/<int:member_id>/", team.member, name="member"),
    path("team/members/<int:member_id>/role/", team.change_role, name="change-role"),
    path("team/members/<int:member_id>/remove/", team.remove_member, name="remove-member"),
    path("team/senders/<int:sender_id>/remove/", team.remove_sender, name="remove-sender"),
    path("profile/", team.my_profile, name="my-profile"),
    path("settings/", team.agency_settings, name="agency-settings"),
    path("settings/domains/", team.add_domain, name="add-domain"),
    path("settings/domains/<int:domain_id>/remove/", team.remove_domain, name="remove-domain"),
    path("audit/", team.audit_log, name="audit-log"),
]
