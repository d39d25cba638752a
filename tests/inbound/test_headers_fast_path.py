"""The fast reading of plain address lists must agree with the full parser on all it accepts."""

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emailsync.inbound.headers import _parse_with_registry, _simple_addresses, parse_headers

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
