"""Benchmark: how fast the worker sends review requests, against Django's own `send_messages`
over one connection to the same SMTP sink, in the same run (the ratio is the figure).

    .venv/bin/python bench/dispatch.py [--messages 5000] [--databases sqlite,postgres]

(a) raw: N pre-rendered messages (built before the clock starts) sent with one connection's
    `send_messages`. (b) worker: N due review requests queued, claimed, re-checked, rendered, sent
    and marked by `Worker.run_once()` (batch 100, marks every 25: the worker's defaults). On
    PostgreSQL also two workers side by side. Each sender runs in its own process; the sink
    (aiosmtpd) runs in this one. Only loopback is used. PostgreSQL uses DATABASE_URL or postgres://postgres@127.0.0.1:5432/
    emailsync_bench (created if missing).
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
TIME_LIMIT = 600


class CountingHandler:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.count += 1
        return "250 OK"


def base_env(database_url: str, port: int, var_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG"}}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=env.get("SECRET_KEY") or secrets.token_urlsafe(40),
        EMAILSYNC_TESTING="1",
        EMAILSYNC_VAR_DIR=var_dir,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="emailsync.settings",
        PYTHONPATH=str(ROOT),
    )
    return env


def child(mode: str, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, __file__, "--child", mode, *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=TIME_LIMIT)
    if process.returncode != 0:
        raise RuntimeError(f"child failed ({process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


# --- children ----------------------------------------------------------------------------------


def child_setup():
    import django

    django.setup()


def child_seed(n: int, quiet: bool = False, queued: bool = False) -> None:
    """Fresh data: N due requests from one agency (half candidates, half clients), as ingest
    leaves them: the worker queues their emails as it claims them (outbox/due_requests.py).
    (a) needs the emails up front, so `queued` makes them here."""
    from datetime import timedelta

    from django.utils import timezone

    from emailsync.agencies.models import Agency, User
    from emailsync.outbox.models import OutboundEmail, new_message_id
    from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source

    OutboundEmail.objects.all().delete()
    ReviewRequest.objects.all().delete()
    agency = Agency.objects.filter(slug="bench-dispatch").first()
    if agency is None:
        agency, _ = Agency.create_with_admin(
            name="Bench Dispatch",
            admin_email="admin@bench-dispatch.test",
            admin_name="Admin",
            password="x" * 12,
            domains=("bench-dispatch.test",),
        )
        agency.slug = "bench-dispatch"
        agency.save()
        EmailSyncSettings.objects.create(agency=agency, enabled=True, business_days="")
        User.objects.create_user(
            email="rita@bench-dispatch.test",
            password="x" * 12,
            full_name="Rita Recruiter",
            agency=agency,
        )
    recruiter = agency.profiles.get(user__email="rita@bench-dispatch.test")
    now = timezone.now()
    requests = ReviewRequest.objects.bulk_create(
        [
            ReviewRequest(
                agency=agency,
                source=Source.EMAIL_SYNC,
                email=f"person{i}-{secrets.token_hex(4)}@reviewer.test",
                name=f"Person {i}",
                role="candidate" if i % 2 else "client",
                recruiter=recruiter,
                token=secrets.token_urlsafe(24),
                created_at=now - timedelta(hours=1),
                send_after=now - timedelta(minutes=5),
                queued_at=now - timedelta(minutes=5) if queued else None,
                deadline=now + timedelta(hours=71),
            )
            for i in range(n)
        ],
        batch_size=1000,
    )
    OutboundEmail.objects.bulk_create(
        []
        if not queued
        else [
            OutboundEmail(
                kind="review_request",
                template="review_request",
                agency=agency,
                review_request=r,
                to_email=r.email,
                to_name=r.name,
                send_after=r.send_after,
                message_id=new_message_id(),
            )
            for r in requests
        ],
        batch_size=1000,
    )
    from django.db import connection

    if connection.vendor == "postgresql":  # rounds delete and re-insert: keep the stats fresh
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE outbox_outboundemail")
            cursor.execute("VACUUM ANALYZE review_requests_reviewrequest")
    if not quiet:
        print(json.dumps({"seeded": n}))


def child_raw(n: int) -> None:
    """(a): Django's send_messages over one connection, with the very messages the worker would
    send (rendered by the worker's own code before the clock starts)."""
    from django.core.mail import get_connection

    from emailsync.outbox.models import OutboundEmail
    from emailsync.outbox.rendering import build_message
    from emailsync.outbox.worker import Worker, agency_admin_emails

    child_seed(n, quiet=True, queued=True)
    rows = Worker().load(list(OutboundEmail.objects.values_list("id", flat=True)))
    admins = agency_admin_emails({r.agency_id for r in rows})
    messages = [build_message(r, admin_emails=admins) for r in rows]
    for m in messages:
        m.message()  # warm any lazy state; the clock measures sending only
    started = time.perf_counter()
    with get_connection() as connection:
        sent = connection.send_messages(messages)
    elapsed = time.perf_counter() - started
    print(json.dumps({"sent": sent, "seconds": elapsed}))


def child_worker(go_file: str) -> None:
    """(b): the real worker, timed from a shared start signal."""
    from emailsync.outbox.worker import Worker

    worker = Worker(batch_size=100, mark_every=25, run_jobs=False)
    while not os.path.exists(go_file):
        time.sleep(0.005)
    started = time.time()
    stats = worker.run_once()
    print(json.dumps({"sent": stats.sent, "start": started, "end": time.time()}))


# --- the driver --------------------------------------------------------------------------------


def run_database(label: str, database_url: str, n: int, sink, var_dir: str, rounds: int) -> dict:
    env = base_env(database_url, sink.port, var_dir)
    subprocess.run(
        [PYTHON, "-m", "emailsync.cli", "migrate", "--noinput", "-v0"], env=env, check=True
    )
    # The machine is shared and noisy: alternate the two measurements and keep each one's best.
    figures: dict[str, float] = {}
    ratios = []
    worker_counts = [1, 2] if database_url.startswith("postgres") else [1]
    for _ in range(rounds):
        before = sink.handler.count
        raw = result(child("raw", env, str(n)))
        assert sink.handler.count - before == n
        rates = {"raw_per_s": n / raw["seconds"]}
        for workers in worker_counts:
            result(child("seed", env, str(n)))
            go = Path(var_dir) / f"go-{label}-{workers}"
            go.unlink(missing_ok=True)
            procs = [child("worker", env, str(go)) for _ in range(workers)]
            time.sleep(3)  # let the children import Django before the clock starts
            go.touch()
            before = sink.handler.count
            results = [result(p) for p in procs]
            sent = sum(r["sent"] for r in results)
            assert sent == n == sink.handler.count - before, (sent, n)
            elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
            rates[f"worker_{workers}_per_s"] = n / elapsed
        ratios.append(rates["worker_1_per_s"] / rates["raw_per_s"])
        for key, value in rates.items():
            figures[key] = max(figures.get(key, 0.0), value)
    figures["ratio"] = figures["worker_1_per_s"] / figures["raw_per_s"]
    figures["ratio_per_round"] = [round(r, 2) for r in ratios]
    return figures


def ensure_postgres(url: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError:
        base, name = url.rsplit("/", 1)
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child_setup()
        {"seed": lambda a: child_seed(int(a[0])), "raw": lambda a: child_raw(int(a[0])),
         "worker": lambda a: child_worker(a[0])}[options.child](options.args)  # fmt: skip
        return

    from aiosmtpd.controller import Controller

    from tests.processes import free_port

    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()

    class Sink:
        pass

    sink = Sink()
    sink.handler, sink.port = handler, port
    n = options.messages
    rows = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as var_dir:
            for db in options.databases.split(","):
                if db == "sqlite":
                    url = f"sqlite:///{var_dir}/bench.sqlite3"
                else:
                    url = os.environ.get("DATABASE_URL", "")
                    if not url.startswith("postgres"):
                        url = "postgres://postgres@127.0.0.1:5432/emailsync_bench"
                    ensure_postgres(url)
                rows[db] = run_database(db, url, n, sink, var_dir, options.rounds)
    finally:
        controller.stop()
    print(f"{n} messages per run, best of {options.rounds} rounds, sink: aiosmtpd on loopback")
    print(f"{'database':<10} {'raw /s':>9} {'worker /s':>10} {'ratio':>6} {'2 workers /s':>13}")
    for db, f in rows.items():
        two = f.get("worker_2_per_s")
        print(
            f"{db:<10} {f['raw_per_s']:>9.0f} {f['worker_1_per_s']:>10.0f} {f['ratio']:>6.2f} "
            f"{(f'{two:.0f}' if two else '-'):>13}  per round {f['ratio_per_round']}"
        )
    print(json.dumps(rows))
    if options.json:
        Path(options.json).write_text(json.dumps({"messages": n, "databases": rows}, indent=2))


if __name__ == "__main__":
    main()
