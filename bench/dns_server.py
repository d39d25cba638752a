"""A tiny authoritative DNS server on loopback that answers TXT queries for DKIM keys, so the
listener under benchmark verifies signatures through real DNS packets without the network."""

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def txt_chunks(value: bytes) -> list[str]:
    """A TXT record is a list of strings of at most 255 bytes each."""
    return ['"' + value[i : i + 255].decode() + '"' for i in range(0, len(value), 255)]


class TxtServer:
    def __init__(self, records: dict[str, bytes]):
        self.records = {name.lower().rstrip(".") + ".": value for name, value in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: S112 - not DNS: ignore it, as a real server would
                continue
            self.queries += 1
            response = dns.message.make_response(query)
            question = query.question[0]
            value = self.records.get(question.name.to_text().lower())
            if value is not None and question.rdtype == dns.rdatatype.TXT:
                response.answer.append(
                    dns.rrset.from_text(
                        question.name, 300, "IN", "TXT", " ".join(txt_chunks(value))
                    )
                )
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.sock.close()
