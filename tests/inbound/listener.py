"""Run the real SMTP listener on a free loopback port, in a thread, for a test."""

import asyncio
import smtplib
import socket
import threading

from emailsync.inbound.smtp import ListenerState, protocol_factory


class RunningListener:
    def __init__(
        self,
        dnsfunc=None,
        max_sessions=100,
        data_size_limit=25 * 1024 * 1024,
        tls=None,
        timeout=60.0,
    ):
        self.state = ListenerState(max_sessions=max_sessions, dnsfunc=dnsfunc, address_ttl=0.0)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.factory = protocol_factory(
            self.state, tls=tls, data_size_limit=data_size_limit, timeout=timeout
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("listener did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await self.loop.create_server(self.factory, "127.0.0.1", self.port)
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test", timeout=30)

    def send(self, raw: bytes, rcpts, mail_from="sam@acme.test"):
        """One SMTP transaction; returns the final reply (code, text)."""
        with self.client() as smtp:
            smtp.ehlo()
            smtp.mail(mail_from)
            for rcpt in rcpts:
                code, text = smtp.rcpt(rcpt)
                if code >= 400:
                    return code, text.decode()
            code, text = smtp.data(raw)
            return code, text.decode()

    def stop(self):
        async def shutdown():
            self.server.close()
            await self.server.wait_closed()
            await self.state.aclose()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
