"""Getting in: agency sign-up, sign-in, joining by invitation, password reset."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .forms import AcceptInvitationForm, LimitedPasswordResetForm, LoginForm, SignupForm
from .models import Agency, Invitation

BACKEND = "emailsync.agencies.auth.EmailBackend"


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "agencies/login.html"
    redirect_authenticated_user = True


@require_http_methods(["GET", "POST"])
def signup(request):
    if not settings.EMAILSYNC_SIGNUP_OPEN:
        raise Http404
    form = SignupForm(request.POST or None, client_address=request.META.get("REMOTE_ADDR", ""))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _agency, admin = Agency.create_with_admin(
            name=data["agency_name"],
            admin_email=data["email"],
            admin_name=data["full_name"],
            password=data["password1"],
            time_zone=data["time_zone"],
        )
        login(request, admin, backend=BACKEND)
        messages.success(request, _("Welcome! Your agency is ready."))
        return redirect("agency-home")
    return render(request, "agencies/signup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def accept_invitation(request, token):
    invitation = Invitation.find(token)
    if invitation is None:
        raise Http404
    if not invitation.usable:
        return render(
            request, "agencies/invitation_unusable.html", {"invitation": invitation}, status=410
        )
    form = AcceptInvitationForm(request.POST or None, initial={"email": invitation.email})
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation.accept(form.cleaned_data["full_name"], form.cleaned_data["password1"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, user, backend=BACKEND)
            messages.success(request, _("You joined %(agency)s.") % {"agency": invitation.agency})
            return redirect("agency-home")
    return render(
        request, "agencies/accept_invitation.html", {"form": form, "invitation": invitation}
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """A signed-in person changes their own password. Django's view keeps this session
    (`update_session_auth_hash`); every other session of theirs ends at its next request."""

    template_name = "agencies/password_change.html"
    success_url = reverse_lazy("my-profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(
            self.request, _("Password changed. Your other sessions have been signed out.")
        )
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = LimitedPasswordResetForm
    template_name = "agencies/password_reset.html"
    email_template_name = "agencies/email/password_reset.txt"
    html_email_template_name = "agencies/email/password_reset.html"
    subject_template_name = "agencies/email/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def get_extra_email_context(self):
        return {"public_url": settings.EMAILSYNC_PUBLIC_URL}

    def form_valid(self, form):
        # Links in the email must point at the public address, not whatever Host the request had.
        form.save = _public_domain_save(form.save)
        return super().form_valid(form)


def _public_domain_save(save):
    from urllib.parse import urlsplit

    public = urlsplit(settings.EMAILSYNC_PUBLIC_URL)

    def wrapped(**kwargs):
        kwargs.update(domain_override=public.netloc, use_https=public.scheme == "https")
        return save(**kwargs)

    return wrapped
