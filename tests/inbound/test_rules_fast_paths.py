"""The listener's faster rule functions against the straightforward versions they replaced.

Each reference below is the earlier implementation, kept verbatim: the fast one must agree with
it on every input, odd ones above all (plus-tags, quoted local parts, Unicode, upper case,
empty strings, soft line breaks).
"""

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emailsync.inbound import recipients as rules
from emailsync.inbound import roles, structured
from emailsync.inbound.facts import AgencyFacts
from emailsync.inbound.headers import parse_address
from emailsync.review_requests.models import EmailSyncSettings

# --- references: the earlier implementations ---------------------------------------------------

_SEPARATORS = re.compile(r"[-_.]")
_FIRST_TOKEN = re.compile(r"[-_.=]")


def reference_is_role_address(addr_spec: str) -> bool:
    if "@" in addr_spec:
        labels = addr_spec.rpartition("@")[2].strip().lower().rstrip(".").split(".")
        for drop in roles.MAIL_DROP_DOMAINS:
            if ".".join(labels[-len(drop.split(".")) :]) == drop:
                return True
    local = addr_spec.rpartition("@")[0] if "@" in addr_spec else addr_spec
    local = local.strip().strip('"').lower().split("+", 1)[0]
    if not local:
        return False
    squeezed = _SEPARATORS.sub("", local)
    if squeezed in roles.ROLE_LOCAL_PARTS or squeezed.startswith(roles.ROLE_SQUEEZED_PREFIXES):
        return True
    return _FIRST_TOKEN.split(local, 1)[0] in roles.ROLE_TOKEN_PREFIXES


def reference_strip_plus_tag(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def reference_plain_name(name):
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "'":
        name = name[1:-1].strip()
    return name


def reference_unique_recipients(addresses):
    """One per mailbox (the address without its plus tag), the first as written."""
    seen = {}
    for r in addresses:
        email = r.email.strip().lower()
        if email and reference_strip_plus_tag(email) not in seen:
            name = reference_plain_name(r.name)
            seen[reference_strip_plus_tag(email)] = rules.Recipient(email, name)
    return list(seen.values())


def reference_exclusion(email, *, sender, inbound_domain, agency_domains, member_emails):
    domain = email.rpartition("@")[2]
    if domain == inbound_domain:
        return rules.INBOUND_ADDRESS
    if sender and reference_strip_plus_tag(email) == reference_strip_plus_tag(sender):
        return rules.SENDER
    if domain in agency_domains or reference_strip_plus_tag(email) in member_emails:
        return rules.COLLEAGUE
    if not rules.deliverable(email):  # no fast path of its own: the rule is its own reference
        return rules.UNDELIVERABLE
    if any(ord(c) > 127 for c in email.rpartition("@")[0]):  # needs SMTPUTF8 to be sent
        return rules.UNSENDABLE
    if reference_is_role_address(email):
        return rules.ROLE_ADDRESS
    return ""


def reference_decide(
    recipients,
    *,
    sender,
    inbound_domain,
    agency_domains,
    member_emails,
    suppressed,
    recently_asked,
    cap,
):
    decisions = []
    recipients = list(recipients)
    for r in reference_unique_recipients(recipients):
        # The first form of a mailbox, unless that address alone is suppressed and a later
        # form is not: then the first such form, with the first form's name if it has none.
        if r.email in suppressed:
            forms = []
            for other in recipients:
                email = other.email.strip().lower()
                same = reference_strip_plus_tag(email) == reference_strip_plus_tag(r.email)
                if email and same and email not in [e for e, _ in forms]:
                    forms.append((email, reference_plain_name(other.name)))
            for email, name in forms:
                if email not in suppressed:
                    r = rules.Recipient(email, name or r.name)
                    break
        reason = reference_exclusion(
            r.email,
            sender=sender,
            inbound_domain=inbound_domain,
            agency_domains=agency_domains,
            member_emails=member_emails,
        )
        mailbox = reference_strip_plus_tag(r.email)
        if not reason and (r.email in suppressed or mailbox in suppressed):
            reason = rules.SUPPRESSED
        if not reason and (r.email in recently_asked or mailbox in recently_asked):
            reason = rules.RECENTLY_ASKED
        decisions.append(rules.Decision(r.email, r.name, invite=not reason, reason=reason))
    if sum(d.invite for d in decisions) > cap:
        decisions = [
            rules.Decision(d.email, d.name, False, d.reason or rules.BULK_SEND) for d in decisions
        ]
    return decisions


_MARKERS = re.compile(rb"emailsync|base64", re.IGNORECASE)


def reference_may_hold_block(header_bytes, body_bytes, chunk=1 << 20, overlap=64) -> bool:
    if _MARKERS.search(header_bytes):
        return True
    view = memoryview(body_bytes)
    for start in range(0, len(view), chunk):
        flat = bytes(view[max(0, start - overlap) : start + chunk])
        flat = flat.replace(b"=\r\n", b"").replace(b"=\n", b"").lower()
        if any(word in flat for word in (b"emailsync", b"base64")):
            return True
    return False


def reference_normalise_email(value):
    if not isinstance(value, str) or structured._SURROGATES.search(value):
        return None
    address = parse_address(value.strip())
    return address.addr_spec if address is not None else None


def reference_entry(data, email):
    if not data.recipients:
        return {}
    return data.recipients.get(reference_normalise_email(email) or "") or {}


# --- odd inputs --------------------------------------------------------------------------------

ODD_ADDRESSES = [
    "",
    "@",
    "+",
    "+@",
    "@+",
    "a",
    "a+b",
    "sam@acme.test",
    "Sam@Acme.Test",
    "sam+crm@acme.test",
    "sam+@acme.test",
    "+crm@acme.test",
    "sam++x+y@acme.test",
    "sam@acme+x.test",
    "sam@acme.test@other.test",
    "sam+x@acme.test@other+y.test",
    '"sam+x"@acme.test',
    '"sam@x"@acme.test',
    '"no reply"@acme.test',
    '"noreply"@acme.test',
    " noreply @acme.test",
    "NO-REPLY@ACME.TEST",
    "no_reply+hr@acme.test",
    "do.not.reply@acme.test",
    "noreply-invoices@acme.test",
    "bounces=example.com@lists.test",
    "bounces+srs=abc@lists.test",
    "bounce_x@lists.test",
    "bouncer@lists.test",
    "bounce@",
    "bounces",
    "Bounces-1@x",
    "mailer-daemon",
    "MAILER-DAEMON@x",
    "postmaster@",
    "-noreply@x",
    ".@x",
    "-_.@x",
    "josé+tag@bücher.de",
    "JOSÉ@BÜCHER.DE",
    "İnfo@x.test",
    "ß+x@straße.test",
    "ﬁ@x.test",
    "noreply\u00a0@x.test",
    "\tnoreply\n@x.test",
    "no\u200breply@x.test",
    "抵抗+x@例え.テスト",
]

_LOCAL_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "sam",
        "no",
        "reply",
        "NoReply",
        "do",
        "not",
        "bounce",
        "BOUNCES",
        "mailer",
        "daemon",
        "postmaster",
        "notifications",
        "-",
        "_",
        ".",
        "=",
        "+",
        "++",
        '"',
        " ",
        "\t",
        "@",
        "é",
        "İ",
        "ß",
        "\u00a0",
        "抵抗",
    ]
)
_DOMAINS = st.sampled_from(
    [
        "",
        "acme.test",
        "ACME.test",
        "acme-careers.test",
        "in.emailsync.test",
        "client.test",
        "bücher.de",
        "x+y.test",
        "a@b.test",
    ]
)
addresses = st.one_of(
    st.sampled_from(ODD_ADDRESSES),
    st.builds(
        lambda local, at, domain: "".join(local) + at + domain,
        st.lists(_LOCAL_PIECES, max_size=6),
        st.sampled_from(["@", "", "@@"]),
        _DOMAINS,
    ),
    st.text(max_size=20),
)


# --- strip_plus_tag and is_role_address --------------------------------------------------------


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_strip_plus_tag_table(address):
    assert rules.strip_plus_tag(address) == reference_strip_plus_tag(address)


@settings(max_examples=500, deadline=None)
@given(addresses)
def test_strip_plus_tag_agrees_with_the_reference(address):
    assert rules.strip_plus_tag(address) == reference_strip_plus_tag(address)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_is_role_address_table(address):
    assert roles.is_role_address(address) is reference_is_role_address(address)


@settings(max_examples=500, deadline=None)
@given(addresses)
def test_is_role_address_agrees_with_the_reference(address):
    assert roles.is_role_address(address) is reference_is_role_address(address)


# --- exclusion and decide ----------------------------------------------------------------------

AGENCY_DOMAINS = {"acme.test", "acme-careers.test", "bücher.de"}
INBOUND_DOMAIN = "in.emailsync.test"


@settings(max_examples=300, deadline=None)
@given(address=addresses, sender=addresses, members=st.sets(addresses, max_size=4))
def test_exclusion_agrees_with_the_reference(address, sender, members):
    context = dict(
        sender=sender,
        inbound_domain=INBOUND_DOMAIN,
        agency_domains=AGENCY_DOMAINS,
        member_emails=members,
    )
    assert rules.exclusion(address, **context) == reference_exclusion(address, **context)


recipient_lists = st.lists(
    st.builds(rules.Recipient, addresses, st.sampled_from(["", " Sam ", "Cara", "\tJosé\n"])),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(
    people=recipient_lists,
    sender=addresses,
    members=st.sets(addresses, max_size=4),
    suppressed=st.sets(addresses, max_size=3),
    asked=st.sets(addresses, max_size=3),
    cap=st.integers(min_value=0, max_value=6),
)
def test_decide_agrees_with_the_reference(people, sender, members, suppressed, asked, cap):
    context = dict(
        sender=sender,
        inbound_domain=INBOUND_DOMAIN,
        agency_domains=AGENCY_DOMAINS,
        member_emails=members,
        suppressed=suppressed,
        recently_asked=asked,
        cap=cap,
    )
    assert rules.decide(people, **context) == reference_decide(people, **context)


def test_decide_accepts_any_iterable_once():
    people = [rules.Recipient("Cara@Candidate.test", " Cara "), rules.Recipient("noreply@x.test")]
    context = dict(
        sender="sam+crm@acme.test",
        inbound_domain=INBOUND_DOMAIN,
        agency_domains=AGENCY_DOMAINS,
        member_emails=set(),
        suppressed=set(),
        recently_asked=set(),
        cap=10,
    )
    assert rules.decide(iter(people), **context) == reference_decide(people, **context)


@settings(max_examples=300, deadline=None)
@given(recipient_lists)
def test_unique_recipients_agrees_with_the_reference(people):
    assert rules.unique_recipients(people) == reference_unique_recipients(people)


# --- the marker search -------------------------------------------------------------------------

_HEADER_PIECES = st.sampled_from(
    [
        b"From: a@b.test\r\n",
        b"X-Mailer: EmailSync\r\n",
        b"X-Emailsync-Placement: 1\r\n",
        b"Content-Transfer-Encoding: BASE64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Subject: base6\r\n 4\r\n",
        b"Subject: \xc3\xa9mailsync\r\n",
        b"Subject: E\xcc\x81MAILSYNC\r\n",
        b"X: emailsyn\r\n",
        b"X: b=\r\nase64\r\n",
    ]
)
_BODY_PIECES = st.sampled_from(
    [b"e", b"E", b"m", b"a", b"i", b"l", b"s", b"y", b"n", b"c", b"b", b"6", b"4", b"=", b"\r\n"]
    + [b"\n", b"\r", b"=\r\n", b"=\n", b"==\r\n", b"=\r\r\n", b"EmailSync", b"bAsE64", b"x" * 40]
    + [b"-----BEGIN ", b"\xc3\xa9", b"\xff", b"\x00", b"=3D"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_HEADER_PIECES, max_size=4), st.lists(_BODY_PIECES, max_size=60))
def test_may_hold_block_agrees_with_the_reference(header_pieces, body_pieces):
    header, body = b"".join(header_pieces), b"".join(body_pieces)
    expected = reference_may_hold_block(header, body)
    assert structured._may_hold_block(header, body) is expected
    assert structured._may_hold_block(header, memoryview(body)) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(_BODY_PIECES, max_size=80), st.integers(min_value=1, max_value=40))
def test_may_hold_block_agrees_across_chunks(pieces, chunk):
    body = b"".join(pieces)
    original = structured._CHUNK
    structured._CHUNK = chunk
    try:
        found = structured._may_hold_block(b"", body)
    finally:
        structured._CHUNK = original
    assert found is reference_may_hold_block(b"", body, chunk=chunk)


# --- extract: the no-data shortcut -------------------------------------------------------------

_HEADS = st.sampled_from(
    [
        b"",
        b"From: ats@acme.com\r\nMIME-Version: 1.0\r\n",
        b"From: ats@acme.com\r\nContent-Type: text/html; charset=utf-8\r\n",
        b"From: ats@acme.com\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"From: ats@acme.com\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
        b'Content-Type: multipart/alternative; boundary="B"\r\n',
        b"X-EmailSync-Role: candidate\r\n",
    ]
)
# A text block only a base64 part's header gives away: the body shows no marker word.
BASE64_BLOCK = base64.encodebytes(
    b'-----BEGIN EMAILSYNC-----\r\n{"role": "candidate"}\r\n-----END EMAILSYNC-----\r\n'
).replace(b"\n", b"\r\n")
_EXTRACT_PIECES = st.sampled_from(
    [
        b"Hello there.\r\n",
        b"-----BEGIN EMAILSYNC-----\r\n",
        b"-----END EMAILSYNC-----\r\n",
        b'{"placement_ref": "PL-1", "role": "client"}\r\n',
        b'{"recipients": [{"email": "Cara@Example.org", "role": "candidate"}]}\r\n',
        b'{"recruiter_email": "not an address"}\r\n',
        b"[1, 2]\r\n",
        b"{broken\r\n",
        b'<script type="application/json+emailsync">{"role": "candidate"}</script>\r\n',
        b"--B\r\nContent-Type: text/plain\r\n\r\n",
        b"--B--\r\n",
        b"eyJyb2xlIjogImNhbmRpZGF0ZSJ9\r\n",
        BASE64_BLOCK,
        b"emailsy=\r\nnc\r\n",
        b"\xff\xfe\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(_HEADS, st.lists(_EXTRACT_PIECES, max_size=8))
def test_extract_without_x_headers_is_the_same_as_with_unknown_ones(head, pieces):
    # An unknown X-EmailSync-* header is ignored but takes the full path: the shortcut taken
    # when there are none must give exactly what the full path gives.
    body = b"".join(pieces)
    shortcut = structured.extract(head, body, {})
    full = structured.extract(head, body, {"future-field": "x"})
    assert shortcut == full
    assert structured.extract(head, memoryview(body), {}) == full


def test_extract_finds_a_block_only_the_header_gives_away():
    head = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
    assert not structured._mentions_marker(BASE64_BLOCK)
    found = structured.extract(head, BASE64_BLOCK, {})
    assert found.role == "candidate"
    assert found == structured.extract(head, BASE64_BLOCK, {"future-field": "x"})


def test_extract_of_a_plain_email_is_empty_and_not_shared():
    first = structured.extract(b"From: a@b.test\r\n", b"Just text.\r\n", {})
    second = structured.extract(b"From: a@b.test\r\n", b"Just text.\r\n", {})
    assert first == second == structured.StructuredData()
    assert first.recipients is not second.recipients


def test_extract_with_unusable_x_headers_still_says_unreadable():
    assert structured.extract(b"", b"text", None).problems == ("structured_unreadable",)


# --- normalising addresses, and per-recipient lookups ------------------------------------------

ODD_VALUES = [
    *ODD_ADDRESSES,
    "Cara Client <Cara@Example.org>",
    "  cara@example.org  ",
    "cara@example.org, dan@example.org",
    "cara@\ud800.org",
    "Cära <cara@xn--bcher-kva.de>",
    "x" * 600 + "@example.org",
    "a" * 300 + "@example.org",
    None,
    5,
    True,
    ["cara@example.org"],
    {"email": "cara@example.org"},
    b"cara@example.org",
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_normalise_email_agrees_with_the_reference_every_time(value):
    expected = reference_normalise_email(value)
    assert structured._normalise_email(value) == expected
    assert structured._normalise_email(value) == expected  # from the cache, if kept


@settings(max_examples=300, deadline=None)
@given(addresses)
def test_normalise_email_agrees_with_the_reference(value):
    assert structured._normalise_email(value) == reference_normalise_email(value)


def test_the_address_cache_is_bounded():
    info = structured._normalised_text.cache_info()
    assert info.maxsize is not None and info.maxsize <= 4096


@pytest.mark.parametrize(
    "data",
    [
        structured.StructuredData(),
        structured.StructuredData(role="client", recipient_name="Dana"),
        structured.StructuredData(role="", recipient_name=""),
        structured.StructuredData(
            role="client",
            recipient_name="Dana",
            recipients={
                "cara@example.org": {"role": "candidate", "name": "Cara"},
                "dan@example.org": {"role": None, "name": None},
                "eve@example.org": {},
            },
        ),
    ],
)
@pytest.mark.parametrize(
    "email", ["cara@example.org", "Cara@EXAMPLE.org", "dan@example.org", "eve@example.org", ""]
)
def test_role_and_name_lookups_agree_with_the_reference(data, email):
    assert data.role_for(email) == (reference_entry(data, email).get("role") or data.role)
    assert data.name_for(email) == (reference_entry(data, email).get("name") or data.recipient_name)


# --- facts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "ATS.example", "b.example, a.example.\n a.example"])
def test_facts_signing_domains_are_the_settings(text):
    sync = EmailSyncSettings(trusted_signing_domains=text)
    facts = AgencyFacts(None, sync, set(), set(), set())
    assert facts.signing_domains == sync.signing_domains()
    assert facts.signing_domains is facts.signing_domains
