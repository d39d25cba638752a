"""The fault scenarios, each parametrised by size: the tests in this package run them small,
`python -m tests.chaos.run` runs them long. Each returns a `Result` whose `failures` say what
went wrong; a scenario never raises for a broken promise, so the long run can tabulate it.

1. `listener_kill`: kill -9 the SMTP listener while a client is in DATA; the client retries.
2. `worker_kill`: kill -9 workers mid-batch while they deliver to an SMTP sink.
3. `postgres_restart`: stop and start a private PostgreSQL cluster under load.
4. `sqlite_full`: the filesystem under the SQLite database fills up.
"""

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.outbox.sink import Sink
from tests.processes import free_port

from .product import (
    ROOT,
    DataSession,
    Listener,
    Load,
    PrivateCluster,
    Product,
    drain,
    holding,
    make_mail,
    migrate,
    send,
    seq,
    statuses,
    tail,
    triggers_for,
    wait_for,
)

# Generous bounds on waits for conditions (a broken run fails instead of hanging forever).
PROGRESS_TIMEOUT = 120


def broken(exc: Exception) -> str:
    """The scenario's own machinery failed: a failure too, with where it happened."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"


@dataclass
class Result:
    scenario: str
    database: str
    injected: str
    sent: int = 0  # distinct messages (or requests) put through
    accepted: int = 0  # distinct messages that got 250 (or requests delivered)
    stored: int = 0  # distinct messages found in the database (or rows marked sent)
    duplicates: int = 0  # extra triggers / review requests / deliveries
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def check(self, condition, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return bool(condition)


def stored(product: Product, mail) -> int:
    """How many triggers the database holds for this message."""
    return triggers_for(product.url, mail.message_id)


def stored_once(result: Result, product: Product, mails, accepted: set) -> dict:
    """Fill sent/accepted/stored/duplicates from the database; a message that got 250 must
    have exactly one trigger and exactly one review request (one recipient per message)."""
    report = product.report(mails)
    rows = report["messages"]
    result.sent = len(mails)
    result.accepted = len(accepted)
    result.stored = sum(1 for r in rows.values() if r["triggers"])
    result.duplicates = sum(
        max(0, r["triggers"] - 1) + max(0, r["requests"] - 1) for r in rows.values()
    )
    lost = [mid for mid in accepted if rows[mid]["triggers"] == 0]
    result.check(not lost, f"{len(lost)} message(s) answered 250 but not stored, e.g. {lost[:2]}")
    doubled = [mid for mid, r in rows.items() if r["triggers"] > 1]
    result.check(not doubled, f"{len(doubled)} message(s) stored more than once")
    asked = [mid for mid in accepted if rows[mid]["requests"] != 1]
    result.check(not asked, f"{len(asked)} accepted message(s) without exactly one request")
    return report


# -- 1. kill -9 the listener in the middle of DATA -------------------------------------------------


KILL_POINTS = ("mid-DATA", "after the final dot", "after the commit, reply lost")


def listener_kill(work: Path, db, *, messages: int, kills: int, senders: int = 2) -> Result:
    """Load from `senders` MTAs while, `kills` times, a client stops inside DATA and the
    listener is killed with SIGKILL, in turn: in the middle of the message (nothing may be
    stored, and the client must not see 250), right after the final dot (the commit may or may
    not have happened), and after the commit with the reply lost on the way (the retry must be
    recognised: "already received"). The client retries the same message, same Message-ID,
    against the restarted listener until it hears 250; every message ends up stored exactly
    once, with exactly one review request."""
    result = Result(
        "kill -9 SMTP listener", db.label, f"{kills} × kill -9 of `emailsync smtpd` in DATA"
    )
    product = Product(work, db.url)
    listener = load = None
    try:
        product.migrate()
        bcc = product.seed()["bcc"]
        port = free_port()
        listener = Listener(product, port)
        mails = make_mail(messages, "load")
        probes = make_mail(kills, "killed")
        load = Load(port, bcc, mails, senders)
        tranche = messages // (kills + 1)
        load.release(tranche)
        load.start()
        accepted: set = set()
        points: Counter = Counter()
        already = 0
        for k in range(kills):
            if not result.check(
                load.wait_accepted(tranche * (k + 1), PROGRESS_TIMEOUT),
                f"load stalled before kill {k + 1}",
            ):
                break
            # The next tranche is sent while the listener is killed and restarted.
            load.release(messages if k == kills - 1 else tranche * (k + 2))
            probe, point = probes[k], KILL_POINTS[k % len(KILL_POINTS)]
            points[point] += 1
            session = DataSession(port, bcc, probe)
            if point == "mid-DATA":
                session.send_part(len(session.payload) // 2)
            else:
                session.send_part(len(session.payload))
            if point == "after the commit, reply lost":
                result.check(
                    wait_for(lambda p=probe: stored(product, p) == 1, PROGRESS_TIMEOUT, 0.2),
                    f"kill {k + 1}: the message was never committed",
                )
            listener.kill()
            reply = session.finish()
            if point == "mid-DATA":
                result.check(reply.code != 250, f"kill {k + 1}: 250 for a half-sent message")
                result.check(
                    stored(product, probe) == 0, f"kill {k + 1}: a half-sent message was stored"
                )
            if point == "after the commit, reply lost":
                reply.code = 0  # whatever reached the socket, this client never read it
            listener = Listener(product, port)
            for _ in range(100):  # the MTA retries the same message
                if reply.code == 250 or not listener.alive():
                    break
                reply = send(port, bcc, probe)
            result.check(reply.code == 250, f"kill {k + 1}: the retry answered {reply.code}")
            if reply.code == 250:
                accepted.add(probe.message_id)
                already += "already received" in reply.text
                if point == "after the commit, reply lost":
                    result.check(
                        "already received" in reply.text,
                        f"kill {k + 1}: a retry of a committed message was not recognised",
                    )
        result.check(
            wait_for(load.done, PROGRESS_TIMEOUT), "the load did not finish after the kills"
        )
        load.stop()
        accepted |= set(load.accepted)
        codes = load.codes()
        result.check(not codes.get(-1), f"{codes.get(-1)} attempt(s) got no answer (hang)")
        everything = mails + probes
        result.check(len(accepted) == len(everything), "not every message was accepted")
        stored_once(result, product, everything, accepted)
        result.notes.append(
            "kills: "
            + ", ".join(f"{n} {point}" for point, n in points.items())
            + f"; {sum(c for code, c in codes.items() if code != 250)} failed load attempt(s) "
            f"retried; {already} retry(ies) answered 'already received'"
        )
    except Exception as exc:  # the scenario's machinery broke: that is a failure too
        result.failures.append(broken(exc))
    finally:
        if load:
            load.stop()
        if listener:
            listener.kill()
        product.close()
    return result


# -- 2. kill -9 workers mid-batch ----------------------------------------------------------------


def worker_kill(
    work: Path,
    db,
    *,
    requests: int,
    kills: int,
    workers: int = 3,
    batch: int = 20,
    mark_every: int = 5,
    lease: int = 10,
) -> Result:
    """`workers` workers deliver `requests` due review requests to an SMTP sink; `kills` times
    one of them is killed with SIGKILL while it holds a claimed batch, and a new one is started
    in its place. Every request reaches the sink; duplicates (sent, not yet marked) stay within
    `mark_every` per kill. Built on tests/outbox/test_processes.py's worker helpers."""
    from tests.outbox.test_processes import start_worker, stop, worker_env

    result = Result(
        "kill -9 worker mid-batch",
        db.label,
        f"{kills} × kill -9 of `emailsync worker` ({workers} running, batch {batch}, "
        f"marks every {mark_every})",
    )
    sink = Sink()
    procs = []
    try:
        work.mkdir(parents=True, exist_ok=True)
        env = worker_env(db.url, sink, work)
        migrate(env)
        subprocess.run(
            [sys.executable, "-m", "tests.outbox.seed", str(requests)],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        args = ("--batch", str(batch), "--mark-every", str(mark_every), "--lease", str(lease))
        logs = iter(range(1000))

        def started():
            process = start_worker(env, *args)
            drain(process, work / f"worker-{next(logs)}.log")
            return process

        procs = [started() for _ in range(workers)]
        replacements: set[int] = set()

        def died() -> bool:
            return any(p.poll() is not None for p in procs)

        killed = 0  # every kill, including any that found the worker between batches
        mid_batch = 0
        for k in range(kills):
            target = requests * (k + 1) // (kills + 2)
            if not result.check(
                wait_for(
                    lambda t=target: len(sink.message_ids()) >= t, PROGRESS_TIMEOUT, abort=died
                ),
                f"sending stalled before kill {k + 1}",
            ):
                break
            # Kill a worker that holds a claimed batch right now; if it finished the batch in
            # the moment between looking and killing, that kill counts too, and we go again.
            for _ in range(20):
                busy = holding(db.url)
                slots = [i for i, p in enumerate(procs) if busy[p.pid]] or [k % workers]
                slot = slots[0]
                victim = procs[slot]
                victim.kill()  # SIGKILL: no cleanup at all
                victim.wait()
                killed += 1
                procs[slot] = started()
                replacements.add(procs[slot].pid)
                if holding(db.url)[victim.pid]:
                    mid_batch += 1
                    break
        result.check(
            wait_for(lambda: len(sink.message_ids()) >= requests, PROGRESS_TIMEOUT, abort=died),
            "not every request reached the sink",
        )
        # Marks of the last rows may still be in flight: wait for the outbox to say `sent`.
        result.check(
            wait_for(
                lambda: statuses(db.url)["sent"] >= requests,
                PROGRESS_TIMEOUT,
                abort=died,
            ),
            "not every outbox row was marked sent",
        )
        codes = stop(procs)
        # A replacement still starting up may die of SIGTERM itself (-15) before it installs
        # its handler: it has claimed nothing. Every other worker must finish and exit 0.
        bad = [
            (p.pid, code)
            for p, code in zip(procs, codes, strict=True)
            if code != 0 and not (code == -15 and p.pid in replacements)
        ]
        result.check(not bad, f"workers exited {bad} on SIGTERM: {tail(work / 'worker-0.log')}")
        procs = []
        ids = sink.message_ids()
        outbox = dict(statuses(db.url))
        result.sent, result.accepted = requests, len(ids)
        result.stored = outbox.get("sent", 0)
        result.duplicates = sum(ids.values()) - len(ids)
        result.check(len(ids) == requests, f"{requests - len(ids)} request(s) never delivered")
        result.check(result.stored == requests, f"outbox: {outbox}")
        bound = killed * mark_every
        result.check(result.duplicates <= bound, f"{result.duplicates} duplicates > bound {bound}")
        result.check(mid_batch == kills, f"only {mid_batch} of {kills} kills hit a batch")
        result.notes.append(
            f"{killed} kill(s), {mid_batch} of them left claimed rows behind; "
            f"duplicate bound {bound} ({mark_every} per kill)"
        )
    except Exception as exc:
        result.failures.append(broken(exc))
    finally:
        if procs:
            stop(procs)
        sink.stop()
    return result


# -- 3. restart PostgreSQL under load -------------------------------------------------------------


def postgres_restart(
    work: Path, *, messages: int, outages: int, senders: int = 2, during: int = 4
) -> Result:
    """A private PostgreSQL cluster, the listener and a worker on it, MTAs sending. `outages`
    times the cluster is stopped (`immediate` and `fast` in turn: a crash, then an orderly
    shutdown) while the MTAs keep sending; each answer while it is down must be 451 — not 250,
    not a dropped connection, not silence — and once it is back the same listener process
    answers 250 again and the same worker delivers. Every message answered 250 is stored exactly
    once and its request delivered."""
    from tests.outbox.test_processes import start_worker, stop, worker_env

    result = Result(
        "PostgreSQL restart under load",
        PrivateCluster.label,
        f"{outages} × stop/start of the cluster (immediate, fast…)",
    )
    cluster = listener = load = None
    sink = Sink()
    worker = None
    try:
        cluster = PrivateCluster()
        product = Product(work, cluster.url)
        product.migrate()
        bcc = product.seed()["bcc"]
        env = worker_env(cluster.url, sink, work)
        worker = start_worker(env, "--batch", "20", "--mark-every", "5", "--lease", "10")
        worker_log = work / "worker.log"
        drain(worker, worker_log)
        port = free_port()
        listener = Listener(product, port)
        mails = make_mail(messages, "pg")
        load = Load(port, bcc, mails, senders, retry_pause=0.1)
        tranche = messages // (outages + 1)
        load.release(tranche)
        load.start()
        down_answers: Counter = Counter()
        for k in range(outages):
            if not result.check(
                load.wait_accepted(tranche * (k + 1), PROGRESS_TIMEOUT),
                f"load stalled before outage {k + 1}",
            ):
                break
            # The next tranche goes out as the database goes down: there is mail in flight.
            load.release(messages if k == outages - 1 else tranche * (k + 2))
            mode = "immediate" if k % 2 == 0 else "fast"
            cluster.stop(mode)
            down = seq()
            # Keep sending while it is down, until `during` whole attempts fell in the outage.
            result.check(
                wait_for(lambda d=down: len(load.attempts_between(d)) >= during, PROGRESS_TIMEOUT),
                f"outage {k + 1}: the listener did not answer while the database was down",
            )
            up = seq()
            cluster.start()
            for attempt in load.attempts_between(down, up):
                reply = attempt.reply
                down_answers[reply.code] += 1
                result.check(
                    reply.code == 451 and "4.3.0" in reply.text,
                    f"outage {k + 1} ({mode}): answered {reply.code} {reply.text[:80]!r} "
                    f"at {reply.stage} while the database was down",
                )
            result.check(listener.alive(), f"outage {k + 1}: the listener died")
        result.check(
            wait_for(load.done, PROGRESS_TIMEOUT), "the listener did not recover after a restart"
        )
        load.stop()
        accepted = set(load.accepted)
        result.check(not load.codes().get(-1), "an attempt got no answer (hang)")
        result.check(listener.alive(), "the listener process exited")
        # Deliveries: every accepted message's request, by the one worker started at the top.
        wanted = {m.rcpt for m in mails if m.message_id in accepted}

        def delivered() -> Counter:
            return Counter(r for got in sink.received for r in got.rcpt_tos)

        result.check(
            wait_for(lambda: wanted <= set(delivered()), PROGRESS_TIMEOUT),
            f"{len(wanted - set(delivered()))} request(s) not delivered after the restarts",
        )
        if not result.check(worker.poll() is None, "the worker exited during the outages"):
            result.failures.append(tail(worker_log))
            worker = None
        if worker is not None:
            codes = stop([worker])
            worker = None
            result.check(codes == [0], f"the worker exited {codes} on SIGTERM: {tail(worker_log)}")
        stored_once(result, product, mails, accepted)
        deliveries = delivered()
        resent = sum(n - 1 for r, n in deliveries.items() if r in wanted)
        result.duplicates += resent  # stored duplicates are failures above; these are sends
        # A crash may lose the worker's last marks (synchronous_commit off): those requests go
        # out again after their lease, with the same Message-ID, so they can be recognised.
        ids: dict = {}
        for got in sink.received:
            for r in got.rcpt_tos:
                ids.setdefault(r, set()).add(got.message["Message-ID"])
        result.check(
            all(len(v) == 1 for v in ids.values()), "a request was re-sent with a new Message-ID"
        )
        result.notes.append(
            f"answers while down: {dict(down_answers)}; the same listener and worker processes "
            f"throughout; duplicates are {resent} request(s) delivered twice (marks lost in a "
            "crash), none stored twice"
        )
    except Exception as exc:
        result.failures.append(broken(exc))
    finally:
        if load:
            load.stop()
        if listener:
            listener.kill()
        if worker is not None:
            stop([worker])
        sink.stop()
        if cluster:
            cluster.drop()
    return result


# -- 4. SQLite: the disk fills up ------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int):
    """A tmpfs of `size_mb` at `path`, or None when this machine does not let us mount."""
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("EMAILSYNC_CHAOS_NO_MOUNT") or os.geteuid() != 0:
        yield None
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem says ENOSPC."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def checkpoint(db_path: Path) -> int:
    """Move the WAL into the database and truncate it, so the next commit must grow the WAL;
    returns the database's size in pages."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return conn.execute("PRAGMA page_count").fetchone()[0]


def integrity_check(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


def sqlite_full(work: Path, *, before: int, while_full: int, after: int) -> Result:
    """The listener on SQLite whose database cannot grow. On a real, small filesystem (a tmpfs
    we mount; running as root) the rest of the space is taken by a file and the WAL is
    checkpointed down, so the next commit needs room that is not there; without mount
    permission, SQLite's `PRAGMA max_page_count` in the listener's connections gives the same
    SQLITE_FULL. Either way: `before` messages accepted first; then every answer is 250 (the
    commit fitted in space already allocated, and it is kept) or 451 until `while_full` were
    refused; the listener still running, `PRAGMA integrity_check` says ok and everything accepted
    earlier is there; after room is made, `after` more (and the refused ones, retried) are
    accepted."""
    result = Result("SQLite disk full", "SQLite", "")
    listener = None
    with small_filesystem(work / "small", 24) as mount:
        directory = mount or work / "small"
        db_path = directory / "product.sqlite3"
        product = Product(work, f"sqlite:///{db_path}")
        filler = None
        try:
            product.migrate()
            bcc = product.seed()["bcc"]
            port = free_port()
            listener = Listener(product, port)
            first, later = make_mail(before, "before"), make_mail(after, "after")
            accepted = set()
            for mail in first:
                reply = send(port, bcc, mail)
                result.check(reply.code == 250, f"before the fill: {reply.code} {reply.text}")
                accepted.add(mail.message_id) if reply.code == 250 else None
            if mount:
                result.injected = "a 24 MB tmpfs filled to ENOSPC"
                checkpoint(db_path)
                filler = fill(directory)
            else:
                result.injected = "PRAGMA max_page_count at the current size (no mount)"
                listener.stop()
                pages = checkpoint(db_path)
                cap = [sys.executable, "-m", "tests.chaos.pagecap", str(pages)]
                listener = Listener(product, port, cap)
            # A commit that fits in space already allocated may still succeed (then it is
            # stored); once the database must grow, the answer is 451. Send until `while_full`
            # messages were refused (or give up: the fault never bit).
            answers: Counter = Counter()
            refused = []
            for mail in make_mail(while_full * 20, "full"):
                reply = send(port, bcc, mail)
                answers[reply.code] += 1
                refused.append(mail)
                if reply.code == 250:
                    accepted.add(mail.message_id)
                    continue
                result.check(
                    reply.code == 451 and "4.3.0" in reply.text,
                    f"database full: answered {reply.code} {reply.text[:80]!r} at {reply.stage}",
                )
                if answers[451] >= while_full:
                    break
            result.check(answers[451] >= while_full, f"the database never filled: {answers}")
            result.check(listener.alive(), "the listener died when the disk was full")
            integrity = integrity_check(db_path)
            result.check(integrity == ["ok"], f"integrity_check while full: {integrity[:3]}")
            report = product.report(first)["messages"]
            kept = sum(1 for mid in accepted if report.get(mid, {}).get("triggers") == 1)
            result.check(kept == len(first), f"only {kept} of {len(first)} earlier messages kept")
            # Room again: the same listener process (mount) accepts the refused ones and more.
            if filler:
                filler.unlink()
            else:
                listener.stop()
                listener = Listener(product, port)
            for mail in [m for m in refused if m.message_id not in accepted] + later:
                reply = send(port, bcc, mail)
                result.check(reply.code == 250, f"after room was made: {reply.code} {reply.text}")
                accepted.add(mail.message_id) if reply.code == 250 else None
            integrity = integrity_check(db_path)
            result.check(integrity == ["ok"], f"integrity_check at the end: {integrity[:3]}")
            stored_once(result, product, first + refused + later, accepted)
            result.notes.append(
                f"answers while full: {dict(answers)}; integrity_check ok; "
                + ("same listener process after space was freed" if mount else "restarted")
            )
        except Exception as exc:
            result.failures.append(broken(exc))
        finally:
            if listener:
                listener.kill()
            product.close()
    return result
