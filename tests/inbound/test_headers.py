"""Header parsing: real-world shapes, normalisation, and hostile input."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.inbound.headers import (
    HEADER_WINDOW,
    Address,
    ParsedHeaders,
    header_hash,
    message_id_hash,
    parse_address,
    parse_headers,
    split_message,
)

GMAIL = (
    b"Return-Path: <jane@acme.com>\r\n"
    b"Received: from mail-sor-f41.google.com (mail-sor-f41.google.com [209.85.220.41])\r\n"
    b"        by mx.emailsync.example with ESMTPS id abc;\r\n"
    b"        Tue, 01 Oct 2024 10:00:02 +0000\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.com; s=google;\r\n"
    b"        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject;\r\n"
    b"        bh=abc=; b=def=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"From: Jane Recruiter <Jane@Acme.com>\r\n"
    b"Date: Tue, 1 Oct 2024 11:00:00 +0100\r\n"
    b"Message-ID: <CAF=abc123@mail.gmail.com>\r\n"
    b"Subject: Welcome to your new job\r\n"
    b"To: Carla Candidate <carla@example.org>\r\n"
    b"Cc: Hiring Manager <boss@client.example>, other@client.example\r\n"
    b"Bcc: acme-7f3k@in.emailsync.example\r\n"
    b'Content-Type: multipart/alternative; boundary="000000000000abc"\r\n'
    b"\r\n"
    b"--000000000000abc\r\n"
    b"Content-Type: text/plain\r\n\r\nHello\r\n--000000000000abc--\r\n"
)

OUTLOOK = (
    b"Received: from EUR05-VI1-obe.outbound.protection.outlook.com by mx.example\r\n"
    b"Authentication-Results: mx.emailsync.example;\r\n"
    b"\tdkim=pass header.d=agency.co.uk header.s=selector1;\r\n"
    b"\tdmarc=pass header.from=agency.co.uk\r\n"
    b"Authentication-Results: spf=pass (sender IP is 1.2.3.4)\r\n"
    b" smtp.mailfrom=agency.co.uk; dkim=pass (signature was verified)\r\n"
    b" header.d=agency.co.uk;dmarc=pass action=none header.from=agency.co.uk;\r\n"
    b'From: "Smith, John" <John.Smith@Agency.co.uk>\r\n'
    b"To: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>\r\n"
    b"Subject: =?iso-8859-1?Q?Willkommen_bei_M=FCller?=\r\n"
    b"Thread-Topic: Willkommen\r\n"
    b"Date: Wed, 2 Oct 2024 08:15:00 +0000\r\n"
    b"Message-ID:\r\n <AM0PR01MB1234.eurprd01.prod.outlook.com>\r\n"
    b'Content-Type: text/html; charset="iso-8859-1"\r\n'
    b"X-EmailSync-Placement: PL-1234\r\n"
    b"X-EmailSync-Role: Candidate\r\n"
    b"X-EmailSync-Name: =?utf-8?q?J=C3=BCrgen?=\r\n"
    b"X-EmailSync-Unknown: ignored\r\n"
    b"\r\n"
)


def headers_of(raw: bytes) -> ParsedHeaders:
    return parse_headers(split_message(raw)[0])


# --- split_message ---------------------------------------------------------------------------


def test_split_message_crlf():
    header, body = split_message(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore")
    assert header == b"A: 1\r\nB: 2\r\n"
    assert body == b"body\r\n\r\nmore"


def test_split_message_lf_and_no_blank_line():
    assert split_message(b"A: 1\n\nbody") == (b"A: 1\n", b"body")
    assert split_message(b"A: 1\r\nB: 2") == (b"A: 1\r\nB: 2", b"")
    assert split_message(b"") == (b"", b"")


def test_split_message_uses_first_blank_line_whatever_the_line_ending():
    assert split_message(b"A: 1\n\r\nbody\n\nx") == (b"A: 1\n", b"body\n\nx")
    assert split_message(b"\r\nbody") == (b"", b"body")


@settings(max_examples=500, deadline=None)
@given(st.binary().map(lambda b: bytes(b"a:\r\n "[x % 5] for x in b)))
def test_split_message_ends_the_header_block_where_the_first_empty_line_starts(raw):
    """The same split as the pattern that defines it, on any mix of CR, LF and text."""
    if raw.startswith((b"\r\n", b"\n")):
        expected = (b"", raw[2 if raw.startswith(b"\r\n") else 1 :])
    else:
        found = re.search(rb"(\r?\n)\r?\n", raw)
        expected = (raw, b"") if found is None else (raw[: found.end(1)], raw[found.end() :])
    assert split_message(raw) == expected


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
@pytest.mark.parametrize("offset", [-3, -2, -1, 0, 1, 200_000])
def test_a_header_block_past_the_first_window_is_split_where_it_ends(ending, offset):
    """The searches look in a growing window: a blank line across its edge, or far past it,
    is found all the same, and the body is never taken for headers."""
    filler = b"X-Long: " + b"a" * (HEADER_WINDOW + offset - 10) + ending
    header = b"From: a@b.example" + ending + filler
    raw = header + ending + b"body" + ending + ending + b"more"
    assert split_message(raw) == (header, b"body" + ending + ending + b"more")


# --- normal messages -------------------------------------------------------------------------


def test_gmail_like_message():
    h = headers_of(GMAIL)
    assert h.from_addr == Address("Jane Recruiter", "jane@acme.com")
    assert h.from_addr.local == "jane" and h.from_addr.domain == "acme.com"
    assert h.to == (Address("Carla Candidate", "carla@example.org"),)
    assert h.cc == (
        Address("Hiring Manager", "boss@client.example"),
        Address("", "other@client.example"),
    )
    assert h.date == datetime(2024, 10, 1, 10, 0, tzinfo=UTC)
    assert h.date.tzinfo is not None
    assert h.message_id == "<CAF=abc123@mail.gmail.com>"
    assert h.subject == "Welcome to your new job"
    assert h.content_type == "multipart/alternative"
    assert h.has_dkim_signature
    assert h.authentication_results == ()
    assert h.auto_submitted is None and h.precedence is None and h.list_id is None
    assert h.defects == ()


def test_outlook_like_message():
    h = headers_of(OUTLOOK)
    assert h.from_addr == Address("Smith, John", "john.smith@agency.co.uk")
    assert h.to == (Address("Jürgen Müller", "juergen@example.de"),)
    assert h.subject == "Willkommen bei Müller"
    assert h.message_id == "<AM0PR01MB1234.eurprd01.prod.outlook.com>"
    assert h.date == datetime(2024, 10, 2, 8, 15, tzinfo=UTC)
    assert h.content_type == "text/html"
    assert not h.has_dkim_signature
    assert len(h.authentication_results) == 2
    assert h.authentication_results[0].startswith("mx.emailsync.example;")
    assert "dmarc=pass header.from=agency.co.uk" in h.authentication_results[0]
    assert h.authentication_results[1].startswith("spf=pass")
    assert h.x_emailsync == {"placement": "PL-1234", "role": "Candidate", "name": "Jürgen"}
    assert h.defects == ()


def test_sender_reply_to_and_list_headers():
    h = parse_headers(
        b"From: a@acme.com\r\nSender: Bot <Bot@ATS.example>\r\n"
        b"Reply-To: x@acme.com, y@acme.com\r\nTo: c@x.org\r\n"
        b"Auto-Submitted: Auto-Generated\r\nPrecedence: Bulk\r\n"
        b"List-Id: Jobs <jobs.acme.com>\r\n"
    )
    assert h.sender_addr == Address("Bot", "bot@ats.example")
    assert [a.addr_spec for a in h.reply_to] == ["x@acme.com", "y@acme.com"]
    assert h.auto_submitted == "auto-generated"
    assert h.precedence == "bulk"
    assert h.list_id == "Jobs <jobs.acme.com>"


def test_rfc2047_display_names():
    h = parse_headers(
        b"From: =?UTF-8?Q?Zo=C3=AB_=C3=85ngstr=C3=B6m?= <zoe@acme.com>\r\n"
        b"To: =?iso-8859-1?q?Andr=E9?= <andre@x.fr>,"
        b" =?utf-8?b?5bGx55Sw5aSq6YOO?= <taro@x.jp>\r\n"
    )
    assert h.from_addr.display_name == "Zoë Ångström"
    assert [a.display_name for a in h.to] == ["André", "山田太郎"]
    assert h.defects == ()


def test_raw_utf8_headers_are_decoded_as_utf8():
    raw = "From: Zoë Ångström <zoë@exämple.com>\r\nTo: 山田 <taro@例え.jp>\r\nSubject: Héllo ✓\r\n"
    h = parse_headers(raw.encode("utf-8"))
    assert h.from_addr == Address("Zoë Ångström", "zoë@exämple.com")
    assert h.to == (Address("山田", "taro@例え.jp"),)
    assert h.subject == "Héllo ✓"
    assert h.defects == ()  # SMTPUTF8 local parts are legitimate


def test_latin1_bytes_in_a_display_name_are_not_a_defect():
    h = parse_headers(b"From: Andr\xe9 <andre@acme.com>\r\nSubject: caf\xe9\r\n")
    assert h.from_addr.addr_spec == "andre@acme.com"
    assert h.from_addr.display_name == ""  # not "Andr\ufffd": nobody is greeted like that
    assert h.subject == "caf\ufffd"
    assert h.defects == ()


def test_encoded_words_inside_a_quoted_name_are_decoded_as_mail_clients_do():
    h = parse_headers(
        b"From: a@acme.com\r\n"
        b'To: "O\'Neil, Siobh=?iso-8859-1?Q?=E1n?=" <siobhan@candidate.example>,\r\n'
        b' "=?utf-8?B?SsO8cmdlbg==?= M" <j@candidate.example>\r\n'
    )
    assert [a.display_name for a in h.to] == ["O'Neil, Siobhán", "Jürgen M"]
    assert h.defects == ()
    unknown = parse_headers(b'To: "Bad =?x-no-such-charset?Q?=E1?=" <bad@candidate.example>\r\n')
    assert [a.display_name for a in unknown.to] == [""]


def test_a_quoted_name_that_is_one_encoded_word_is_read_as_outlook_and_javamail_mean_it():
    """The word ends at the closing quote, which the parser reports as missing whitespace;
    only the name is concerned, so the email is not skipped for it."""
    h = parse_headers(
        b"From: =?UTF-8?Q?Sam_Carter?= <sam@acme.com>\r\n"
        b'To: "=?iso-8859-1?Q?M=FCller=2C_J=FCrgen?=" <juergen@candidate.example>,\r\n'
        b' "=?UTF-8?Q?Jos=C3=A9?=" <jose@candidate.example>\r\n'
        b"Cc: =?utf-8?q?Ana?=<ana@client.example>\r\n"
    )
    assert h.defects == ()
    assert h.from_addr == Address("Sam Carter", "sam@acme.com")
    assert [(a.display_name, a.addr_spec) for a in h.to] == [
        ("Müller, Jürgen", "juergen@candidate.example"),
        ("José", "jose@candidate.example"),
    ]
    assert h.cc == (Address("Ana", "ana@client.example"),)


def test_a_garbled_encoded_name_costs_the_name_not_the_email():
    h = parse_headers(
        b"From: a@acme.com\r\n"
        b"To: =?utf-8?b?!!!notb64?= <b64@candidate.example>, =?utf-8?b?QUJ?= <pad@x.example>\r\n"
    )
    assert h.defects == ()
    assert [(a.display_name, a.addr_spec) for a in h.to] == [
        ("", "b64@candidate.example"),
        ("AB", "pad@x.example"),
    ]


@pytest.mark.parametrize(
    "to",
    [
        b"=?utf-8?q?ann?=@candidate.example",
        b"<=?utf-8?q?ann?=@candidate.example>",
        b"=?utf-8?b?QUJD?=@candidate.example",
        b"=?utf-8?q?a?=nn@candidate.example",  # only an obsolete-syntax note from the parser
        b"=?utf-8?q?ann?=@candidate.example, ann@elsewhere.example",
        b"x@=?utf-8?q?candidate?=.example",
        b"ann@=?utf-8?q?candidate.example?=",  # no defect from the parser at all
        b"=?utf-8?q?ann?= @candidate.example",
        # The same address written out elsewhere in the header does not make it so.
        b"=?utf-8?q?ann?=@candidate.example (ann@candidate.example)",
        b'"ann@candidate.example" <=?utf-8?q?ann?=@candidate.example>',
        b"=?utf-8?q?ann?=@candidate.example, joann@candidate.example",
    ],
)
def test_an_encoded_word_inside_an_address_is_not_decoded_into_one(to):
    """Every other system reads such an address as written; ours would have read another."""
    h = parse_headers(b"From: a@acme.com\r\nTo: " + to + b"\r\n")
    assert "to_parse_defect" in h.defects


def test_an_encoded_word_in_the_from_address_does_not_name_a_recruiter():
    h = parse_headers(b"From: =?utf-8?q?sam?=@acme.com (sam@acme.com)\r\nTo: a@b.example\r\n")
    assert "from_parse_defect" in h.defects


def test_a_name_folded_across_encoded_words_is_one_name():
    """RFC 2047 6.2: the whitespace between adjacent encoded words is not part of the text."""
    h = parse_headers(
        b"From: a@acme.com\r\n"
        b"To: =?utf-8?q?Anne-Sophie_M=C3=BCller-L=C3=BCdenscheidt_von_Hohenzollern-Sigma?=\r\n"
        b" =?utf-8?q?ringen?= <anne@candidate.example>,\r\n"
        b" =?UTF-8?Q?Fran=C3=A7oise_Cand?=\r\n\t=?UTF-8?Q?idate?= <f@candidate.example>,\r\n"
        b" =?utf-8?b?SsO8cmdl?= =?utf-8?b?bg==?= <j@candidate.example>,\r\n"
        b" =?utf-8?q?Z=C3?= =?utf-8?q?=AB?= <z@candidate.example>,\r\n"
        b" =?iso-8859-1?q?Jos=E9?= =?utf-8?q?_Mar=C3=ADa?= <jm@candidate.example>\r\n"
    )
    assert [a.display_name for a in h.to] == [
        "Anne-Sophie Müller-Lüdenscheidt von Hohenzollern-Sigmaringen",
        "Françoise Candidate",
        "Jürgen",
        "Zë",  # a character split across two words is mended
        "José María",  # two charsets: decoded word by word, the space between them dropped
    ]
    assert h.defects == ()


def test_latin1_bytes_inside_an_address_are_a_defect():
    h = parse_headers(b"From: a@acme.com\r\nTo: andr\xe9@example.fr\r\n")
    assert h.to == ()
    assert "to_invalid_utf8" in h.defects


def test_idn_domain_is_decoded_to_unicode_and_lower_cased():
    h = parse_headers("From: A <Boss@XN--BCHER-KVA.DE>\r\nTo: b@Bücher.DE\r\n".encode())
    assert h.from_addr.addr_spec == "boss@bücher.de"
    assert h.from_addr.domain == "bücher.de"
    assert h.to[0].addr_spec == "b@bücher.de"
    assert h.defects == ()


def test_invalid_punycode_keeps_the_domain_and_reports_it():
    h = parse_headers(b"From: a@acme.com\r\nTo: b@xn--zz.example\r\n")
    assert h.to == (Address("", "b@xn--zz.example"),)
    assert h.defects == ("to_idna_invalid",)


def test_obsolete_but_understood_syntax_is_not_a_defect():
    h = parse_headers(b"From: J. Smith <j@acme.com>\r\nTo: a@x.org,, <@route:b@x.org>\r\nCc: \r\n")
    assert h.from_addr == Address("J. Smith", "j@acme.com")
    assert [a.addr_spec for a in h.to] == ["a@x.org", "b@x.org"]
    assert h.cc == ()
    assert h.defects == ()


def test_quoted_local_part_stays_quoted_and_comparable():
    h = parse_headers(b'From: a@acme.com\r\nTo: "Odd Person"@X.org\r\n')
    assert h.to[0].addr_spec == '"odd person"@x.org'
    assert h.to[0].domain == "x.org"


def test_date_variants():
    assert parse_headers(b"Date: Tue, 1 Oct 2024 10:00:00 -0000\r\n").date == datetime(
        2024, 10, 1, 10, 0, tzinfo=UTC
    )
    pst = parse_headers(b"Date: Tue, 1 Oct 2024 10:00:00 -0800\r\n").date
    assert pst.utcoffset() == timedelta(hours=-8)
    assert pst == datetime(2024, 10, 1, 18, 0, tzinfo=UTC)
    assert parse_headers(b"Date: yesterday-ish\r\n").date is None
    assert parse_headers(b"Date: Mon, 99 Foo 2024 99:99:99 +9999\r\n").date is None
    assert parse_headers(b"From: a@b.c\r\n").date is None


def test_message_id_is_stripped_and_missing_is_none():
    assert parse_headers(b"Message-ID:   <x@y>  \r\n").message_id == "<x@y>"
    assert parse_headers(b"Message-ID: \r\n").message_id is None
    assert parse_headers(b"Subject: x\r\n").message_id is None


def test_content_type_defaults_and_lower_cases():
    assert parse_headers(b"Subject: x\r\n").content_type == "text/plain"
    assert parse_headers(b"Content-Type: Multipart/Report; x=y\r\n").content_type == (
        "multipart/report"
    )
    assert parse_headers(b"Content-Type: garbage\r\n").content_type == "text/plain"


# --- address-header defects ------------------------------------------------------------------


def test_group_syntax_gives_no_addresses_and_no_defect():
    h = parse_headers(b"From: a@acme.com\r\nTo: undisclosed-recipients:;\r\n")
    assert h.to == ()
    assert h.defects == ()


def test_named_group_members_are_addresses():
    h = parse_headers(b"From: a@acme.com\r\nTo: Team: x@a.org, y@a.org;, z@a.org\r\n")
    assert [a.addr_spec for a in h.to] == ["x@a.org", "y@a.org", "z@a.org"]
    assert h.defects == ()


def test_duplicate_to_headers_are_combined_and_reported():
    h = parse_headers(b"From: a@acme.com\r\nTo: x@a.org\r\nTo: y@a.org\r\n")
    assert [a.addr_spec for a in h.to] == ["x@a.org", "y@a.org"]
    assert h.defects == ("to_duplicated",)


def test_missing_from():
    h = parse_headers(b"To: x@a.org\r\n")
    assert h.from_addr is None
    assert h.defects == ("from_missing",)


def test_from_with_two_mailboxes_or_two_headers_has_no_author():
    two = parse_headers(b"From: a@acme.com, b@acme.com\r\nTo: x@a.org\r\n")
    assert two.from_addr is None
    assert "from_multiple" in two.defects
    dup = parse_headers(b"From: a@acme.com\r\nFrom: evil@evil.example\r\nTo: x@a.org\r\n")
    assert dup.from_addr is None
    assert "from_duplicated" in dup.defects


def test_from_that_is_only_a_group_or_empty():
    assert "from_no_mailbox" in parse_headers(b"From: nobody:;\r\n").defects
    assert "from_no_mailbox" in parse_headers(b"From: \r\n").defects


def test_address_without_domain_is_dropped():
    h = parse_headers(b"From: a@acme.com\r\nTo: bob, carol@x.org\r\n")
    assert [a.addr_spec for a in h.to] == ["carol@x.org"]
    assert "to_no_domain" in h.defects
    assert "to_parse_defect" in h.defects


def test_unquoted_comma_in_a_name_is_a_defect_not_a_guess():
    h = parse_headers(b"From: a@acme.com\r\nTo: Smith, John <john@x.org>\r\n")
    assert "to_no_domain" in h.defects


def test_nul_in_address_is_dropped_and_reported():
    h = parse_headers(
        b'From: a@acme.com\r\nTo: ev\x00il@x.org, ok@x.org\r\nCc: "N\x00" <n@x.org>\r\n'
    )
    assert [a.addr_spec for a in h.to] == ["ok@x.org"]
    assert "to_control_char" in h.defects
    assert h.cc == (Address("N ", "n@x.org"),)  # the name is cleaned, the address kept
    assert "cc_control_char" in h.defects


def test_encoded_crlf_in_display_name_is_reported():
    h = parse_headers(b"From: a@acme.com\r\nTo: =?utf-8?q?a=0D=0ABcc:_x@evil?= <c@x.org>\r\n")
    assert h.to == ()
    assert "to_control_char" in h.defects


def test_nul_in_free_text_is_removed():
    h = parse_headers(b"From: a@acme.com\r\nSubject: a\x00b\r\nMessage-ID: <a\x00b@x>\r\n")
    assert "\x00" not in h.subject and "\x00" not in h.message_id


def test_malformed_line_is_reported():
    h = parse_headers(b"From: a@acme.com\r\nthis is not a header\r\nTo: x@a.org\r\n")
    assert h.from_addr is not None
    assert "headers_malformed" in h.defects


def test_a_doubled_line_ending_does_not_cut_the_block_short_unseen():
    """`\r\r\n` (line endings converted twice) is a blank line to Python's parser, which then
    stops reading fields; the To list, Auto-Submitted and Date after it would be lost."""
    block = (
        b"From: Sam <sam@acme.com>\r\n"
        b"To: p0@c0.test,\r\r\n p1@c1.test,\r\r\n p2@c2.test\r\n"
        b"Auto-Submitted: auto-replied\r\n"
    )
    h = parse_headers(block)
    assert "headers_malformed" in h.defects


@pytest.mark.parametrize(
    "block",
    [
        b"From: a@acme.com\r\nTo: x@a.org\rCc: y@b.org\r\n",  # a lone CR inside a line
        b"From: a@acme.com\rTo: x@a.org\r\n",
        b"From: a@acme.com\r\nTo: x@a.org\r\nSubject: hi\r",  # at the very end
    ],
)
def test_a_lone_carriage_return_is_malformed(block):
    assert "headers_malformed" in parse_headers(block).defects


def test_plain_and_bare_lf_blocks_are_not_malformed():
    for block in (b"From: a@acme.com\r\nTo: x@a.org\r\n", b"From: a@acme.com\nTo: x@a.org\n"):
        assert parse_headers(block).defects == ()


def test_deeply_nested_comment_does_not_raise():
    h = parse_headers(b"From: a@acme.com\r\nTo: " + b"(" * 3000 + b"x@a.org\r\n")
    assert h.to == ()
    assert "to_unparseable" in h.defects


def test_a_thousand_addresses_are_parsed_quickly():
    to = ",\r\n ".join(f'"Person {i}" <p{i}@example{i % 7}.org>' for i in range(1000))
    start = time.perf_counter()
    h = parse_headers(f"From: a@acme.com\r\nTo: {to}\r\n".encode())
    assert time.perf_counter() - start < 2
    assert len(h.to) == 1000
    assert h.to[999] == Address("Person 999", "p999@example5.org")
    assert h.defects == ()


def test_long_hostile_address_header_is_refused_quickly():
    for filler in (b'"', b"\\", b".", b",", b"a.", b"("):
        start = time.perf_counter()
        h = parse_headers(b"From: a@acme.com\r\nTo: " + filler * 40_000 + b"x@a.org\r\n")
        assert time.perf_counter() - start < 1, filler
        assert h.to == ()
        assert "to_too_long" in h.defects


def test_several_mib_of_headers():
    block = b"From: a@acme.com\r\nTo: x@a.org\r\n" + b"X-Filler: " + b"y" * 70 + b"\r\n"
    block += (b"X-Filler: " + b"y" * 70 + b"\r\n") * 60_000  # ~5 MiB
    block += b"Cc: late@a.org\r\n"
    start = time.perf_counter()
    h = parse_headers(block)
    assert time.perf_counter() - start < 5
    assert h.from_addr.addr_spec == "a@acme.com"
    assert h.cc == ()  # beyond the cap
    assert "headers_truncated" in h.defects


def test_one_huge_header_line():
    h = parse_headers(b"From: a@acme.com\r\nSubject: " + b"s" * 3_000_000 + b"\r\nTo: x@a.org\r\n")
    assert h.subject is None
    assert "headers_truncated" in h.defects


def test_over_long_folded_lines():
    folded = b"Subject: " + b"\r\n ".join([b"word"] * 2000) + b"\r\n"
    h = parse_headers(b"From: a@acme.com\r\n" + folded + b"To: x@a.org\r\n")
    assert h.subject.startswith("word word")
    assert h.to == (Address("", "x@a.org"),)


def test_broken_encoded_words_do_not_raise():
    h = parse_headers(
        b"From: =?utf-8?q?=FF=FE?= <a@acme.com>\r\nTo: =?bogus?b?!!!?= <x@a.org>\r\n"
        b"Subject: =?utf-8?b?not base64?= =?x?q?=ZZ?=\r\n"
    )
    assert h.from_addr.addr_spec == "a@acme.com"
    assert h.to[0].addr_spec == "x@a.org"
    assert all(c < "\ud800" or c > "\udfff" for c in h.from_addr.display_name)


def test_empty_and_binary_input():
    assert parse_headers(b"") == ParsedHeaders(defects=("from_missing",))
    h = parse_headers(bytes(range(256)) * 10)
    assert h.from_addr is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_never_raises_on_arbitrary_bytes(data):
    result = parse_headers(data)
    assert isinstance(result, ParsedHeaders)
    assert isinstance(header_hash(data), str)
    split_message(data)


_FIELD_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Sender", "Reply-To", "Date", "Message-ID", "Subject",
     "Content-Type", "Authentication-Results", "DKIM-Signature", "X-EmailSync-Name",
     "Auto-Submitted", "fRoM", "TO"]
)  # fmt: skip
_VALUE_PIECES = st.sampled_from(
    ['"', "<", ">", "@", ",", ";", ":", "(", ")", "\\", ".", " ", "\t", "\r\n ", "=?",
     "?=", "=?utf-8?q?", "=?utf-8?b?", "=C3=A9", "xn--", "[", "]", "\x00", "é", "例",
     "a", "bob", "acme.com", "undisclosed-recipients:;", "\ufffd", "\ud800"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_FIELD_NAMES, st.lists(_VALUE_PIECES, max_size=40)), max_size=12))
def test_never_raises_on_structured_random_headers(fields):
    text = "".join(f"{name}: {''.join(pieces)}\r\n" for name, pieces in fields)
    result = parse_headers(text.encode("utf-8", "surrogatepass"))
    for address in (result.from_addr, result.sender_addr, *result.to, *result.cc):
        if address is not None:
            assert "@" in address.addr_spec
            assert not any(c in address.addr_spec for c in "\r\n\x00")
            assert not any(c in address.display_name for c in "\r\n\x00")


# --- hashing ---------------------------------------------------------------------------------


def test_header_hash_ignores_relay_trace_fields_and_line_endings():
    base = b"From: a@acme.com\r\nTo: x@a.org\r\nSubject: Hi\r\nMessage-ID: <1@a>\r\n"
    relayed_once = b"Received: from a by b;\r\n\tTue, 1 Oct 2024\r\nReturn-Path: <a@acme.com>\r\n"
    relayed_twice = (
        b"Delivered-To: in@x\r\nX-Original-To: in@x\r\nReceived: from c by d\r\n"
        b"Authentication-Results: mx; dkim=pass\r\nReceived: from a by b\r\n"
    )
    first = header_hash(relayed_once + base)
    assert first == header_hash(relayed_twice + base)
    assert first == header_hash(base.replace(b"\r\n", b"\n"))
    assert first == header_hash(base + b"\r\nbody after the blank line")


def test_header_hash_changes_when_a_sender_field_changes():
    base = b"From: a@acme.com\r\nTo: x@a.org\r\nSubject: Hi\r\n"
    assert header_hash(base) != header_hash(base.replace(b"x@a.org", b"y@a.org"))
    folded = b"From: a@acme.com\r\nTo: x@a.org,\r\n y@a.org\r\n"
    assert header_hash(folded) != header_hash(b"From: a@acme.com\r\nTo: x@a.org,\r\n")


def test_message_id_hash_normalises():
    expected = message_id_hash("aBc@example.com")
    assert message_id_hash(" <aBc@Example.COM> ") == expected
    assert message_id_hash("<aBc@example.com>") == expected
    assert message_id_hash("<abd@example.com>") != expected
    # The left part is a case-sensitive id (base64-like in Gmail and ATS ids).
    assert message_id_hash("<ABC@example.com>") != expected
    assert message_id_hash("no-at-sign") == message_id_hash("<no-at-sign>")
    assert len(expected) == 64


# --- parse_address ---------------------------------------------------------------------------


def test_parse_address():
    assert parse_address("Jane <Jane@ACME.com>") == Address("Jane", "jane@acme.com")
    assert parse_address("j@xn--bcher-kva.de").addr_spec == "j@bücher.de"
    assert parse_address("bob") is None
    assert parse_address("a@b.com, c@d.com") is None
    assert parse_address("") is None
    assert parse_address(None) is None
