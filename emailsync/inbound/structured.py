"""Optional structured data an ATS template can put into its emails.

Without it we infer everything from the headers. With it, an ATS can tell us the placement
reference, whether a recipient is the candidate or the client, which recruiter the email is
really from (ATSs often send from one shared address) and the name to greet people by.
The format for ATS developers is in docs/STRUCTURED_DATA.md; this module is its reader.

Three places are read, in this order of precedence:

1. ``X-EmailSync-Placement`` / ``-Role`` / ``-Recruiter`` / ``-Name`` headers;
2. a JSON object in ``<script type="application/json+emailsync">`` in an HTML part;
3. a JSON object between ``-----BEGIN EMAILSYNC-----`` and ``-----END EMAILSYNC-----``
   lines in a plain-text part.

The body is read in memory only and nothing from it is logged. Bad data is dropped with a
reason code in ``problems`` (shown to the agency admin); ``extract`` never raises.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import default as DEFAULT_POLICY

from .headers import parse_address

#: Bigger parts are not searched: a template's data sits in a normal-sized message, and a
#: huge part would cost decoding time on every delivery.
MAX_PART_BYTES = 1024 * 1024
#: The JSON object is small by design; anything bigger is not ours.
MAX_JSON_BYTES = 16 * 1024
#: MIME bombs nest or repeat parts; real messages have a handful.
MAX_PARTS = 100
MAX_DEPTH = 8
MAX_RECIPIENTS = 50
MAX_PLACEMENT_REF_CHARS = 100
MAX_NAME_CHARS = 200

ROLES = frozenset({"candidate", "client"})

# Problem codes, stable: stored on the trigger, shown to the agency admin, exported and listed
# by `emailsync triggers`. The agency's wording is in workspace/labels.py. Never say what the
# email contained: these texts describe the problem, not the data.
PROBLEMS = {
    "structured_invalid_json": "The structured data block is not valid JSON.",
    "structured_not_object": "The structured data is not a JSON object.",
    "structured_too_large": "The structured data is over 16 KiB.",
    "structured_unterminated": "A BEGIN EMAILSYNC line has no END line.",
    "structured_part_too_large": "A text or HTML part over 1 MiB was not searched.",
    "structured_bad_placement_ref": "The placement reference is not valid.",
    "structured_bad_role": "A role is not candidate or client.",
    "structured_bad_recruiter_email": "The recruiter email is not exactly one email address.",
    "structured_bad_recipient_name": "A recipient name is not text or is over 200 characters.",
    "structured_bad_recipients": "recipients is not a list.",
    "structured_bad_recipient": "A recipients entry has no valid email.",
    "structured_too_many_recipients": "More than 50 recipients entries; the rest were ignored.",
    "structured_conflict": "A header and the body disagree; the header was used.",
    "structured_unreadable": "The message's MIME structure could not be read.",
}
#: Trigger.structured_problems is this long.
MAX_STORED_PROBLEMS = 200

# `type` attribute of the script element, quoted or not; other attributes may come first.
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SCRIPT_TYPE = re.compile(
    r"""\btype\s*=\s*["']?application/json\+emailsync["']?(?=[\s/>]|$)""", re.IGNORECASE
)
# Markers must start a line, so a block quoted in a reply ("> -----BEGIN ...") is skipped.
_TEXT_BEGIN = re.compile(r"^-----BEGIN EMAILSYNC-----[ \t]*\r?$", re.MULTILINE)
_TEXT_END = re.compile(r"^-----END EMAILSYNC-----[ \t]*\r?$", re.MULTILINE)
# A plain-text reply or inline forward as mail clients write it: the original email follows a
# separator line unquoted, its block with it, and that block is about the original's recipients,
# not this email's. The separators: Outlook's "-----Original Message-----" (in any language,
# never a BEGIN or END line such as ours or PGP's), its 32 underscores under an HTML reply,
# Gmail's "---------- Forwarded message ---------", Thunderbird's "-------- Forwarded Message
# --------" and Apple Mail's "Begin forwarded message:". A template may draw such a line too (a
# rule of underscores, "-----Placement details-----"), so one counts only when the original's
# header follows it, as it always does in a reply or forward: From, Subject or Sent/Date, in the
# languages mail clients write them in, within its next three lines.
_SEPARATOR = re.compile(
    r"^(?:-{5}(?!BEGIN |END )[^-\s][^\r\n]*[^-\s]-{5}|-{10} [^\r\n]+ -{9}|-{8} [^\r\n]+ -{8}"
    r"|_{32}|Begin forwarded message:)[ \t]*\r?$",
    re.MULTILINE,
)
_ORIGINALS_HEADER = re.compile(
    r"[ \t]*\**(?:From|Von|De|Da|Van|Från|Fra|Frá|Od|Lähettäjä|Feladó|От|Від|Kimden|Remetente"
    r"|Afzender|Expéditeur|差出人|发件人|寄件者|寄件人|보낸 사람"
    r"|Subject|Betreff|Objet|Oggetto|Onderwerp|Asunto|Assunto|Ämne|Emne|Temat|Тема|Aihe|Tárgy"
    r"|Konu|件名|主题|主旨|제목"
    r"|Sent|Date|Gesendet|Datum|Envoyé|Enviado|Inviato|Verzonden|Skickat|Sendt|Wysłano"
    r"|Отправлено|送信日時|发送时间)\**[ \t]*[:：]",
    re.IGNORECASE,
)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# JSON may escape half a UTF-16 pair ("\ud800"); such a string cannot be encoded, so storing it
# fails the whole transaction (and the sender would be told to retry for ever).
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
# A plain-text mailer wraps a long line at a space (Outlook replaces the space with the line
# break, format=flowed keeps it before the break): inside a value, that is one space.
_WRAP = re.compile(r"[ \t]*\r?\n[ \t]*")


@dataclass(frozen=True)
class StructuredData:
    """What the message told us explicitly. Every field is optional.

    ``role`` and ``recipient_name`` describe the recipient of a one-recipient email and
    apply to anyone not listed in ``recipients``; ``recipients`` maps a normalised address
    to ``{"role": ..., "name": ...}`` for emails with several recipients.
    """

    placement_ref: str | None = None
    role: str | None = None
    recruiter_email: str | None = None
    recipient_name: str | None = None
    recipients: dict[str, dict[str, str | None]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # "headers", "html", "text": where the data came from

    # Most email has no per-recipient data: nothing to normalise or look up. These run for
    # every recipient of every trigger, several times each.

    def role_for(self, email: str) -> str | None:
        if not self.recipients:
            return self.role
        return self._entry(email).get("role") or self.role

    def name_for(self, email: str) -> str | None:
        if not self.recipients:
            return self.recipient_name
        return self._entry(email).get("name") or self.recipient_name

    def _entry(self, email: str) -> dict:
        if not self.recipients:
            return {}
        return self.recipients.get(_normalise_email(email) or "") or {}


def stored_problems(problems) -> str:
    """The codes as a trigger stores them: comma-separated, whole codes only, in the field.

    Cutting the joined string instead could leave half a code, which nobody can look up."""
    kept: list[str] = []
    length = 0
    for code in problems:
        length += len(code) + bool(kept)
        if length > MAX_STORED_PROBLEMS:
            break
        kept.append(code)
    return ",".join(kept)


def problem_codes(stored: str) -> list[str]:
    """The codes a trigger stored, in the order they were found."""
    return [code for code in (stored or "").split(",") if code]


def extract(header_bytes: bytes, body_bytes: bytes, x_headers: Mapping[str, str]) -> StructuredData:
    """Structured data from the X-EmailSync-* headers (as parsed) and the message body.

    ``x_headers`` is ``ParsedHeaders.x_emailsync``. ``header_bytes`` is needed to read the
    MIME structure of the body.
    """
    problems: list[str] = []
    try:
        return _extract(header_bytes, body_bytes, x_headers, problems)
    except Exception:  # never raise: structured data is a bonus, not a requirement
        return StructuredData(problems=(*dict.fromkeys(problems), "structured_unreadable"))


def _extract(
    header_bytes: bytes, body_bytes: bytes, x_headers: Mapping[str, str], problems: list[str]
) -> StructuredData:
    checked = False
    if len(x_headers) == 0:
        # Most trigger emails carry no structured data at all: no X-EmailSync-* header and
        # no marker in the body. Everything below would then build the empty result, at a
        # third of the cost of the marker search.
        if not body_bytes or not _may_hold_block(header_bytes, body_bytes):
            return StructuredData()
        checked = True
    from_headers = _validate(
        {
            "placement_ref": x_headers.get("placement"),
            "role": x_headers.get("role"),
            "recruiter_email": x_headers.get("recruiter"),
            "recipient_name": x_headers.get("name"),
        },
        problems,
    )
    from_body, body_source = {}, None
    for source, block in _body_blocks(header_bytes, body_bytes, problems, checked):
        document = _load_json(block, problems)
        if document is not None:
            from_body, body_source = _validate(document, problems), source
            break  # the first good block wins; alternatives usually repeat it

    merged = dict(from_body)
    for key, value in from_headers.items():
        if key in from_body and from_body[key] != value:
            problems.append("structured_conflict")  # the header wins; say so
        merged[key] = value

    sources = tuple(s for s, used in (("headers", from_headers), (body_source, from_body)) if used)
    return StructuredData(
        placement_ref=merged.get("placement_ref"),
        role=merged.get("role"),
        recruiter_email=merged.get("recruiter_email"),
        recipient_name=merged.get("recipient_name"),
        recipients=merged.get("recipients", {}),
        problems=tuple(dict.fromkeys(problems)),
        sources=sources,
    )


# --- finding the blocks ----------------------------------------------------------------------


_MARKER_WORDS = (b"emailsync", b"base64")
# Quoted-printable may break a word with soft line breaks ("=\r\n"); a chunk's tail is read again
# with the next so that a word broken at every letter across the boundary is still seen.
_CHUNK, _OVERLAP = 1 << 20, 64


def _has_marker_word(lowered: bytes) -> bool:
    # Two substring searches: a regular expression alternating the two words cost five times
    # as much on a typical kilobyte.
    return _MARKER_WORDS[0] in lowered or _MARKER_WORDS[1] in lowered


def _mentions_marker(body_bytes) -> bool:
    """Whether a marker word appears in the body, in any case, soft line breaks removed.

    Plain byte operations on a copy of each chunk: a case-insensitive regular expression with
    an optional soft break between every letter cost eight times as much per kilobyte."""
    view = memoryview(body_bytes)
    for start in range(0, len(view), _CHUNK):
        chunk = bytes(view[max(0, start - _OVERLAP) : start + _CHUNK])
        if b"=" in chunk:  # without one there is no soft line break to remove
            chunk = chunk.replace(b"=\r\n", b"").replace(b"=\n", b"")
        if _has_marker_word(chunk.lower()):
            return True
    return False


def _may_hold_block(header_bytes: bytes, body_bytes) -> bool:
    """Whether a block could be in this body at all, without parsing the MIME tree.

    Most trigger emails carry none; a byte search is far cheaper than decoding every part, and
    it copies at most a chunk at a time (the body may be a view of a large message). Base64
    parts hide the markers, so a base64 part means a proper look.
    """
    # bytes.lower() folds ASCII only, as re.IGNORECASE does for a bytes pattern; a
    # case-insensitive regular expression took 10 us on a typical 1 kB header block.
    return _has_marker_word(bytes(header_bytes).lower()) or _mentions_marker(body_bytes)


def _body_blocks(
    header_bytes: bytes, body_bytes: bytes, problems: list[str], checked: bool = False
) -> Iterator[tuple[str, str]]:
    """(source, JSON text) for each block found, in message order. ``checked``: the caller
    has found that the body may hold one (the search is most of the cost for most email)."""
    if not checked and (not body_bytes or not _may_hold_block(header_bytes, body_bytes)):
        return
    # split_message drops the blank line between the two; without it the parser would take
    # a body line such as "Note: ..." for a header.
    raw = header_bytes.rstrip(b"\r\n") + b"\r\n\r\n" + body_bytes
    message = BytesParser(policy=DEFAULT_POLICY).parsebytes(raw)
    for part in _text_parts(message, depth=0, budget=[MAX_PARTS]):
        content_type = part.get_content_type()
        text = _decoded_text(part, problems)
        if text is None:
            continue
        if content_type == "text/html":
            for attributes, content in _SCRIPT.findall(text):
                if _SCRIPT_TYPE.search(attributes):
                    yield "html", content
        else:
            begin = _TEXT_BEGIN.search(text)
            if begin is None or _quotes_an_original(text, begin.start()):
                continue  # no block, or only the forwarded or replied-to email's
            end = _TEXT_END.search(text, begin.end())
            if end is None:
                problems.append("structured_unterminated")
                continue
            yield "text", text[begin.end() : end.start()]


def _quotes_an_original(text: str, before: int) -> bool:
    """Whether a reply's or forward's separator, followed by the original's header, comes
    before `before` (the block's BEGIN line)."""
    for separator in _SEPARATOR.finditer(text, 0, before):
        start = separator.end()
        window = text[start : min(before, start + 2000)]  # the original's header, not its body
        following = [line for line in window.splitlines() if line.strip()]
        if any(_ORIGINALS_HEADER.match(line) for line in following[:3]):
            return True
    return False


def _text_parts(message: Message, depth: int, budget: list[int]) -> Iterator[Message]:
    """Inline text/plain and text/html parts, skipping attachments and attached messages.

    An attached or forwarded email may carry another template's data, which is not about
    this email. ``budget`` is a one-item list shared down the recursion: parts left to visit.
    """
    if budget[0] <= 0:
        return
    budget[0] -= 1
    if message.get_content_maintype() == "multipart":
        if depth >= MAX_DEPTH:
            return
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _text_parts(part, depth + 1, budget)
        return
    if message.get_content_disposition() == "attachment":
        return
    if message.get_content_type() in ("text/plain", "text/html"):
        yield message


def _decoded_text(part: Message, problems: list[str]) -> str | None:
    raw = part.get_payload()
    if not isinstance(raw, str):
        return None
    if len(raw) > MAX_PART_BYTES:
        problems.append("structured_part_too_large")
        return None
    data = part.get_payload(decode=True) or b""  # undoes base64 / quoted-printable
    if part.get("content-transfer-encoding", "7bit").strip().lower() in UNENCODED:
        data = unfold_relayed_lines(data)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:  # unknown charset name: UTF-8 is the best guess for an ATS
        return data.decode("utf-8", "replace")


UNENCODED = {"7bit", "8bit", "binary"}
#: A line this long, in octets, followed by one that starts with a space was broken by a relay.
FOLDED_LINE_OCTETS = 990


def unfold_relayed_lines(data: bytes) -> bytes:
    """Undo the line breaks a relay put into over-long lines of an unencoded part.

    SMTP caps a line at 1,000 octets with its CRLF. ATS mailers that send minified HTML
    without a transfer encoding exceed it, and Postfix, relaying such mail, breaks each line
    at its limit (998) by inserting CRLF and a space: into the middle of a placement
    reference, or between the `<` and `/script>` that end our block. A physical line of at
    least FOLDED_LINE_OCTETS followed by a line that starts with a space is joined to it
    again, without that space. A line the sender broke themselves is never that long, so it
    is left alone; the join is only used to find and read our block, never stored."""
    if b"\n " not in data:
        return data
    lines = data.split(b"\n")
    joined = [lines[0]]
    physical = len(lines[0].rstrip(b"\r"))  # the last physical line's length, not the join's
    for line in lines[1:]:
        if line.startswith(b" ") and physical >= FOLDED_LINE_OCTETS:
            previous = joined[-1]
            joined[-1] = (previous[:-1] if previous.endswith(b"\r") else previous) + line[1:]
        else:
            joined.append(line)
        physical = len(line.rstrip(b"\r"))
    return b"\n".join(joined)


def _load_json(block: str, problems: list[str]) -> dict | None:
    block = block.strip()
    if len(block.encode("utf-8", "replace")) > MAX_JSON_BYTES:
        problems.append("structured_too_large")
        return None
    document = _parse_json(block)
    if document is None and "&" in block:
        # HTML editors sometimes escape quotes inside <script> (&quot;).
        document = _parse_json(html.unescape(block))
    if document is None:
        problems.append("structured_invalid_json")
        return None
    if not isinstance(document, dict):
        problems.append("structured_not_object")
        return None
    return document


def _parse_json(text: str):
    try:
        # strict=False: plain-text mailers wrap long lines, putting newlines inside strings.
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return None


# --- validating values -----------------------------------------------------------------------


def _validate(document: Mapping, problems: list[str]) -> dict:
    """The valid known keys of one source; unknown keys are ignored (newer formats)."""
    found: dict = {}
    checks = (
        ("placement_ref", _placement_ref, "structured_bad_placement_ref"),
        ("role", _role, "structured_bad_role"),
        ("recruiter_email", _normalise_email, "structured_bad_recruiter_email"),
        ("recipient_name", _name, "structured_bad_recipient_name"),
    )
    for key, check, problem in checks:
        value = document.get(key)
        if value is None or value == "":
            continue
        cleaned = check(value)
        if cleaned is None:
            problems.append(problem)
        else:
            found[key] = cleaned
    if document.get("recipients") is not None:
        recipients = _recipients(document["recipients"], problems)
        if recipients:
            found["recipients"] = recipients
    return found


def _recipients(value, problems: list[str]) -> dict[str, dict[str, str | None]]:
    if not isinstance(value, list):
        problems.append("structured_bad_recipients")
        return {}
    if len(value) > MAX_RECIPIENTS:
        problems.append("structured_too_many_recipients")
        value = value[:MAX_RECIPIENTS]
    recipients = {}
    for entry in value:
        email = _normalise_email(entry.get("email")) if isinstance(entry, dict) else None
        if email is None:
            problems.append("structured_bad_recipient")
            continue
        role = _role(entry["role"]) if entry.get("role") else None
        name = _name(entry["name"]) if entry.get("name") else None
        if entry.get("role") and role is None:
            problems.append("structured_bad_role")
        if entry.get("name") and name is None:
            problems.append("structured_bad_recipient_name")
        recipients[email] = {"role": role, "name": name}
    return recipients


def _placement_ref(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # ATSs with numeric IDs send them as JSON numbers
    if not isinstance(value, str):
        return None
    value = _WRAP.sub(" ", value.strip())
    if (
        not value
        or len(value) > MAX_PLACEMENT_REF_CHARS
        or _CONTROL_CHARS.search(value)
        or _SURROGATES.search(value)
    ):
        return None
    return value


def _role(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if value in ROLES else None


def _name(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = _SURROGATES.sub("\ufffd", value)
    value = _WHITESPACE.sub(" ", _CONTROL_CHARS.sub(" ", value)).strip()
    if not value or len(value) > MAX_NAME_CHARS:
        return None
    return value


def _normalise_email(value) -> str | None:
    """The same normalised form as ``headers.Address.addr_spec``, so lookups match."""
    if not isinstance(value, str):
        return None
    if len(value) <= _CACHED_EMAIL_CHARS:
        return _normalised_text(value)
    return _normalised_text.__wrapped__(value)


# A message with per-recipient data looks each recipient up three times (role, name, and the
# role again for its review request), and parsing one address costs about 2 us. Only short
# values are kept, so the cache stays small whatever a document holds.
_CACHED_EMAIL_CHARS = 512


@functools.lru_cache(maxsize=1024)
def _normalised_text(value: str) -> str | None:
    if _SURROGATES.search(value):
        return None
    address = parse_address(value.strip())
    return address.addr_spec if address is not None else None
