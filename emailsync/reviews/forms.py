"""The reviewer's form: the same fields whether they came from our email or a recruiter's link."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from emailsync.review_requests.models import Role

from .models import TEXT_MAX, TEXT_MIN, DisplayName, shown_name

RATINGS = [(n, str(n)) for n in range(1, 6)]
YES_NO = [("yes", _("Yes")), ("no", _("No"))]
HONEYPOT = "leave_blank"
NAME_MAX = 120  # Review.reviewer_name's max_length
# Words people recognise for each number of stars (shown beside the stars, announced by JS).
RATING_WORDS = {
    1: _("Poor"),
    2: _("Fair"),
    3: _("Good"),
    4: _("Very good"),
    5: _("Excellent"),
}


def normalise_text(value: str) -> str:
    """One newline convention and no trailing spaces, so the length counted is what people see."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = re.sub(r"[ \t]+\n", "\n", value)
    return re.sub(r"\n{3,}", "\n\n", value).strip()


class ReviewForm(forms.Form):
    # As on the page, so the error summary lists problems in the order they are met.
    field_order = [
        "rating", "text", "role", "recommend", "reviewer_name", "display_name_choice", "email",
        "consent",
    ]  # fmt: skip

    rating = forms.TypedChoiceField(
        label=_("Your rating"),
        choices=RATINGS,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a rating from 1 to 5 stars."),
            "invalid_choice": _("Choose a rating from 1 to 5 stars."),
        },
    )
    text = forms.CharField(
        label=_("Your review"),
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": _("Write a few words about your experience.")},
    )
    role = forms.ChoiceField(
        label=_("I was the"),
        choices=Role.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Tell us whether you were the candidate or the client."),
            "invalid_choice": _("Tell us whether you were the candidate or the client."),
        },
    )
    reviewer_name = forms.CharField(
        label=_("Your name"),
        max_length=NAME_MAX,
        required=False,
        error_messages={
            # Django's validator passes the limit and the length it measured.
            "max_length": _(
                "Keep your name to %(limit_value)d characters or fewer (you have %(show_value)d)."
            ),
        },
    )
    display_name_choice = forms.ChoiceField(
        label=_("Show my review as"),
        choices=DisplayName.choices,
        initial=DisplayName.INITIAL,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how your name is shown.")},
    )
    recommend = forms.ChoiceField(
        label=_("Would you recommend them?"),
        choices=YES_NO,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Answer yes or no."),
            "invalid_choice": _("Answer yes or no."),
        },
    )
    consent = forms.BooleanField(
        label=_("I agree that this review may be published under the name I chose."),
        error_messages={"required": _("Tick the box to agree to publication, or we can't use it.")},
    )
    # Hidden by the stylesheet; people leave it empty, form-filling scripts do not.
    leave_blank = forms.CharField(label=_("Leave this field empty"), required=False)

    def clean_text(self):
        text = normalise_text(self.cleaned_data["text"])
        if len(text) < TEXT_MIN:
            raise forms.ValidationError(
                ngettext_lazy(
                    "Write at least %(min)d characters (you have %(count)d).",
                    "Write at least %(min)d characters (you have %(count)d).",
                    TEXT_MIN,
                ),
                params={"min": TEXT_MIN, "count": len(text)},
                code="min_length",
            )
        if len(text) > TEXT_MAX:
            raise forms.ValidationError(
                _("Keep it under %(max)d characters (you have %(count)d)."),
                params={"max": TEXT_MAX, "count": len(text)},
                code="max_length",
            )
        return text

    def clean_reviewer_name(self):
        return " ".join(self.cleaned_data["reviewer_name"].split())

    def clean(self):
        data = super().clean()
        choice = data.get("display_name_choice")
        # A name that failed its own checks (too long) is not missing: one message is enough.
        name_missing = "reviewer_name" in data and not data["reviewer_name"]
        if choice in (DisplayName.FULL, DisplayName.INITIAL) and name_missing:
            self.add_error(
                "reviewer_name",
                _("Enter your name, or choose to be shown as anonymous."),
            )
        if "recommend" in data:
            data["recommend"] = data["recommend"] == "yes"
        return data

    @property
    def caught_by_honeypot(self) -> bool:
        return bool(self.data.get(HONEYPOT, "").strip())

    def name_previews(self, fallback_name: str = "") -> dict[str, str]:
        """How each display choice would look, for the labels (JS keeps them live)."""
        name = " ".join((self["reviewer_name"].value() or fallback_name or "").split())
        blank = {"full": _("Your full name"), "initial": _("Your first name and initial")}
        if not name:  # the labels say what each choice is; no "(full name)" hint beside them
            return {**blank, "named": False, "blank": blank}
        shown = {
            choice: shown_name(name, choice) for choice in (DisplayName.FULL, DisplayName.INITIAL)
        }
        return {**shown, "named": True, "blank": blank}


class RecruiterLinkForm(ReviewForm):
    """The recruiter's own link: nobody knows who the reviewer is, so they tell us and prove it."""

    email = forms.EmailField(
        label=_("Your email address"),
        max_length=320,
        help_text=_("We email you a link to confirm your review. It is never shown publicly."),
        error_messages={
            "required": _("Enter your email address so we can confirm your review."),
            "invalid": _("Enter an email address like name@example.com."),
        },
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()
