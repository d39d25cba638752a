"""`emailsync worker` as real processes: SIGTERM, and exactly-once across workers and crashes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from emailsync.outbox.models import OutboundEmail
from tests.processes import manage

from .seed import seed_due
from .sink import Sink

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SIZE = int(os.environ.get("EMAILSYNC_DISPATCH_TEST_SIZE", "2000"))


def worker_env(database_url: str, sink: Sink, var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "EMAIL_BACKEND"}}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=settings.SECRET_KEY,
        EMAILSYNC_TESTING="1",
        EMAILSYNC_VAR_DIR=str(var_dir),
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(sink.port),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="emailsync.settings",
    )
    return env


def start_worker(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emailsync.cli", "worker", "--poll", "0.2", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(workers, sig=signal.SIGTERM) -> list[int]:
    for w in workers:
        if w.poll() is None:
            w.send_signal(sig)
    codes = []
    for w in workers:
        try:
            codes.append(w.wait(timeout=30))
        except subprocess.TimeoutExpired:
            w.kill()
            codes.append(w.wait())
    return codes


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def postgres_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def sink():
    running = Sink()
    yield running
    running.stop()


def test_worker_sends_on_sqlite_and_exits_0_on_sigterm(tmp_path, sink):
    url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    env = worker_env(url, sink, tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    subprocess.run(
        [sys.executable, "-m", "tests.outbox.seed", "60"], env=env, cwd=ROOT, check=True, timeout=60
    )
    workers = [start_worker(env, "--batch", "20"), start_worker(env, "--batch", "20")]
    try:
        wait_until(lambda: len(sink.received) >= 60, 60, "60 messages")
        time.sleep(0.5)
    finally:
        codes = stop(workers)
    assert codes == [0, 0], [w.stdout.read().decode()[-2000:] for w in workers]
    ids = sink.message_ids()
    assert len(ids) == 60 and set(ids.values()) == {1}


needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: SKIP LOCKED across processes"
)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_four_workers_deliver_every_request_exactly_once(tmp_path, sink):
    seed_due(SIZE)
    env = worker_env(postgres_url(), sink, tmp_path)
    workers = [start_worker(env, "--batch", "50") for _ in range(4)]
    try:
        wait_until(
            lambda: OutboundEmail.objects.filter(status="sent").count() == SIZE,
            max(60, SIZE / 20),
            f"{SIZE} sent",
        )
    finally:
        codes = stop(workers)
    assert codes == [0, 0, 0, 0]
    ids = sink.message_ids()
    assert len(ids) == SIZE and set(ids.values()) == {1}, "a request was sent twice"
    assert set(OutboundEmail.objects.values_list("message_id", flat=True)) == set(ids)
    # Every worker took part: SKIP LOCKED let them claim side by side.
    assert OutboundEmail.objects.values("claimed_by").distinct().count() == 4


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_batch_loses_nothing_and_duplicates_stay_within_the_batch(tmp_path, sink):
    batch, mark_every = 50, 10
    seed_due(SIZE)
    env = worker_env(postgres_url(), sink, tmp_path)
    args = ("--batch", str(batch), "--mark-every", str(mark_every), "--lease", "10")
    workers = [start_worker(env, *args) for _ in range(4)]
    try:
        wait_until(lambda: len(sink.received) >= SIZE // 4, 60, "a quarter sent")
        workers[0].kill()  # SIGKILL: no cleanup at all
        workers[0].wait()
        wait_until(
            lambda: OutboundEmail.objects.filter(status="sent").count() == SIZE,
            max(90, SIZE / 20),
            "everything sent after the lease expired",
        )
    finally:
        codes = stop(workers[1:])
    assert codes == [0, 0, 0]
    ids = sink.message_ids()
    duplicates = sum(ids.values()) - len(ids)
    print(
        f"kill -9: {SIZE} requests, {duplicates} duplicate deliveries (batch {batch}, "
        f"mark every {mark_every})"
    )
    assert len(ids) == SIZE, "a request was lost"
    assert duplicates <= mark_every <= batch
