"""The machinery the fault scenarios share: databases (a SQLite file, a fresh database on the
suite's PostgreSQL, or a private throwaway PostgreSQL cluster that may be stopped at will), the
product's real processes, and SMTP clients that behave like a sending MTA (retry until 250).

Nothing here reads the clock to decide an outcome: events are ordered by a sequence number, and
every wait is for a condition, bounded only so that a broken run ends instead of hanging.
"""

import atexit
import contextlib
import glob
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.inbound.mail import build
from tests.processes import FreshPostgres, free_port, manage, product_env

ROOT = Path(__file__).resolve().parents[2]
SMTP_TIMEOUT = 30  # a reply slower than this counts as the listener hanging

_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def seq() -> int:
    """A global order of events (attempts, injected faults) across threads."""
    with _sequence_lock:
        return next(_sequence)


def wait_for(predicate, timeout: float, interval: float = 0.1, abort=None) -> bool:
    """Whether `predicate` came true; False at once if `abort` does (a process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if abort is not None and abort():
            return False
        time.sleep(interval)
    return predicate()


# -- databases ---------------------------------------------------------------------------------


class SqliteDatabase:
    label = "SQLite"

    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite:///{path}"

    def drop(self):
        pass


class SuitePostgres:
    """A fresh database on the PostgreSQL server the suite runs on (DATABASE_URL)."""

    label = "PostgreSQL"

    def __init__(self):
        self.fresh = FreshPostgres()
        if self.fresh.url is None:
            raise RuntimeError("DATABASE_URL is not PostgreSQL")
        self.url = self.fresh.url

    def drop(self):
        self.fresh.drop()


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(path: str) -> int:
    part = path.split("/postgresql/")[1].split("/")[0]
    return int(part) if part.isdigit() else 0


def private_postgres_unavailable() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if postgres_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
    return None


class PrivateCluster:
    """A PostgreSQL cluster of our own: initdb into a temporary directory, a free loopback port,
    its socket in that directory. Stopping it disturbs nobody else (the suite's server at
    127.0.0.1:5432 is never touched). fsync is off: a stop, even `immediate`, is a crash of the
    server processes, not of the machine, so what was written survives in the page cache."""

    label = "PostgreSQL (private)"

    def __init__(self):
        self.bin = postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="emailsync-chaos-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.port = free_port()
        self.running = False
        try:
            self._pg("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                     "--no-sync", "-E", "UTF8")  # fmt: skip
            self.start()
            self.admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE emailsync")
            self.url = f"postgres://postgres@127.0.0.1:{self.port}/emailsync"
        except BaseException:
            self.drop()
            raise

    def database(self, name: str) -> "ClusterDatabase":
        """A fresh database in this cluster, for a scenario that does not stop the server."""
        return ClusterDatabase(self, name.replace("-", "_"))

    def _pg(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60"
        )
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                 "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def drop(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class ClusterDatabase:
    label = "PostgreSQL (private)"

    def __init__(self, cluster: PrivateCluster, name: str):
        import psycopg

        self.cluster, self.name = cluster, name
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self.url = f"postgres://postgres@127.0.0.1:{cluster.port}/{name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.cluster.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def query(database_url: str, sql: str, *params) -> list[tuple]:
    """One read-only query (`?` placeholders) straight to the product's database: for looks
    that must be quicker than a probe process's Django start-up (a worker's batch lasts less)."""
    if database_url.startswith("sqlite:///"):
        uri = f"file:{database_url.removeprefix('sqlite:///')}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=20)) as conn:
            return list(conn.execute(sql, params))
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return list(conn.execute(sql.replace("?", "%s"), params))


def outbox(database_url: str) -> list[tuple[str, str]]:
    """(status, claimed_by) of every outbox row."""
    return query(database_url, "SELECT status, claimed_by FROM outbox_outboundemail")


def triggers_for(database_url: str, message_id: str) -> int:
    """How many triggers hold this Message-ID (hashed as the product does)."""
    from emailsync.inbound.headers import message_id_hash

    rows = query(
        database_url,
        "SELECT COUNT(*) FROM inbound_trigger WHERE message_id_hash = ?",
        message_id_hash(message_id),
    )
    return rows[0][0]


def holding(database_url: str) -> Counter:
    """Outbox rows in `sending` per worker process id (worker names are `host:pid:…`): which
    workers hold a claimed batch right now."""
    return Counter(
        int(name.split(":")[1])
        for status, name in outbox(database_url)
        if status == "sending" and name.count(":") >= 2
    )


def statuses(database_url: str) -> Counter:
    return Counter(status for status, _ in outbox(database_url))


# -- the product ---------------------------------------------------------------------------------

_sqlite_template: Path | None = None


def migrate(env: dict) -> None:
    """`emailsync migrate` for the database in `env`. A SQLite database is migrated once per
    process and copied after that (SQLite's backup API), which saves seconds per scenario."""
    global _sqlite_template
    url = env["DATABASE_URL"]
    if not url.startswith("sqlite:///"):
        manage(env, "migrate", "--noinput", "-v0")
        return
    target = Path(url.removeprefix("sqlite:///"))
    if _sqlite_template is None:
        manage(env, "migrate", "--noinput", "-v0")
        folder = Path(tempfile.mkdtemp(prefix="emailsync-chaos-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        copy_sqlite(target, folder / "migrated.sqlite3")
        _sqlite_template = folder / "migrated.sqlite3"
    else:
        copy_sqlite(_sqlite_template, target)


def copy_sqlite(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")


class Product:
    """The product's commands against one database, with their logs under `work`."""

    def __init__(self, work: Path, database_url: str):
        self.url = database_url
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = product_env(work, database_url, LOG_LEVEL="WARNING")
        self.logs: list = []

    def migrate(self) -> None:
        migrate(self.env)

    def probe(self, *args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "tests.chaos.probe", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"probe {args[0]} failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def seed(self) -> dict:
        return self.probe("seed")

    def report(self, messages) -> dict:
        path = self.work / f"report-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps([[m.message_id, m.rcpt] for m in messages]))
        return self.probe("report", str(path))

    def listener(self, port: int, *prefix: str) -> "Listener":
        return Listener(self, port, prefix)

    def close(self) -> None:
        for log in self.logs:
            log.close()


class Listener:
    """`emailsync smtpd` as one process (`--processes 1`: no supervisor between us and it, so
    `kill -9` hits the process that holds the sessions)."""

    def __init__(self, product: Product, port: int, prefix=()):
        self.port = port
        log = open(product.work / f"smtpd-{port}.log", "a")  # noqa: SIM115 - Product.close
        product.logs.append(log)
        command = [*prefix] or [sys.executable, "-m", "emailsync.cli"]
        self.process = subprocess.Popen(
            [*command, "smtpd", "--port", str(port), "--processes", "1"],
            env=product.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait_for(self.ready, 60):
            self.kill()
            raise RuntimeError(f"the listener did not answer on port {port}")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the listener exited with {self.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                return sock.recv(100).startswith(b"220 ")
        except OSError:
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def drain(process: subprocess.Popen, path: Path) -> threading.Thread:
    """Copy a process's piped output to a file as it comes, so the pipe never fills and blocks
    it (a worker logs a traceback per failed tick while the database is down)."""

    def copy():
        with open(path, "ab") as log:
            for line in iter(process.stdout.readline, b""):
                log.write(line)
                log.flush()

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except FileNotFoundError:
        return ""


# -- mail and senders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    message_id: str
    rcpt: str  # the one person it is to, so its review request is identifiable
    raw: bytes


def make_mail(count: int, tag: str) -> list[Mail]:
    run = secrets.token_hex(4)
    mails = []
    for i in range(count):
        rcpt = f"person-{tag}-{run}-{i}@candidates.test"
        message_id = f"<{tag}-{run}-{i}@mail.chaos.test>"
        raw = build(
            sender="Sam Carter <sam@chaos.test>",
            to=(f"Person {i} <{rcpt}>",),
            subject=f"Welcome aboard ({tag} {i})",
            message_id=message_id,
        )
        mails.append(Mail(message_id, rcpt, raw))
    return mails


@dataclass
class Reply:
    code: int  # 0: the connection failed or dropped; -1: no answer within SMTP_TIMEOUT
    text: str
    stage: str = ""


def send(port: int, bcc: str, mail: Mail) -> Reply:
    """One SMTP transaction, as a sending MTA makes it. Never raises."""
    stage = "connect"
    try:
        with smtplib.SMTP(
            "127.0.0.1", port, local_hostname="mta.chaos.test", timeout=SMTP_TIMEOUT
        ) as smtp:
            stage = "MAIL"
            smtp.ehlo()
            code, text = smtp.mail("sam@chaos.test")
            if code == 250:
                stage = "RCPT"
                code, text = smtp.rcpt(bcc)
            if code == 250:
                stage = "DATA"
                code, text = smtp.data(mail.raw)
            return Reply(code, text.decode(errors="replace"), stage)
    except TimeoutError as exc:
        return Reply(-1, f"no answer: {exc}", stage)
    except (OSError, smtplib.SMTPException) as exc:
        return Reply(0, f"{type(exc).__name__}: {exc}", stage)


class DataSession:
    """A client stopped in the middle of DATA (after `354`), for killing the listener there."""

    def __init__(self, port: int, bcc: str, mail: Mail):
        self.mail = mail
        self.smtp = smtplib.SMTP(
            "127.0.0.1", port, local_hostname="mta.chaos.test", timeout=SMTP_TIMEOUT
        )
        self.smtp.ehlo()
        for code, _ in (self.smtp.mail("sam@chaos.test"), self.smtp.rcpt(bcc)):
            if code != 250:
                raise RuntimeError(f"the listener refused the envelope: {code}")
        self.smtp.putcmd("data")
        code, _ = self.smtp.getreply()
        if code != 354:
            raise RuntimeError(f"DATA answered {code}")
        payload = re.sub(rb"(?m)^\.", b"..", mail.raw)  # dot-stuffing (RFC 5321 4.5.2)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self.payload = payload + b".\r\n"

    def send_part(self, until: int) -> None:
        self.smtp.sock.sendall(self.payload[:until])
        self.sent = until

    def finish(self) -> Reply:
        """Send the rest and read the reply; after a kill this is what the client sees."""
        try:
            rest = self.payload[getattr(self, "sent", 0) :]
            if rest:
                self.smtp.sock.sendall(rest)
            code, text = self.smtp.getreply()
            return Reply(code, text.decode(errors="replace"), "DATA")
        except TimeoutError as exc:
            return Reply(-1, f"no answer: {exc}", "DATA")
        except (OSError, smtplib.SMTPException) as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}", "DATA")
        finally:
            with contextlib.suppress(Exception):
                self.smtp.close()


@dataclass
class Attempt:
    mail: Mail
    started: int  # seq()
    finished: int
    reply: Reply


@dataclass
class Load:
    """Sending MTAs: `senders` threads deliver `mails`, each retrying a message (the same bytes,
    the same Message-ID) after any answer but 250, as a real MTA does after 4xx or a dropped
    connection."""

    port: int
    bcc: str
    mails: list[Mail]
    senders: int = 2
    retry_pause: float = 0.05
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict = field(default_factory=dict)  # message_id -> the 250 reply

    def __post_init__(self):
        self.lock = threading.Lock()
        self.more = threading.Condition(self.lock)
        self.next = 0
        self.released = len(self.mails)
        self.halt = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.senders)
        ]

    def start(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def release(self, count: int) -> None:
        """Let the senders have the first `count` messages (the rest wait): a scenario keeps
        some back so that there is still mail to send when it injects the next fault."""
        with self.lock:
            self.released = min(count, len(self.mails))
            self.more.notify_all()

    def _run(self):
        while not self.halt.is_set():
            with self.lock:
                while self.next >= self.released and self.next < len(self.mails):
                    if self.halt.is_set():
                        return
                    self.more.wait(0.1)
                if self.next >= len(self.mails):
                    return
                mail = self.mails[self.next]
                self.next += 1
            while not self.halt.is_set():
                started = seq()
                reply = send(self.port, self.bcc, mail)
                with self.lock:
                    self.attempts.append(Attempt(mail, started, seq(), reply))
                    if reply.code == 250:
                        self.accepted[mail.message_id] = reply
                if reply.code == 250:
                    break
                self.halt.wait(self.retry_pause)

    def count_accepted(self) -> int:
        with self.lock:
            return len(self.accepted)

    def attempts_between(self, after: int, before: int | None = None) -> list[Attempt]:
        with self.lock:
            return [
                a
                for a in self.attempts
                if a.started > after and (before is None or a.finished < before)
            ]

    def wait_accepted(self, count: int, timeout: float) -> bool:
        return wait_for(lambda: self.count_accepted() >= count, timeout)

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.halt.set()
        for thread in self.threads:
            thread.join(SMTP_TIMEOUT + 5)

    def codes(self) -> dict:
        with self.lock:
            counts: dict[int, int] = {}
            for a in self.attempts:
                counts[a.reply.code] = counts.get(a.reply.code, 0) + 1
            return counts
