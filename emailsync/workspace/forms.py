from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import RecruiterProfile
from emailsync.inbound.headers import parse_address
from emailsync.placements.models import Placement, VerificationSettings
from emailsync.review_requests.manual import MANUAL_LIMIT
from emailsync.review_requests.models import EmailSyncSettings, Role, clean_domain_list
from emailsync.reviews.models import RejectReason

ROLE_CHOICES = [("", _("Not known")), *Role.choices]
DAYS = [
    ("0", _("Mon")),
    ("1", _("Tue")),
    ("2", _("Wed")),
    ("3", _("Thu")),
    ("4", _("Fri")),
    ("5", _("Sat")),
    ("6", _("Sun")),
]


def recruiters(agency):
    return RecruiterProfile.objects.of_members().filter(agency=agency)


class BoardFilterForm(forms.Form):
    q = forms.CharField(label=_("Search name or email"), required=False, max_length=200)
    recruiter = forms.ModelChoiceField(
        label=_("Recruiter"),
        queryset=RecruiterProfile.objects.none(),
        required=False,
        empty_label=_("Any recruiter"),
    )
    role = forms.ChoiceField(
        label=_("Role"), choices=[("", _("Any role")), *Role.choices], required=False
    )
    rating = forms.TypedChoiceField(
        label=_("Rating"),
        choices=[("", _("Any rating"))] + [(str(n), "★" * n) for n in range(5, 0, -1)],
        coerce=int,
        empty_value=None,
        required=False,
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, agency, by_recruiter=True, **kwargs):
        super().__init__(*args, **kwargs)
        if by_recruiter:
            self.fields["recruiter"].queryset = recruiters(agency)
        else:  # a recruiter sees only their own requests and reviews
            del self.fields["recruiter"]


class PlacementForm(forms.ModelForm):
    class Meta:
        model = Placement
        fields = [
            "candidate_name",
            "candidate_email",
            "client_company",
            "client_contact_name",
            "client_contact_email",
            "job_title",
            "start_date",
            "recruiter",
            "external_ref",
        ]
        widgets = {"start_date": forms.DateInput(attrs={"type": "date"})}
        error_messages = {
            "candidate_email": {
                "max_length": _("Keep the email address to %(limit_value)d characters or fewer.")
            },
            "client_contact_email": {
                "max_length": _("Keep the email address to %(limit_value)d characters or fewer.")
            },
        }

    def __init__(self, *args, agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency
        self.fields["recruiter"].queryset = recruiters(agency)
        self.fields["start_date"].required = True

    def clean_external_ref(self):
        ref = (self.cleaned_data.get("external_ref") or "").strip() or None
        if ref:
            clash = Placement.objects.filter(agency=self.agency, external_ref=ref)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise ValidationError(_("Another placement already has this reference."))
        return ref

    def clean(self):
        data = super().clean()
        emails = ("candidate_email", "client_contact_email")
        # Only when both are empty: an address that was given but is invalid has its own error.
        if not any(data.get(name) or self.has_error(name) for name in emails):
            self.add_error(
                "candidate_email", _("Give the candidate's or the client contact's email.")
            )
        return data


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Why?"), choices=RejectReason.choices)
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=250,
        error_messages={"max_length": _("Keep the note to %(limit_value)d characters or fewer.")},
    )

    def clean(self):
        data = super().clean()
        # A note that was given but is too long has its own error; this one is for no note.
        if (
            data.get("reason") == RejectReason.OTHER
            and not self.has_error("note")
            and not data.get("note", "").strip()
        ):
            self.add_error("note", _("Say why in a few words."))
        return data


class InviteForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, required=False)
    email = forms.EmailField(label=_("Email"), max_length=254)
    recruiter = forms.ModelChoiceField(
        label=_("Recruiter"), queryset=RecruiterProfile.objects.none(), required=False
    )
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, required=False)
    personal_message = forms.CharField(
        label=_("Personal message"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown in the email above the button."),
    )

    def __init__(self, *args, agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recruiter"].queryset = recruiters(agency)


def parse_people(text: str) -> list[tuple[str, str]]:
    """'Ann Lee <ann@x.com>', 'ann@x.com, Ann Lee' or 'ann@x.com' per line → (name, email).
    Every line that holds no valid address is named in one error, so all can be fixed at once.
    """
    people, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        name, email = "", ""
        if "<" in line:
            # The inbound parser, not email.utils.getaddresses (CVE-2023-27043 on this Python).
            address = parse_address(line)
            if address is not None:
                name, email = address.display_name, address.addr_spec
        else:
            parts = [p.strip() for p in line.replace(";", ",").replace("\t", ",").split(",")]
            emails = [p for p in parts if "@" in p]
            names = [p for p in parts if "@" not in p and p]
            email, name = (emails[0] if emails else ""), " ".join(names)
        try:
            validate_email(email)
        except ValidationError:
            bad.append(
                _("Line %(n)s: “%(line)s” has no valid email address.")
                % {"n": number, "line": line[:80]}
            )
            continue
        people.append((name.strip().strip('"'), email.strip().lower()))
    if bad:
        raise ValidationError(bad)
    return people


class ManualRequestForm(forms.Form):
    people = forms.CharField(
        label=_("Who to ask"),
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_(
            "One person per line: “Ann Lee <ann@example.com>” or “Ann Lee, ann@example.com”."
        ),
    )
    role = forms.ChoiceField(label=_("They are"), choices=ROLE_CHOICES, required=False)
    recruiter = forms.ModelChoiceField(
        label=_("For recruiter"), queryset=RecruiterProfile.objects.none()
    )
    personal_message = forms.CharField(
        label=_("Personal message"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    send_now = forms.BooleanField(
        label=_("Send as soon as possible (instead of after your usual delay)"), required=False
    )

    def __init__(self, *args, agency, user, **kwargs):
        super().__init__(*args, **kwargs)
        queryset = recruiters(agency)
        if not user.is_agency_admin:
            queryset = queryset.filter(user=user)
        self.fields["recruiter"].queryset = queryset
        self.fields["recruiter"].initial = getattr(user, "profile", None)

    def clean_people(self):
        people = parse_people(self.cleaned_data["people"])
        if not people:
            raise ValidationError(_("Enter at least one email address."))
        if len(people) > MANUAL_LIMIT:
            raise ValidationError(_("At most %(n)s people at a time.") % {"n": MANUAL_LIMIT})
        return people


class DaysWidget(forms.CheckboxSelectMultiple):
    pass


NUMBER_FIELDS = (
    "delay_hours",
    "reminder_days",
    "dedupe_days",
    "recipient_cap",
    "rate_limit_per_hour",
)


class EmailSyncSettingsForm(forms.ModelForm):
    days = forms.MultipleChoiceField(
        label=_("Business days"),
        choices=DAYS,
        widget=DaysWidget,
        required=False,
        help_text=_(
            "Requests go out on these days, within business hours. With no day ticked, they go "
            "out at any hour of any day."
        ),
    )

    class Meta:
        model = EmailSyncSettings
        fields = [
            "delay_hours",
            "business_start",
            "business_end",
            "reminder_days",
            "dedupe_days",
            "recipient_cap",
            "trusted_signing_domains",
            "trust_from_domain",
            "rate_limit_per_hour",
        ]
        labels = {
            "delay_hours": _("Delay (hours)"),
            "business_start": _("Business hours start"),
            "business_end": _("Business hours end"),
            "reminder_days": _("Reminder after (days)"),
            "dedupe_days": _("Dedupe window (days)"),
            "recipient_cap": _("Recipient cap"),
            "trusted_signing_domains": _("Trusted signing domains"),
            "trust_from_domain": _("Trust the From domain alone"),
            "rate_limit_per_hour": _("Emails accepted per hour"),
        }
        help_texts = {
            "business_end": _(
                "The last minute of the day (23:59, or 11:59 PM) means until midnight."
            )
        }
        widgets = {
            "business_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "business_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "trusted_signing_domains": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = [str(d) for d in self.instance.business_day_numbers()]
        self.order_fields(["delay_hours", "days"])
        for name in NUMBER_FIELDS:
            self.limit_number_input(name)

    def limit_number_input(self, name: str) -> None:
        """The browser's min and max, and the form's own, the tightest the model's validators
        accept: the input offers exactly the values the server saves, and a value out of range
        gets the model's message whichever side it is on (the form field alone knew only the
        column's 0 as its minimum, and said so for -3 where 0 got the model's 1)."""
        validators = EmailSyncSettings._meta.get_field(name).validators
        lows = [v for v in validators if isinstance(v, MinValueValidator)]
        highs = [v for v in validators if isinstance(v, MaxValueValidator)]
        field = self.fields[name]
        bounds = []
        if lows:
            low = max(lows, key=lambda v: v.limit_value)
            field.min_value = field.widget.attrs["min"] = low.limit_value
            bounds.append(low)
        if highs:
            high = min(highs, key=lambda v: v.limit_value)
            field.max_value = field.widget.attrs["max"] = high.limit_value
            bounds.append(high)
        kept = [
            v for v in field.validators if not isinstance(v, MinValueValidator | MaxValueValidator)
        ]
        field.validators = kept + bounds

    def clean_trusted_signing_domains(self):
        return "\n".join(clean_domain_list(self.cleaned_data.get("trusted_signing_domains", "")))

    def clean(self):
        data = super().clean()
        self.instance.business_days = ",".join(sorted(data.get("days") or []))
        return data

    def changed(self) -> list[str]:
        names = list(self.changed_data)
        return sorted(n if n != "days" else "business_days" for n in names)


class VerificationSettingsForm(forms.ModelForm):
    class Meta:
        model = VerificationSettings
        fields = ["auto_verify_exact_ref"]


class MapSenderForm(forms.Form):
    recruiter = forms.ModelChoiceField(
        label=_("Recruiter"), queryset=RecruiterProfile.objects.none()
    )

    def __init__(self, *args, agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recruiter"].queryset = recruiters(agency)


class HelpForm(forms.Form):
    message = forms.CharField(
        label=_("What is going wrong?"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "We attach your Email Sync diagnostics (settings, recent outcomes and reason codes), "
            "never the content of any email."
        ),
    )


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


class ActivityFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Outcome"), required=False, choices=[])
    q = forms.CharField(label=_("Sender or recipient"), required=False, max_length=200)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        from emailsync.inbound.models import Trigger

        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("Any outcome")), *Trigger.Status.choices]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The To date is before the From date."))
        return data
