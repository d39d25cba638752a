"""dkimpy's text plumbing without its regex overhead.

Once the RSA step moved to OpenSSL (see dkim_rsa), most of the CPU a busy listener spent on
a DKIM check went on dkimpy splitting, unfolding and squashing text: ``re.sub`` and
``re.split`` with patterns fetched from ``re``'s cache on every call, regexes run over whole
header values and bodies that almost never contain anything to change, and one pattern
(the b= tag's) that backtracks over every character of the signature.

dkimpy stays in charge of everything DKIM means (which headers are signed, tag rules, the
canonicalisation steps and their order, hashes, the verdict); only building blocks it looks
up by module-level name are swapped, for versions that return byte-identical results (the
tests compare them with dkimpy's own on generated input):

* ``dkim.rfc822_parse``: split the message into header fields and body,
* ``dkim.parse_tag_value``: read a ``tag=value; ...`` list,
* ``dkim.RE_BTAG``: find the b= value to blank out before hashing the signature header,
* ``dkim.select_headers``: pick the signed header fields, bottom up, as h= lists them,
* the whitespace helpers of ``dkim.canonicalization`` that the relaxed algorithm calls.
"""

import re

import dkim
import dkim.canonicalization as canonicalization
from dkim.util import DuplicateTag, InvalidTagSpec

_PURE_RFC822_PARSE = dkim.rfc822_parse
_PURE_PARSE_TAG_VALUE = dkim.parse_tag_value
_PURE_RE_BTAG = dkim.RE_BTAG
_PURE_SELECT_HEADERS = dkim.select_headers
_PURE_STRIP_TRAILING_WHITESPACE = canonicalization.strip_trailing_whitespace
_PURE_COMPRESS_WHITESPACE = canonicalization.compress_whitespace
_PURE_UNFOLD_HEADER_VALUE = canonicalization.unfold_header_value

_LINE_BREAK = re.compile(rb"\r?\n")
_HEADER_NAME = re.compile(rb"([\x21-\x7e]+?):")
_WSP_RUN = re.compile(rb"[\t ]+")
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")

# dkimpy's pattern is ([;\s]b FWS =)(?: FWS [a-zA-Z0-9+/=])*(?:\r?\n\Z)? with FWS written
# as (?:(?:\s*\r?\n)?\s+)?, which matches exactly the strings \s* does, but its nested
# optionals make the regex engine backtrack at every character of the signature. Either way
# the b= value runs to the last base64 character before anything that is neither that nor
# whitespace, so the same spans match, a tenth of the time.
RE_BTAG = re.compile(rb"([;\s]b\s*=)(?:[\sa-zA-Z0-9+/=]*[a-zA-Z0-9+/=])?(?:\r?\n\Z)?")


def strip_trailing_whitespace(content: bytes) -> bytes:
    # Searching for the two endings is far cheaper than a regex trying every space.
    if b" \r\n" in content or b"\t\r\n" in content:
        return _TRAILING_WSP.sub(b"\r\n", content)
    return content


def compress_whitespace(content: bytes) -> bytes:
    # Without a tab or two spaces in a row, every run is already a single space.
    if b"\t" in content or b"  " in content:
        return _WSP_RUN.sub(b" ", content)
    return content


def unfold_header_value(content: bytes) -> bytes:
    # Same as deleting each \r?\n: a CR goes only when an LF follows it in the input.
    return content.replace(b"\r\n", b"").replace(b"\n", b"")


def _split_lines(message: bytes) -> list[bytes]:
    # The usual all-CRLF message needs no regex; a lone LF anywhere means the general case.
    if message.count(b"\n") == message.count(b"\r\n"):
        return message.split(b"\r\n")
    return _LINE_BREAK.split(message)


def rfc822_parse(message: bytes):
    """Drop-in for dkim.rfc822_parse (same lists, same errors, for the same input)."""
    headers = []
    lines = _split_lines(message)
    for i, line in enumerate(lines):
        if not line:  # the blank line: the body follows
            return headers, b"\r\n".join(lines[i + 1 :])
        if line[0] in (0x09, 0x20):
            headers[-1][1] += line + b"\r\n"  # a continuation before any field: IndexError
            continue
        match = _HEADER_NAME.match(line)
        if match is not None:
            headers.append([match[1], line[match.end() :] + b"\r\n"])
        elif not line.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line}")
    return headers, b""


def parse_tag_value(tag_list: bytes) -> dict:
    """Drop-in for dkim.util.parse_tag_value."""
    tags = {}
    tag_specs = tag_list.strip().split(b";")
    if not tag_specs[-1]:  # trailing semicolons are valid
        tag_specs.pop()
    for tag_spec in tag_specs:
        key, equals, value = tag_spec.partition(b"=")
        key = key.strip()
        # dkimpy's test is re.match(rb"^[a-zA-Z](\w)*", key): only the first byte matters,
        # and bytes.isalpha() is ASCII-only.
        if not equals or not key[:1].isalpha():
            raise InvalidTagSpec(tag_spec)
        if key in tags:
            raise DuplicateTag(key)
        tags[key] = value.strip()
    return tags


def select_headers(headers: list, include_headers: list) -> list:
    """Drop-in for dkim.select_headers: each name in h= takes the lowest field of that name
    not yet taken, scanning upwards. dkimpy lower-cases a field's name at every step of every
    scan (86 times for a typical signed email); here each name is lower-cased once."""
    names = [name.lower() for name, _ in headers]
    selected, taken_down_to = [], {}
    for wanted in include_headers:  # dkimpy has lower-cased these already
        i = taken_down_to.get(wanted, len(headers))
        while i > 0:
            i -= 1
            if names[i] == wanted:
                selected.append(headers[i])
                break
        taken_down_to[wanted] = i
    return selected


def install() -> None:
    """Point dkimpy's module-level names at the versions above (idempotent).

    Each is replaced where dkimpy looks it up at call time: ``dkim/__init__.py`` imported
    parse_tag_value by name, and the relaxed algorithm calls its helpers as module globals.
    """
    dkim.rfc822_parse = rfc822_parse
    dkim.parse_tag_value = parse_tag_value
    dkim.RE_BTAG = RE_BTAG
    dkim.select_headers = select_headers
    canonicalization.strip_trailing_whitespace = strip_trailing_whitespace
    canonicalization.compress_whitespace = compress_whitespace
    canonicalization.unfold_header_value = unfold_header_value
