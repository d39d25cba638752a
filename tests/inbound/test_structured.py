"""Structured data from ATS templates: headers, HTML script block, plain-text block."""

import base64
import json
import quopri
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound.headers import split_message
from emailsync.inbound.structured import MAX_JSON_BYTES, StructuredData, extract

DATA = {
    "placement_ref": "PL-2024-0042",
    "role": "candidate",
    "recruiter_email": "Jane.Recruiter@Acme.com",
    "recipient_name": "Carla Candidate",
}

HEAD = b"From: ats@acme.com\r\nTo: carla@example.org\r\nMIME-Version: 1.0\r\n"


def run(raw: bytes, x_headers=None) -> StructuredData:
    header, body = split_message(raw)
    return extract(header, body, x_headers or {})


def html_part(payload: str, cte: str = "7bit", charset: str = "utf-8") -> bytes:
    html = (
        '<html><body><p>Welcome!</p><script type="application/json+emailsync">'
        f"{payload}</script></body></html>"
    )
    return part("text/html", html, cte, charset)


def text_block(payload: str) -> str:
    return f"Welcome!\r\n\r\n-----BEGIN EMAILSYNC-----\r\n{payload}\r\n-----END EMAILSYNC-----\r\n"


def part(content_type: str, text: str, cte: str = "7bit", charset: str = "utf-8") -> bytes:
    data = text.encode(charset)
    if cte == "base64":
        data = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        data = re.sub(rb"\r?\n", b"\r\n", quopri.encodestring(data))
    return (
        f"Content-Type: {content_type}; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode() + data


def single(content: bytes) -> bytes:
    return HEAD + content


def multipart(*parts: bytes, subtype: str = "alternative") -> bytes:
    body = b"".join(b"--BOUNDARY\r\n" + p + b"\r\n" for p in parts) + b"--BOUNDARY--\r\n"
    return HEAD + f'Content-Type: multipart/{subtype}; boundary="BOUNDARY"\r\n\r\n'.encode() + body


def expected_core(result: StructuredData) -> None:
    assert result.placement_ref == "PL-2024-0042"
    assert result.role == "candidate"
    assert result.recruiter_email == "jane.recruiter@acme.com"
    assert result.recipient_name == "Carla Candidate"
    assert result.problems == ()


# --- each form -------------------------------------------------------------------------------


def test_headers_only():
    result = run(
        single(part("text/plain", "Hi")),
        {"placement": "PL-2024-0042", "role": "Candidate", "recruiter": DATA["recruiter_email"],
         "name": "  Carla   Candidate "},
    )  # fmt: skip
    expected_core(result)
    assert result.sources == ("headers",)


def test_html_script_block():
    result = run(multipart(part("text/plain", "Welcome!"), html_part(json.dumps(DATA))))
    expected_core(result)
    assert result.sources == ("html",)


def test_text_block():
    result = run(single(part("text/plain", text_block(json.dumps(DATA, indent=2)))))
    expected_core(result)
    assert result.sources == ("text",)


def test_body_starting_with_a_header_like_line():
    # No Content-Type header: text/plain by default, whatever the first body line says.
    body = "Content-Type: text/html\r\n" + text_block(json.dumps(DATA))
    expected_core(run(HEAD + b"\r\n" + body.encode()))


def test_html_script_with_other_attributes_and_single_quotes():
    html = (
        "<script nonce='x' TYPE='application/json+emailsync' >"
        + json.dumps(DATA)
        + '</SCRIPT ><script type=\'application/json\'>{"role": "client"}</script>'
    )
    expected_core(run(single(part("text/html", html))))


def test_html_entity_escaped_json():
    escaped = json.dumps(DATA).replace('"', "&quot;")
    expected_core(run(single(html_part(escaped))))


def test_recipients_list():
    data = {
        "placement_ref": "PL-1",
        "recipients": [
            {"email": "Carla@Example.org", "role": "candidate", "name": "Carla"},
            {"email": "boss@xn--bcher-kva.de", "role": "CLIENT"},
        ],
    }
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert result.recipients == {
        "carla@example.org": {"role": "candidate", "name": "Carla"},
        "boss@bücher.de": {"role": "client", "name": None},
    }
    assert result.role_for("CARLA@example.org") == "candidate"
    assert result.name_for("carla@example.org") == "Carla"
    assert result.role_for("boss@bücher.de") == "client"
    assert result.name_for("boss@bücher.de") is None
    assert result.role_for("someone@else.org") is None


def test_top_level_role_and_name_apply_to_unlisted_recipients():
    data = dict(DATA, recipients=[{"email": "boss@client.example", "role": "client"}])
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert result.role_for("boss@client.example") == "client"
    assert result.name_for("boss@client.example") == "Carla Candidate"
    assert result.role_for("carla@example.org") == "candidate"


def test_headers_win_over_body_and_conflicts_are_reported():
    body = single(part("text/plain", text_block(json.dumps(DATA))))
    result = run(body, {"placement": "PL-HEADER", "role": "candidate"})
    assert result.placement_ref == "PL-HEADER"
    assert result.recipient_name == "Carla Candidate"  # filled in from the body
    assert result.problems == ("structured_conflict",)
    assert result.sources == ("headers", "text")


def test_first_block_wins_in_alternatives():
    other = dict(DATA, placement_ref="PL-OTHER")
    result = run(
        multipart(
            part("text/plain", text_block(json.dumps(DATA))),
            html_part(json.dumps(other)),
        )
    )
    assert result.placement_ref == "PL-2024-0042"


def test_numeric_placement_ref_and_unknown_keys():
    data = {"placement_ref": 12345, "version": 2, "something_new": {"x": 1}}
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert result.placement_ref == "12345"
    assert result.problems == ()


# --- transfer encodings and charsets ---------------------------------------------------------


def test_base64_html_part():
    result = run(multipart(part("text/plain", "Hi"), html_part(json.dumps(DATA), cte="base64")))
    expected_core(result)


def test_quoted_printable_text_part_with_soft_line_breaks():
    data = dict(DATA, recipient_name="Zoë Ångström-" + "x" * 100)
    raw = single(part("text/plain", text_block(json.dumps(data)), cte="quoted-printable"))
    assert b"=\r\n" in raw  # really wrapped by the encoder
    assert run(raw).recipient_name == data["recipient_name"]


def test_latin1_charset():
    data = dict(DATA, recipient_name="André Müller")
    raw = single(
        part("text/plain", text_block(json.dumps(data, ensure_ascii=False)), "8bit", "iso-8859-1")
    )
    assert run(raw).recipient_name == "André Müller"


def test_unknown_charset_falls_back_to_utf8():
    raw = single(part("text/plain", text_block(json.dumps(DATA)), charset="utf-8")).replace(
        b"charset=utf-8", b"charset=x-made-up"
    )
    expected_core(run(raw))


def test_wrapped_text_block_is_still_read():
    wrapped = (
        json.dumps(DATA).replace(", ", ",\r\n").replace("Carla Candidate", "Carla\r\nCandidate")
    )
    result = run(single(part("text/plain", text_block(wrapped))))
    assert result.recipient_name == "Carla Candidate"


@pytest.mark.parametrize("line_break", ["\r\n", " \r\n"])  # Outlook's wrap; format=flowed's
def test_a_placement_reference_wrapped_at_a_space_is_read_whole(line_break):
    """Plain-text mailers wrap a long line at a space, inside a reference that has one too."""
    data = dict(DATA, placement_ref="Acme Ltd Senior Developer 2024")
    wrapped = json.dumps(data).replace("Senior ", "Senior" + line_break)
    result = run(single(part("text/plain", text_block(wrapped))))
    assert result.placement_ref == "Acme Ltd Senior Developer 2024"
    assert result.problems == ()


# --- what is skipped -------------------------------------------------------------------------


def relayed(text: str) -> bytes:
    """`text` as Postfix relays an over-long line (smtp_line_length_limit = 998): broken at
    the limit by CRLF and a space."""
    data, out = text.encode(), []
    while len(data) > 998:
        out.append(data[:998])
        data = b" " + data[998:]
    return b"\r\n".join([*out, data])


def long_html(before: int) -> str:
    """Minified HTML on one line, our block starting `before` characters in."""
    script = f'<script type="application/json+emailsync">{json.dumps(DATA)}</script>'
    return "<html><body>" + "x" * (before - 12) + script + "</body></html>"


def test_a_long_line_a_relay_broke_is_read_whole():
    """An ATS's minified HTML without a transfer encoding, relayed by Postfix: the break lands
    inside the placement reference, or inside the closing tag (`<` CRLF SP `/script>`)."""
    script_length = len(long_html(100)) - 100 - len("</body></html>")
    for before in (930, 998 - script_length + 3, 2500):
        body = relayed(long_html(before))
        assert b"\r\n " in body
        raw = single(
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
        )
        expected_core(run(raw))


def test_a_block_the_sender_wrapped_is_not_joined():
    """Short lines starting with a space are the sender's own layout, kept as they are."""
    pretty = json.dumps(DATA, indent=1).replace("\n", "\r\n")
    expected_core(run(single(part("text/plain", text_block(pretty)))))
    assert b"\n " in pretty.encode()


def test_attachments_and_forwarded_messages_are_skipped():
    attached = (
        b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=x.txt\r\n\r\n"
        + text_block(json.dumps(DATA)).encode()
    )
    forwarded = b"Content-Type: message/rfc822\r\n\r\n" + single(
        part("text/plain", text_block(json.dumps(DATA)))
    )
    result = run(multipart(part("text/plain", "Hi"), attached, forwarded, subtype="mixed"))
    assert result == StructuredData()


def test_quoted_block_in_a_reply_is_skipped():
    quoted = "\r\n".join("> " + line for line in text_block(json.dumps(DATA)).splitlines())
    assert run(single(part("text/plain", "Thanks!\r\n" + quoted))) == StructuredData()


# How mail clients put the original under a reply or an inline forward, in plain text: not
# quoted with "> ", but after a separator line, and the original's block with it.
QUOTED_ORIGINAL_SEPARATORS = [
    "-----Original Message-----",  # Outlook, plain-text reply or forward
    "-----Ursprüngliche Nachricht-----",  # the same, in German
    "________________________________",  # Outlook, text of an HTML reply or forward
    "---------- Forwarded message ---------",  # Gmail
    "---------- Weitergeleitete Nachricht ---------",  # Gmail, in German
    "-------- Forwarded Message --------",  # Thunderbird
    "-------- Original Message --------",  # Thunderbird
    "Begin forwarded message:",  # Apple Mail
]


@pytest.mark.parametrize("separator", QUOTED_ORIGINAL_SEPARATORS)
def test_block_of_a_forwarded_or_replied_to_email_is_skipped(separator):
    """A recruiter forwards an ATS email to the client: the original's block (its candidate's
    name and role, its placement) is not about the new email's recipients."""
    original = f"From: Sam <sam@acme.com>\r\nSubject: Welcome\r\n\r\n{text_block(json.dumps(DATA))}"
    text = f"Hi Bob, FYI.\r\n\r\n{separator}\r\n{original}"
    assert run(single(part("text/plain", text))) == StructuredData()


def test_own_block_above_a_forwarded_email_still_counts():
    own = text_block(json.dumps(DATA))
    old = text_block(json.dumps(dict(DATA, placement_ref="PL-OLD", recipient_name="Someone")))
    text = f"{own}\r\n-----Original Message-----\r\nFrom: x@acme.com\r\n\r\n{old}"
    expected_core(run(single(part("text/plain", text))))


@pytest.mark.parametrize(
    "heading",
    [
        "----- Your placement -----",
        "-----Placement details-----\r\nCandidate: Zoe\r\nStarts: 1 May",
        "-------- Your placement --------",
        "________________________________",  # a horizontal rule, as Outlook writes one in text
        "---------- Next steps ---------\r\n\r\nPlease reply to confirm.",
    ],
)
def test_a_line_a_template_draws_is_no_separator(heading):
    """Only a separator the original's header follows (From, Subject, Sent…) starts a quoted
    original: a template's own rule or dashed heading above its block is not one."""
    text = f"Hi Zoe,\r\n{heading}\r\n{text_block(json.dumps(DATA))}"
    expected_core(run(single(part("text/plain", text))))


@pytest.mark.parametrize(
    "header",
    ["Subject: Welcome", "*From:* Sam <sam@acme.com>", "Von: Sam <sam@acme.com>", "差出人: Sam"],
)
def test_the_originals_header_in_other_forms_marks_a_quoted_original(header):
    """Thunderbird starts the original's header with Subject, Outlook bolds it in text, and
    clients write it in the reader's language."""
    text = (
        f"FYI\r\n\r\n-----Original Message-----\r\n{header}\r\n\r\n{text_block(json.dumps(DATA))}"
    )
    assert run(single(part("text/plain", text))) == StructuredData()


def test_nothing_present():
    assert run(single(part("text/plain", "Just a normal email."))) == StructuredData()
    assert run(HEAD + b"\r\n") == StructuredData()
    assert extract(b"", b"", {}) == StructuredData()


# --- invalid data ----------------------------------------------------------------------------


def test_bad_json():
    result = run(single(part("text/plain", text_block('{"placement_ref": "PL-1",}'))))
    assert result.placement_ref is None
    assert result.problems == ("structured_invalid_json",)


def test_json_that_is_not_an_object():
    result = run(single(part("text/plain", text_block('["PL-1"]'))))
    assert result.problems == ("structured_not_object",)


def test_bad_role():
    result = run(single(part("text/plain", text_block(json.dumps(dict(DATA, role="boss"))))))
    assert result.role is None
    assert result.placement_ref == "PL-2024-0042"  # the rest still counts
    assert result.problems == ("structured_bad_role",)
    assert run(single(part("text/plain", "x")), {"role": "ceo"}).problems == (
        "structured_bad_role",
    )


def test_bad_values_each_have_a_reason():
    data = {
        "placement_ref": "x" * 101,
        "recruiter_email": "not an address",
        "recipient_name": ["list"],
        "recipients": [{"email": "bob"}, "carla@example.org", {"email": "ok@x.org", "role": 3}],
    }
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert result.placement_ref is None and result.recruiter_email is None
    assert set(result.problems) == {
        "structured_bad_placement_ref",
        "structured_bad_recruiter_email",
        "structured_bad_recipient_name",
        "structured_bad_recipient",
        "structured_bad_role",
    }
    assert result.recipients == {"ok@x.org": {"role": None, "name": None}}


def test_too_many_recipients_are_cut():
    data = {"recipients": [{"email": f"p{i}@x.org"} for i in range(60)]}
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert len(result.recipients) == 50
    assert result.problems == ("structured_too_many_recipients",)


def test_oversize_json_is_ignored():
    data = dict(DATA, padding="x" * MAX_JSON_BYTES)
    result = run(single(part("text/plain", text_block(json.dumps(data)))))
    assert result.placement_ref is None
    assert result.problems == ("structured_too_large",)


def test_oversize_part_is_not_searched():
    big = "filler\r\n" * 150_000 + text_block(json.dumps(DATA))
    result = run(single(part("text/plain", big)))
    assert result.placement_ref is None
    assert result.problems == ("structured_part_too_large",)


def test_unterminated_block():
    result = run(single(part("text/plain", "-----BEGIN EMAILSYNC-----\r\n{}")))
    assert result.problems == ("structured_unterminated",)


def test_deeply_nested_json_and_mime_do_not_raise():
    nested = run(single(part("text/plain", text_block("[" * 5000 + "]" * 5000))))
    assert nested.problems in (("structured_invalid_json",), ("structured_not_object",))
    body = b""
    for depth in range(200):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{depth}"\r\n\r\n--b{depth}\r\n'.encode()
            + body
            + f"\r\n--b{depth}--\r\n".encode()
        )
    assert isinstance(run(HEAD + body), StructuredData)


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=3000),
    st.dictionaries(
        st.sampled_from(["placement", "role", "recruiter", "name"]), st.text(max_size=50)
    ),
)
def test_never_raises(body, x_headers):
    result = extract(HEAD + b"Content-Type: multipart/mixed; boundary=x\r\n", body, x_headers)
    assert isinstance(result, StructuredData)


def test_unpaired_surrogate_escapes_never_reach_the_database():
    """Found by the fuzzer (tests/fuzz): JSON may escape half a UTF-16 pair; such a string
    cannot be stored, so it failed the whole batch and the sender was told to retry for ever."""
    payload = (
        '{"placement_ref": "PL\\ud800", "recipient_name": "Zo\\udcffe", '
        '"recruiter_email": "jane\\ud83d@acme.com", '
        '"recipients": [{"email": "carla@example.org", "name": "C\\ud800"}]}'
    )
    data = run(HEAD + b"Content-Type: text/plain\r\n\r\n" + text_block(payload).encode())
    assert data.placement_ref is None and "structured_bad_placement_ref" in data.problems
    assert data.recruiter_email is None and "structured_bad_recruiter_email" in data.problems
    assert data.recipient_name == "Zo\ufffde"
    assert data.name_for("carla@example.org") == "C\ufffd"


# The earlier definition, a regular expression, kept as the reference the byte search must
# never miss: a case-insensitive marker word with at most one soft line break between letters.
_SOFT_BREAK = rb"(?:=\r?\n)?"
_REFERENCE = re.compile(
    b"|".join(
        _SOFT_BREAK.join(re.escape(bytes([c])) for c in word) for word in (b"emailsync", b"base64")
    ),
    re.IGNORECASE,
)
_PIECES = st.sampled_from(
    [b"e", b"E", b"m", b"a", b"i", b"l", b"s", b"y", b"n", b"c", b"b", b"6", b"4", b"=", b"\r\n"]
    + [b"\n", b"=\r\n", b"=\n", b"EmailSync", b"bAsE64", b"x" * 40, b"-----BEGIN "]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=60))
def test_the_marker_search_finds_whatever_the_reference_finds(pieces):
    from emailsync.inbound import structured

    body = b"".join(pieces)
    if _REFERENCE.search(body):
        assert structured._may_hold_block(b"Content-Type: text/plain\r\n", body)


def test_a_marker_across_a_chunk_boundary_is_found(monkeypatch):
    from emailsync.inbound import structured

    monkeypatch.setattr(structured, "_CHUNK", 100)
    broken = b"=\r\n".join(bytes([c]) for c in b"EMAILSYNC")  # 33 bytes
    body = b"x" * 90 + broken + b"y" * 200  # straddles the first boundary
    assert structured._may_hold_block(b"", body)
    assert not structured._may_hold_block(b"", b"x" * 90 + b"EMAIL" + b"y" * 200)


def test_stored_problems_keep_whole_codes_only():
    from emailsync.inbound.structured import (
        MAX_STORED_PROBLEMS,
        PROBLEMS,
        problem_codes,
        stored_problems,
    )

    every = tuple(PROBLEMS)
    stored = stored_problems(every)
    assert len(stored) <= MAX_STORED_PROBLEMS < len(",".join(every))
    assert problem_codes(stored) == list(every[: len(problem_codes(stored))])
    assert stored_problems(("structured_conflict",)) == "structured_conflict"
    assert stored_problems(()) == "" and problem_codes("") == []


def test_every_problem_code_has_a_meaning():
    import inspect

    from emailsync.inbound import structured

    raised = set(re.findall(r'"(structured_[a-z_]+)"', inspect.getsource(structured)))
    assert raised == set(structured.PROBLEMS)
