"""Found by the PostgreSQL restart scenario: a worker whose connection the server dropped kept
failing every tick ("the connection is lost") until it was restarted, because its first query
of a tick (the periodic jobs' rows) runs outside any transaction, and Django closes a broken
connection only when a transaction fails or around a web request. The fix closes it after a
failed tick; this test drops the worker's connection on purpose and expects the next tick to
work."""

import psycopg
import pytest
from django.db import connection

from emailsync.outbox.worker import Worker

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a connection dropped by the server is a PostgreSQL event (SQLite is a file)",
)


def admin_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def drop_connection() -> int:
    """Have the server end this process's connection (as a restart does); wait till it has."""
    backend = connection.connection.info.backend_pid
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
        while not admin.execute(gone, [backend]).fetchone()[0]:
            pass  # the backend acts on the signal asynchronously
    return backend


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_after_the_server_drops_its_connection():
    worker = Worker()
    # Just wrote its heartbeat (the next is due in 5 s), so a tick's first query is the
    # periodic jobs', outside any transaction, as it is most of the time in a running worker.
    worker.beat(force=True)
    outcomes, dropped = [], []
    tick = worker.tick

    def observed_tick():
        if not outcomes:
            connection.ensure_connection()
            dropped.append(drop_connection())  # between two ticks of a running worker
        try:
            result = tick()
        except Exception as exc:
            outcomes.append(type(exc).__name__)
            raise
        else:
            outcomes.append("ok")
        finally:
            if len(outcomes) >= 3:
                worker.stop()
        return result

    worker.tick = observed_tick
    worker.run_forever(poll=0.01)
    assert outcomes[0] == "OperationalError"  # the dropped connection, noticed once
    assert outcomes[1:] == ["ok", "ok"]
    assert connection.connection.info.backend_pid != dropped[0]
