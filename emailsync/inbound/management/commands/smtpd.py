"""`emailsync smtpd`: the SMTP listener agencies' BCC copies arrive at (the MX of the inbound
domain). Its own process; run as many as you like against one database."""

import asyncio
import logging
import signal
import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from emailsync.inbound.smtp import ListenerState, protocol_factory, tls_context

log = logging.getLogger("emailsync.smtpd")


class Command(BaseCommand):
    help = "Run the SMTP listener that receives Email Sync trigger emails."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)
        parser.add_argument("--tls-cert", help="PEM certificate chain for STARTTLS.")
        parser.add_argument("--tls-key", help="PEM private key for STARTTLS.")
        parser.add_argument(
            "--max-sessions",
            type=int,
            default=100,
            help="Concurrent sessions; more get 421 (bounds memory).",
        )
        parser.add_argument(
            "--max-size",
            type=int,
            default=25 * 1024 * 1024,
            help="Largest message in bytes; larger ones get 552.",
        )
        parser.add_argument(
            "--reuse-port",
            action="store_true",
            help="Let several listener processes share the port (SO_REUSEPORT).",
        )

    def handle(self, *args, **options):
        if bool(options["tls_cert"]) != bool(options["tls_key"]):
            raise CommandError("--tls-cert and --tls-key go together.")
        try:
            tls = tls_context(options["tls_cert"], options["tls_key"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot load the TLS certificate: {exc}")
        asyncio.run(self.serve(options, tls))

    async def serve(self, options, tls):
        loop = asyncio.get_running_loop()
        state = ListenerState(max_sessions=options["max_sessions"])
        factory = protocol_factory(state, tls=tls, data_size_limit=options["max_size"])
        try:
            server = await loop.create_server(
                factory,
                host=options["host"],
                port=options["port"],
                reuse_port=options["reuse_port"] or None,
                family=socket.AF_UNSPEC,
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{options['port']}: {exc}")
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.stdout.write(
            f"SMTP listener on {options['host']}:{options['port']} for "
            f"*@{settings.EMAILSYNC_INBOUND_DOMAIN}"
            f"{' with STARTTLS' if tls else ''}"
        )
        self.stdout.flush()
        async with server:
            await stop.wait()
            server.close()  # no new sessions; the ones in DATA finish their commit
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=10)
            except TimeoutError:
                log.warning("sessions still open after 10s; closing")
        await state.aclose()
