"""`emailsync serve`: one supervisor for the whole product on one machine.

Each role (web, SMTP listener, worker) runs as its own child process, exactly as it would under
systemd in production, so `make run` exercises the same code paths as a deployment. The supervisor
restarts a child that dies (with backoff), forwards SIGINT/SIGTERM and exits when all are gone.

Each child leads a process group of its own, so whatever it forked (gunicorn's workers, the
listener's pre-forked processes) goes with it: when a child dies, or on stop, the supervisor
sweeps its group. A listener killed with SIGKILL therefore never leaves processes holding the
SMTP port that would stop its replacement from binding it.

Once the web server and the listener answer, the banner says where everything is, with the demo
agency's logins and BCC address and a command that sends a test email through the listener.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from emailsync.operations.banner import demo_lines

PR_SET_PDEATHSIG = 1
MAX_BACKOFF = 30.0
STOP_GRACE = 10.0
READY_TIMEOUT = 60.0


def die_with_parent() -> None:
    """Children get SIGTERM if the supervisor itself is killed, so nothing is left behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    log: list[str] = field(default_factory=list)

    def start(self, out, env=None) -> None:
        self.process = subprocess.Popen(  # noqa: PLW1509
            self.argv, preexec_fn=die_with_parent, process_group=0, env=env
        )
        self.started_at = time.monotonic()
        out.write(f"[serve] {self.name} started (pid {self.process.pid})\n")
        out.flush()

    def sweep(self) -> None:
        """Kill whatever is left in the child's process group (its own forks)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def backoff(self) -> float:
        # A child that ran a while before dying starts the backoff afresh.
        if time.monotonic() - self.started_at > 60:
            self.restarts = 0
        self.restarts += 1
        return min(MAX_BACKOFF, 0.5 * 2 ** (self.restarts - 1))


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Command(BaseCommand):
    help = "Run the web app, the SMTP listener and the worker, and keep them running."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("EMAILSYNC_WEB_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("EMAILSYNC_WEB_PORT", "8000"))
        )
        parser.add_argument(
            "--smtp-host", default=os.environ.get("EMAILSYNC_SMTP_HOST", "127.0.0.1")
        )
        parser.add_argument(
            "--smtp-port", type=int, default=int(os.environ.get("EMAILSYNC_SMTP_PORT", "2525"))
        )
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--smtp-processes",
            type=int,
            default=0,
            help="Listener processes (default: one per CPU, less one for a local PostgreSQL).",
        )
        parser.add_argument("--no-smtp", action="store_true", help="Do not start the listener.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start the worker.")

    def handle(self, *args, **options):
        children = self.children(options)
        names = {c.name for c in children}
        # Another Email Sync (or anything) on our ports would answer the readiness check and
        # make this one announce itself while its own children fail to bind, for ever.
        ports = [(options["host"], options["port"], "--port or EMAILSYNC_WEB_PORT")]
        if "smtpd" in names:
            ports.append(
                (options["smtp_host"], options["smtp_port"], "--smtp-port or EMAILSYNC_SMTP_PORT")
            )
        for host, port, how in ports:
            if not port_is_free(host, port):
                raise CommandError(
                    f"{host}:{port} is already in use (is Email Sync already running?). "
                    f"Stop that, or choose another port with {how}."
                )
        self.env = child_environment(options)
        self.stopping = False
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.stdout.write(f"[serve] starting {', '.join(c.name for c in children)}\n")
        for child in children:
            child.start(self.stdout, self.env)
        started, announced = time.monotonic(), False
        while not self.stopping:
            self.watch(children)
            if not announced and (
                self.ready(children, options) or time.monotonic() - started > READY_TIMEOUT
            ):
                self.banner(children, options)
                announced = True
            time.sleep(0.2)
        self.stop(children)

    def children(self, options) -> list[Child]:
        python = sys.executable
        web = Child(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "emailsync.wsgi:application",
                "--bind",
                f"{options['host']}:{options['port']}",
                "--workers",
                str(options["web_workers"]),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
                "--logger-class",
                "emailsync.operations.log_filters.RedactingLogger",
                "--no-control-socket",
            ],
        )
        result = [web]
        # The listener and worker are separate roles; each joins once its command exists.
        available = get_commands()
        manage = [python, "-m", "emailsync.cli"]
        if "smtpd" in available and not options["no_smtp"]:
            argv = [
                *manage,
                "smtpd",
                "--host",
                options["smtp_host"],
                "--port",
                str(options["smtp_port"]),
            ]
            if options["smtp_processes"]:
                argv += ["--processes", str(options["smtp_processes"])]
            result.append(Child("smtpd", argv))
        if "worker" in available and not options["no_worker"]:
            result.append(Child("worker", [*manage, "worker"]))
        return result

    def ready(self, children, options) -> bool:
        """The web server answers /health and the listener accepts connections."""
        names = {c.name for c in children}
        try:
            url = f"{web_url(options)}health"
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
                if response.status != 200:
                    return False
            if "smtpd" in names:
                with socket.create_connection(
                    (connect_host(options["smtp_host"]), options["smtp_port"]), timeout=1
                ):
                    pass
        except OSError:
            return False
        return True

    def banner(self, children, options) -> None:
        names = {c.name for c in children}
        lines = [
            "",
            "=" * 72,
            "Email Sync is running",
            f"  web        {web_url(options)}",
        ]
        if "smtpd" in names:
            lines.append(f"  smtp       {options['smtp_host']}:{options['smtp_port']}")
        if "worker" in names:
            lines.append("  worker     sends review requests and runs periodic jobs")
        try:
            lines += demo_lines(
                web_url(options),
                smtp_port=options["smtp_port"] if "smtpd" in names else None,
                smtp_host=options["smtp_host"],
            )
        except Exception as exc:  # the banner must never stop the product from running
            lines.append(f"  (demo details unavailable: {exc})")
        finally:
            connections.close_all()
        lines += ["Press Ctrl-C to stop.", "=" * 72, ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def request_stop(self, signum, frame) -> None:
        self.stopping = True

    def watch(self, children) -> None:
        now = time.monotonic()
        for child in children:
            if child.process is None:
                if now >= child.next_start:
                    child.start(self.stdout, self.env)
                continue
            code = child.process.poll()
            if code is None:
                continue
            child.sweep()
            delay = child.backoff()
            self.stderr.write(
                f"[serve] {child.name} {describe_exit(code)}; restarting in {delay:.1f}s\n"
            )
            child.process, child.next_start = None, now + delay

    def stop(self, children) -> None:
        running = [c for c in children if c.process and c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for child in children:
            child.sweep()
        self.stdout.write("[serve] stopped\n")


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (bound as servers bind: SO_REUSEADDR)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        return True  # the child will say what is wrong with the host
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def web_url(options) -> str:
    host = connect_host(options["host"])
    return f"http://{'[' + host + ']' if ':' in host else host}:{options['port']}/"


def child_environment(options) -> dict:
    """The children's environment: links in emails point at this web server unless
    EMAILSYNC_PUBLIC_URL says otherwise (`make run` on another port must still work)."""
    env = dict(os.environ)
    env.setdefault("EMAILSYNC_PUBLIC_URL", web_url(options).rstrip("/"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
