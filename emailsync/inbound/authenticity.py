"""Decide whether a message really comes from the domain in its From header.

Anyone can send us mail with ``From: boss@agency.example``; we only act on it if the
agency's domain vouched for it. Three kinds of evidence count:

* a DKIM signature we verified ourselves whose ``d=`` domain aligns with the From domain
  (relaxed alignment: the same organisational domain, as DMARC does it);
* an ``Authentication-Results`` header written by a mail server we trust (our own border
  MTA, identified by its authserv-id) saying DMARC passed, or DKIM passed for an aligned
  domain;
* a verified DKIM signature by a domain the agency told us it sends through (an ATS or
  mailing platform signing with its own domain).

Nothing here raises on hostile input; failures come back as a verdict whose ``detail``
tells an admin what was found and what is missing.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import authres
import dkim
from publicsuffixlist import PublicSuffixList

from . import dkim_canonical, dkim_rsa, dkim_verify

try:
    import idna
except ImportError:  # pragma: no cover - idna ships with our dependencies
    idna = None

log = logging.getLogger(__name__)

#: dkimpy's DNS hook: ``dnsfunc(name: bytes, timeout=5) -> bytes | None`` (TXT record).
DnsFunc = Callable[..., bytes | None]

dkim_rsa.install()  # dkimpy's RSA steps in OpenSSL: same verdicts, a fraction of the CPU
dkim_canonical.install()  # and its text plumbing without the regex overhead

#: Each signature costs a DNS lookup and an RSA operation; a message with hundreds of
#: signatures is an attack on us, not a real message.
MAX_DKIM_SIGNATURES = 8


# --- organisational domains -----------------------------------------------------------------


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    # Loaded on first use: parsing the bundled list takes a moment we don't want at import.
    return PublicSuffixList()


def load_public_suffix_list() -> None:
    """Parse the bundled list now, at a process's start: about 0.1 s of CPU that would
    otherwise fall on the listener's first batch, every session in it waiting."""
    _public_suffix_list()


def normalise_domain(domain: str) -> str:
    """Lower-case Unicode form, so A-labels (DKIM ``d=``) and U-labels (From) compare."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii() and "xn--" not in domain:
        return domain
    try:
        if idna is not None:
            return idna.decode(domain, uts46=True)
        return domain.encode("idna").decode("idna")
    except Exception:  # an invalid IDN still compares with itself
        return domain


@functools.lru_cache(maxsize=4096)  # the same few agency domains, every email
def organisational_domain(domain: str) -> str:
    """The registrable domain (``mail.acme.co.uk`` -> ``acme.co.uk``), in Unicode form.

    Falls back to the (normalised) domain itself when the Public Suffix List has no answer,
    e.g. for ``localhost`` or a bare public suffix.
    """
    normalised = normalise_domain(domain or "")
    if not normalised:
        return ""
    try:
        registrable = _public_suffix_list().privatesuffix(normalised)
    except Exception:  # publicsuffixlist rejects some malformed names by raising
        registrable = None
    return registrable or normalised


def registrable(domain: str) -> bool:
    """``domain`` is a registrable domain or under one (``acme.co.uk``, ``mail.acme.com``),
    not a public suffix (``co.uk``, ``github.io``) or a name the list does not know."""
    try:
        return _public_suffix_list().privatesuffix(normalise_domain(domain)) is not None
    except Exception:  # publicsuffixlist rejects some malformed names by raising
        return False


def aligned(a: str, b: str) -> bool:
    """Relaxed DMARC alignment: both domains share an organisational domain."""
    org_a, org_b = organisational_domain(a), organisational_domain(b)
    return bool(org_a) and org_a == org_b


def within(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or one of its subdomains."""
    domain, parent = normalise_domain(domain), normalise_domain(parent)
    return bool(parent) and (domain == parent or domain.endswith("." + parent))


# --- DKIM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimResult:
    domain: str
    selector: str
    passed: bool
    error: str | None = None


class NotCached(Exception):
    """A key lookup that would wait for DNS, asked of a resolver told to answer from its cache
    only (the listener then does the work on a thread instead of its event loop)."""


class CachedTxtResolver:
    """TXT lookups for dkimpy through dnspython, cached for ``ttl`` seconds.

    Agencies send many messages with the same selector, so a small cache saves a lookup per
    message. Answers (including "no such record") are cached; failures are not, because a
    timeout says nothing about the record. Safe to share between threads.
    """

    def __init__(
        self,
        ttl: float = 300,
        timeout: float = 3,
        max_entries: int = 10_000,
        nameservers: Sequence[str] = (),
    ):
        self.ttl = ttl
        self.timeout = timeout
        self.max_entries = max_entries
        self.nameservers = list(nameservers)  # "host" or "host:port"; empty = the system's
        self._resolver = None
        self._cache: dict[bytes, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        key = name.lower()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self._lookup(name, min(timeout, self.timeout))
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()  # crude, but bounded; a refill costs one lookup each
            self._cache[key] = (now + self.ttl, record)
        return record

    def from_cache(self, name: bytes, timeout: float = 5) -> bytes | None:
        """Like calling the resolver, but a lookup it would have to make raises NotCached."""
        with self._lock:
            cached = self._cache.get(name.lower())
        if cached is None or cached[0] <= time.monotonic():
            raise NotCached(name)
        return cached[1]

    def _lookup(self, name: bytes, timeout: float) -> bytes | None:
        import dns.exception
        import dns.resolver

        try:
            answer = self.resolver().resolve(
                name.decode("ascii"), "TXT", lifetime=timeout, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
            # Timeout or SERVFAIL: DNS did not answer, which may pass (the listener asks the
            # sending server to retry). Anything else dnspython raises is about the name itself
            # (a selector that is no valid DNS label): no key, whenever we ask.
            raise dkim.DnsTimeoutError(str(error)) from error
        except dns.exception.DNSException:
            return None
        for rdata in answer.rrset or ():
            return b"".join(rdata.strings)
        return None

    def resolver(self):
        import dns.resolver

        if self._resolver is None:
            if not self.nameservers:
                self._resolver = dns.resolver.get_default_resolver()
            else:
                # An operator's own resolver (a local caching unbound, say): IPv4[:port].
                resolver = dns.resolver.Resolver(configure=False)
                servers = [ns.partition(":") for ns in self.nameservers]
                resolver.nameservers = [host for host, _, _ in servers]
                resolver.port = int(servers[0][2] or 53)
                self._resolver = resolver
        return self._resolver


DEFAULT_TXT_RESOLVER = CachedTxtResolver()


class _DnsWatcher:
    """Wraps a dnsfunc to remember what the key lookup did.

    dkimpy turns "no key" and "DNS failed" into a plain False, indistinguishable from a bad
    signature; an admin fixing their DNS needs to know which it was.
    """

    def __init__(self, dnsfunc: DnsFunc):
        self._dnsfunc = dnsfunc
        self.error: str | None = None

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        try:
            record = self._dnsfunc(name, timeout=timeout)
        except NotCached:
            raise
        except (dkim.DnsTimeoutError, OSError):  # DNS did not answer, or the network is down
            self.error = "dns_error"
            raise
        except Exception:  # a name no resolver can ask for (a junk selector), or a fault
            self.error = "key_not_found"
            raise
        if not record:
            self.error = "key_not_found"
        return record


def verify_dkim(raw_message: bytes, dnsfunc: DnsFunc | None = None) -> list[DkimResult]:
    """Verify each DKIM-Signature (top-down, at most ``MAX_DKIM_SIGNATURES``)."""
    dnsfunc = dnsfunc or DEFAULT_TXT_RESOLVER
    try:
        headers, body = dkim.rfc822_parse(raw_message)
    except Exception:
        if _SIGNATURE_LINE.search(raw_message):
            return [DkimResult("", "", False, "message_unparseable")]
        return []
    signatures = [field for field in headers if field[0].lower() == b"dkim-signature"]
    results = []
    for index, (_, signature) in enumerate(signatures):
        tags = _signature_tags(signature)
        domain, selector = tags.get("d", ""), tags.get("s", "")
        if index >= MAX_DKIM_SIGNATURES:
            results.append(DkimResult(domain, selector, False, "too_many_signatures"))
            continue
        watcher = _DnsWatcher(dnsfunc)
        try:
            checked = dkim_verify.verify(raw_message, headers, body, index, watcher)
            passed = checked.passed
            error = None if passed else (watcher.error or "signature_invalid")
        except NotCached:
            raise
        except Exception as exc:
            passed, error = False, watcher.error or _dkim_error_code(exc)
        if passed:
            # Report exactly the d= and s= that were verified, since alignment is decided on d=.
            domain = checked.domain.decode("ascii", "replace").lower()
            selector = checked.selector.decode("ascii", "replace").lower()
            if b"from" not in checked.signed:
                # RFC 6376 5.4: From MUST be signed, or the signature vouches for nothing
                # about the author; dkimpy does not enforce this when verifying.
                passed, error = False, "from_not_signed"
        results.append(DkimResult(domain, selector, passed, error))
    return results


_SIGNATURE_LINE = re.compile(rb"(?im)^dkim-signature\s*:")


def _signature_tags(signature: bytes) -> dict[str, str]:
    """d= and s= (lower-case, whitespace and control characters removed) for reporting;
    tolerant of junk. They end up in the trigger's auth detail, and PostgreSQL refuses NUL."""
    tags = {}
    for part in signature.decode("ascii", "replace").split(";"):
        name, _, value = part.partition("=")
        name = name.strip()
        if name in ("d", "s") and name not in tags:
            tags[name] = re.sub(r"[\s\x00-\x1f\x7f]+", "", value).lower()
    return tags


def _dkim_error_code(exc: Exception) -> str:
    message = str(exc).lower()
    if "body hash mismatch" in message:
        return "body_hash_mismatch"
    if isinstance(exc, dkim.DnsTimeoutError):
        return "dns_error"
    if isinstance(exc, dkim.KeyFormatError):
        return "key_too_small" if "too small" in message else "key_invalid"
    if isinstance(exc, dkim.ValidationError | dkim.MessageFormatError):
        return "signature_malformed"
    return "verify_error"


# --- Authentication-Results -----------------------------------------------------------------


@dataclass(frozen=True)
class AuthResDkim:
    result: str
    domain: str | None  # header.d, or the domain of header.i when d is absent
    selector: str | None


@dataclass(frozen=True)
class AuthResultsVerdict:
    authserv_id: str
    dmarc: str | None = None
    dmarc_header_from: str | None = None
    dkim: tuple[AuthResDkim, ...] = ()
    spf: str | None = None


def parse_authentication_results(
    values: Sequence[str], trusted_authserv_ids: Collection[str]
) -> AuthResultsVerdict | None:
    """Read the topmost Authentication-Results header from a trusted server, if any.

    Headers are given top-down as in the message. Lower trusted-looking headers are
    ignored: our border MTA adds its header on top, so anything below it was there when
    the message arrived and may be forged (RFC 8601 section 5).
    """
    trusted = {t.strip().lower() for t in trusted_authserv_ids if t and t.strip()}
    if not trusted:
        return None
    for value in values:
        parsed = _parse_authres_value(value)
        if parsed is not None and parsed.authserv_id in trusted:
            return parsed
    return None


def _parse_authres_value(value: str) -> AuthResultsVerdict | None:
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
        authserv_id = (header.authserv_id or "").strip().lower()
        results = [
            (
                str(r.method).lower(),
                str(r.result).lower(),
                {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in r.properties},
            )
            for r in header.results
        ]
    except Exception:  # authres is strict; real-world headers are not
        parsed = _simple_authres_parse(value)
        if parsed is None:
            return None
        authserv_id, results = parsed
    return _verdict_from(authserv_id, results)


_COMMENT = re.compile(r"\([^()]*\)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)")
_METHOD_RESULT = re.compile(r"^\s*([A-Za-z0-9_-]+)(?:/[0-9]+)?\s*=\s*([A-Za-z0-9_-]+)")


def _simple_authres_parse(value: str) -> tuple[str, list[tuple[str, str, dict]]] | None:
    """Lenient fallback: ``authserv-id [version]; method=result ptype.prop=value ...``."""
    text = value
    for _ in range(5):  # comments may nest; peel a few levels, then give up on the rest
        text = _COMMENT.sub(" ", text)
    parts = text.split(";")
    head = parts[0].split()
    if not head:
        return None
    results = []
    for part in parts[1:]:
        match = _METHOD_RESULT.match(part)
        if match:
            properties = {k.lower(): v.strip('"') for k, v in _PROPERTY.findall(part)}
            results.append((match[1].lower(), match[2].lower(), properties))
    return head[0].lower(), results


def _verdict_from(authserv_id: str, results: list[tuple[str, str, dict]]) -> AuthResultsVerdict:
    dmarc = dmarc_from = spf = None
    dkim_results = []
    for method, result, properties in results:
        if method == "dmarc" and dmarc is None:
            # RFC 7489 puts a domain here; some servers write the whole address.
            dmarc = result
            dmarc_from = properties.get("header.from", "").rpartition("@")[2] or None
        elif method == "spf" and spf is None:
            spf = result
        elif method == "dkim":
            domain = properties.get("header.d")
            if not domain and "@" in properties.get("header.i", ""):
                domain = properties["header.i"].rpartition("@")[2]
            dkim_results.append(AuthResDkim(result, domain, properties.get("header.s")))
    return AuthResultsVerdict(authserv_id, dmarc, dmarc_from, tuple(dkim_results), spf)
