"""Read the header block of an inbound message into plain values.

The SMTP listener hands us the raw bytes of a BCC copy. Only the header block is ever
interpreted here; the body is split off and left to the caller (it may be read in memory
for DKIM and structured data, never stored or logged).

Everything in this module is written for hostile input: ``parse_headers`` never raises.
When the address headers we act on (From, To, Cc) cannot be read with certainty, the reason
is reported as a short code in ``ParsedHeaders.defects``; quirks that leave the addresses
certain (obsolete syntax, a garbled display name) are not reported. Codes:

* ``from_missing``, ``from_duplicated`` (two From headers), ``from_multiple`` (two
  mailboxes), ``from_no_mailbox`` (e.g. only a group): ``from_addr`` is None;
* ``<field>_duplicated`` (two To: headers; the addresses are combined), ``<field>_parse_defect``,
  ``<field>_no_domain``, ``<field>_no_local_part``, ``<field>_control_char`` (CR/LF/NUL),
  ``<field>_invalid_utf8``, ``<field>_idna_invalid``, ``<field>_too_long``,
  ``<field>_unparseable``, where field is ``from``, ``to`` or ``cc``;
* ``headers_malformed`` (a line that is not a header, or one the parser took for the empty
  line, ended the block early; or a carriage return not followed by a line feed, which mail
  systems read differently),
  ``headers_truncated`` (over ``MAX_HEADER_BLOCK_BYTES``), ``headers_unparseable``.

Address parsing uses the standard library's ``email.headerregistry`` (the modern parser
behind ``email.policy.default``). ``email.utils.getaddresses``/``parseaddr`` are deliberately
not used: on this Python they can split a crafted header into the wrong addresses
(CVE-2023-27043).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors as email_errors
from email.header import decode_header
from email.parser import HeaderParser
from email.policy import compat32
from email.policy import default as DEFAULT_POLICY
from email.utils import parsedate_to_datetime

try:
    import idna
except ImportError:  # pragma: no cover - idna ships with our dependencies
    idna = None

# Only splits the block into raw fields, which both policies do identically (a property test
# holds them together); every value is then read with email.policy.default. The default
# policy's parser also parses Content-Type while closing, a third of parsing's cost, unused.
SPLITTING_POLICY = compat32


# --- limits -------------------------------------------------------------------------------
# The stdlib header parser collects its parse defects with repeated list concatenation, so a
# header stuffed with special characters costs time quadratic in its length (16 KiB of '"'
# takes seconds). These caps keep one hostile message from stalling the listener.

#: Header blocks beyond this are cut at the last line that fits (``headers_truncated``).
MAX_HEADER_BLOCK_BYTES = 1024 * 1024
#: Address headers up to this size are always handed to the parser.
MAX_ADDRESS_HEADER_CHARS = 4 * 1024
#: Longer address headers are parsed only if they are a plain list of addresses (see
#: ``_PLAIN_ADDRESS_LIST``) which cannot trigger the slow path, of at most this many
#: characters and addresses. 1,000 named addresses fit.
MAX_LONG_ADDRESS_HEADER_CHARS = 48 * 1024
MAX_ADDRESSES_PER_HEADER = 2000
#: Content-Type parameters hit the same slow path; real values are a few hundred bytes.
MAX_STRUCTURED_HEADER_CHARS = 4 * 1024
#: Free-text headers (Subject, Authentication-Results, ...) longer than this are dropped.
MAX_TEXT_HEADER_CHARS = 16 * 1024
#: RFC 5322 line limit; a longer Message-ID is not one a mail client generated.
MAX_MESSAGE_ID_CHARS = 998

#: Header names in X-EmailSync-<Name>, keyed by the lower-case suffix we expose.
X_EMAILSYNC_FIELDS = ("placement", "role", "recruiter", "name")

#: Fields each relay hop adds or rewrites. Leaving them out of ``header_hash`` lets the same
#: message, delivered to us twice by different routes, hash the same.
TRACE_HEADER_NAMES = frozenset(
    {
        "received",
        "return-path",
        "x-original-to",
        "delivered-to",
        # Added by receiving hops too (RFC 7208, RFC 8601, RFC 8617, Gmail's X-Received).
        "x-received",
        "received-spf",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
    }
)

# CR/LF/NUL and the other C0 controls in an address are a header-injection attempt, never a
# typo; in free text they would break storage (PostgreSQL rejects NUL).
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Lone surrogates come from undecodable bytes inside RFC 2047 words; they cannot be stored.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Only CR, LF and NUL make a display name dangerous; a tab there is just folding whitespace.
_INJECTION_CHARS = re.compile(r"[\r\n\x00]")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_LINE_BREAKS_BYTES = re.compile(rb"\r\n|\r|\n")

# A conservative shape for long address lists: bare addresses or `name <address>` items
# whose names are a few quoted strings or plain words, each part of bounded length. It is
# only a gate deciding whether a long header is safe to give to the real parser, never a
# parser itself: anything it rejects is reported as too long.
_ATOM = r"[^\s\"(),.:;<>@\[\]\\]{1,256}"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM}){{0,32}}"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_NAME_WORD = rf"(?:\"[^\"\\\x00-\x1f]{{0,256}}\"|{_ATOM})"
_NAME = rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,16}}"
_LIST_ITEM = rf"\s*(?:(?:{_NAME})?\s*<{_ADDR_SPEC}>|{_ADDR_SPEC})\s*"
_PLAIN_ADDRESS_LIST = re.compile(rf"{_LIST_ITEM}(?:,{_LIST_ITEM})*")
# Local parts that need no quoting in an addr-spec (RFC 5322 dot-atom, plus UTF-8).
_PLAIN_LOCAL_PART = re.compile(r"[^\s\"(),.:;<>@\[\]\\]+(?:\.[^\s\"(),.:;<>@\[\]\\]+)*")

# The shape of nearly every real To/Cc/From: `Name <local@domain>` or a bare address, ASCII,
# no quotes, comments, encoded words or IDN labels. Such a header means exactly what this
# pattern says, so it is read directly (about ten times faster than the full parser); any
# other header goes to the full parser. A test checks both agree on everything this accepts.
_SIMPLE_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_LOCAL = rf"{_SIMPLE_ATEXT}(?:\.{_SIMPLE_ATEXT})*"
_SIMPLE_LABEL = r"(?!xn--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIMPLE_DOMAIN = rf"{_SIMPLE_LABEL}(?:\.{_SIMPLE_LABEL})+"
_SIMPLE_WORD = r"[A-Za-z0-9][A-Za-z0-9!#$%&'*+/^_`{|}~.-]*"
_SIMPLE_NAME = rf"{_SIMPLE_WORD}(?: {_SIMPLE_WORD}){{0,8}}"
_SIMPLE_ITEM = re.compile(
    rf"[ \t]*(?:(?P<name>{_SIMPLE_NAME})[ \t]*<(?P<angle>{_SIMPLE_LOCAL}@{_SIMPLE_DOMAIN})>"
    rf"|(?P<bare>{_SIMPLE_LOCAL}@{_SIMPLE_DOMAIN}))[ \t]*(?:,|$)"
)

# Parse defects that leave the addresses themselves certain, so they are not reported:
# UTF-8 local parts (legitimate in SMTPUTF8 mail), obsolete-but-understood syntax such as
# an unquoted "J. Smith" or an empty list element, and undecodable display names.
_HARMLESS_PARSE_DEFECTS = (
    email_errors.NonASCIILocalPartDefect,
    email_errors.ObsoleteHeaderDefect,
    email_errors.UndecodableBytesDefect,
    email_errors.CharsetError,
)


def _harmless(defect) -> bool:
    # Legacy mailers put RFC 2047 words inside quoted names; the parser decodes them and says
    # so, but only the display name is concerned, never the address (and see _display_name).
    return isinstance(defect, _HARMLESS_PARSE_DEFECTS) or (
        isinstance(defect, email_errors.InvalidHeaderDefect)
        and str(defect) == "encoded word inside quoted string"
    )


# Defects of an RFC 2047 word itself: a word that ends at the closing quote of a quoted name
# (how Outlook, JavaMail and PHP mailers write "=?iso-8859-1?Q?M=FCller=2C_J=FCrgen?="), or
# one whose base64 is broken. In a display name they cost at most the name. But the parser
# decodes such a word wherever it stands, in an address too (`=?utf-8?q?ann?=@example.com`
# becomes ann@example.com, where every other system reads it as written), sometimes with no
# defect at all (`=?utf-8?q?a?=b@example.com`): so a header with an encoded word is also read
# with each word replaced by a plain one, and must give the same addresses
# (`_decoded_into_an_address`).
_ENCODED_WORD_DEFECTS = (
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64LengthDefect,
)
# RFC 2047's encoded word as the parser takes one: no whitespace, and no "?" in its text.
_ENCODED_WORD = re.compile(r"=\?[^\s?]+\?[bBqQ]\?[^\s?]*\?=")


def _encoded_word_defect(defect) -> bool:
    return isinstance(defect, _ENCODED_WORD_DEFECTS) or (
        isinstance(defect, email_errors.InvalidHeaderDefect)
        and str(defect) == "missing trailing whitespace after encoded-word"
    )


def _decoded_into_an_address(name: str, value: str, mailboxes) -> bool:
    """Whether an encoded word in `value` became part of an address: the header read with each
    encoded word replaced by a plain word gives other addresses (or none)."""
    plain = _ENCODED_WORD.sub("encodedword", value)
    if plain == value:
        return False
    try:
        others = DEFAULT_POLICY.header_factory(name, plain).addresses
    except Exception:  # as the first reading, which did parse: treat it as unsure
        return True
    return [(m.username, m.domain) for m in others] != [(m.username, m.domain) for m in mailboxes]


@dataclass(frozen=True)
class Address:
    """One mailbox, normalised for matching.

    ``addr_spec`` has a lower-case local part (quoted if RFC 5322 requires it) and a
    lower-case domain in Unicode form, so ``j@xn--bcher-kva.de`` and ``J@Bücher.de`` compare
    equal.
    """

    display_name: str
    addr_spec: str

    @property
    def local(self) -> str:
        return self.addr_spec.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.addr_spec.rpartition("@")[2]


@dataclass(frozen=True)
class ParsedHeaders:
    """What we read from one header block. Missing headers are ``None`` or empty."""

    from_addr: Address | None = None
    sender_addr: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None
    message_id: str | None = None
    subject: str | None = None
    auto_submitted: str | None = None
    precedence: str | None = None
    list_id: str | None = None
    content_type: str = "text/plain"
    authentication_results: tuple[str, ...] = ()
    has_dkim_signature: bool = False
    x_emailsync: dict[str, str] = field(default_factory=dict)
    defects: tuple[str, ...] = ()


# --- splitting and hashing ------------------------------------------------------------------


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Split a raw message at the first blank line into (header block, body).

    The header block keeps its final line break. With no blank line the whole message is
    headers and the body is empty.
    """
    header, body = split_message_view(raw)
    return header, bytes(body)


def split_message_view(raw: bytes) -> tuple[bytes, memoryview]:
    """Like `split_message`, but the body is a view into `raw`, so a large message is not
    copied (the listener holds many at once)."""
    if raw.startswith((b"\r\n", b"\n")):
        return b"", memoryview(raw)[2 if raw.startswith(b"\r\n") else 1 :]
    # The first line break followed by an empty line, ended by CRLF or a bare LF: what the
    # pattern `(\r?\n)\r?\n` finds first, found by two byte searches (a search with that
    # pattern was 2% of a busy listener's CPU: it has no literal to skip ahead by). Each
    # looks within a window that grows until one finds it, so neither reads a large body
    # for the line ending its message does not use.
    end = 0
    while end < len(raw):
        end = min(len(raw), max(4 * end, HEADER_WINDOW))
        crlf, lf = raw.find(b"\n\r\n", 0, end), raw.find(b"\n\n", 0, end)
        if lf >= 0 and not 0 <= crlf < lf:
            return raw[: lf + 1], memoryview(raw)[lf + 2 :]
        if crlf >= 0:
            return raw[: crlf + 1], memoryview(raw)[crlf + 3 :]
    return raw, memoryview(b"")


HEADER_WINDOW = 64 * 1024  # bytes: nearly every header block ends within it


def header_hash(header_bytes: bytes) -> str:
    """SHA-256 (hex) of the header block without relay trace fields.

    Line endings are normalised to CRLF because relays may convert them; every other byte
    counts, so any change to a field the sender wrote gives a different hash.
    """
    kept: list[bytes] = []
    keep_current = True
    for line in _LINE_BREAKS_BYTES.split(header_bytes):
        if line == b"":
            break  # end of the header block
        if line[:1] in (b" ", b"\t"):
            if keep_current:
                kept.append(line)  # continuation of the field above
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep_current = name.decode("ascii", "replace") not in TRACE_HEADER_NAMES
        if keep_current:
            kept.append(line)
    return hashlib.sha256(b"\r\n".join(kept)).hexdigest()


def message_id_hash(message_id: str) -> str:
    """SHA-256 (hex) of a Message-ID, ignoring whitespace, angle brackets and the case of its
    domain part. The left part keeps its case: ATS and webmail ids are case-sensitive random
    strings, and two emails whose ids differ only in case are two emails."""
    left, at, right = message_id.strip().strip("<>").strip().rpartition("@")
    normalised = f"{left}@{right.lower()}" if at else right
    return hashlib.sha256(normalised.encode("utf-8", "replace")).hexdigest()


# --- parsing -----------------------------------------------------------------------------------


def parse_headers(header_bytes: bytes) -> ParsedHeaders:
    """Parse a header block. Never raises; problems end up in ``defects``."""
    defects: list[str] = []
    try:
        return _parse(header_bytes, defects)
    except Exception:  # the contract is "never raise": a surprise becomes a defect
        return ParsedHeaders(defects=(*dict.fromkeys(defects), "headers_unparseable"))


def _parse(header_bytes: bytes, defects: list[str]) -> ParsedHeaders:
    fields = _read_fields(header_bytes, defects)
    from_addr = _read_from(fields.get("from", []), defects)
    to = _read_address_list("to", fields.get("to", []), defects)
    cc = _read_address_list("cc", fields.get("cc", []), defects)
    # Sender and Reply-To are informational: bad entries are dropped without a defect.
    sender = _read_address_list("sender", fields.get("sender", [])[:1], [])
    reply_to = _read_address_list("reply-to", fields.get("reply-to", []), [])

    return ParsedHeaders(
        from_addr=from_addr,
        sender_addr=sender[0] if len(sender) == 1 else None,
        to=tuple(to),
        cc=tuple(cc),
        reply_to=tuple(reply_to),
        date=_read_date(fields.get("date", [])),
        message_id=_read_message_id(fields.get("message-id", [])),
        subject=_read_text("subject", fields.get("subject", [])),
        auto_submitted=_lower(_read_text("auto-submitted", fields.get("auto-submitted", []))),
        precedence=_lower(_read_text("precedence", fields.get("precedence", []))),
        list_id=_read_text("list-id", fields.get("list-id", [])),
        content_type=_read_content_type(fields.get("content-type", [])),
        authentication_results=_read_raw_values(fields.get("authentication-results", [])),
        has_dkim_signature=bool(fields.get("dkim-signature")),
        x_emailsync=_read_x_emailsync(fields),
        defects=tuple(dict.fromkeys(defects)),  # de-duplicated, first occurrence order
    )


def parse_address(text: str) -> Address | None:
    """Parse one address ("a@b.com" or "Name <a@b.com>") with the same normalisation.

    For matching addresses that reach us outside a header (structured data, admin forms).
    Returns ``None`` unless ``text`` holds exactly one usable mailbox.
    """
    if not isinstance(text, str) or len(text) > MAX_ADDRESS_HEADER_CHARS:
        return None
    defects: list[str] = []
    addresses, mailbox_count = _parse_address_header("to", text, defects)
    if mailbox_count != 1 or len(addresses) != 1 or defects:
        return None
    return addresses[0]


def _read_fields(header_bytes: bytes, defects: list[str]) -> dict[str, list[str]]:
    """Raw, unfolded values of every field, keyed by lower-case name, in message order."""
    if len(header_bytes) > MAX_HEADER_BLOCK_BYTES:
        cut = header_bytes.rfind(b"\n", 0, MAX_HEADER_BLOCK_BYTES)
        header_bytes = header_bytes[: cut + 1]
        defects.append("headers_truncated")
    # BytesHeaderParser would decode as ASCII with surrogate escapes, which turns UTF-8
    # (SMTPUTF8) names and addresses into undecodable junk. We do the one step it does,
    # decode, ourselves, as UTF-8, and hand the text to the same parser and policy.
    # Bytes that are not UTF-8 become U+FFFD; that only matters inside an address, where
    # ``_normalise`` reports it.
    text = header_bytes.decode("utf-8", "replace")
    fields = _split_plain(text)
    if fields is None:
        fields, malformed = _split_with_parser(text)
        if malformed or _BARE_CR.search(text):
            # e.g. a line that is not a header: the parser stops there and the rest is lost.
            # A lone CR ends a line for Python's parser but not for SMTP, DKIM or most mail
            # clients, so the fields we would act on are not the ones others see.
            defects.append("headers_malformed")
    return fields


_BARE_CR = re.compile(r"\r(?!\n)")


def _split_with_parser(text: str) -> tuple[dict[str, list[str]], bool]:
    """The stdlib parser's split, and whether it found the block malformed."""
    message = HeaderParser(policy=SPLITTING_POLICY).parsestr(text, headersonly=True)
    fields: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        fields.setdefault(name.strip().lower(), []).append(_unfold(value))
    # The parser ends the block at the first line it takes for the empty one (a lone CR from
    # a mailer that converted line endings twice, `\r\r\n`) and keeps the rest as a body,
    # with no defect: every field after it would be lost unseen.
    rest = message.get_payload()
    stopped_early = isinstance(rest, str) and rest.strip() != ""
    return fields, bool(message.defects) or stopped_early


def _split_plain(text: str) -> dict[str, list[str]] | None:
    """The same split for a plain block (below), or None for anything else."""
    fields: dict[str, list[str]] = {}
    position, end, match = 0, len(text), _PLAIN_FIELD.match
    while position < end:
        found = match(text, position)
        if found is None:
            return None
        name, first, rest = found.groups()
        value = first.lstrip(" \t")
        if rest:  # folded: the continuation lines keep their leading whitespace
            value += rest.replace("\r", "").replace("\n", "")
        fields.setdefault(name.lower(), []).append(value)
        position = found.end()
    return fields if end else None


# A header block as nearly every mail system writes it: "Name: value" lines, each ending in
# CRLF (or LF), folded only with space or tab, and no character that Python's line splitting
# takes for a line break. Such a block is split field by field with this pattern, with exactly
# the stdlib parser's result (a property test holds them together) in a quarter of its time;
# anything else goes to the parser, with its defects.
_LINE_TEXT = r"[^\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*"
_FIELD_NAME = r"[\x21-\x39\x3b-\x7e]+"
_PLAIN_FIELD = re.compile(rf"({_FIELD_NAME}):({_LINE_TEXT})\r?\n((?:[ \t]{_LINE_TEXT}\r?\n)*)")


def _read_from(values: list[str], defects: list[str]) -> Address | None:
    """The author, or None when there is not exactly one From mailbox.

    RFC 5322 allows several authors, but then nobody in particular "sent" the message and
    it cannot be tied to one agency domain; two From headers are a classic spoofing trick.
    """
    if not values:
        defects.append("from_missing")
        return None
    if len(values) > 1:
        defects.append("from_duplicated")
        return None
    addresses, mailbox_count = _parse_address_header("from", values[0], defects)
    if mailbox_count > 1:
        defects.append("from_multiple")
        return None
    if not addresses:
        defects.append("from_no_mailbox")
        return None
    return addresses[0]


def parse_address_values(values: list[str]) -> list[Address]:
    """Every mailbox in the values of an address header (To, Cc, Delivered-To…), read as an
    address list with the same parser and normalisation as a trigger's To and Cc; what cannot
    be read is left out."""
    return _read_address_list("to", [str(v) for v in values], [])


def _read_address_list(name: str, values: list[str], defects: list[str]) -> list[Address]:
    code = name.replace("-", "_")
    if len(values) > 1:
        defects.append(f"{code}_duplicated")
    addresses: list[Address] = []
    for value in values:
        addresses.extend(_parse_address_header(name, value, defects)[0])
    return addresses


def _simple_addresses(value: str) -> list[Address] | None:
    """The addresses of a plain address list, or None when it needs the full parser."""
    if len(value) > MAX_ADDRESS_HEADER_CHARS or not value.strip() or not value.isascii():
        return None
    if "=?" in value or "xn--" in value.lower():  # encoded words and IDN need decoding
        return None
    found, position = [], 0
    while position < len(value):
        match = _SIMPLE_ITEM.match(value, position)
        if match is None or match.end() == position:
            return None
        spec = match.group("angle") or match.group("bare")
        local, _, domain = spec.rpartition("@")
        found.append(Address(match.group("name") or "", f"{local.lower()}@{domain.lower()}"))
        position = match.end()
    return found


def _parse_address_header(name: str, value: str, defects: list[str]) -> tuple[list[Address], int]:
    """Usable addresses in one header value, and how many mailboxes the parser saw."""
    simple = _simple_addresses(value)
    if simple is not None:
        return simple, len(simple)
    return _parse_with_registry(name, value, defects)


def _parse_with_registry(name: str, value: str, defects: list[str]) -> tuple[list[Address], int]:
    code = name.replace("-", "_")
    if len(value) > MAX_ADDRESS_HEADER_CHARS and (
        len(value) > MAX_LONG_ADDRESS_HEADER_CHARS
        or value.count(",") >= MAX_ADDRESSES_PER_HEADER
        or not _PLAIN_ADDRESS_LIST.fullmatch(value)
    ):
        defects.append(f"{code}_too_long")
        return [], 0
    if "?=" in value:
        value = _join_adjacent_words(value)
    try:
        header = DEFAULT_POLICY.header_factory(name, value)
        parsed = header.addresses
        parse_defects = header.defects
    except ValueError as error:
        # The stdlib refuses to build an address containing CR/LF (e.g. from an encoded
        # word), so the whole header is lost; say why.
        injection = "CR or LF" in str(error)
        defects.append(f"{code}_control_char" if injection else f"{code}_unparseable")
        return [], 0
    except Exception:  # e.g. RecursionError on deeply nested comments
        defects.append(f"{code}_unparseable")
        return [], 0
    unsure = [d for d in parse_defects if not _harmless(d)]
    if not all(map(_encoded_word_defect, unsure)) or (
        "=?" in value and _decoded_into_an_address(name, value, parsed)
    ):
        defects.append(f"{code}_parse_defect")
    addresses = []
    for mailbox in parsed:
        address = _normalise(mailbox, code, defects)
        if address is not None:
            addresses.append(address)
    return addresses, len(parsed)


def _normalise(mailbox, code: str, defects: list[str]) -> Address | None:
    """Turn a headerregistry Address into ours, or None if it cannot be used."""
    local, domain, display_name = mailbox.username, mailbox.domain, mailbox.display_name
    if _CONTROL_CHARS.search(local) or _CONTROL_CHARS.search(domain):
        defects.append(f"{code}_control_char")
        return None
    if _INJECTION_CHARS.search(display_name):
        defects.append(f"{code}_control_char")
    if "\ufffd" in local or "\ufffd" in domain or _SURROGATES.search(local + domain):
        # U+FFFD: 8-bit bytes that are not UTF-8. A lone surrogate: an RFC 2047 word inside
        # the address whose bytes did not decode, kept by the parser as surrogate escapes; no
        # database can store it, and hashing it for the lookups raised, so every retry of the
        # email failed (451) for ever.
        defects.append(f"{code}_invalid_utf8")
        return None
    if not domain:
        defects.append(f"{code}_no_domain")
        return None
    if not local:
        defects.append(f"{code}_no_local_part")
        return None
    domain, idna_ok = _normalise_domain(domain)
    if not idna_ok:
        defects.append(f"{code}_idna_invalid")
    local = local.lower()
    if not _PLAIN_LOCAL_PART.fullmatch(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return Address(display_name=_display_name(display_name), addr_spec=f"{local}@{domain}")


def _join_adjacent_words(value: str) -> str:
    """Encoded words separated only by whitespace, as one word.

    RFC 2047 (6.2) says the whitespace between two encoded words is not part of the text, and
    mailers fold a long name in mid-word that way ("=?utf-8?q?Fran=C3=A7oise_Cand?=
    =?utf-8?q?idate?="). This Python's address parser keeps the space ("Françoise Cand idate"),
    so a run of such words is joined into one before parsing."""
    return _ADJACENT_WORDS.sub(_joined, value)


_WORD = r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="
_ADJACENT_WORDS = re.compile(rf"{_WORD}(?:[ \t]+{_WORD})+")
_WORD_PARTS = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _joined(match: re.Match) -> str:
    words = _WORD_PARTS.findall(match.group(0))
    if len(words) < 2:
        return match.group(0)
    try:
        # Bytes of consecutive words in one charset are decoded together (a character split
        # across two words comes out whole), then everything is one UTF-8 word.
        runs: list[tuple[str, bytes]] = []
        for charset, encoding, text in words:
            data = decode_header(f"=?{charset}?{encoding}?{text}?=")[0][0]
            if runs and runs[-1][0] == charset.lower():
                runs[-1] = (runs[-1][0], runs[-1][1] + data)
            else:
                runs.append((charset.lower(), data))
        text = "".join(data.decode(charset) for charset, data in runs)
    except (ValueError, LookupError, UnicodeDecodeError, email_errors.HeaderParseError):
        return match.group(0)  # parsed as it was: an undecodable name is dropped later
    return f"=?utf-8?B?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


def _display_name(text: str) -> str:
    """A name fit to greet someone by, or "" (the greeting then has no name).

    Two things legacy mailers send do not decode by the rules: RFC 2047 words inside a quoted
    name ("O'Neil, Siobh=?iso-8859-1?Q?=E1n?="), which the standard leaves as they are but mail
    clients decode, and so do we; and raw 8-bit bytes in a charset other than UTF-8, which
    arrive as U+FFFD. A name still holding either would greet "Hi J\ufffdrgen": it is dropped."""
    name = _clean(text)
    if "=?" in name:
        name = _ENCODED_WORD.sub(_decode_word, name)
    if "\ufffd" in name or _SURROGATES.search(name) or _ENCODED_WORD.search(name):
        return ""
    return name


def _decode_word(match: re.Match) -> str:
    try:
        [(raw, charset)] = decode_header(match.group(0))
        return _clean(raw.decode(charset or "ascii")) if isinstance(raw, bytes) else raw
    except (ValueError, LookupError, UnicodeDecodeError, email_errors.HeaderParseError):
        return match.group(0)  # left as it was, and so the name is dropped


def _normalise_domain(domain: str) -> tuple[str, bool]:
    """Lower-case Unicode form of a domain, and whether IDNA decoding (if needed) worked."""
    domain = _clean(domain).lower().rstrip(".")
    needs_idna = not domain.isascii() or any(
        label.startswith("xn--") for label in domain.split(".")
    )
    if not needs_idna or domain.startswith("["):  # plain ASCII or an address literal
        return domain, True
    try:
        if idna is not None:
            return idna.decode(domain, uts46=True), True
        return domain.encode("idna").decode("idna"), True
    except Exception:  # IDNAError, UnicodeError, or a surprise from a malformed label
        return domain, False


def _read_date(values: list[str]) -> datetime | None:
    if not values or len(values[0]) > MAX_STRUCTURED_HEADER_CHARS:
        return None
    try:
        parsed = parsedate_to_datetime(values[0])
    except Exception:  # unparseable dates are common in spam; they just mean "no date"
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        # "-0000" means UTC with the sender's zone unknown (RFC 5322 3.3).
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _read_message_id(values: list[str]) -> str | None:
    if not values:
        return None
    message_id = _clean(values[0]).strip()
    if not message_id or len(message_id) > MAX_MESSAGE_ID_CHARS:
        return None
    return message_id


def _read_text(name: str, values: list[str]) -> str | None:
    """First value of a free-text header, RFC 2047 decoded."""
    if not values or len(values[0]) > MAX_TEXT_HEADER_CHARS:
        return None
    if values[0].isascii() and "=?" not in values[0]:
        return _clean(values[0]).strip()  # nothing to decode
    try:
        text = str(DEFAULT_POLICY.header_factory(name, values[0]))
    except Exception:  # fall back to the undecoded text rather than losing it
        text = values[0]
    return _clean(text).strip()


def _read_content_type(values: list[str]) -> str:
    if not values or len(values[0]) > MAX_STRUCTURED_HEADER_CHARS:
        return "text/plain"  # RFC 2045 5.2 default
    simple = _SIMPLE_CONTENT_TYPE.match(values[0])
    if simple:
        return simple.group(1).lower()
    try:
        return DEFAULT_POLICY.header_factory("content-type", values[0]).content_type
    except Exception:
        return "text/plain"


_MIME_WORD = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_SIMPLE_CONTENT_TYPE = re.compile(rf"\s*({_MIME_WORD}/{_MIME_WORD})\s*(?:;|$)")


def _read_raw_values(values: Iterable[str]) -> tuple[str, ...]:
    """Unfolded values without RFC 2047 decoding (for Authentication-Results parsers)."""
    return tuple(_clean(v).strip() for v in values if len(v) <= MAX_TEXT_HEADER_CHARS)


def _read_x_emailsync(fields: dict[str, list[str]]) -> dict[str, str]:
    found = {}
    for key in X_EMAILSYNC_FIELDS:
        text = _read_text(f"x-emailsync-{key}", fields.get(f"x-emailsync-{key}", []))
        if text:
            found[key] = text
    return found


def _unfold(value: str) -> str:
    # Same unfolding as email.policy.default: folded lines keep their leading whitespace.
    return "".join(_LINE_BREAKS.split(value))


def _clean(text: str) -> str:
    return _SURROGATES.sub("\ufffd", _CONTROL_CHARS.sub(" ", text))


def _lower(text: str | None) -> str | None:
    # Auto-Submitted and Precedence values are case-insensitive keywords.
    return text.lower() if text is not None else None
