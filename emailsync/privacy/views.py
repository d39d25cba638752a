"""The public data-request form: /privacy/ → an emailed link → /privacy/confirm/<token>/.

The form page answers the same whatever address is typed (known, unknown, rate-limited for that
address, or a bot's honeypot), so it cannot be used to find out whom we hold data about. The
action happens only on a POST from the confirmation page, never on the GET a mail scanner makes.
"""

import json

from django import forms
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from emailsync.outbox.models import enqueue
from emailsync.review_requests.models import address_hash
from emailsync.throttling.models import Counter

from .models import LINK_LIFETIME, DataRequest
from .people import erase_person, export_person

HONEYPOT = "website"


class RequestForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Your email address"),
        max_length=320,
        error_messages={
            "required": gettext_lazy("Enter the email address the review request went to."),
            "invalid": gettext_lazy("Enter an email address like name@example.com."),
        },
    )
    action = forms.ChoiceField(
        label=gettext_lazy("What would you like?"),
        choices=DataRequest.Action.choices,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a copy of your data, or erasure.")},
    )

    def focus_first_error(self) -> None:
        """Put the cursor (and a screen reader) on the first field to fix."""
        for name in self.fields:
            if name in self.errors:
                self.fields[name].widget.attrs["autofocus"] = True
                return

    website = forms.CharField(required=False, label=gettext_lazy("Leave this empty"))


def _page(request, template, context=None, status=200):
    response = render(request, template, context or {}, status=status)
    add_never_cache_headers(response)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    # The token must not leak to another site; "no-referrer" would also make browsers send
    # `Origin: null` with the page's own form, which the CSRF check refuses (every POST a 403).
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@require_http_methods(["GET", "POST"])
def request_form(request):
    form = RequestForm(request.POST or None)
    if request.method == "POST":
        client = request.META.get("REMOTE_ADDR") or "unknown"
        decision = Counter.hit(
            f"privacy:request:{client}",
            getattr(settings, "EMAILSYNC_PRIVACY_REQUESTS_PER_IP", 5),
            getattr(settings, "EMAILSYNC_PRIVACY_WINDOW", 3600),
        )
        if not decision.allowed:
            response = _page(request, "privacy/limited.html", status=429)
            response.headers["Retry-After"] = str(decision.retry_after)
            return response
        if form.is_valid():
            data = form.cleaned_data
            if not data[HONEYPOT]:
                send_link(data["email"], data["action"])
            return _page(request, "privacy/sent.html")
        form.focus_first_error()
        return _page(request, "privacy/request.html", {"form": form}, status=400)
    return _page(request, "privacy/request.html", {"form": form})


def send_link(email: str, action: str) -> None:
    """Email a confirmation link, at most a few per address a day (no mail-bombing anyone)."""
    per_address = Counter.hit(
        f"privacy:address:{address_hash(email)}",
        getattr(settings, "EMAILSYNC_PRIVACY_LINKS_PER_ADDRESS", 3),
        86400,
    )
    if not per_address.allowed:
        return
    with transaction.atomic():
        row, token = DataRequest.open(email, action)
        enqueue(
            "notification",
            to_email=row.email,
            template="privacy_confirm",
            context={
                "action": action,
                "confirm_url": settings.EMAILSYNC_PUBLIC_URL
                + reverse("privacy-confirm", args=[token]),
                "hours": int(LINK_LIFETIME.total_seconds() // 3600),
            },
        )


@require_http_methods(["GET", "POST"])
def confirm(request, token):
    row = DataRequest.find(token)
    if row is None:
        return _page(request, "privacy/invalid.html", status=404)
    if request.method == "GET":
        return _page(request, "privacy/confirm.html", {"data_request": row})
    with transaction.atomic():
        row = DataRequest.objects.select_for_update().filter(pk=row.pk).first()
        if row is None:  # used by a concurrent POST
            return _page(request, "privacy/invalid.html", status=404)
        email, action = row.email, row.action
        row.delete()  # single use
        if action == DataRequest.Action.EXPORT:
            data = export_person(email)
        else:
            erase_person(email)
    if action == DataRequest.Action.EXPORT:
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )
        response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
        add_never_cache_headers(response)
        return response
    return _page(request, "privacy/erased.html")
