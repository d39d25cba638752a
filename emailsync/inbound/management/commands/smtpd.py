"""`emailsync smtpd`: the SMTP listener agencies' BCC copies arrive at (the MX of the inbound
domain). Run as many as you like against one database.

One listening socket is shared by `--processes` forked listeners (default: one per CPU, less one
when the database runs on this machine: SQLite, or a local PostgreSQL). Python runs one thread of
Python at a time per process, and a listener spends most of its time in Python (SMTP, header
parsing, DKIM), so more processes is how it uses more cores — but a core the database needs is
not one to take: on a 2-core box with PostgreSQL beside it, two listeners accepted 0.25-0.30 of
the bare server's rate and one 0.29-0.39; on SQLite, whose writes run inside whichever listener
holds the write lock while the others wait, two accepted 0.33 at 1.66 ms of CPU per email and
one 0.35 at 1.06 ms (docs/PERFORMANCE.md). The parent only supervises: it restarts a listener
that dies and passes SIGTERM on.
"""

import asyncio
import gc
import logging
import os
import signal
import socket
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from emailsync.inbound import authenticity
from emailsync.inbound.smtp import ListenerState, protocol_factory, tls_context
from emailsync.operations.management.commands.serve import die_with_parent

log = logging.getLogger("emailsync.smtpd")


def warn_if_database_unreachable() -> None:
    """Say so at once when the database cannot be reached (a wrong DATABASE_URL, the server
    down). The listener still starts and answers 451 until it can, as it would if the
    database went away later: sending servers retry, and nothing is lost."""
    try:
        connections["default"].ensure_connection()
    except DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("database not reachable (%s): mail is answered 451 until it is", reason)
    finally:
        connections.close_all()  # each process, fork or not, opens its own when mail comes


class Command(BaseCommand):
    help = "Run the SMTP listener that receives Email Sync trigger emails."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="Address to listen on (default 127.0.0.1; 0.0.0.0 for all).",
        )
        parser.add_argument(
            "--port", type=int, default=2525, help="Port to listen on (default 2525; 25 for an MX)."
        )
        parser.add_argument("--tls-cert", help="PEM certificate chain for STARTTLS.")
        parser.add_argument("--tls-key", help="PEM private key for STARTTLS.")
        parser.add_argument(
            "--processes",
            type=int,
            default=0,
            help="Listener processes sharing the port (default: one per CPU, less one for a "
            "PostgreSQL server on this machine).",
        )
        parser.add_argument(
            "--max-sessions",
            type=int,
            default=100,
            help="Concurrent sessions per process; more get 421 (bounds memory).",
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
            help="Let other `emailsync smtpd` commands bind the same port.",
        )

    def handle(self, *args, **options):
        # Each of these would start something other than what was asked while the banner said
        # otherwise: a port above 65535 wraps round to another one, a negative --processes
        # starts no listener at all, a zero cap refuses every sender.
        if not 0 <= options["port"] <= 65535:
            raise CommandError(f"--port {options['port']} is not a port (0-65535).")
        if options["processes"] < 0:
            raise CommandError("--processes must be 1 or more (or 0, the default: one per CPU).")
        for name in ("max_sessions", "max_size"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be 1 or more.")
        if bool(options["tls_cert"]) != bool(options["tls_key"]):
            raise CommandError("--tls-cert and --tls-key go together.")
        try:
            tls = tls_context(options["tls_cert"], options["tls_key"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot load the TLS certificate: {exc}")
        try:
            sock = listening_socket(options["host"], options["port"], options["reuse_port"])
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{options['port']}: {exc}")
        processes = options["processes"] or default_processes()
        self.stdout.write(
            f"SMTP listener on {options['host']}:{options['port']} for "
            f"*@{settings.EMAILSYNC_INBOUND_DOMAIN}, {processes} process(es)"
            f"{', STARTTLS' if tls else ''}"
        )
        self.stdout.flush()
        warn_if_database_unreachable()
        # The cap is per listener process: the kernel does not spread connections evenly, so a
        # shared total would refuse sessions on one process while another sits idle.
        per_process = options["max_sessions"]
        # Before forking, so the listener processes share the parsed list.
        authenticity.load_public_suffix_list()
        set_startup_objects_aside()
        if processes == 1:
            asyncio.run(serve(sock, tls, per_process, options["max_size"], 1))
        else:
            self.supervise(sock, tls, processes, per_process, options["max_size"])

    def supervise(self, sock, tls, processes, max_sessions, max_size):
        connections.close_all()  # never share a database connection across a fork
        children: dict[int, int] = {}
        stopping = False

        def fork(slot: int) -> None:
            pid = os.fork()
            if pid == 0:
                die_with_parent()  # a listener never outlives its supervisor, even after kill -9
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = 0
                try:
                    asyncio.run(serve(sock, tls, max_sessions, max_size, processes))
                except BaseException:  # a dying child reports why; the parent restarts it
                    log.exception("listener process failed")
                    code = 1
                os._exit(code)
            children[pid] = slot

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            # The listeners stop taking sessions while they finish the ones they have; the
            # parent's copy of the socket would otherwise keep queueing connections nobody
            # accepts, which hang until it exits instead of being refused (senders go elsewhere).
            sock.close()
            for pid in children:
                os.kill(pid, signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for slot in range(processes):
            fork(slot)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            slot = children.pop(pid, None)
            if slot is not None and not stopping:
                log.warning("listener process %s exited (%s); restarting", pid, status)
                time.sleep(0.5)
                if not stopping:  # a SIGTERM during the pause closed the socket
                    fork(slot)


def set_startup_objects_aside() -> None:
    """Keep the objects that live as long as the process (Django, the models, the modules)
    out of the garbage collector's full passes, which walked all of them: under the ingest
    benchmark's load a full pass came every few thousand emails and stopped the listener, with
    every session in it, for 50-90 ms; with them set aside it takes about 12 ms
    (docs/PERFORMANCE.md, stop 25). Done before forking, it also spares the listener processes
    the collector's writes to those objects (their reference counts still copy some pages).

    The youngest generation is collected every 10,000 net allocations rather than Python's
    700: an email makes thousands of short-lived objects, nearly all freed by the time its
    250 reply goes out, and collecting them sooner only walked objects about to go anyway
    (ingest_ab on PostgreSQL: B/A 1.043, 1.002-1.079; docs/PERFORMANCE.md, stop 26)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


COLLECTOR_THRESHOLDS = (10_000, 10, 10)


LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}  # "" is PostgreSQL's Unix socket


def default_processes() -> int:
    """One per CPU, less one when the database runs on this machine (see the module's note)."""
    cpus = os.cpu_count() or 1
    database = connections["default"]
    host = str(database.settings_dict.get("HOST") or "")
    local = database.vendor == "sqlite" or host in LOCAL_HOSTS or host.startswith("/")
    return max(1, cpus - 1) if local else cpus


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A TCP listening socket whose accepted connections asyncio will mark TCP_NODELAY.

    asyncio only disables Nagle on sockets whose protocol is IPPROTO_TCP; a socket made with
    protocol 0 (as socket.create_server does) gets Nagle, and every multi-line SMTP reply then
    waits ~40 ms for the client's delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(sock, tls, max_sessions: int, max_size: int, processes: int) -> None:
    loop = asyncio.get_running_loop()
    state = ListenerState(max_sessions=max_sessions, processes=processes)
    factory = protocol_factory(state, tls=tls, data_size_limit=max_size)
    server = await loop.create_server(factory, sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
        state.stopping = True  # no new message in the sessions in hand (a 421 at RCPT)
        server.close()  # no new sessions; those in DATA finish their commit
        # Python 3.11's wait_closed() returns as soon as the listening socket is closed, without
        # waiting for open sessions (3.12's waits), so the sessions are counted here: a sender
        # cut off mid-message would only retry, but on its own schedule, often much later.
        deadline = loop.time() + SHUTDOWN_GRACE_SECONDS
        while state.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if state.sessions:
            log.warning(
                "%d session(s) still open after %ss; closing",
                state.sessions,
                SHUTDOWN_GRACE_SECONDS,
            )
    await state.aclose()


SHUTDOWN_GRACE_SECONDS = 10
