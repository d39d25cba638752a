"""`emailsync serve`: one supervisor for the whole product on one machine.

Each role (web, SMTP listener, worker) runs as its own child process, exactly as it would under
systemd in production, so `make run` exercises the same code paths as a deployment. The supervisor
restarts a child that dies (with backoff), forwards SIGINT/SIGTERM and exits when all are gone.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.core.management import get_commands
from django.core.management.base import BaseCommand

PR_SET_PDEATHSIG = 1
MAX_BACKOFF = 30.0
STOP_GRACE = 10.0


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

    def start(self, out) -> None:
        self.process = subprocess.Popen(self.argv, preexec_fn=die_with_parent)  # noqa: PLW1509
        self.started_at = time.monotonic()
        out.write(f"[serve] {self.name} started (pid {self.process.pid})\n")
        out.flush()

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
        parser.add_argument("--no-smtp", action="store_true", help="Do not start the listener.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start the worker.")

    def handle(self, *args, **options):
        children = self.children(options)
        self.stopping = False
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.banner(children, options)
        for child in children:
            child.start(self.stdout)
        while not self.stopping:
            self.watch(children)
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
                "--no-control-socket",
            ],
        )
        result = [web]
        # The listener and worker are separate roles; each joins once its command exists.
        available = get_commands()
        manage = [python, "-m", "emailsync.cli"]
        if "smtpd" in available and not options["no_smtp"]:
            result.append(
                Child(
                    "smtpd",
                    [
                        *manage,
                        "smtpd",
                        "--host",
                        options["smtp_host"],
                        "--port",
                        str(options["smtp_port"]),
                    ],
                )
            )
        if "worker" in available and not options["no_worker"]:
            result.append(Child("worker", [*manage, "worker"]))
        return result

    def banner(self, children, options) -> None:
        lines = [
            "",
            "Email Sync is starting:",
            f"  web      http://{options['host']}:{options['port']}/",
        ]
        for child in children:
            if child.name == "smtpd":
                lines.append(f"  smtp     {options['smtp_host']}:{options['smtp_port']}")
            elif child.name == "worker":
                lines.append("  worker   sends review requests and runs periodic jobs")
        lines.append("Press Ctrl-C to stop.\n")
        self.stdout.write("\n".join(lines))
        self.stdout.flush()

    def request_stop(self, signum, frame) -> None:
        self.stopping = True

    def watch(self, children) -> None:
        now = time.monotonic()
        for child in children:
            if child.process is None:
                if now >= child.next_start:
                    child.start(self.stdout)
                continue
            code = child.process.poll()
            if code is None:
                continue
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
        self.stdout.write("[serve] stopped\n")
