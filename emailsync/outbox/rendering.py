"""Turn an outbox row into an email message, at send time.

Review requests and reminders are rendered from the live ReviewRequest (so an admin's edit to a
scheduled request is what goes out) with the agency's branding. Every other kind renders the row's
own context. Templates live at `emails/<template>/subject.txt`, `body.txt` and `body.html`;
the text ones are rendered without HTML escaping.

Header safety: every name that reaches a header (recruiter, agency, recipient) passes through
`header_text`, which turns CR, LF and other control characters into spaces, so a recruiter called
`Bob\\r\\nBcc: x@evil` is just an odd name, never an extra header.

International addresses: every address that reaches the envelope or a header passes through
`ascii_address`. An IDN domain goes out as its IDNA A-label (`zoe@bücher.de` ->
`zoe@xn--bcher-kva.de`), which every mail server accepts; display names stay Unicode and the email
package RFC 2047-encodes them. A non-ASCII local part (`李明@例え.jp`) could only be delivered with
SMTPUTF8, which Django's SMTP backend does not negotiate, so it raises `UndeliverableAddress`, and
the worker fails that one email with the exception's text as the reason.
"""

import functools
import re
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.template import Context, TemplateDoesNotExist, engines
from django.template.loader import get_template
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from emailsync.agencies.branding import ink_on
from emailsync.review_requests.bounces import bounce_local_part
from emailsync.review_requests.models import ReviewRequest
from emailsync.review_requests.unsubscribe import unsubscribe_mailto

from . import dkim
from .models import OutboundEmail, new_message_id

try:
    import idna
except ImportError:  # pragma: no cover - idna ships with our dependencies
    idna = None

REQUEST_KINDS = {OutboundEmail.Kind.REVIEW_REQUEST, OutboundEmail.Kind.REMINDER}
EXPIRY = timedelta(days=30)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\ufeff]")
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_BRAND = "#1f5fbf"


# Not the mail server's fault: Django's SMTP backend never asks for SMTPUTF8, whatever the
# server offers, so the reason says what the agency can do instead.
SMTPUTF8_NEEDED = (
    "Not sent: the recipient's address has non-ASCII characters before the @ (mail to it "
    "needs SMTPUTF8), and Email Sync cannot send to such addresses yet. Ask the person for "
    "another address and send them a new request."
)
BAD_IDN = "Not sent: the recipient's domain is not a valid internationalised domain name."


class UndeliverableAddress(ValueError):
    """An address we cannot put in an email; the message is the reason an agency sees."""


def ascii_domain(domain: str) -> str:
    """`domain` as DNS and SMTP know it: IDNA A-labels (`bücher.de` -> `xn--bcher-kva.de`).

    IDNA 2008 with UTS #46 mapping (the `idna` package), as current mail servers and browsers
    use; so `faß.de` is `xn--fa-hia.de`, not IDNA 2003's `fass.de`, a different domain. Falls back
    to the standard library's IDNA 2003 codec when the package is missing, or rejects a name
    IDNA 2003 allowed (symbol domains such as `☃.net` are still registered and deliverable).
    The inbound side only ever decodes (A-label -> Unicode); this is the one encoder.
    """
    if domain.isascii():  # nearly every domain: nothing to do
        return domain
    root = "." if domain.endswith(".") else ""
    name = domain.rstrip(".")
    if idna is not None:
        try:
            return idna.encode(name, uts46=True).decode("ascii") + root
        except UnicodeError:  # idna.IDNAError: not valid IDNA 2008; try IDNA 2003
            pass
    try:
        return name.encode("idna").decode("ascii") + root
    except UnicodeError as exc:
        raise UndeliverableAddress(BAD_IDN) from exc


def ascii_address(address: str) -> str:
    """`address` with its domain in A-labels. Raises UndeliverableAddress if the local part is
    not ASCII (Django would otherwise RFC 2047-encode it: a different, non-existent address)."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:  # not an address at all; Django's own validation reports it
        return address
    if not local.isascii():
        raise UndeliverableAddress(SMTPUTF8_NEEDED)
    return f"{local}@{ascii_domain(domain)}"


def configured_address(name: str) -> str:
    """An address from settings, ready for headers and the envelope."""
    value = getattr(settings, name)
    try:
        return ascii_address(value) if "@" in value else ascii_domain(value)
    except UndeliverableAddress as exc:
        raise ImproperlyConfigured(f"{name} {value!r} cannot be used in email: {exc}") from exc


def header_text(value, limit: int = 120) -> str:
    """A single line with no control characters: safe inside any header."""
    return " ".join(CONTROL.sub(" ", str(value or "")).split())[:limit]


def address_ok(value: str) -> bool:
    return bool(value) and not CONTROL.search(value) and value.count("@") == 1


def public_url(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return settings.EMAILSYNC_PUBLIC_URL + path


PLACEHOLDER = "TOKEN0PLACEHOLDER"


@functools.lru_cache(maxsize=16)
def link_template(name: str, fallback: str, urlconf: str, public: str) -> str:
    """The absolute URL of a per-request page with a placeholder token, resolved once: the
    worker builds thousands of links a second and `reverse()` is the slow part."""
    try:
        path = reverse(name, args=[PLACEHOLDER], urlconf=urlconf)
    except NoReverseMatch:
        path = fallback
    return public_url(path)


def request_link(name: str, fallback: str, token: str) -> str:
    template = link_template(name, fallback, settings.ROOT_URLCONF, settings.EMAILSYNC_PUBLIC_URL)
    return template.replace(PLACEHOLDER, token)


def review_url(token: str, rating: int | None = None) -> str:
    """The review form's address; resolved at send time so the form's URL can move."""
    url = request_link("review-form", f"/review/{PLACEHOLDER}/", token)
    return f"{url}?rating={rating}" if rating else url


def fast_unsubscribe_url(request: ReviewRequest) -> str:
    return request_link("unsubscribe", f"/unsubscribe/{PLACEHOLDER}/", request.token)


def logo_url(agency) -> str:
    if not agency.logo:
        return ""
    try:
        return public_url(agency.logo.url)
    except ValueError:
        return ""


# Words a display name carries that are not the person's first name.
HONORIFICS = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau"}
SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "cpa", "esq", "msc", "bsc"}


def first_name(name: str) -> str:
    """The name a greeting uses, from a display name as mail clients write it: "Karen Smith",
    "Smith, Karen (Acme Ltd)" (Outlook's directory form), "Dr. Karen Smith", "Karen Smith, PhD",
    "WATSON Amelia" (the family name first, in capitals, as French and many Asian business
    directories write it), "J. R. Smith" (initials: greeted by the whole name, not "Hi J,").
    Empty when there is none to use (then the greeting is a plain "Hello,")."""
    name = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", header_text(name))  # (Company), [External]
    last, comma, rest = name.partition(",")
    if comma and rest.strip() and not _is_suffix(rest):  # "Smith, Karen"
        name = rest
    elif comma:  # "Karen Smith, PhD" or a trailing comma
        name = last
    words = [w.strip(".,;:!?\"'") for w in name.split()]
    # A word with no letter or digit ("🎉", "–") is decoration, not a name to greet by.
    words = [
        w
        for w in words
        if any(c.isalnum() for c in w) and "@" not in w and w.lower() not in HONORIFICS
    ]
    if not words:
        return ""
    if _initial(words[0]):
        return " ".join(w + "." if _initial(w) else w for w in words)
    if _family_name_in_capitals(words[0]):
        given = [w for w in words[1:] if not w.isupper()]
        if given:
            return given[0]
    return words[0]


def _initial(word: str) -> bool:
    # One Latin letter: "J" of "J. R. Smith". A one-character name in Chinese or Korean (王 伟)
    # is a whole name.
    return len(word) == 1 and word.isascii() and word.isalpha()


def _family_name_in_capitals(word: str) -> bool:
    # Three letters or more: "AJ Smith" and "JP Martin" are greeted as AJ and JP.
    return len(word) >= 3 and word.isalpha() and word.isupper()


def _is_suffix(text: str) -> bool:
    words = [w.strip(".,").lower() for w in text.split()]
    return bool(words) and all(w in SUFFIXES for w in words)


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
    for candidate in candidates:
        if address_ok(candidate):
            try:
                return ascii_address(candidate)
            except UndeliverableAddress:  # needs SMTPUTF8 or a broken IDN: try the next one
                continue
    return ""


def wording(
    role: str, agency: str, recruiter: str, first_name: str, reminder: bool, message_by: str = ""
) -> dict:
    """The sentences of a review request, translated. Built in Python rather than with
    {% blocktranslate %} in three templates: the same words serve subject, text and HTML, and
    rendering stays cheap enough for the worker to keep pace with the mail server."""
    names = {"agency": agency, "recruiter": recruiter}
    if reminder:
        subject = (
            _("A reminder: how did %(recruiter)s at %(agency)s do?")
            if recruiter
            else _("A reminder: how did %(agency)s do?")
        )
    elif role == "candidate":
        subject = (
            _("How was your job search with %(recruiter)s at %(agency)s?")
            if recruiter
            else _("How was your job search with %(agency)s?")
        )
    elif role == "client":
        subject = (
            _("How did %(recruiter)s at %(agency)s do with your hire?")
            if recruiter
            else _("How did %(agency)s do with your hire?")
        )
    else:
        subject = (
            _("Would you review %(recruiter)s at %(agency)s?")
            if recruiter
            else _("Would you review %(agency)s?")
        )
    if role == "candidate":
        intro = (
            _(
                "Congratulations on your new role! %(recruiter)s at %(agency)s would love to "
                "hear how they did helping you find it."
            )
            if recruiter
            else _(
                "Congratulations on your new role! %(agency)s would love to hear how they did "
                "helping you find it."
            )
        )
    elif role == "client":
        intro = (
            _(
                "Thank you for hiring through %(agency)s. %(recruiter)s would value your "
                "feedback on how the search for your new team member went."
            )
            if recruiter
            else _(
                "Thank you for hiring through %(agency)s. They would value your feedback on how "
                "the search for your new team member went."
            )
        )
    else:
        intro = (
            _("%(recruiter)s at %(agency)s would value your feedback on working with them.")
            if recruiter
            else _("%(agency)s would value your feedback on working with them.")
        )
    return {
        "subject": subject % names,
        "greeting": (_("Hi %(name)s,") % {"name": first_name}) if first_name else _("Hello,"),
        "reminder": (
            _(
                "A few days ago %(agency)s asked for your review. It takes a minute, and it "
                "helps others choose well."
            )
            % names
            if reminder
            else ""
        ),
        "intro": intro % names,
        "writes": (
            _("%(author)s at %(agency)s writes:") % {**names, "author": message_by}
            if message_by and message_by != agency
            else _("%(agency)s writes:") % names
            if message_by or not recruiter
            else _("%(recruiter)s writes:") % names
        ),
        "rate": _("How would you rate them?"),
        "rate_text": _("How would you rate them, from 1 to 5 stars?"),
        "button": _("Write your review"),
        "button_text": _("Write your review:"),
        "expiry": _("The link is personal and works for %(days)s days. No account needed.")
        % {"days": EXPIRY.days},
        "sent_by": _("Sent by Email Sync on behalf of %(agency)s.") % names,
        "unsubscribe": _("Unsubscribe from all review requests"),
        "unsubscribe_text": _("Don't want review requests from anyone? Unsubscribe:"),
    }


def star_label(rating: int) -> str:
    return ngettext("%(rating)s star", "%(rating)s stars", rating) % {"rating": rating}


STAR_LABELS: dict[str, list[str]] = {}


def request_context(row: OutboundEmail, request: ReviewRequest) -> dict:
    agency = request.agency
    colour = agency.brand_colour if HEX.match(agency.brand_colour or "") else DEFAULT_BRAND
    agency_name = header_text(agency.name)
    recruiter = recruiter_name(request)
    is_reminder = row.kind == OutboundEmail.Kind.REMINDER
    language = translation.get_language() or ""
    labels = STAR_LABELS.get(language)
    if labels is None:
        labels = STAR_LABELS[language] = [star_label(n) for n in range(1, 6)]
    review = review_url(request.token)
    return {
        **(row.context or {}),
        "agency": agency,
        "agency_name": agency_name,
        "brand_colour": colour,
        "brand_ink": ink_on(colour),
        "logo_url": logo_url(agency),
        "recruiter_name": recruiter,
        "recipient_first_name": first_name(request.name),
        "role": request.role,
        "personal_message": request.personal_message.strip(),
        "review_request": request,
        "review_url": review,
        "stars": [
            {"rating": n, "url": f"{review}?rating={n}", "label": labels[n - 1]}
            for n in range(1, 6)
        ],
        "unsubscribe_url": fast_unsubscribe_url(request),
        "expiry_days": EXPIRY.days,
        "is_reminder": is_reminder,
        "wording": wording(
            request.role,
            agency_name,
            recruiter,
            first_name(request.name),
            is_reminder,
            header_text(request.message_by),
        ),
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
    from_email = configured_address("EMAILSYNC_FROM_EMAIL")
    inbound_domain = configured_address("EMAILSYNC_INBOUND_DOMAIN")
    to_email = ascii_address(row.to_email)  # before rendering: a refusal costs nothing
    request = row.review_request if row.kind in REQUEST_KINDS else None
    headers = {"Message-ID": row.message_id}
    reply_to = []
    with translation.override(settings.LANGUAGE_CODE):
        if request is not None:
            context = request_context(row, request)
            display = from_display(request)
            reply = reply_to_for(request, admin_emails or {})
            reply_to = [reply] if reply else []
            mailto = unsubscribe_mailto(request)
            if inbound_domain != settings.EMAILSYNC_INBOUND_DOMAIN:  # an IDN: A-label here too
                mailto = mailto.replace(
                    f"@{settings.EMAILSYNC_INBOUND_DOMAIN}", f"@{inbound_domain}"
                )
            headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>, <{mailto}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            headers["Auto-Submitted"] = "auto-generated"
            envelope = f"{bounce_local_part(request)}@{inbound_domain}"
        else:
            context = {
                **(row.context or {}),
                "agency": row.agency,
                "review_request": row.review_request,
                "public_url": settings.EMAILSYNC_PUBLIC_URL,
            }
            display = header_text((row.context or {}).get("from_name") or "Email Sync", 150)
            envelope = from_email
            headers["Auto-Submitted"] = "auto-generated"  # a notification: no out-of-office
        subject, text, html = render_parts(row.template, context)
    to_name = header_text(row.to_name)
    to = formataddr((to_name, to_email)) if to_name else to_email
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


def account_email(subject: str, text: str, to: str, html: str = "") -> SignedEmailMessage:
    """An email sent at once, not through the outbox (an invitation, a password reset: the
    person is waiting for it), dressed as the outbox's are: signed when signing is on, marked
    automatic so no out-of-office answers it (RFC 3834), its Message-ID on our domain rather
    than the server's host name."""
    message = SignedEmailMessage(
        header_text(subject, 300),
        text,
        # The outbox's From, whose domain the DKIM key and the Message-ID are on: not
        # DEFAULT_FROM_EMAIL, which an operator may have set apart.
        formataddr(("Email Sync", configured_address("EMAILSYNC_FROM_EMAIL"))),
        [to],
        headers={"Auto-Submitted": "auto-generated", "Message-ID": new_message_id()},
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message
