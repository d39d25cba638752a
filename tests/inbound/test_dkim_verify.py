"""A DKIM signature checked without dkimpy's verifier object must get dkimpy's exact verdict:
the same pass or fail, or the same exception with the same message, for every signature of
signed, tampered, oddly keyed and randomly damaged messages."""

import logging

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound import dkim_verify
from emailsync.inbound.authenticity import verify_dkim

from .mail import CANONICALIZATIONS, FakeDns, SigningKey, build

KEY = SigningKey("acme.test", "s1")
OTHER = SigningKey("mailer.test", "m1")
DNS = FakeDns(KEY, OTHER)
SIGNED = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"x-note"]
QUIET = logging.getLogger("tests.dkimpy")

MESSAGE = build(
    cc=("Colin Client <colin@client.test>",),
    subject="Welcome \t aboard,  your\tfirst day",
    body="Hi Cara,  \n\n\tCongratulations on the new job!\t \nIt starts   Monday.\n\n\n\n",
    extra_headers=[("X-Note", "spaced  \t out")],
).replace(b"X-Note:", b"X-Folded: one\r\n \ttwo  parts \r\n\tthree\r\nX-Note:")


def sign(message, key=KEY, canonicalize=(b"relaxed", b"simple"), **options) -> bytes:
    options.setdefault("include_headers", SIGNED)
    header = dkim.sign(
        message,
        key.selector.encode(),
        key.domain.encode(),
        key.private_pem,
        canonicalize=canonicalize,
        **options,
    )
    return header + message


def outcome(call):
    try:
        return ("returned", *call())
    except Exception as exc:  # the same failure, with the same words, is part of the contract
        return ("raised", type(exc), str(exc))


def ours(raw, index, dns):
    headers, body = dkim.rfc822_parse(raw)

    def call():
        checked = dkim_verify.verify(raw, headers, body, index, dns)
        return checked.passed, checked.domain, checked.selector, checked.signed

    return outcome(call)


def dkimpys(raw, index, dns, minkey=1024):
    def call():
        checker = dkim.DKIM(raw, logger=QUIET, minkey=minkey)
        passed = bool(checker.verify(idx=index, dnsfunc=dns))
        return passed, checker.domain, checker.selector, checker.include_headers

    return outcome(call)


def assert_same_verdicts(raw, dns=DNS):
    """Every signature of `raw`; returns the verdicts for the test to say what they are."""
    try:
        headers, _ = dkim.rfc822_parse(raw)
    except Exception:  # dkimpy cannot read it either: verify_dkim reports it unparseable
        with pytest.raises(Exception):  # noqa: B017 - whatever dkimpy raises, it raises
            dkim.DKIM(raw)
        return []
    count = sum(1 for name, _ in headers if name.lower() == b"dkim-signature")
    verdicts = []
    for index in range(count):
        mine, theirs = ours(raw, index, dns), dkimpys(raw, index, dns)
        assert mine == theirs
        verdicts.append(mine)
    return verdicts


def passed(verdict) -> bool:
    return verdict[0] == "returned" and verdict[1] is True


@pytest.mark.parametrize("canonicalize", CANONICALIZATIONS, ids=lambda c: b"/".join(c).decode())
def test_signed_and_tampered_messages_get_dkimpys_verdict(canonicalize):
    raw = sign(MESSAGE, canonicalize=canonicalize)
    assert [passed(v) for v in assert_same_verdicts(raw)] == [True]

    body_changed = raw.replace(b"Congratulations", b"Commiserations")
    (verdict,) = assert_same_verdicts(body_changed)
    assert verdict[:2] == ("raised", dkim.ValidationError) and "body hash" in verdict[2]
    header_changed = raw.replace(b"first day", b"last day")
    assert [passed(v) for v in assert_same_verdicts(header_changed)] == [False]

    respaced_body = raw.replace(b"new job!", b"new   job!\t")
    respaced_header = raw.replace(b"Welcome \t aboard", b"Welcome  aboard")
    relaxed_header, relaxed_body = (c == b"relaxed" for c in canonicalize)
    assert [passed(v) for v in assert_same_verdicts(respaced_body)] == [relaxed_body]
    assert [passed(v) for v in assert_same_verdicts(respaced_header)] == [relaxed_header]
    # A second From added after signing is counted, as dkimpy counts it: below the signed
    # one, and above it, where a reader's mail client would show the forger's.
    second_from = raw.replace(b"\r\n\r\n", b"\r\nFrom: Mallory <m@evil.test>\r\n\r\n", 1)
    assert [passed(v) for v in assert_same_verdicts(second_from)] == [False]
    forged_on_top = raw.replace(b"From: ", b"From: Mallory <m@evil.test>\r\nFrom: ", 1)
    assert [passed(v) for v in assert_same_verdicts(forged_on_top)] == [False]


def test_sha1_a_body_length_and_several_signatures_get_dkimpys_verdict():
    sha1 = sign(MESSAGE, signature_algorithm=b"rsa-sha1")
    assert [passed(v) for v in assert_same_verdicts(sha1)] == [True]

    with_length = sign(MESSAGE, length=True)
    appended = with_length + b"-- \r\nAdded by a mailing list\r\n"
    assert [passed(v) for v in assert_same_verdicts(appended)] == [True]

    # An ATS signing as itself, then the agency's own domain: both are checked, top-down.
    twice = sign(sign(MESSAGE, key=OTHER), key=KEY)
    assert [passed(v) for v in assert_same_verdicts(twice)] == [True, True]
    unpublished = SigningKey("acme.test", "gone")
    mixed = sign(sign(MESSAGE, key=unpublished), key=KEY)
    assert [passed(v) for v in assert_same_verdicts(mixed)] == [True, False]


@pytest.mark.parametrize(
    "record",
    [
        None,  # no such key
        b"",
        b"v=DKIM1; k=rsa; p=AAAA",
        b"v=DKIM1; k=rsa; p=AAA",  # not even base64
        b"v=DKIM1; k=rsa; p=",  # a revoked key
        b"v=DKIM2; k=rsa; p=" + KEY.txt.partition(b"p=")[2],
        b"v=DKIM1; k=dsa; p=" + KEY.txt.partition(b"p=")[2],
        KEY.txt + b"; s=tlsrpt",
        KEY.txt + b"; s=other",
        KEY.txt + b"; h=sha1",
        b"v=DKIM1; p=" + KEY.txt.partition(b"p=")[2] + b"!!",
        b"no tags at all",
    ],
)
def test_odd_key_records_get_dkimpys_verdict(record):
    raw = sign(MESSAGE)

    def dns(name, timeout=5):
        return record

    (verdict,) = assert_same_verdicts(raw, dns)
    if record in (None, b"", b"v=DKIM1; k=rsa; p="):
        assert not passed(verdict)


def test_a_key_below_the_minimum_is_refused_as_dkimpy_refuses_it(monkeypatch):
    raw = sign(MESSAGE)  # a 1,024-bit key, judged as if the minimum were 2,048
    monkeypatch.setattr(dkim_verify, "MIN_KEY_BITS", 2048)
    mine, theirs = ours(raw, 0, DNS), dkimpys(raw, 0, DNS, minkey=2048)
    assert mine == theirs == ("raised", dkim.KeyFormatError, "public key too small: 1024")
    # Only a signature that holds is judged on its key's size: a broken one is just false.
    broken = raw.replace(b"first day", b"last day")
    mine, theirs = ours(broken, 0, DNS), dkimpys(broken, 0, DNS, minkey=2048)
    assert mine == theirs and mine[:2] == ("returned", False)


def test_a_key_for_tls_reports_is_refused_before_the_signature_is_read():
    raw = retag(sign(MESSAGE), b"c=relaxed/simple", b"c=relaxed/odd")

    def dns(name, timeout=5):
        return KEY.txt + b"; s=tlsrpt"

    (verdict,) = assert_same_verdicts(raw, dns)
    assert verdict[:2] == ("raised", dkim.ValidationError) and "tlsrpt" in verdict[2]


@pytest.mark.parametrize("failure", [dkim.DnsTimeoutError, RuntimeError])
def test_a_failed_lookup_gets_dkimpys_verdict(failure):
    def dns(name, timeout=5):
        raise failure("the resolver gave up")

    (verdict,) = assert_same_verdicts(sign(MESSAGE), dns)
    assert not passed(verdict)


def retag(raw: bytes, old: bytes, new: bytes) -> bytes:
    head, separator, rest = raw.partition(b"\r\n\r\n")
    assert old in head
    return head.replace(old, new, 1) + separator + rest


SIGNATURE = sign(MESSAGE)
TAG_EDITS = [
    (b"v=1", b"v=2"),
    (b"a=rsa-sha256", b"a=rsa-md5"),
    (b"a=rsa-sha256", b"a=ed25519-sha256"),
    (b"c=relaxed/simple", b"c=relaxed/odd"),
    (b"c=relaxed/simple", b"c=a/b/c"),
    (b"c=relaxed/simple", b"c=simple"),
    (b"d=acme.test", b"d=other.test"),
    (b"i=@acme.test", b"i=@elsewhere.test"),
    (b"i=@acme.test", b"i=@mail.acme.test"),
    (b"d=acme.test", b"d=acme.test; i=@acme.test"),
    (b"d=acme.test", b"d=acme.test; l="),
    (b"d=acme.test", b"d=acme.test; l=10"),
    (b"d=acme.test", b"d=acme.test; q=dns/other"),
    (b"d=acme.test", b"d=acme.test; t=99999999999"),
    (b"d=acme.test", b"d=acme.test; x=1"),
    (b"d=acme.test", b"d=acme.test; t=abc"),
    (b"d=acme.test", b"d=acme.test; d=acme.test"),
    (b"d=acme.test", b"d=(acme).test"),
    (b"s=s1", b"s=nope"),
    (b"h=from", b"h=subject : from"),
    (b"h=from", b"h=to"),
    (b"bh=", b"bh=!!"),
    (b"bh=", b"bh=A"),
    (b" b=", b" b=AAAA"),
    (b" b=", b" b=****"),
    (b"v=1;", b""),
    (b"s=s1;", b""),
    (b" b=", b" bogus; b="),
]


@pytest.mark.parametrize(("old", "new"), TAG_EDITS, ids=[new.decode() for _, new in TAG_EDITS])
def test_edited_signature_tags_get_dkimpys_verdict(old, new):
    (verdict,) = assert_same_verdicts(retag(SIGNATURE, old, new))
    # Only leading zero octets (AAAA) leave the signature, read as a number, the same.
    assert passed(verdict) is (new == b" b=AAAA")


SIGNED_MESSAGES = [sign(MESSAGE, canonicalize=c) for c in CANONICALIZATIONS] + [
    sign(sign(MESSAGE, key=OTHER), key=KEY, canonicalize=(b"simple", b"simple"))
]
DAMAGE = st.one_of(
    st.sampled_from(
        [b" ", b"\t", b"\r\n", b"\n", b"\r\n ", b";", b"=", b":", b"b=", b"A", b"\x00"]
    ),
    st.binary(max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SIGNED_MESSAGES),
    st.integers(min_value=0),
    st.lists(DAMAGE, max_size=3).map(b"".join),
    st.integers(min_value=0, max_value=3),
)
def test_randomly_damaged_messages_get_dkimpys_verdict(raw, where, insert, drop):
    where %= len(raw) + 1
    assert_same_verdicts(raw[:where] + insert + raw[where + drop :])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b" ", b"\t", b"\r\n\t", b"x", b"=", b";", b"h=", b"l=5"])))
def test_damage_inside_the_signature_field_gets_dkimpys_verdict(pieces):
    head, _, rest = SIGNATURE.partition(b" b=")
    assert_same_verdicts(head + b"".join(pieces) + b" b=" + rest)


def test_a_key_that_is_not_rsa_is_left_to_dkimpys_verifier(monkeypatch):
    """Ed25519 keys (RFC 8463) need PyNaCl, which dkimpy loads itself; such a signature is
    checked by dkimpy's verifier whole, on the DNS answer already looked up."""
    raw = sign(MESSAGE)
    calls = []

    def ed25519_key(name, dnsfunc, timeout=5):
        dnsfunc(name, timeout=timeout)
        return object(), 256, b"ed25519", False

    def dkimpy_decides(message, index, dnsfunc):
        calls.append((message, index, dnsfunc(b"s1._domainkey.acme.test.")))
        return dkim_verify.Checked(True, b"acme.test", b"s1", (b"from",))

    dns = FakeDns(KEY)
    monkeypatch.setattr(dkim, "load_pk_from_dns", ed25519_key)
    monkeypatch.setattr(dkim_verify, "by_dkimpy", dkimpy_decides)
    results = verify_dkim(raw, dns)
    assert calls == [(raw, 0, KEY.txt)] and dns.lookups == 1
    assert [(r.domain, r.selector, r.passed) for r in results] == [("acme.test", "s1", True)]


def test_dkimpys_whole_verifier_reports_what_it_checked():
    raw = sign(MESSAGE)
    checked = dkim_verify.by_dkimpy(raw, 0, DNS)
    assert checked == dkim_verify.Checked(True, b"acme.test", b"s1", tuple(SIGNED))
    tampered = raw.replace(b"first day", b"last day")
    assert dkim_verify.by_dkimpy(tampered, 0, DNS).passed is False


def test_verify_dkim_reports_each_signature_and_why_it_failed():
    raw = sign(sign(MESSAGE, key=SigningKey("acme.test", "gone")), key=KEY)
    tampered = raw.replace(b"Congratulations", b"Commiserations")
    assert [(r.domain, r.selector, r.passed, r.error) for r in verify_dkim(raw, DNS)] == [
        ("acme.test", "s1", True, None),
        ("acme.test", "gone", False, "key_not_found"),
    ]
    assert [r.error for r in verify_dkim(tampered, DNS)] == [
        "body_hash_mismatch",
        "key_not_found",
    ]
