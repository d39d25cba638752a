import logging
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from emailsync.outbox.rendering import account_email
from emailsync.review_requests.models import address_hash
from emailsync.throttling.models import Counter, client_bucket

from .models import Agency, AgencyDomain, RecruiterProfile, SenderAddress, User

log = logging.getLogger("emailsync.accounts")

# The areas of the time zone database's place names (Europe/London); the rest are old or
# technical names (GB, US/Pacific, Etc/GMT+5, EST5EDT).
ZONE_AREAS = frozenset(
    ["Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe"]
    + ["Indian", "Pacific"]
)


def current_time_zones() -> list[str]:
    """The time zones to offer: one per place, by today's name, from the database's own table
    of them (zone.tab: Europe/Kyiv and Asia/Kolkata, not their old Europe/Kiev, Asia/Calcutta,
    or US/Pacific and GB), plus UTC. Any name the database knows stays valid for an agency
    that already has it (`validate_time_zone`)."""
    known = zoneinfo.available_timezones()
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone.tab"
        if table.is_file():
            lines = table.read_text(encoding="utf-8").splitlines()
            names = {line.split("\t")[2] for line in lines if line and not line.startswith("#")}
            return sorted(names & known) + ["UTC"]
    # Only the tzdata package's files, which carry no table: the place names, old ones too.
    return sorted(t for t in known if t.partition("/")[0] in ZONE_AREAS) + ["UTC"]


TIME_ZONES = current_time_zones()


class LoginForm(AuthenticationForm):
    """Email and password, with failures counted per account and per client address."""

    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That email and password do not match an account."),
        "throttled": _("Too many failed sign-ins. Try again in %(minutes)s minutes."),
    }

    def clean(self):
        email = (self.cleaned_data.get("username") or "").strip().lower()
        password = self.cleaned_data.get("password")
        if not email or not password:
            return self.cleaned_data
        allowed = settings.EMAILSYNC_LOGIN_FAILURES_ALLOWED
        window = settings.EMAILSYNC_LOGIN_FAILURE_WINDOW
        keys = self._failure_keys(email)
        for key in keys:
            decision = Counter.peek(key, allowed, window)
            if not decision.allowed:
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"minutes": decision.retry_after // 60 + 1},
                )
        self.user_cache = authenticate(self.request, username=email, password=password)
        if self.user_cache is None:
            for key in keys:
                Counter.hit(key, allowed, window)
            raise self.get_invalid_login_error()
        Counter.clear(keys[0])
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def _failure_keys(self, email: str) -> list[str]:
        address = client_bucket(self.request.META.get("REMOTE_ADDR") if self.request else None)
        return [f"login:account:{email}", f"login:ip:{address}"]


class LimitedPasswordResetForm(PasswordResetForm):
    """Django's reset form, sending at most a few links to one address an hour: anyone may ask
    for anyone's link, and without a limit a stranger could flood a member's inbox with our
    emails. Counted per address (hashed, as the privacy form does) whether or not it has an
    account, and the page says the same over the limit, so it reveals nothing. The few are per
    client address, under a larger cap for the address: a stranger who used up their own
    allowance has not used up the member's, who can still get a link from their own network."""

    WINDOW = 3600
    ALL_CLIENTS = 10  # links to one address an hour, from everywhere together

    def save(self, *args, **kwargs):
        address = address_hash(self.cleaned_data["email"])
        request = kwargs.get("request")
        client = client_bucket(request.META.get("REMOTE_ADDR") if request else None)
        per_client = Counter.hit(
            f"password-reset:{address}:{client}",
            settings.EMAILSYNC_PASSWORD_RESETS_PER_ADDRESS,
            self.WINDOW,
        )
        if (
            per_client.allowed
            and Counter.hit(f"password-reset:{address}", self.ALL_CLIENTS, self.WINDOW).allowed
        ):
            super().save(*args, **kwargs)

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        """Django's email, dressed as our others (signed, marked automatic): `account_email`."""
        message = account_email(
            render_to_string(subject_template_name, context),
            render_to_string(email_template_name, context),
            to_email,
            html=(
                render_to_string(html_email_template_name, context)
                if html_email_template_name
                else ""
            ),
        )
        try:
            message.send()
        except Exception:  # as Django's own: the page says the same whether or not it went
            log.exception("password reset email to user %s not sent", context["user"].pk)


class PasswordFields(forms.Form):
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        elif data.get("password1"):
            probe = User(email=data.get("email", ""), full_name=data.get("full_name", ""))
            try:
                validate_password(data["password1"], probe)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class SignupForm(PasswordFields):
    agency_name = forms.CharField(label=_("Agency name"), max_length=120)
    full_name = forms.CharField(label=_("Your name"), max_length=120)
    email = forms.EmailField(label=_("Work email"))
    time_zone = forms.ChoiceField(
        label=_("Time zone"), choices=[(t, t) for t in TIME_ZONES], initial="Europe/London"
    )
    field_order = ["agency_name", "full_name", "email", "time_zone", "password1", "password2"]

    def __init__(self, *args, client_address: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.client_address = client_bucket(client_address)

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        # Saying an address has an account helps the person signing up, and tells a script
        # which addresses are members: each client address may ask only so often.
        gate = Counter.hit(
            f"signup:ip:{self.client_address}", settings.EMAILSYNC_SIGNUPS_PER_ADDRESS, 3600
        )
        if not gate.allowed:
            raise ValidationError(
                _("Too many sign-ups from your network. Try again in %(minutes)d minutes."),
                code="throttled",
                params={"minutes": gate.retry_after // 60 + 1},
            )
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(_("An account with this email already exists. Sign in instead."))
        return email


class AcceptInvitationForm(PasswordFields):
    full_name = forms.CharField(label=_("Your name"), max_length=120)
    field_order = ["full_name", "password1", "password2"]


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(
        label=_("Role"), choices=User.Role.choices, initial=User.Role.RECRUITER
    )

    def __init__(self, *args, agency: Agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        existing = User.objects.filter(email__iexact=email).first()
        if existing and existing.agency_id == self.agency.pk and existing.is_active:
            raise ValidationError(_("%(email)s is already a member."), params={"email": email})
        if existing:
            raise ValidationError(
                _("%(email)s already has an account with another agency."), params={"email": email}
            )
        return email


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=User.Role.choices)


class ProfileForm(forms.ModelForm):
    class Meta:
        model = RecruiterProfile
        fields = ["display_name", "job_title", "photo", "bio", "specialisms"]


class SenderAddressForm(forms.Form):
    email = forms.EmailField(label=_("Sending address"))

    def __init__(self, *args, agency: Agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        domain = email.rpartition("@")[2]
        if domain == settings.EMAILSYNC_INBOUND_DOMAIN.lower():
            raise ValidationError(
                _("That is an Email Sync BCC address: it receives your emails, never sends.")
            )
        ours = {a.rpartition("@")[2].rstrip("> ").lower() for a in own_sending_addresses()}
        if domain in ours:
            raise ValidationError(
                _("Email Sync itself sends from that domain; add an address your team sends from.")
            )
        # A removed member's address is nobody's now: it may be given to someone else.
        if SenderAddress.objects.of_members().filter(agency=self.agency, email=email).exists():
            raise ValidationError(_("That address is already assigned to a member."))
        return email


def own_sending_addresses() -> list[str]:
    """The addresses the platform's own emails come from (review requests, notifications)."""
    return [
        a
        for a in (settings.EMAILSYNC_FROM_EMAIL, settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL)
        if "@" in a
    ]


class AgencySettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=[(t, t) for t in TIME_ZONES])
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Agency
        fields = ["name", "time_zone", "brand_colour", "logo", "website", "location"]
        widgets = {"brand_colour": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.time_zone
        if current and current not in TIME_ZONES:  # an old name chosen before: still offered
            self.fields["time_zone"].choices = [
                (current, current),
                *self.fields["time_zone"].choices,
            ]


class DomainForm(forms.Form):
    domain = forms.CharField(label=_("Domain"), max_length=253)

    def __init__(self, *args, agency: Agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency

    def clean_domain(self):
        domain = self.cleaned_data["domain"].strip().lower()
        if "@" in domain:
            domain = domain.rsplit("@", 1)[1]
        if "://" in domain:
            # A website's address pasted as it is ("https://www.acme.com.au/jobs"): its
            # domain is meant, without the web server's "www.".
            domain = (urlsplit(domain).hostname or "").removeprefix("www.")
        domain = domain.rstrip(".")
        if AgencyDomain.objects.filter(domain=domain).exists():
            raise ValidationError(_("That domain is already registered."))
        probe = AgencyDomain(agency=self.agency, domain=domain)
        try:
            probe.clean_fields(exclude=["agency"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("domain", [_("Enter a valid domain.")]))
        return domain
