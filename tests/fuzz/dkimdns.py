"""DKIM key records for the corpus, served two ways: as a dnsfunc for the in-process listener,
and as a tiny UDP DNS server for the real `emailsync smtpd` process (EMAILSYNC_DNS_RESOLVERS
accepts host:port), so signed messages are verified end to end without the internet."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

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


class DnsServer:
    """Answers TXT queries from `records` on 127.0.0.1 over UDP, in a daemon thread."""

    def __init__(self, table: dict[str, bytes]):
        self.table = table
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:  # noqa: S112 - a malformed query gets no answer, as on a real server
                continue

    def _answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        self.queries += 1
        question = query.question[0]
        record = self.table.get(question.name.to_text().lower())
        if record is None or question.rdtype != dns.rdatatype.TXT:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            chunks = [record[i : i + 255] for i in range(0, len(record), 255)] or [b""]
            text = " ".join('"' + c.decode("ascii") + '"' for c in chunks)
            response.answer.append(
                dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, text)
            )
        return response.to_wire()

    def close(self):
        self.sock.close()
