"""Who a trigger email asks for a review: the To and Cc addresses, minus everyone the agency's
rules exclude, each exclusion recorded with its reason code.

Pure functions over plain data, so the whole rule table is tested without a database; `ingest`
gathers the facts (suppressions, recent asks) and writes the outcome.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .roles import is_role_address

# Reason codes, stable: they are shown to agencies, exported, and returned by the API.
INBOUND_ADDRESS = "inbound_address"  # one of our BCC addresses put in To/Cc
SENDER = "sender"  # the person who sent the email
COLLEAGUE = "colleague"  # the agency's own domain or one of its members
ROLE_ADDRESS = "role_address"  # noreply@, postmaster@, bounces…
SUPPRESSED = "suppressed"  # unsubscribed or bounced, on any agency
RECENTLY_ASKED = "recently_asked"  # this agency asked them within the dedupe window
BULK_SEND = "bulk_send"  # more recipients than the agency's cap: nobody is asked
SETUP_TEST_PREVIEW = "setup_test_preview"  # would be invited; a setup test asks only the admin
QUARANTINED = "quarantined"  # would be invited once the trigger is released

RECIPIENT_REASONS = {
    INBOUND_ADDRESS: "It is an Email Sync BCC address.",
    SENDER: "It is the sender of the email.",
    COLLEAGUE: "It belongs to the agency (its domain or a member).",
    ROLE_ADDRESS: "It is a role or no-reply address.",
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
    seen: dict[str, Recipient] = {}
    for r in addresses:
        email = r.email.strip().lower()
        if email and email not in seen:
            seen[email] = Recipient(email, r.name.strip())
    return list(seen.values())


def strip_plus_tag(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def exclusion(
    email: str,
    *,
    sender: str,
    inbound_domain: str,
    agency_domains: Collection[str],
    member_emails: Collection[str],
) -> str:
    """The first rule that excludes `email`, or '' when none does. Order is the priority."""
    domain = email.rpartition("@")[2]
    if domain == inbound_domain:
        return INBOUND_ADDRESS
    if sender and strip_plus_tag(email) == strip_plus_tag(sender):
        return SENDER
    if domain in agency_domains or strip_plus_tag(email) in member_emails:
        return COLLEAGUE
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
    decisions = []
    for r in unique_recipients(recipients):
        reason = exclusion(
            r.email,
            sender=sender,
            inbound_domain=inbound_domain,
            agency_domains=agency_domains,
            member_emails=member_emails,
        )
        if not reason and r.email in suppressed:
            reason = SUPPRESSED
        if not reason and r.email in recently_asked:
            reason = RECENTLY_ASKED
        decisions.append(Decision(r.email, r.name, invite=not reason, reason=reason))
    if sum(d.invite for d in decisions) > cap:
        decisions = [Decision(d.email, d.name, False, d.reason or BULK_SEND) for d in decisions]
    return decisions
