"""The fast reading of plain address lists must agree with the full parser on all it accepts."""

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emailsync.inbound.headers import (
    _parse_with_registry,
    _simple_addresses,
    _split_plain,
    _split_with_parser,
    parse_headers,
)

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
atom = st.text(ATEXT, min_size=1, max_size=8)
local = st.lists(atom, min_size=1, max_size=3).map(".".join)
label = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
domain = st.lists(label, min_size=2, max_size=3).map(".".join)
address = st.builds(lambda lp, d: f"{lp}@{d}", local, domain)
word = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(ATEXT.replace("=", "").replace("?", "") + ".", max_size=7),
)
name = st.lists(word, min_size=1, max_size=3).map(" ".join)
item = st.one_of(address, st.builds(lambda n, a: f"{n} <{a}>", name, address))
header = st.lists(item, min_size=1, max_size=5).map(", ".join)


@settings(max_examples=400, deadline=None)
@given(header)
def test_fast_path_agrees_with_the_full_parser(value):
    assume("=?" not in value and "xn--" not in value.lower())  # those always take the full path
    fast = _simple_addresses(value)
    assert fast is not None
    slow, count = _parse_with_registry("to", value, [])
    assert fast == slow and count == len(fast)


def test_anything_unusual_goes_to_the_full_parser():
    for value in [
        '"Carter, Sam" <s@a.test>',
        "=?utf-8?q?S=C3=A4m?= <s@a.test>",
        "Sam (work) <s@a.test>",
        "s@xn--bcher-kva.test",
        "Säm <s@a.test>",
        "a@b.test,,c@d.test",
        "undisclosed-recipients:;",
        "Sam <s@a.test",
    ]:
        assert _simple_addresses(value) is None, value


def test_real_world_header_block_reads_the_same_either_way():
    headers = parse_headers(
        b"From: Sam Carter <Sam@Acme.test>\r\nTo: Cara <cara@x.test>, "
        b"b@y.test\r\nSubject: Hello\r\nContent-Type: text/plain; "
        b"charset=utf-8\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\n"
    )
    assert headers.from_addr.addr_spec == "sam@acme.test"
    assert [a.addr_spec for a in headers.to] == ["cara@x.test", "b@y.test"]
    assert headers.subject == "Hello" and headers.content_type == "text/plain"
    assert headers.date.year == 2026 and not headers.defects


def test_the_listener_splits_without_copying_the_body():
    from emailsync.inbound.headers import split_message, split_message_view

    raw = b"From: a@b.test\r\nTo: c@d.test\r\n\r\n" + b"x" * 1_000_000
    header, body = split_message_view(raw)
    assert isinstance(body, memoryview) and body.obj is raw
    assert (header, bytes(body)) == split_message(raw)
    assert split_message_view(b"\r\nbody")[1].tobytes() == b"body"
    assert split_message_view(b"From: a@b.test\r\n")[1].tobytes() == b""


header_line = st.one_of(
    st.builds(
        lambda n, v: f"{n}:{v}",
        st.sampled_from(["From", "To", "Cc", "Content-Type", "Subject", "X-A", "Bad Name", ""]),
        st.text(max_size=30),
    ),
    st.text(max_size=30),  # continuation lines, junk, "From " lines, empty lines
    st.sampled_from([" folded", "\tfolded", "From sam@a.test Mon", "multipart/mixed; b=x"]),
)
header_block = st.lists(header_line, max_size=8).map(lambda lines: "\r\n".join(lines) + "\r\n")


@settings(max_examples=500, deadline=None)
@given(header_block)
def test_splitting_fields_is_the_same_under_the_default_policy(text):
    from email.parser import HeaderParser
    from email.policy import default

    from emailsync.inbound.headers import SPLITTING_POLICY

    ours = HeaderParser(policy=SPLITTING_POLICY).parsestr(text, headersonly=True)
    reference = HeaderParser(policy=default).parsestr(text, headersonly=True)
    assert list(ours.raw_items()) == list(reference.raw_items())
    assert [type(d) for d in ours.defects] == [type(d) for d in reference.defects]


# --- splitting the block into fields ---------------------------------------------------------

field_name = st.text(
    "".join(chr(c) for c in range(0x21, 0x7F) if c != 0x3A), min_size=1, max_size=12
)
# Value text: printable ASCII, Latin-1 and wider letters, controls, the replacement character.
value_text = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("\t\x00\x01\x7féß€\ufffd漢"),
    ),
    max_size=30,
)
newline = st.sampled_from(["\r\n", "\n"])
folded = st.builds(
    lambda ws, text, nl: ws + text + nl, st.sampled_from([" ", "\t", "  "]), value_text, newline
)
plain_field = st.builds(
    lambda name, first, nl, folds: f"{name}:{first}{nl}{''.join(folds)}",
    field_name,
    value_text,
    newline,
    st.lists(folded, max_size=3),
)
plain_block = st.lists(plain_field, min_size=1, max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(plain_block)
def test_plain_blocks_split_as_the_stdlib_parser_splits_them(text):
    fast = _split_plain(text)
    assert fast is not None, "a plain block must take the fast path"
    assert (fast, False) == _split_with_parser(text)


# Anything at all, with the characters that make blocks unusual overrepresented: line breaks
# the parser honours (lone CR, VT, FF, NEL, U+2028...), "From " lines, colons, leading folds.
hostile_piece = st.one_of(
    plain_field,
    st.sampled_from(
        [
            "\r",
            "\n",
            "\r\n",
            "\x0b",
            "\x0c",
            "\x1c",
            "\x85",
            "\u2028",
            "\u2029",
            ":",
            " ",
            "\t",
            "From ",
            "From x\r\n",
            ": no name\r\n",
            " fold\r\n",
            "no colon\r\n",
            "\r\n\r\n",
        ]
    ),
    value_text,
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(hostile_piece, max_size=12).map("".join))
def test_the_fast_split_never_disagrees_with_the_parser(text):
    fast = _split_plain(text)
    if fast is not None:
        assert (fast, False) == _split_with_parser(text)


def test_unusual_blocks_go_to_the_parser_with_its_defects():
    for text in [
        "From sender@example.com Mon Jan 1 00:00:00 2026\r\nSubject: x\r\n",  # mbox line
        " continued\r\nSubject: x\r\n",  # first line a continuation
        "Subject: x\r\nnot a header\r\nTo: a@b.test\r\n",  # the parser stops there
        "Subject: a\rb\r\n",  # a lone CR is a line break to the parser
        "Subject: a\x85b\r\n",
        ": nameless\r\n",
        "Subject: no line end",
    ]:
        assert _split_plain(text) is None, text
    fields, malformed = _split_with_parser("Subject: x\r\nnot a header\r\nTo: a@b.test\r\n")
    assert malformed and "to" not in fields
    headers = parse_headers(b"Subject: x\r\nnot a header\r\nTo: a@b.test\r\n")
    assert "headers_malformed" in headers.defects
