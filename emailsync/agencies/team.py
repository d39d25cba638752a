"""The agency's own pages about itself: overview, team, profiles, settings and the audit log.

Every lookup goes through `agency_object`, so an id from another agency is a 404 here.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from emailsync.inbound.models import UnmappedSender, credit_earlier
from emailsync.outbox.rendering import account_email

from .access import admin_required, agency_object, member_required
from .forms import (
    AgencySettingsForm,
    DomainForm,
    InviteForm,
    ProfileForm,
    RoleForm,
    SenderAddressForm,
)
from .models import AgencyDomain, Invitation, RecruiterProfile, SenderAddress, User


@member_required
def home(request):
    agency = request.agency
    return render(
        request,
        "agencies/home.html",
        {
            "members": agency.members().select_related("profile"),
            "domains": agency.domain_names(),
        },
    )


@member_required
def team(request):
    agency = request.agency
    context = {
        "members": agency.members().select_related("profile").prefetch_related("profile__senders"),
        "invitations": agency.invitations.filter(accepted_at=None, revoked_at=None),
        "invite_form": InviteForm(agency=agency),
    }
    return render(request, "agencies/team.html", context)


@admin_required
@require_POST
def invite(request):
    form = InviteForm(request.POST, agency=request.agency)
    if not form.is_valid():
        return render(
            request,
            "agencies/team.html",
            {
                "members": request.agency.members().select_related("profile"),
                "invitations": request.agency.invitations.filter(accepted_at=None, revoked_at=None),
                "invite_form": form,
            },
            status=400,
        )
    invitation, token = Invitation.issue(
        request.agency, form.cleaned_data["email"], form.cleaned_data["role"], request.user
    )
    link = settings.EMAILSYNC_PUBLIC_URL + reverse("accept-invitation", args=[token])
    context = {"invitation": invitation, "link": link, "inviter": request.user}
    account_email(
        # Names go through the same one-line cleaning as every header we write (a line break
        # in a name would otherwise fail every invitation with BadHeaderError).
        _("%(name)s invited you to %(agency)s on Email Sync")
        % {"name": request.user.full_name, "agency": request.agency.name},
        render_to_string("agencies/email/invitation.txt", context),
        invitation.email,
        html=render_to_string("agencies/email/invitation.html", context),
    ).send()
    invitation.replace_earlier()
    messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    return redirect("team")


@admin_required
@require_POST
def revoke_invitation(request, invitation_id):
    invitation = agency_object(request, Invitation, pk=invitation_id)
    if invitation.usable:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        request.agency.record(request.user, "member.invitation_revoked", invitation.email)
    return redirect("team")


@admin_required
@require_http_methods(["GET", "POST"])
def member(request, member_id):
    person = agency_object(request, User.objects.filter(is_active=True), pk=member_id)
    profile = RecruiterProfile.for_user(person)
    sender_form = SenderAddressForm(agency=request.agency)
    if request.method == "POST":
        sender_form = SenderAddressForm(request.POST, agency=request.agency)
        if sender_form.is_valid():
            email = sender_form.cleaned_data["email"]
            credited, mapped = add_sending_address(request, profile, email)
            request.agency.record(
                request.user,
                "member.sender_added",
                person.email,
                address=email,
                # A mapped unknown sender has its own entry, with what it credited.
                **({} if mapped else {"requests": credited}),
            )
            if credited:
                messages.success(
                    request,
                    ngettext(
                        "%(email)s added; %(n)s earlier request from it is now credited to "
                        "%(name)s.",
                        "%(email)s added; %(n)s earlier requests from it are now credited to "
                        "%(name)s.",
                        credited,
                    )
                    % {"email": email, "n": credited, "name": profile.display_name},
                )
            else:
                messages.success(
                    request,
                    _("%(email)s added: emails from it now credit %(name)s.")
                    % {"email": email, "name": profile.display_name},
                )
            return redirect("member", member_id=person.pk)
    return render(
        request,
        "agencies/member.html",
        {
            "person": person,
            "profile": profile,
            "sender_form": sender_form,
            "role_form": RoleForm(initial={"role": person.role}),
        },
        status=400 if sender_form.errors else 200,
    )


@transaction.atomic
def add_sending_address(request, profile: RecruiterProfile, email: str) -> tuple[int, bool]:
    """The address becomes the recruiter's, with what it already sent: an unknown sender the
    Email Sync page listed is mapped (and leaves that list), and earlier triggers from it (one
    released from quarantine, say) credit them. Returns how many requests were credited, and
    whether an unknown sender was mapped."""
    unknown = UnmappedSender.objects.filter(
        agency=request.agency, email__iexact=email, mapped_to__isnull=True
    ).first()
    if unknown is not None:
        return unknown.map_to(profile, by=request.user), True
    # A removed member's row for it (the form refuses a current member's) passes to them.
    SenderAddress.objects.update_or_create(
        agency=request.agency, email=email, defaults={"profile": profile}
    )
    return credit_earlier(request.agency.pk, email, profile)[0], False


@admin_required
@require_POST
def change_role(request, member_id):
    person = agency_object(request, User.objects.filter(is_active=True), pk=member_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            person.change_role(form.cleaned_data["role"], by=request.user)
            if person.pk == request.user.pk:
                # An admin who steps down stays signed in here; their other sessions end.
                update_session_auth_hash(request, person)
            messages.success(
                request,
                _("%(name)s is now %(role)s.")
                % {"name": person.full_name, "role": person.get_role_display()},
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    if not request.user.is_agency_admin:
        return redirect("team")
    return redirect("member", member_id=person.pk)


@admin_required
@require_POST
def remove_member(request, member_id):
    person = agency_object(request, User.objects.filter(is_active=True), pk=member_id)
    try:
        person.remove_from_agency(by=request.user)
        messages.success(request, _("%(name)s was removed.") % {"name": person.full_name})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("team")


@admin_required
@require_POST
def remove_sender(request, sender_id):
    sender = agency_object(request, SenderAddress, pk=sender_id)
    member_id = sender.profile.user_id
    sender.delete()
    request.agency.record(request.user, "member.sender_removed", sender.email)
    return redirect("member", member_id=member_id)


@member_required
@require_http_methods(["GET", "POST"])
def my_profile(request):
    profile = RecruiterProfile.for_user(request.user)
    form = ProfileForm(request.POST or None, request.FILES or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Profile saved."))
        return redirect("my-profile")
    return render(
        request,
        "agencies/profile.html",
        {
            "form": form,
            "profile": profile,
            "public_url": reverse("profiles-recruiter", args=[request.agency.slug, profile.slug]),
        },
        status=400 if form.errors else 200,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def agency_settings(request):
    agency = request.agency
    form = AgencySettingsForm(request.POST or None, request.FILES or None, instance=agency)
    domain_form = DomainForm(agency=agency)
    if request.method == "POST" and form.is_valid():
        form.save()
        agency.record(
            request.user, "agency.settings_changed", agency.name, fields=sorted(form.changed_data)
        )
        messages.success(request, _("Settings saved."))
        return redirect("agency-settings")
    return render(
        request,
        "agencies/settings.html",
        {"form": form, "domain_form": domain_form, "domains": agency.domains.all()},
        status=400 if form.errors else 200,
    )


@admin_required
@require_POST
def add_domain(request):
    agency = request.agency
    domain_form = DomainForm(request.POST, agency=agency)
    if domain_form.is_valid():
        AgencyDomain.add(agency, domain_form.cleaned_data["domain"])
        agency.record(request.user, "agency.domain_added", domain_form.cleaned_data["domain"])
        return redirect("agency-settings")
    return render(
        request,
        "agencies/settings.html",
        {
            "form": AgencySettingsForm(instance=agency),
            "domain_form": domain_form,
            "domains": agency.domains.all(),
        },
        status=400,
    )


@admin_required
@require_POST
def remove_domain(request, domain_id):
    domain = agency_object(request, AgencyDomain, pk=domain_id)
    domain.delete()
    request.agency.record(request.user, "agency.domain_removed", domain.domain)
    return redirect("agency-settings")


@admin_required
def audit_log(request):
    entries = request.agency.audit_entries.select_related("actor")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "agencies/audit.html", {"page": page})
