"""Sender authenticity: real DKIM signatures made with a key generated here, fake DNS."""

import base64

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound import authenticity
from emailsync.inbound.authenticity import (
    AuthResultsVerdict,
    CachedTxtResolver,
    DkimResult,
    aligned,
    organisational_domain,
    parse_authentication_results,
    verify_dkim,
)
from emailsync.inbound.evidence import AuthEvidence, AuthVerdict, judge

TRUSTED_MX = ["mx.emailsync.example"]

MESSAGE = (
    b"From: Jane Recruiter <jane@acme.com>\r\n"
    b"To: Carla <carla@example.org>\r\n"
    b"Subject: Welcome to your new job\r\n"
    b"Date: Tue, 1 Oct 2024 11:00:00 +0100\r\n"
    b"Message-ID: <1@acme.com>\r\n"
    b"\r\n"
    b"Dear Carla,\r\n\r\nWelcome aboard.\r\n"
)


def _generate_key() -> tuple[bytes, bytes]:
    """(PEM private key, DER SubjectPublicKeyInfo), made fresh for this test run."""
    # cryptography is a development dependency (pyproject's dev extra, requirements.lock).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, der


@pytest.fixture(scope="module")
def key():
    return _generate_key()


class FakeDns:
    """dkimpy's dnsfunc contract, answering only for the selectors we published."""

    def __init__(self):
        self.records: dict[bytes, bytes] = {}
        self.queries: list[bytes] = []

    def publish(self, selector: str, domain: str, public_der: bytes) -> None:
        name = f"{selector}._domainkey.{domain}.".encode()
        self.records[name] = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)

    def __call__(self, name: bytes, timeout: int = 5) -> bytes | None:
        self.queries.append(name)
        return self.records.get(name)


def sign(message: bytes, private_pem: bytes, domain: str, selector: str = "sel1") -> bytes:
    signature = dkim.sign(message, selector.encode(), domain.encode(), private_pem)
    return signature + message


@pytest.fixture
def dns(key):
    fake = FakeDns()
    for domain in ("acme.com", "mail.acme.com", "mailer.example", "ats.example", "other.co.uk"):
        fake.publish("sel1", domain, key[1])
    fake.publish("sel1", "acme.co.uk", key[1])
    return fake


def decide(from_domain, raw, authres=(), trusted_ids=(), signers=(), dnsfunc=None):
    """Evidence from the message, judged for one From domain, as ingest does it."""
    evidence = AuthEvidence(
        tuple(verify_dkim(raw, dnsfunc)), parse_authentication_results(authres, trusted_ids)
    )
    return judge(evidence, from_domain, signers)


def check(raw, dns, from_domain="acme.com", authres=(), trusted_ids=TRUSTED_MX, signers=()):
    return decide(from_domain, raw, authres, trusted_ids, signers, dnsfunc=dns)


# --- organisational domains and alignment ----------------------------------------------------


def test_organisational_domain():
    assert organisational_domain("mail.acme.com") == "acme.com"
    assert organisational_domain("a.b.acme.co.uk") == "acme.co.uk"
    assert organisational_domain("ACME.COM.") == "acme.com"
    assert organisational_domain("mail.xn--bcher-kva.de") == "bücher.de"
    assert organisational_domain("mail.bücher.de") == "bücher.de"
    assert organisational_domain("co.uk") == "co.uk"  # a bare public suffix
    assert organisational_domain("localhost") == "localhost"
    assert organisational_domain("") == ""


def test_relaxed_alignment():
    assert aligned("mail.acme.com", "acme.com")
    assert aligned("acme.com", "news.acme.com")
    assert aligned("xn--bcher-kva.de", "bücher.de")
    assert not aligned("acme.com", "acme.net")
    assert not aligned("acme.co.uk", "other.co.uk")
    assert not aligned("evilacme.com", "acme.com")
    assert not aligned("", "")


# --- verify_dkim -----------------------------------------------------------------------------


def test_verify_dkim_pass(key, dns):
    results = verify_dkim(sign(MESSAGE, key[0], "acme.com"), dnsfunc=dns)
    assert results == [DkimResult("acme.com", "sel1", True, None)]
    assert dns.queries == [b"sel1._domainkey.acme.com."]


def test_verify_dkim_reports_each_signature_top_down(key, dns):
    raw = sign(sign(MESSAGE, key[0], "mailer.example"), key[0], "acme.com")
    results = verify_dkim(raw, dnsfunc=dns)
    assert [(r.domain, r.passed) for r in results] == [("acme.com", True), ("mailer.example", True)]


def test_body_tampered(key, dns):
    raw = sign(MESSAGE, key[0], "acme.com").replace(b"Welcome aboard", b"Wire the money")
    [result] = verify_dkim(raw, dnsfunc=dns)
    assert not result.passed
    assert result.error == "body_hash_mismatch"


def test_signed_header_tampered(key, dns):
    raw = sign(MESSAGE, key[0], "acme.com").replace(b"Subject: Welcome", b"Subject: Invoice")
    [result] = verify_dkim(raw, dnsfunc=dns)
    assert (result.passed, result.error) == (False, "signature_invalid")


def test_key_not_published(key, dns):
    [result] = verify_dkim(sign(MESSAGE, key[0], "acme.com", selector="gone"), dnsfunc=dns)
    assert (result.domain, result.selector, result.passed) == ("acme.com", "gone", False)
    assert result.error == "key_not_found"


def test_dns_failure_is_an_error_not_an_exception(key):
    def broken_dns(name, timeout=5):
        raise dkim.DnsTimeoutError("timed out")

    [result] = verify_dkim(sign(MESSAGE, key[0], "acme.com"), dnsfunc=broken_dns)
    assert (result.passed, result.error) == (False, "dns_error")

    def crashing_dns(name, timeout=5):
        raise OSError("network unreachable")

    [result] = verify_dkim(sign(MESSAGE, key[0], "acme.com"), dnsfunc=crashing_dns)
    assert (result.passed, result.error) == (False, "dns_error")


def test_garbage_key_record(key, dns):
    dns.records[b"sel1._domainkey.acme.com."] = b"v=DKIM1; k=rsa; p=bm90IGEga2V5"
    [result] = verify_dkim(sign(MESSAGE, key[0], "acme.com"), dnsfunc=dns)
    assert not result.passed and result.error


def test_malformed_signature_header(dns):
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.com; s=sel1; b=!!!\r\n" + MESSAGE
    [result] = verify_dkim(raw, dnsfunc=dns)
    assert (result.domain, result.selector, result.passed) == ("acme.com", "sel1", False)
    assert result.error == "signature_malformed"


def test_control_characters_in_reported_tags_are_dropped(dns):
    """Found by the fuzzer: d= with a NUL reached the trigger's auth detail, which PostgreSQL
    refuses to store, so the message was answered 451 for ever."""
    raw = b"DKIM-Signature: v=1; d=acme.com\x00; s=se\x01l1; b=!!!\r\n" + MESSAGE
    [result] = verify_dkim(raw, dnsfunc=dns)
    assert (result.domain, result.selector, result.passed) == ("acme.com", "sel1", False)


class _PassesForFrom(bytes):
    """A header name dkimpy's signer takes for "from" (it refuses to sign without From)."""

    def lower(self):
        return self

    def __eq__(self, other):
        return other == b"from" or bytes.__eq__(self, other)

    __hash__ = bytes.__hash__


def test_signature_that_does_not_cover_from_is_refused(key, dns):
    signature = dkim.sign(
        MESSAGE, b"sel1", b"acme.com", key[0], include_headers=[_PassesForFrom(b"subject")]
    )
    assert b"h=subject;" in signature
    # dkimpy accepts it, so anyone holding one such message could put any From above it.
    spoofed = signature + MESSAGE.replace(b"jane@acme.com", b"ceo@acme.com")
    assert dkim.DKIM(spoofed).verify(dnsfunc=dns)
    [result] = verify_dkim(spoofed, dnsfunc=dns)
    assert (result.domain, result.passed, result.error) == ("acme.com", False, "from_not_signed")
    assert not check(spoofed, dns).passed


def test_no_signature(dns):
    assert verify_dkim(MESSAGE, dnsfunc=dns) == []
    assert dns.queries == []


def test_signature_count_is_capped(key, dns):
    raw = sign(MESSAGE, key[0], "acme.com")
    signature = raw[: len(raw) - len(MESSAGE)]
    many = signature * 12 + MESSAGE
    results = verify_dkim(many, dnsfunc=dns)
    assert len(results) == 12
    assert all(r.passed for r in results[: authenticity.MAX_DKIM_SIGNATURES])
    assert results[-1].error == "too_many_signatures"
    assert len(dns.queries) == authenticity.MAX_DKIM_SIGNATURES


def test_unparseable_message_with_signature(dns):
    raw = b"DKIM-Signature: v=1; d=acme.com\r\n\x00\x01 broken\r\n: no name\r\n\r\nbody"
    assert all(not r.passed for r in verify_dkim(raw, dnsfunc=dns))


# --- decide: our own DKIM verification -------------------------------------------------------


def test_aligned_signature_passes(key, dns):
    verdict = check(sign(MESSAGE, key[0], "acme.com"), dns)
    assert (verdict.passed, verdict.method) == (True, "dkim_aligned")
    assert verdict.detail == "dkim=pass d=acme.com s=sel1"


def test_subdomain_signer_is_aligned(key, dns):
    verdict = check(sign(MESSAGE, key[0], "mail.acme.com"), dns)
    assert (verdict.passed, verdict.method) == (True, "dkim_aligned")
    assert verdict.detail == "dkim=pass d=mail.acme.com s=sel1"


def test_unaligned_signer_fails(key, dns):
    verdict = check(sign(MESSAGE, key[0], "mailer.example"), dns)
    assert (verdict.passed, verdict.method) == (False, "")
    assert "dkim=pass d=mailer.example s=sel1 (not aligned with acme.com)" in verdict.detail
    assert "no trusted Authentication-Results" in verdict.detail


def test_tampered_body_fails(key, dns):
    raw = sign(MESSAGE, key[0], "acme.com").replace(b"Dear Carla", b"Dear Carl")
    verdict = check(raw, dns)
    assert not verdict.passed
    assert "dkim=fail d=acme.com s=sel1 (body_hash_mismatch)" in verdict.detail


def test_no_signature_fails(dns):
    verdict = check(MESSAGE, dns)
    assert verdict == AuthVerdict(False, "", "no DKIM signature; no trusted Authentication-Results")


def test_public_suffix_is_not_an_organisation(key, dns):
    verdict = check(sign(MESSAGE, key[0], "other.co.uk"), dns, from_domain="acme.co.uk")
    assert not verdict.passed
    verdict = check(sign(MESSAGE, key[0], "acme.co.uk"), dns, from_domain="acme.co.uk")
    assert verdict.passed


def test_idn_from_domain_aligns_with_a_label_signer(key):
    fake = FakeDns()
    fake.publish("sel1", "xn--bcher-kva.de", key[1])
    raw = sign(MESSAGE, key[0], "xn--bcher-kva.de")
    assert decide("bücher.de", raw, dnsfunc=fake).passed


def test_missing_from_domain_fails(key, dns):
    verdict = check(sign(MESSAGE, key[0], "acme.com"), dns, from_domain="")
    assert (verdict.passed, verdict.detail) == (False, "no From domain")


# --- decide: Authentication-Results ----------------------------------------------------------


def test_trusted_dmarc_pass(dns):
    authres = [
        "mx.emailsync.example; spf=pass smtp.mailfrom=acme.com; dmarc=pass header.from=acme.com"
    ]
    verdict = check(MESSAGE, dns, authres=authres)
    assert (verdict.passed, verdict.method) == (True, "authres_dmarc")
    assert verdict.detail == "mx.emailsync.example: dmarc=pass header.from=acme.com spf=pass"


def test_trusted_dmarc_pass_for_another_domain_fails(dns):
    authres = ["mx.emailsync.example; dmarc=pass header.from=evil.example"]
    assert not check(MESSAGE, dns, authres=authres).passed


def test_trusted_dkim_pass_aligned(dns):
    authres = ["mx.emailsync.example; dkim=pass header.d=mail.acme.com header.s=k1; dmarc=none"]
    verdict = check(MESSAGE, dns, authres=authres)
    assert (verdict.passed, verdict.method) == (True, "authres_dkim_aligned")
    authres = ["mx.emailsync.example; dkim=pass header.i=@acme.com"]
    assert check(MESSAGE, dns, authres=authres).method == "authres_dkim_aligned"


def test_trusted_dkim_pass_unaligned_or_failed_fails(dns):
    for result in ("dkim=pass header.d=mailer.example", "dkim=fail header.d=acme.com"):
        assert not check(MESSAGE, dns, authres=[f"mx.emailsync.example; {result}"]).passed


def test_untrusted_authentication_results_are_ignored(dns):
    forged = ["mx.evil.example; dmarc=pass header.from=acme.com; dkim=pass header.d=acme.com"]
    verdict = check(MESSAGE, dns, authres=forged)
    assert not verdict.passed
    assert "no trusted Authentication-Results" in verdict.detail
    assert not check(MESSAGE, dns, authres=forged, trusted_ids=[]).passed


def test_only_the_topmost_trusted_header_counts(dns):
    headers = [
        "mx.other.example; dmarc=pass header.from=acme.com",  # untrusted: skipped
        "mx.emailsync.example; dmarc=fail header.from=acme.com",  # ours, topmost: counts
        "mx.emailsync.example; dmarc=pass header.from=acme.com",  # forged by the sender
    ]
    verdict = check(MESSAGE, dns, authres=headers)
    assert not verdict.passed
    assert "mx.emailsync.example: dmarc=fail" in verdict.detail


def test_authserv_id_match_is_case_insensitive(dns):
    authres = ["MX.EmailSync.Example; dmarc=pass header.from=acme.com"]
    assert check(MESSAGE, dns, authres=authres).passed


# --- decide: trusted signing domains ---------------------------------------------------------


def test_trusted_signing_domain_passes(key, dns):
    raw = sign(MESSAGE, key[0], "ats.example")
    assert not check(raw, dns).passed
    verdict = check(raw, dns, signers=["ats.example"])
    assert (verdict.passed, verdict.method) == (True, "dkim_trusted_signer")
    assert verdict.detail == "dkim=pass d=ats.example s=sel1"


def test_trusted_signing_domain_covers_subdomains_only(key, dns):
    raw = sign(MESSAGE, key[0], "mail.acme.com")
    assert check(raw, dns, from_domain="client.example", signers=["acme.com"]).passed
    raw = sign(MESSAGE, key[0], "acme.com")
    assert not check(raw, dns, from_domain="client.example", signers=["mail.acme.com"]).passed


def test_trusted_signer_needs_a_verified_signature(key, dns):
    raw = sign(MESSAGE, key[0], "ats.example").replace(b"aboard", b"abroad")
    assert not check(raw, dns, signers=["ats.example"]).passed


# --- parse_authentication_results ------------------------------------------------------------


def test_parse_authentication_results_fields():
    verdict = parse_authentication_results(
        [
            "mx.emailsync.example 1; dkim=pass (good) header.d=acme.com header.s=s1;"
            " dkim=fail header.i=@mailer.example; spf=softfail smtp.mailfrom=x@acme.com;"
            " dmarc=pass (p=reject) header.from=acme.com"
        ],
        TRUSTED_MX,
    )
    assert verdict == AuthResultsVerdict(
        authserv_id="mx.emailsync.example",
        dmarc="pass",
        dmarc_header_from="acme.com",
        dkim=(
            authenticity.AuthResDkim("pass", "acme.com", "s1"),
            authenticity.AuthResDkim("fail", "mailer.example", None),
        ),
        spf="softfail",
    )


def test_parse_authentication_results_falls_back_when_authres_refuses():
    value = "mx.emailsync.example; dmarc=pass header.from=acme.com (a (nested) comment);;"
    verdict = parse_authentication_results([value], TRUSTED_MX)
    assert verdict is not None
    assert (verdict.dmarc, verdict.dmarc_header_from) == ("pass", "acme.com")


def test_parse_authentication_results_none_cases():
    assert parse_authentication_results([], TRUSTED_MX) is None
    assert parse_authentication_results(["mx.emailsync.example; none"], []) is None
    assert parse_authentication_results(["", ";;;", "   "], TRUSTED_MX) is None
    verdict = parse_authentication_results(["mx.emailsync.example; none"], TRUSTED_MX)
    assert verdict == AuthResultsVerdict("mx.emailsync.example")


def test_header_from_written_as_an_address():
    verdict = parse_authentication_results(
        ["mx.emailsync.example; dmarc=pass header.from=jane@acme.com"], TRUSTED_MX
    )
    assert verdict.dmarc_header_from == "acme.com"


# --- the cached resolver ---------------------------------------------------------------------


def test_cached_txt_resolver_caches_answers(monkeypatch):
    resolver = CachedTxtResolver(ttl=300, timeout=1)
    calls = []

    def lookup(name, timeout):
        calls.append((name, timeout))
        return b"v=DKIM1; p=x" if name.startswith(b"sel1.") else None

    monkeypatch.setattr(resolver, "_lookup", lookup)
    assert resolver(b"sel1._domainkey.acme.com.") == b"v=DKIM1; p=x"
    assert resolver(b"SEL1._domainkey.ACME.com.", timeout=5) == b"v=DKIM1; p=x"
    assert resolver(b"gone._domainkey.acme.com.") is None
    assert resolver(b"gone._domainkey.acme.com.") is None
    assert calls == [(b"sel1._domainkey.acme.com.", 1), (b"gone._domainkey.acme.com.", 1)]


def test_cached_txt_resolver_expires_and_does_not_cache_failures(monkeypatch):
    resolver = CachedTxtResolver(ttl=0)
    outcomes = [dkim.DnsTimeoutError("slow"), b"v=DKIM1; p=y", b"v=DKIM1; p=z"]

    def lookup(name, timeout):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(resolver, "_lookup", lookup)
    with pytest.raises(dkim.DnsTimeoutError):
        resolver(b"s._domainkey.a.example.")
    assert resolver(b"s._domainkey.a.example.") == b"v=DKIM1; p=y"
    assert resolver(b"s._domainkey.a.example.") == b"v=DKIM1; p=z"  # ttl=0: expired


# --- hostile input ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.text(max_size=200), max_size=4))
def test_decide_never_raises(raw, authres):
    def no_dns(name, timeout=5):
        return None

    verdict = decide("acme.com", raw, authres, TRUSTED_MX, ["ats.example"], dnsfunc=no_dns)
    assert isinstance(verdict.detail, str)
    assert not verdict.passed or verdict.method


def test_decide_never_raises_on_signature_shaped_garbage():
    def no_dns(name, timeout=5):
        return None

    for header in (
        b"DKIM-Signature: \r\n",
        b"DKIM-Signature: v=1; d=; s=; h=from; bh=; b=\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.com; s=x; h=from; bh=AAAA; b=AAAA; l=-1\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.com; s=x; h=from; bh=AAAA; b=AAAA; i=@x\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=\xff\xfe; s=\x00; h=from; bh=AAAA; b=AAAA\r\n",
    ):
        verdict = decide("acme.com", header + MESSAGE, dnsfunc=no_dns)
        assert not verdict.passed
