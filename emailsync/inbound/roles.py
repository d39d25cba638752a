"""Addresses that belong to a machine or a function, not to a person.

A review request sent to one of these is at best lost and at worst lands in an abuse desk
or a mailing list, so recipients matching them are skipped. This module is the one place
that list lives.

Deliberately NOT on the list: ``info``, ``admin``, ``hello``, ``contact``, ``office``,
``sales``, ``jobs``, ``finance``, ``hr`` and friends. Small businesses (an agency's clients) run
their whole mailbox on ``info@``, and the finance or HR manager who hired may use ``finance@`` or
``hr@``: a real person reads them. Nor ``ap`` (accounts payable), which is also someone's initials.
"""

from __future__ import annotations

import re

#: Compared against the local part with "+tag" removed, lower-cased, and with the
#: separators ``-``, ``_`` and ``.`` squeezed out (so ``Do-Not-Reply`` and ``no_reply``
#: are both caught).
ROLE_LOCAL_PARTS = frozenset(
    {
        # Explicitly unattended senders; a reply or request goes nowhere.
        "noreply",
        "donotreply",
        "autoreply",
        # Mandatory system mailboxes (RFC 5321 4.5.1) that bounces and DSNs come from.
        "mailerdaemon",
        "postmaster",
        # Operational role mailboxes defined by RFC 2142; never a candidate or client.
        "abuse",
        "hostmaster",
        "webmaster",
        # Return paths for bounce processing (VERP); bare and prefixed forms below.
        "bounce",
        "bounces",
        # Mailing-list robots: mail to them is a command, not a message.
        "listserv",
        "majordomo",
        "unsubscribe",
        # Automated notification senders (banks, SaaS, ATS systems).
        "notification",
        "notifications",
        "alert",
        "alerts",
        # A client's finance mailboxes, which invoices and remittances are copied to. Whoever
        # reads them processes payments; they did not work with the recruiter.
        "accounts",
        "accountspayable",
        "invoice",
        "invoices",
        "billing",
        "payroll",
        "remittance",
        "remittances",
    }
)

#: Generated variants start with one of these: ``noreply-invoices``, ``donotreply.hr``.
#: Matched against the squeezed local part, so ``no-reply-x`` is caught too.
#: Exchange's own system mailboxes (``MicrosoftExchange329e71ec…@``) carry a hex id.
ROLE_SQUEEZED_PREFIXES = ("noreply", "donotreply", "microsoftexchange")

#: VERP and list bounce addresses carry an ID after a separator: ``bounces-1234``,
#: ``bounce_ab12``, ``bounces=example.com``. Only the part before the first separator is
#: compared, so ``bouncer`` (a plausible surname-based address) is not caught.
ROLE_TOKEN_PREFIXES = frozenset({"bounce", "bounces"})

#: Mail drops of CRMs and ATSs: a recruiter copies one so the email is logged against the
#: contact, and it stands in To or Cc beside the candidate. Nobody reads a review request there.
#: A domain matches itself and its subdomains (Salesforce puts an org's id in front). Only
#: vendors' own domains are listed: a pattern such as "any bcc.* domain" would also take in
#: real people's (bcc.co.uk, a college's bcc.edu).
MAIL_DROP_DOMAINS = (
    "bcc.hubspot.com",
    "forward.hubspot.com",
    "pipedrivemail.com",
    "le.salesforce.com",  # Email to Salesforce
    "case.salesforce.com",  # Email-to-Case
    "apex.salesforce.com",  # Apex email services
    "mailbox.insight.ly",
)
_MAIL_DROP_SUFFIXES = tuple("." + domain for domain in MAIL_DROP_DOMAINS)

_FIRST_TOKEN = re.compile(r"[-_.=]")
# A first token in ROLE_TOKEN_PREFIXES starts the local part: most addresses are ruled out by
# this test alone, without splitting.
_TOKEN_STARTS = tuple(ROLE_TOKEN_PREFIXES)


def is_role_address(addr_spec: str) -> bool:
    """True if the address (``local@domain``, or a bare local part) is a role address."""
    if "@" in addr_spec and is_mail_drop(addr_spec.rpartition("@")[2]):
        return True
    local = addr_spec.rpartition("@")[0] if "@" in addr_spec else addr_spec
    local = local.strip().strip('"').lower().split("+", 1)[0]
    if not local:
        return False
    # Three str.replace calls cost a third of a regular expression substitution.
    squeezed = local.replace("-", "").replace("_", "").replace(".", "")
    if squeezed in ROLE_LOCAL_PARTS or squeezed.startswith(ROLE_SQUEEZED_PREFIXES):
        return True
    return (
        local.startswith(_TOKEN_STARTS) and _FIRST_TOKEN.split(local, 1)[0] in ROLE_TOKEN_PREFIXES
    )


def is_mail_drop(domain: str) -> bool:
    """True for a CRM's or ATS's logging address's domain (MAIL_DROP_DOMAINS)."""
    domain = domain.strip().lower().rstrip(".")
    return domain in MAIL_DROP_DOMAINS or domain.endswith(_MAIL_DROP_SUFFIXES)
