"""One DKIM-Signature checked with dkimpy's own steps, without dkimpy's verifier object.

`dkim.DKIM(message).verify(idx)` builds an object per message, formats debug text for a logger
that is off (a repr of every signature's tags, the body hash in base64), and canonicalises
every header field of the message before picking the few the signature names. On a busy
listener that wrapping cost about as much as the RSA check it leads to. Here the same steps
run in the same order, through dkimpy's public pieces (tag rules, canonicalisation policy,
key record evaluation, the RSA check) and the faster drop-ins of dkim_canonical
and dkim_rsa; only the fields a signature names are canonicalised, which gives the same bytes
because field names carry no whitespace and selection ignores case either way.

The verdict, and every exception with its message, is dkimpy's: the tests run both over signed,
tampered and damaged messages and compare (tests/inbound/test_dkim_verify.py). A key of
another type (Ed25519) is rare enough to leave to dkimpy's verifier whole (`by_dkimpy`).
"""

import base64
import binascii
import logging
import re
from dataclasses import dataclass

import dkim
from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError

log = logging.getLogger(__name__)

# What dkimpy accepts as a signature's key (DomainSigner's default `minkey`).
MIN_KEY_BITS = 1024

_SIGNED_NAMES = re.compile(rb"\s*:\s*")
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class Checked:
    passed: bool
    domain: bytes  # d= and s= as the signature gives them
    selector: bytes
    signed: tuple[bytes, ...]  # h=, lower-cased


def verify(message: bytes, headers: list, body: bytes, index: int, dnsfunc) -> Checked:
    """The `index`-th DKIM-Signature of `message` (split into `headers` and `body` by
    `dkim.rfc822_parse`), checked here when its key is RSA, else by dkimpy's verifier."""
    signature = [field for field in headers if field[0].lower() == b"dkim-signature"][index]
    answers: dict = {}

    def looked_up_once(name, timeout=5):
        # dkimpy's verifier, if it takes over, sees the answer this check saw.
        if name not in answers:
            answers[name] = dnsfunc(name, timeout=timeout)
        return answers[name]

    try:
        return check(headers, body, signature, looked_up_once)
    except NotRSA:
        return by_dkimpy(message, index, looked_up_once)


def check(headers: list, body: bytes, signature: list, dnsfunc) -> Checked:
    """Verify one DKIM-Signature field (`signature`, a [name, value] pair from `headers`) of
    a message split by `dkim.rfc822_parse`. Raises what dkim.DKIM.verify raises."""
    try:
        tags = dkim.parse_tag_value(signature[1])
    except dkim.InvalidTagValueList as exc:
        raise dkim.MessageFormatError(exc) from exc
    dkim.validate_signature_fields(tags)
    domain, selector = tags[b"d"], tags[b"s"]
    signed = [name.lower() for name in _SIGNED_NAMES.split(tags[b"h"])]
    result = Checked(False, domain, selector, tuple(signed))

    name = selector + b"._domainkey." + domain + b"."
    try:
        key, key_bits, key_type, tlsrpt_only = dkim.load_pk_from_dns(name, dnsfunc, timeout=5)
    except (dkim.KeyFormatError, binascii.Error, dkim.DnsTimeoutError) as exc:
        # dkimpy's answer is a plain False; the record's name and the problem are for the
        # operator (the trigger records why it was not authenticated).
        log.info("DKIM key %s not usable: %s", name.decode("ascii", "replace"), exc)
        return result
    if key_type != b"rsa":
        raise NotRSA(key_type)
    if tlsrpt_only:  # a key published for TLS reports only (RFC 8460) signs no email
        raise dkim.ValidationError("Message is not tlsrpt and Service Type is tlsrpt")
    try:
        policy = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
    except InvalidCanonicalizationPolicyError as exc:
        raise dkim.MessageFormatError(f"invalid c= value: {exc.args[0]}") from exc
    hasher = dkim.HASH_ALGORITHMS[tags[b"a"]]

    canonical_body = policy.canonicalize_body(body)
    if b"l" in tags:
        canonical_body = canonical_body[: int(tags[b"l"])]
    try:
        expected = base64.b64decode(_WHITESPACE.sub(b"", tags[b"bh"]))
    except TypeError as exc:
        raise dkim.MessageFormatError(str(exc)) from exc
    body_hash = hasher(canonical_body).digest()
    if body_hash != expected:
        raise dkim.ValidationError(
            f"body hash mismatch (got {base64.b64encode(body_hash)}, expected {tags[b'bh']})"
        )

    # As dkimpy does (its bug 644046): a second From field counts even when h= names one.
    wanted = [*signed, b"from"] if b"from" in signed else signed
    fields = policy.canonicalize_headers(dkim.select_headers(headers, wanted))
    blanked = policy.canonicalize_headers([(signature[0], dkim.RE_BTAG.sub(b"\\1", signature[1]))])
    digest = hasher()
    for field_name, value in fields:
        digest.update(field_name + b":" + value)
    for field_name, value in blanked:  # hashed without its line ending
        digest.update(field_name + b":" + value.rstrip())

    signature_bytes = base64.b64decode(_WHITESPACE.sub(b"", tags[b"b"]))
    try:
        passed = dkim.RSASSA_PKCS1_v1_5_verify(digest, signature_bytes, key)
    except (TypeError, dkim.DigestTooLargeError) as exc:
        raise dkim.KeyFormatError(f"digest too large for modulus: {exc}") from exc
    if passed and key_bits < MIN_KEY_BITS:
        raise dkim.KeyFormatError(f"public key too small: {key_bits}")
    return Checked(bool(passed), domain, selector, tuple(signed))


class NotRSA(Exception):
    """The key is not RSA (Ed25519, RFC 8463, which needs PyNaCl, or a record for another
    service): `by_dkimpy` decides instead."""


def by_dkimpy(message: bytes, index: int, dnsfunc) -> Checked:
    """The signature at `index` checked by dkimpy's own verifier, start to finish."""
    checker = dkim.DKIM(message, logger=log)
    passed = bool(checker.verify(idx=index, dnsfunc=dnsfunc))
    return Checked(passed, checker.domain, checker.selector, checker.include_headers)
