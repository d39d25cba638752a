from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ApiSettings, WebhookEndpoint
from .webhooks import EVENTS, validate_url


class MethodForm(forms.ModelForm):
    class Meta:
        model = ApiSettings
        fields = ["method"]
        widgets = {"method": forms.RadioSelect}
        labels = {"method": _("How does the agency collect reviews?")}


class KeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=80,
        help_text=_("What uses the key, e.g. “Bullhorn production”."),
    )


class WebhookForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=[(name, f"{name} — {text}") for name, text in EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    url = forms.URLField(label=_("Endpoint URL (https)"), max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "active"]
        labels = {"url": _("Endpoint URL (https)")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["event_types"] = self.instance.event_list()
        else:
            self.initial["event_types"] = list(EVENTS)

    def clean_url(self):
        return validate_url(self.cleaned_data["url"])

    def save(self, commit=True):
        self.instance.events = ",".join(self.cleaned_data["event_types"])
        return super().save(commit)
