"""Reading our own inbound addresses: `<agency-slug>-<token>@<inbound domain>`.

Only the token identifies the agency; the slug is there so people recognise the address and is
ignored when matching (an agency can rename itself without breaking its BCC rules). Mail systems
lower-case local parts and some drop plus-tags, so matching is case-insensitive and the separator
is `-` or `.`, never `+`.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from .models import TOKEN_LENGTH

TOKEN_RE = re.compile(rf"(?:^|[-.])([a-z0-9]{{{TOKEN_LENGTH}}})$")
LOCAL_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


@dataclass(frozen=True)
class ParsedRecipient:
    kind: str  # "agency", "postmaster", "bounce", "unsubscribe" or "foreign"
    token: str = ""
    local: str = ""


def split_address(address: str) -> tuple[str, str]:
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at:  # `RCPT TO:<Postmaster>`, which RFC 5321 (4.5.1) requires us to take
        local, domain = domain, ""
    return local.lower(), domain.lower().rstrip(".")


def parse_recipient(address: str) -> ParsedRecipient:
    """What an envelope recipient is to us, from its text alone (no database)."""
    local, domain = split_address(address)
    inbound = settings.EMAILSYNC_INBOUND_DOMAIN.lower()
    if local == "postmaster" and domain in {inbound, ""}:
        return ParsedRecipient("postmaster", local=local)
    if domain != inbound or not LOCAL_RE.match(local):
        return ParsedRecipient("foreign", local=local)
    for kind in ("bounce", "unsubscribe"):  # our own return paths (outbox, List-Unsubscribe)
        if local.startswith(f"{kind}-"):
            return ParsedRecipient(kind, local=local)
    match = TOKEN_RE.search(local)
    if not match:
        return ParsedRecipient("foreign", local=local)
    return ParsedRecipient("agency", token=match.group(1), local=local)


def agency_tokens(addresses) -> list[str]:
    tokens = []
    for address in addresses:
        parsed = parse_recipient(address)
        if parsed.kind == "agency" and parsed.token not in tokens:
            tokens.append(parsed.token)
    return tokens


# In a log, any run of letters and digits this long may be a token, or most of one: one with a
# plus-tag or junk after it, or a typo away from the real one. Slug words are rarely as long.
_SECRET_LOOKING = re.compile(r"[a-z0-9]{12,}")


def redact(address: str) -> str:
    """For logs. On our inbound domain: keeps the slug and the first letters of a token,
    hides the rest. Anywhere else the address is a person's (a sender trying to relay, a typo
    in a BCC): only its first letter and its domain are kept."""
    local, domain = split_address(address)
    if domain and domain != settings.EMAILSYNC_INBOUND_DOMAIN.lower():
        return f"{local[:1]}…@{domain}"
    local = _SECRET_LOOKING.sub(lambda m: m.group(0)[:3] + "…", local)
    return f"{local}@{domain}" if domain else local
