"""DKIM key records for the corpus, served two ways: as a dnsfunc for the in-process listener,
and as a tiny UDP DNS server for the real `emailsync smtpd` process (EMAILSYNC_DNS_RESOLVERS
accepts host:port), so signed messages are verified end to end without the internet."""

from __future__ import annotations

from bench.dns_server import TxtServer as DnsServer  # noqa: F401 - the benchmarks' loopback server
from tests.inbound.mail import SigningKey


def signing_keys() -> dict[str, SigningKey]:
    """acme.test (the DKIM agency) and evil.test (a valid signature that is not the agency's)."""
    return {"acme.test": SigningKey("acme.test"), "evil.test": SigningKey("evil.test")}


def records(keys: dict[str, SigningKey]) -> dict[str, bytes]:
    """TXT records by lower-case name with the final dot; anything else does not exist."""
    found = {f"{k.selector}._domainkey.{k.domain}.": k.txt for k in keys.values()}
    found.update(
        {
            "garbage._domainkey.acme.test.": b"v=DKIM1; k=rsa; p=!!!not-a-key!!!",
            "revoked._domainkey.acme.test.": b"v=DKIM1; k=rsa; p=",
            "huge._domainkey.acme.test.": b"v=DKIM1; k=rsa; p=" + b"A" * 4000,
        }
    )
    return found


class StaticDns:
    """A dnsfunc (dkimpy's hook) over `records`."""

    def __init__(self, table: dict[str, bytes]):
        self.table = table

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace").lower()
        return self.table.get(text if text.endswith(".") else text + ".")
