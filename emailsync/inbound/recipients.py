"""Who a trigger email asks for a review: the To and Cc addresses, minus everyone the agency's
rules exclude, each exclusion recorded with its reason code.

Pure functions over plain data, so the whole rule table is tested without a database; `ingest`
gathers the facts (suppressions, recent asks) and writes the outcome.
"""

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .roles import is_role_address

# Reason codes, stable: they are shown to agencies, exported, and returned by the API.
INBOUND_ADDRESS = "inbound_address"  # one of our BCC addresses put in To/Cc
SENDER = "sender"  # the person who sent the email
COLLEAGUE = "colleague"  # the agency's own domain or one of its members
ROLE_ADDRESS = "role_address"  # noreply@, postmaster@, bounces…
UNDELIVERABLE = "undeliverable"  # no internet mail domain, or Exchange's internal form
# Non-ASCII before the @ (SMTPUTF8): deliverable, but not by our outbound mail (see
# outbox/rendering.py), so it is said here rather than as a send that fails days later.
UNSENDABLE = "unsendable_address"
SUPPRESSED = "suppressed"  # unsubscribed or bounced, on any agency
RECENTLY_ASKED = "recently_asked"  # this agency asked them within the dedupe window
BULK_SEND = "bulk_send"  # more recipients than the agency's cap: nobody is asked
SETUP_TEST_PREVIEW = "setup_test_preview"  # would be invited; a setup test asks only the admin
QUARANTINED = "quarantined"  # would be invited once the trigger is released

RECIPIENT_REASONS = {
    INBOUND_ADDRESS: "It is an Email Sync BCC address.",
    SENDER: "It is the sender of the email.",
    COLLEAGUE: "It belongs to the agency (its domain or a member).",
    ROLE_ADDRESS: "It is a role or no-reply address, or a CRM's logging address.",
    UNDELIVERABLE: "The address cannot receive email from the internet.",
    UNSENDABLE: "Email Sync cannot yet send to an address with non-ASCII characters before the @.",
    SUPPRESSED: "The person unsubscribed, or mail to them bounced.",
    RECENTLY_ASKED: "The agency asked them within its dedupe window.",
    BULK_SEND: "The email went to more people than the agency's recipient cap.",
    SETUP_TEST_PREVIEW: "Would be invited; a setup test only asks the admin who sent it.",
    QUARANTINED: "Would be invited if the trigger is released from quarantine.",
}


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Decision:
    email: str
    name: str
    invite: bool
    reason: str = ""


def unique_recipients(addresses: Iterable[Recipient]) -> list[Recipient]:
    """To then Cc, first occurrence wins (it usually carries the display name)."""
    return [Recipient(email, name) for email, name in _unique(addresses).items()]


def _unique(addresses: Iterable[Recipient]) -> dict[str, str]:
    """unique_recipients as email -> name: the first form of each mailbox."""
    return {forms[0][0]: forms[0][1] for forms in _by_mailbox(addresses).values()}


def _by_mailbox(addresses: Iterable[Recipient]) -> dict[str, list[tuple[str, str]]]:
    """One person per mailbox (jo+jobs@x and jo@x in one email are one person): each mailbox's
    forms, (email, name), in the order given, each address once."""
    people: dict[str, list[tuple[str, str]]] = {}
    for r in addresses:
        email = r.email.strip().lower()
        if not email:
            continue
        forms = people.setdefault(strip_plus_tag(email), [])
        if all(email != e for e, _ in forms):
            forms.append((email, plain_name(r.name)))
    return people


def plain_name(name: str) -> str:
    """A display name as a person would write it. Outlook quotes names in single quotes
    ('Zoe Candidate' <zoe@x>), which the header keeps as part of the name; a request must
    not greet "'Zoe Candidate'"."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "'":
        name = name[1:-1].strip()
    if "@" in name:
        # Outlook names a recipient who is not in the address book by the address itself
        # ('zoe@x.example' <zoe@x.example>), and ATS templates fall back to it. That is no name
        # to greet by, and the review form offers the request's name as the reviewer's public
        # name: an address there could be published with the review. A name written with an
        # address puts the name first ("Ann (ann@x)", "Jane Doe - jane@x"); what follows the
        # address ("zoe@x via LinkedIn") is not a name.
        address = _ADDRESS_IN_NAME.search(name)
        if address is not None:
            name = name[: address.start()].rstrip(_NAME_SEPARATORS)
    return name


# An address: "zoe@x.example" (a list's "a@x;b@y" is two).
_ADDRESS_IN_NAME = re.compile(r"""[^\s@()<>\[\]"',;]+@[^\s@()<>\[\]"',;]+""")
# What may stand between a name and the address written after it.
_NAME_SEPARATORS = " \t-–—:|/,;([<\"'"


def strip_plus_tag(email: str) -> str:
    if "+" not in email and "@" in email:
        # Nothing to strip, and splitting at the first "@" and joining again gives `email`
        # back. Most addresses; this runs several times for each recipient.
        return email
    local, _, domain = email.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


# A host name under a top-level domain, as mail on the internet is addressed (IDNs checked in
# their A-label form). Not "localhost", an address literal ([192.0.2.1]) or a name with stray
# punctuation, such as Outlook's 'jo@x.example' with its quotes read as part of the address.
_MAIL_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
)
# Exchange's encapsulated addresses (IMCEAEX-_o=…@tenant.prod.outlook.com) name a mailbox
# inside one organisation; mail from outside to them never arrives.
_EXCHANGE_INTERNAL = re.compile(r"imcea[a-z]*-")


@functools.lru_cache(maxsize=4096)  # a batch's recipients share a few domains
def mail_domain(domain: str) -> bool:
    """Whether `domain` (lower-case) can receive internet mail by its form. A final dot (the
    root; full-width in some input methods) names the same domain."""
    domain = domain.rstrip(".\u3002\uff0e\uff61")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return len(domain) <= 253 and _MAIL_DOMAIN.fullmatch(domain) is not None


def deliverable(email: str) -> bool:
    """Whether mail can reach `email` (lower-case) from the internet, judged by its form."""
    local, _, domain = email.rpartition("@")
    return bool(local) and mail_domain(domain) and not _EXCHANGE_INTERNAL.match(local)


def exclusion(
    email: str,
    *,
    sender: str,
    inbound_domain: str,
    agency_domains: Collection[str],
    member_emails: Collection[str],
) -> str:
    """The first rule that excludes `email`, or '' when none does. Order is the priority."""
    sender_key = strip_plus_tag(sender) if sender else ""
    return _exclusion(email, sender_key, inbound_domain, agency_domains, member_emails)


def _exclusion(
    email: str,
    sender_key: str,
    inbound_domain: str,
    agency_domains: Collection[str],
    member_emails: Collection[str],
) -> str:
    """`exclusion` with the sender's untagged address worked out by the caller, once for all
    of an email's recipients."""
    domain = email.rpartition("@")[2]
    if domain == inbound_domain:
        return INBOUND_ADDRESS
    key = strip_plus_tag(email)
    if sender_key and key == sender_key:
        return SENDER
    if domain in agency_domains or key in member_emails:
        return COLLEAGUE
    if not deliverable(email):
        return UNDELIVERABLE
    if not email.rpartition("@")[0].isascii():
        return UNSENDABLE
    if is_role_address(email):
        return ROLE_ADDRESS
    return ""


def decide(
    recipients: Iterable[Recipient],
    *,
    sender: str,
    inbound_domain: str,
    agency_domains: Collection[str],
    member_emails: Collection[str],
    suppressed: Collection[str],
    recently_asked: Collection[str],
    cap: int,
) -> list[Decision]:
    """Apply every rule; when more than `cap` remain, the email is a bulk send and asks nobody."""
    sender_key = strip_plus_tag(sender) if sender else ""
    decisions = []
    invited = 0
    for forms in _by_mailbox(recipients).values():
        email, name = forms[0]
        if len(forms) > 1 and email in suppressed:
            # That address bounced on its own (a bounce covers only the address); another form
            # of the mailbox, listed too, may still reach the person.
            email, name = next(((e, n or name) for e, n in forms if e not in suppressed), forms[0])
        reason = _exclusion(email, sender_key, inbound_domain, agency_domains, member_emails)
        # `suppressed` and `recently_asked` may name the address or its mailbox: an unsubscribe
        # or an ask under jo@x holds for jo+jobs@x.
        key = strip_plus_tag(email)
        if not reason and (email in suppressed or key in suppressed):
            reason = SUPPRESSED
        if not reason and (email in recently_asked or key in recently_asked):
            reason = RECENTLY_ASKED
        if not reason:
            invited += 1
        decisions.append(Decision(email, name, not reason, reason))
    if invited > cap:
        decisions = [Decision(d.email, d.name, False, d.reason or BULK_SEND) for d in decisions]
    return decisions
