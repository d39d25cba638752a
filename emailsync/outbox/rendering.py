"""Turn an outbox row into an email message, at send time.

Review requests and reminders are rendered from the live ReviewRequest (so an admin's edit to a
scheduled request is what goes out) with the agency's branding. Every other kind renders the row's
own context. Templates live at `emails/<template>/subject.txt`, `body.txt` and `body.html`;
the text ones are rendered without HTML escaping.

Header safety: every name that reaches a header (recruiter, agency, recipient) passes through
`header_text`, which turns CR, LF and other control characters into spaces, so a recruiter called
`Bob\\r\\nBcc: x@evil` is just an odd name, never an extra header.
"""

import re
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, TemplateDoesNotExist, engines
from django.template.loader import get_template
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from emailsync.review_requests.bounces import bounce_local_part
from emailsync.review_requests.models import ReviewRequest
from emailsync.review_requests.unsubscribe import unsubscribe_mailto, unsubscribe_url

from . import dkim
from .models import OutboundEmail

REQUEST_KINDS = {OutboundEmail.Kind.REVIEW_REQUEST, OutboundEmail.Kind.REMINDER}
EXPIRY = timedelta(days=30)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\ufeff]")
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_BRAND = "#1f5fbf"


def header_text(value, limit: int = 120) -> str:
    """A single line with no control characters: safe inside any header."""
    return " ".join(CONTROL.sub(" ", str(value or "")).split())[:limit]


def address_ok(value: str) -> bool:
    return bool(value) and not CONTROL.search(value) and value.count("@") == 1


def public_url(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return settings.EMAILSYNC_PUBLIC_URL + path


def review_url(token: str, rating: int | None = None) -> str:
    """The review form's address; resolved at send time so the form's URL can move."""
    try:
        path = reverse("review-form", args=[token])
    except NoReverseMatch:
        path = f"/review/{token}/"
    url = public_url(path)
    return f"{url}?rating={rating}" if rating else url


def contrast_ink(colour: str) -> str:
    """Black or white text, whichever reads better on `colour` (WCAG relative luminance)."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return "#ffffff" if (1.05 / (luminance + 0.05)) >= 4.5 else "#111111"


def logo_url(agency) -> str:
    if not agency.logo:
        return ""
    try:
        return public_url(agency.logo.url)
    except ValueError:
        return ""


def first_name(name: str) -> str:
    name = header_text(name)
    return name.split()[0] if name else ""


def recruiter_name(request: ReviewRequest) -> str:
    return header_text(request.recruiter.display_name) if request.recruiter else ""


def reply_to_for(request: ReviewRequest, admin_emails: dict[int, str]) -> str:
    """The recruiter's first sending address, else their login, else the agency's admin."""
    recruiter = request.recruiter
    candidates = []
    if recruiter is not None:
        senders = sorted(recruiter.senders.all(), key=lambda s: s.pk)
        candidates += [s.email for s in senders]
        candidates.append(recruiter.user.email)
    candidates.append(admin_emails.get(request.agency_id, ""))
    return next((c for c in candidates if address_ok(c)), "")


def request_context(row: OutboundEmail, request: ReviewRequest) -> dict:
    agency = request.agency
    colour = agency.brand_colour if HEX.match(agency.brand_colour or "") else DEFAULT_BRAND
    return {
        **(row.context or {}),
        "agency": agency,
        "agency_name": header_text(agency.name),
        "brand_colour": colour,
        "brand_ink": contrast_ink(colour),
        "logo_url": logo_url(agency),
        "recruiter_name": recruiter_name(request),
        "recipient_first_name": first_name(request.name),
        "role": request.role,
        "personal_message": request.personal_message.strip(),
        "review_request": request,
        "review_url": review_url(request.token),
        "stars": [{"rating": n, "url": review_url(request.token, n)} for n in range(1, 6)],
        "unsubscribe_url": unsubscribe_url(request),
        "expiry_days": EXPIRY.days,
        "is_reminder": row.kind == OutboundEmail.Kind.REMINDER,
        "public_url": settings.EMAILSYNC_PUBLIC_URL,
    }


def render_text(name: str, context: dict) -> str:
    # Plain text and subjects are not HTML: render them without autoescaping.
    template = engines["django"].engine.get_template(name)
    return template.render(Context(context, autoescape=False))


def render_parts(template: str, context: dict) -> tuple[str, str, str | None]:
    subject = header_text(render_text(f"emails/{template}/subject.txt", context), 300)
    text = render_text(f"emails/{template}/body.txt", context).strip() + "\n"
    try:
        html = get_template(f"emails/{template}/body.html").render(context)
    except TemplateDoesNotExist:
        html = None
    return subject, text, html


def from_display(request: ReviewRequest) -> str:
    agency = header_text(request.agency.name, 80)
    recruiter = recruiter_name(request)
    return header_text(f"{recruiter} at {agency}" if recruiter else agency, 150)


def build_message(
    row: OutboundEmail, *, admin_emails: dict[int, str] | None = None, esp: bool = False
) -> EmailMultiAlternatives:
    """The message for `row`. `esp` is True for API backends (anymail), which keep their own
    return path and report bounces through webhooks instead of VERP."""
    from_email = settings.EMAILSYNC_FROM_EMAIL
    request = row.review_request if row.kind in REQUEST_KINDS else None
    headers = {"Message-ID": row.message_id}
    reply_to = []
    with translation.override(settings.LANGUAGE_CODE):
        if request is not None:
            context = request_context(row, request)
            display = from_display(request)
            reply = reply_to_for(request, admin_emails or {})
            reply_to = [reply] if reply else []
            headers["List-Unsubscribe"] = (
                f"<{unsubscribe_url(request)}>, <{unsubscribe_mailto(request)}>"
            )
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            headers["Auto-Submitted"] = "auto-generated"
            envelope = f"{bounce_local_part(request)}@{settings.EMAILSYNC_INBOUND_DOMAIN}"
        else:
            context = {
                **(row.context or {}),
                "agency": row.agency,
                "review_request": row.review_request,
                "public_url": settings.EMAILSYNC_PUBLIC_URL,
            }
            display = header_text((row.context or {}).get("from_name") or "Email Sync", 150)
            envelope = from_email
        subject, text, html = render_parts(row.template, context)
    to_name = header_text(row.to_name)
    to = formataddr((to_name, row.to_email)) if to_name else row.to_email
    sender = formataddr((display, from_email))
    if esp:
        message = SignedEmailMessage(
            subject, text, sender, [to], reply_to=reply_to, headers=headers
        )
        message.metadata = {"outbound_id": str(row.pk)}
        message.tags = [row.kind]
        message.track_clicks = False  # our links must stay our links (one-click unsubscribe)
    else:
        headers["From"] = sender
        message = SignedEmailMessage(
            subject, text, envelope, [to], reply_to=reply_to, headers=headers
        )
    if html:
        message.attach_alternative(html, "text/html")
    return message


class SignedEmailMessage(EmailMultiAlternatives):
    """An EmailMultiAlternatives that DKIM-signs itself when signing is configured."""

    def message(self, *args, **kwargs):
        return dkim.sign(super().message(*args, **kwargs))
