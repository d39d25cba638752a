"""dkimpy's text plumbing, swapped for faster pieces: every result must be dkimpy's own."""

import dkim
import dkim.canonicalization as canonicalization
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.inbound import dkim_canonical
from emailsync.inbound.authenticity import verify_dkim

from .mail import CANONICALIZATIONS, SigningKey, build

# Pieces that exercise every branch: whitespace of each kind, line breaks whole and lone,
# folding, tag syntax, base64, header-name edge bytes and non-ASCII.
SPACE = [b" ", b"  ", b"\t", b" \t ", b"\x0b", b"\x0c"]
BREAKS = [b"\r\n", b"\r", b"\n", b"\r\r\n", b"\n\r", b"\r\n ", b"\r\n\t", b"\r\n\r\n", b"\n\n"]
TEXT = [b"a", b"Zz", b"09", b"=", b";", b":", b"b", b"bh", b"+/", b"-", b"_", b"\xe9", b"\x00"]
MAIL = [b"From: s@a.test", b"Subject: hi", b"X-A:", b"::", b"From ", b"Bad Name: x", b"\x7f:"]


def pieces(*groups, max_size=60):
    piece = st.one_of(
        st.sampled_from([p for group in groups for p in group]), st.binary(max_size=4)
    )
    return st.lists(piece, max_size=max_size).map(b"".join)


text = pieces(SPACE, BREAKS, TEXT)
lines = pieces(SPACE, BREAKS, TEXT, MAIL)
tag_lists = pieces(SPACE, BREAKS, TEXT, [b"v=1", b"; ", b"a=rsa-sha256", b"b=", b" b =", b"1x="])
signature_values = pieces(
    SPACE, BREAKS, TEXT, [b"; b=", b";b =", b" b\r\n =", b"\tb=", b"ABCD", b"==", b"bh=x;"]
)

EDGE_CASES = [
    b"",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b" \r\n",
    b"\t\r\n\r\n\r\n",
    b"a \t b\t\r\n\r\n",
    b"a\r\n \r\n\r\n",
    b"\r\r\n\n",
    b" v=1;\r\n\tb=AB\r\n CD==\r\n",
    b"\xff\xfe \t\r\n",
]


def outcome(function, *args):
    """What a call returned, or which exception it raised with what message."""
    try:
        return "returned", function(*args)
    except Exception as exc:  # the same failure is as much a part of the contract
        return "raised", type(exc), str(exc)


def same(ours, pure, *args):
    assert outcome(ours, *args) == outcome(pure, *args)


# --- each building block against dkimpy's --------------------------------------------------


def helpers_agree(content):
    same(
        dkim_canonical.strip_trailing_whitespace,
        dkim_canonical._PURE_STRIP_TRAILING_WHITESPACE,
        content,
    )
    same(dkim_canonical.compress_whitespace, dkim_canonical._PURE_COMPRESS_WHITESPACE, content)
    same(dkim_canonical.unfold_header_value, dkim_canonical._PURE_UNFOLD_HEADER_VALUE, content)


@settings(max_examples=1000, deadline=None)
@given(text)
def test_whitespace_helpers_match_dkimpys(content):
    helpers_agree(content)


def relaxed_body_by_dkimpy(body):
    stripped = dkim_canonical._PURE_STRIP_TRAILING_WHITESPACE(body)
    compressed = dkim_canonical._PURE_COMPRESS_WHITESPACE(stripped)
    return canonicalization.correct_empty_body(canonicalization.strip_trailing_lines(compressed))


def relaxed_headers_by_dkimpy(headers):
    unfold = dkim_canonical._PURE_UNFOLD_HEADER_VALUE
    compress = dkim_canonical._PURE_COMPRESS_WHITESPACE
    return [(n.lower().rstrip(), compress(unfold(v)).strip() + b"\r\n") for n, v in headers]


@settings(max_examples=1000, deadline=None)
@given(text, st.lists(st.tuples(pieces(TEXT, SPACE, max_size=4), text), max_size=6))
def test_dkimpys_relaxed_algorithm_gives_the_same_bytes_through_the_new_helpers(body, headers):
    assert canonicalization.Relaxed.canonicalize_body(body) == relaxed_body_by_dkimpy(body)
    assert canonicalization.Relaxed.canonicalize_headers(headers) == (
        relaxed_headers_by_dkimpy(headers)
    )


@pytest.mark.parametrize("content", EDGE_CASES)
def test_edge_cases_match_dkimpy(content):
    helpers_agree(content)
    assert canonicalization.Relaxed.canonicalize_body(content) == relaxed_body_by_dkimpy(content)
    same(dkim_canonical.rfc822_parse, dkim_canonical._PURE_RFC822_PARSE, content)
    same(dkim_canonical.parse_tag_value, dkim_canonical._PURE_PARSE_TAG_VALUE, content)


@settings(max_examples=1500, deadline=None)
@given(lines)
def test_messages_are_split_like_dkimpy(message):
    same(dkim_canonical.rfc822_parse, dkim_canonical._PURE_RFC822_PARSE, message)


@pytest.mark.parametrize(
    "message",
    [
        build(),
        build().replace(b"\r\n", b"\n"),  # a Unix mailbox's LF-only lines
        b"From sam@acme.test Mon Nov  2 10:00:00 2026\r\nFrom: s@a.test\r\n\r\nbody",
        b" continued first\r\nFrom: s@a.test\r\n\r\n",  # dkimpy's IndexError
        b"Bad Name: x\r\n\r\n",
        b"::colon: x\r\n\r\n",
        b"Subject: a\r\n\tfolded\r\n  twice\r\nTo: x\r\n",  # no body
        b"Subject: a\r\n\r\n\r\nbody\rlone CR\nlone LF\r\n\r\n",
        b"Subject: a\r",
        b"\r\nbody only",
    ],
)
def test_hand_picked_messages_are_split_like_dkimpy(message):
    same(dkim_canonical.rfc822_parse, dkim_canonical._PURE_RFC822_PARSE, message)


@settings(max_examples=1500, deadline=None)
@given(tag_lists)
def test_tag_lists_are_read_like_dkimpy(tag_list):
    same(dkim_canonical.parse_tag_value, dkim_canonical._PURE_PARSE_TAG_VALUE, tag_list)


def btag(pattern, value):
    matches = [(m.span(), m.group(1)) for m in pattern.finditer(value)]
    return matches, pattern.sub(b"\\1", value)


@settings(max_examples=2000, deadline=None)
@given(signature_values)
def test_the_b_tag_is_found_where_dkimpy_finds_it(value):
    assert btag(dkim_canonical.RE_BTAG, value) == btag(dkim_canonical._PURE_RE_BTAG, value)


# --- dkimpy with the new pieces, end to end -------------------------------------------------


KEY = SigningKey("acme.test", "s1")  # an RSA key made with `cryptography`, and its TXT record
PEM, TXT = KEY.private_pem, KEY.txt
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"x-folded", b"x-note"]


def dnsfunc(name, timeout=5):
    return TXT if name == b"s1._domainkey.acme.test." else None


def sign(message: bytes, canonicalize) -> bytes:
    return (
        dkim.sign(
            message, b"s1", b"acme.test", PEM, canonicalize=canonicalize, include_headers=SIGNED
        )
        + message
    )


def verdicts(raw):
    return [(r.domain, r.selector, r.passed, r.error) for r in verify_dkim(raw, dnsfunc)]


@pytest.fixture
def pure_dkimpy(monkeypatch):
    """Puts dkimpy's own pieces back for the test, as if dkim_canonical were never installed."""

    def restore():
        monkeypatch.setattr(dkim, "rfc822_parse", dkim_canonical._PURE_RFC822_PARSE)
        monkeypatch.setattr(dkim, "parse_tag_value", dkim_canonical._PURE_PARSE_TAG_VALUE)
        monkeypatch.setattr(dkim, "RE_BTAG", dkim_canonical._PURE_RE_BTAG)
        for name in ("strip_trailing_whitespace", "compress_whitespace", "unfold_header_value"):
            monkeypatch.setattr(
                canonicalization, name, getattr(dkim_canonical, "_PURE_" + name.upper())
            )

    return restore


def verdicts_both_ways(raw, pure_dkimpy):
    ours = verdicts(raw)
    pure_dkimpy()
    theirs = verdicts(raw)
    dkim_canonical.install()
    return ours, theirs


MESSAGE = build(
    subject="Welcome \t aboard,  your\tfirst day",
    body="Hi Cara,  \n\n\tCongratulations on the new job!\t \nIt starts   Monday.\n\n\n\n",
    extra_headers=[("X-Note", "spaced  \t out")],
).replace(b"X-Note:", b"X-Folded: one\r\n \ttwo  parts \r\n\tthree\r\nX-Note:")


@pytest.mark.parametrize("canonicalize", CANONICALIZATIONS, ids=lambda c: b"/".join(c).decode())
def test_signed_messages_pass_and_tampering_fails_with_dkimpys_error(canonicalize, pure_dkimpy):
    raw = sign(MESSAGE, canonicalize)
    assert verdicts(raw) == [("acme.test", "s1", True, None)]

    body_changed = raw.replace(b"Congratulations", b"Commiserations")
    header_changed = raw.replace(b"first day", b"last day")
    assert verdicts(body_changed) == [("acme.test", "s1", False, "body_hash_mismatch")]
    assert verdicts(header_changed) == [("acme.test", "s1", False, "signature_invalid")]

    # What relaxed forgives and simple does not must stay as dkimpy decides it.
    respaced_body = raw.replace(b"new job!", b"new   job!\t").replace(b"Monday.", b"Monday. ")
    respaced_header = raw.replace(b"Welcome \t aboard", b"Welcome  aboard").replace(
        b"first day\r\n", b"first day \t\r\n"
    )
    for tampered in (raw, body_changed, header_changed, respaced_body, respaced_header):
        ours, theirs = verdicts_both_ways(tampered, pure_dkimpy)
        assert ours == theirs
    relaxed_header, relaxed_body = (c == b"relaxed" for c in canonicalize)
    assert verdicts(respaced_body)[0][2] is relaxed_body
    assert verdicts(respaced_header)[0][2] is relaxed_header


@pytest.mark.parametrize("canonicalize", CANONICALIZATIONS, ids=lambda c: b"/".join(c).decode())
def test_lf_only_and_empty_bodies_verify(canonicalize):
    for message in (
        MESSAGE.replace(b"\r\n", b"\n"),
        MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n",
        MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n\r\n",
    ):
        assert verdicts(sign(message, canonicalize)) == [("acme.test", "s1", True, None)]


SIGNED_MESSAGES = {c: sign(MESSAGE, c) for c in CANONICALIZATIONS}


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(CANONICALIZATIONS),
    st.integers(min_value=0),
    pieces(SPACE, BREAKS, TEXT, max_size=3),
    st.integers(min_value=0, max_value=3),
)
def test_damaged_messages_get_dkimpys_verdict(pure_dkimpy, canonicalize, where, insert, drop):
    raw = SIGNED_MESSAGES[canonicalize]
    where %= len(raw) + 1
    damaged = raw[:where] + insert + raw[where + drop :]
    ours, theirs = verdicts_both_ways(damaged, pure_dkimpy)
    assert ours == theirs


FIELD_NAMES = [b"From", b"from", b"FROM", b"To", b"Subject", b"Date", b"X-A", b"x-a", b"Cc"]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(FIELD_NAMES), st.binary(max_size=3)), max_size=12),
    st.lists(st.sampled_from([n.lower() for n in FIELD_NAMES] + [b"reply-to"]), max_size=12),
)
def test_signed_fields_are_selected_like_dkimpy(headers, include_headers):
    """Repeated names (taken bottom up), names in any case, names signed but absent (the
    over-signing that stops a field being added later), and repeats beyond what is there."""
    same(
        dkim_canonical.select_headers, dkim_canonical._PURE_SELECT_HEADERS, headers, include_headers
    )


def test_install_points_dkimpy_at_the_new_pieces():
    dkim_canonical.install()  # again: idempotent
    assert dkim.rfc822_parse is dkim_canonical.rfc822_parse
    assert dkim.parse_tag_value is dkim_canonical.parse_tag_value
    assert dkim.RE_BTAG is dkim_canonical.RE_BTAG
    assert dkim.select_headers is dkim_canonical.select_headers
    assert canonicalization.strip_trailing_whitespace is dkim_canonical.strip_trailing_whitespace
    assert canonicalization.compress_whitespace is dkim_canonical.compress_whitespace
    assert canonicalization.unfold_header_value is dkim_canonical.unfold_header_value
    assert dkim_canonical._PURE_RFC822_PARSE.__module__ == "dkim"
    assert dkim_canonical._PURE_COMPRESS_WHITESPACE.__module__ == "dkim.canonicalization"
    assert dkim_canonical._PURE_RE_BTAG is not dkim_canonical.RE_BTAG
