"""A DNS check of an agency domain's SPF, DMARC and common DKIM selectors, for the admin.

Read-only TXT lookups with a short timeout; the answer is advice, never a gate (the listener
verifies every message's DKIM signature itself).
"""

from dataclasses import dataclass, field

import dns.exception
import dns.resolver
from django.conf import settings
from django.utils.translation import gettext as _

# Selectors the common providers use: Google Workspace, Microsoft 365, and generic ones.
DKIM_SELECTORS = ["google", "selector1", "selector2", "default", "k1", "s1", "s2", "dkim", "mail"]
TIMEOUT = 2.0


@dataclass
class Report:
    domain: str
    spf: str = ""
    dmarc: str = ""
    dkim: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.spf and self.dmarc and self.dkim) and not self.error


def resolver() -> dns.resolver.Resolver:
    r = dns.resolver.Resolver()
    servers = getattr(settings, "EMAILSYNC_DNS_RESOLVERS", [])
    if servers:
        r.nameservers = [s.split(":")[0] for s in servers]
        ports = {s.split(":")[1] for s in servers if ":" in s}
        if ports:
            r.port = int(ports.pop())
    r.lifetime = TIMEOUT
    return r


def txt(name: str, lookup) -> list[str]:
    try:
        answer = lookup(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def check(domain: str, lookup=None) -> Report:
    report = Report(domain)
    lookup = lookup or resolver().resolve
    try:
        spf = [t for t in txt(domain, lookup) if t.lower().startswith("v=spf1")]
        report.spf = spf[0] if spf else ""
        dmarc = [t for t in txt(f"_dmarc.{domain}", lookup) if t.lower().startswith("v=dmarc1")]
        report.dmarc = dmarc[0] if dmarc else ""
        for selector in DKIM_SELECTORS:
            records = txt(f"{selector}._domainkey.{domain}", lookup)
            if any("p=" in r for r in records):
                report.dkim.append(selector)
    except (dns.exception.DNSException, OSError) as exc:
        report.error = _("DNS lookup failed: %(error)s") % {"error": type(exc).__name__}
        return report
    if not report.spf:
        report.problems.append(
            _("No SPF record: add a TXT record starting v=spf1 for your mail provider.")
        )
    if len(spf) > 1:
        report.problems.append(_("More than one SPF record: merge them into one."))
    if not report.dmarc:
        report.problems.append(
            _("No DMARC record: add a TXT record at _dmarc with v=DMARC1; p=none to start.")
        )
    if not report.dkim:
        report.problems.append(
            _(
                "No DKIM key at the usual selectors. Turn on DKIM signing in your mail provider; "
                "without it, test emails are quarantined unless you trust the From domain alone."
            )
        )
    return report
