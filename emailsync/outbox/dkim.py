"""Optional DKIM signing of what we send, for deployments that relay through a plain SMTP server.

Configured by EMAILSYNC_DKIM_DOMAIN, EMAILSYNC_DKIM_SELECTOR and EMAILSYNC_DKIM_KEY_FILE (a PEM
private key). The signature is computed over the exact bytes Django's SMTP backend will send, and
travels with the message object, so it works with any backend that serialises `message()`.
"""

import functools
import os

import dkim
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNED_HEADERS = [
    b"from",
    b"sender",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"auto-submitted",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]
# Signed once more than they appear, so a second From or Subject added on the way (to show the
# reader another sender than the one DKIM vouches for) breaks the signature (RFC 6376 8.15).
OVERSIGNED_HEADERS = [b"from", b"subject"]


@functools.lru_cache(maxsize=4)
def _read_key(path: str, mtime: float) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def signing_config() -> tuple[bytes, bytes, bytes] | None:
    """(domain, selector, private key PEM), or None when signing is off."""
    domain = getattr(settings, "EMAILSYNC_DKIM_DOMAIN", "")
    selector = getattr(settings, "EMAILSYNC_DKIM_SELECTOR", "")
    key_file = getattr(settings, "EMAILSYNC_DKIM_KEY_FILE", "")
    if not (domain and selector and key_file):
        return None
    try:
        key = _read_key(key_file, os.stat(key_file).st_mtime)
    except OSError as exc:
        raise ImproperlyConfigured(f"EMAILSYNC_DKIM_KEY_FILE cannot be read: {exc}") from exc
    return domain.encode(), selector.encode(), key


class SignedMIME:
    """A MIME message whose serialisations carry a DKIM-Signature header computed over them."""

    def __init__(self, mime, signature: bytes):
        self._mime = mime
        self._signature = signature.rstrip(b"\r\n")  # "DKIM-Signature: …" folded with CRLF

    def __getattr__(self, name):
        return getattr(self._mime, name)

    def __getitem__(self, name):
        return self._mime[name]

    def __contains__(self, name):
        return name in self._mime

    def as_bytes(self, unixfrom=False, linesep="\n"):
        header = self._signature.replace(b"\r\n", linesep.encode())
        return header + linesep.encode() + self._mime.as_bytes(unixfrom, linesep=linesep)

    def as_string(self, unixfrom=False, linesep="\n"):
        return self.as_bytes(unixfrom, linesep).decode("utf-8", "replace")


def sign(mime):
    """`mime` with a DKIM signature, or unchanged when signing is not configured."""
    config = signing_config()
    if config is None:
        return mime
    domain, selector, key = config
    raw = mime.as_bytes(linesep="\r\n")
    present = {name.lower().encode() for name in mime.keys()}  # noqa: SIM118 - Message
    signature = dkim.sign(
        raw,
        selector,
        domain,
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h for h in SIGNED_HEADERS if h in present] + OVERSIGNED_HEADERS,
    )
    return SignedMIME(mime, signature)
