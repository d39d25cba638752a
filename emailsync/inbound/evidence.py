"""Is a trigger really from the agency? Evidence first, judgement second.

Gathering evidence (verifying DKIM signatures, which may need DNS) depends only on the message,
so adapters do it once, off the event loop and outside the database transaction. Judging it
against one agency's domains and trusted signers is pure and cheap, so `ingest` does it per
agency inside the transaction.
"""

import functools
import logging
from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings

from .authenticity import (
    AuthResultsVerdict,
    CachedTxtResolver,
    DkimResult,
    NotCached,
    aligned,
    parse_authentication_results,
    verify_dkim,
    within,
)
from .headers import ParsedHeaders, parse_headers

log = logging.getLogger("emailsync.inbound")

DKIM_ALIGNED = "dkim_aligned"
AUTHRES_DMARC = "authres_dmarc"
AUTHRES_DKIM_ALIGNED = "authres_dkim_aligned"
DKIM_TRUSTED_SIGNER = "dkim_trusted_signer"
TRUSTED_FROM_DOMAIN = "trusted_from_domain"


@dataclass(frozen=True)
class AuthEvidence:
    dkim: tuple[DkimResult, ...] = ()
    authres: AuthResultsVerdict | None = None  # the topmost header from a trusted authserv-id


@dataclass(frozen=True)
class AuthVerdict:
    passed: bool
    method: str  # one of the constants above, or "" when not passed
    detail: str  # for the admin: what we saw, or what is missing
    # Failed only because DNS did not answer for a signature that would have counted (aligned
    # with From, or a trusted signer's): asking again later may pass.
    temporary: bool = False


@functools.cache
def configured_resolver() -> CachedTxtResolver:
    return CachedTxtResolver(nameservers=settings.EMAILSYNC_DNS_RESOLVERS)


def gather_evidence(
    header: bytes,
    body: bytes,
    dnsfunc=None,
    headers: ParsedHeaders | None = None,
    raw: bytes | None = None,
    trusted_authserv_ids: Collection[str] | None = None,
) -> AuthEvidence:
    """Verify the message's DKIM signatures and read trusted Authentication-Results (those of
    `trusted_authserv_ids`, by default the operator's front MTAs)."""
    dnsfunc = dnsfunc or configured_resolver()
    try:
        headers = headers or parse_headers(header)
        dkim = ()
        if headers.has_dkim_signature:
            # The whole message as received when the adapter still has it (no copy to make).
            dkim = tuple(verify_dkim(raw if raw is not None else header + b"\r\n" + body, dnsfunc))
        if trusted_authserv_ids is None:
            trusted_authserv_ids = settings.EMAILSYNC_TRUSTED_AUTHSERV_IDS
        authres = parse_authentication_results(headers.authentication_results, trusted_authserv_ids)
        return AuthEvidence(dkim, authres)
    except NotCached:  # the caller asked for no DNS work here; it retries where it may wait
        raise
    except Exception:  # fail closed: no evidence means quarantine, never a crash
        log.exception("gathering authentication evidence failed")
        return AuthEvidence()


def judge(
    evidence: AuthEvidence,
    from_domain: str,
    trusted_signers: Collection[str] = (),
    trust_from_domain: bool = False,
) -> AuthVerdict:
    if not from_domain:
        return AuthVerdict(False, "", "no From domain")
    verified = [r for r in evidence.dkim if r.passed]
    for result in verified:
        if aligned(result.domain, from_domain):
            return AuthVerdict(True, DKIM_ALIGNED, describe_dkim(result))
    verdict = evidence.authres
    if verdict is not None:
        header_from = verdict.dmarc_header_from
        if verdict.dmarc == "pass" and (not header_from or aligned(header_from, from_domain)):
            return AuthVerdict(True, AUTHRES_DMARC, describe_authres(verdict))
        for result in verdict.dkim:
            if result.result == "pass" and result.domain and aligned(result.domain, from_domain):
                return AuthVerdict(
                    True,
                    AUTHRES_DKIM_ALIGNED,
                    f"{verdict.authserv_id}: dkim=pass header.d={result.domain}",
                )
    # Exact domain or a subdomain only: trusting an ATS vendor's signing domain must not extend
    # to every other customer sharing that vendor's organisational domain.
    for result in verified:
        if any(within(result.domain, trusted) for trusted in trusted_signers):
            return AuthVerdict(True, DKIM_TRUSTED_SIGNER, describe_dkim(result))
    if trust_from_domain:
        return AuthVerdict(
            True, TRUSTED_FROM_DOMAIN, "accepted on the From domain alone (agency setting)"
        )
    temporary = any(
        r.error == "dns_error"
        and (aligned(r.domain, from_domain) or any(within(r.domain, t) for t in trusted_signers))
        for r in evidence.dkim
    )
    return AuthVerdict(False, "", describe_failure(from_domain, evidence), temporary)


def describe_dkim(result: DkimResult) -> str:
    if result.passed:
        return f"dkim=pass d={result.domain} s={result.selector}"
    return f"dkim=fail d={result.domain or '?'} s={result.selector or '?'} ({result.error})"


def describe_authres(verdict: AuthResultsVerdict) -> str:
    parts = [f"dmarc={verdict.dmarc or 'none'}"]
    if verdict.dmarc_header_from:
        parts.append(f"header.from={verdict.dmarc_header_from}")
    parts.extend(f"dkim={d.result} header.d={d.domain or '?'}" for d in verdict.dkim)
    if verdict.spf:
        parts.append(f"spf={verdict.spf}")
    return f"{verdict.authserv_id}: " + " ".join(parts)


def describe_failure(from_domain: str, evidence: AuthEvidence) -> str:
    """What we found, in one line an admin can act on."""
    findings = [] if evidence.dkim else ["no DKIM signature"]
    for result in evidence.dkim[:3]:
        text = describe_dkim(result)
        if result.passed:
            text += f" (not aligned with {from_domain})"
        findings.append(text)
    if evidence.authres is None:
        findings.append("no trusted Authentication-Results")
    else:
        findings.append(describe_authres(evidence.authres))
    return "; ".join(findings)
