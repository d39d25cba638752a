"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping every envelope."""

import email
import email.policy
import threading
from collections import Counter
from dataclasses import dataclass

from aiosmtpd.controller import Controller

from tests.processes import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self):
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class SinkHandler:
    def __init__(self):
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refuse: dict[str, str] = {}  # rcpt address -> reply such as "550 5.1.1 no such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted"


class Sink:
    def __init__(self):
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def message_ids(self) -> Counter:
        return Counter(
            email.message_from_bytes(r.raw, policy=email.policy.compat32)["Message-ID"]
            for r in self.received
        )

    def stop(self):
        self.controller.stop()
