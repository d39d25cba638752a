"""Fault scenarios with real processes, small enough for every `make test` run.

`python -m tests.chaos.run` (`make chaos`) runs the same scenarios longer and prints a table.
"""

import pytest
from django.db import connection

from . import scenarios
from .product import SqliteDatabase, SuitePostgres, private_postgres_unavailable

pytestmark = pytest.mark.slow

ON_POSTGRES = connection.vendor == "postgresql"


@pytest.fixture
def database(tmp_path):
    """The database the suite runs on: a SQLite file, or a fresh database on its PostgreSQL."""
    db = SuitePostgres() if ON_POSTGRES else SqliteDatabase(tmp_path / "product.sqlite3")
    yield db
    db.drop()


def passed(result: scenarios.Result) -> scenarios.Result:
    print(result)
    assert result.failures == [], "\n".join(result.failures + result.notes)
    return result


def test_kill_9_listener_in_data_then_the_retry_is_stored_once(tmp_path, database):
    result = passed(scenarios.listener_kill(tmp_path, database, messages=20, kills=3))
    assert result.sent == result.accepted == result.stored == 23
    assert result.duplicates == 0


def test_kill_9_worker_mid_batch_delivers_everything_with_bounded_duplicates(tmp_path, database):
    result = passed(scenarios.worker_kill(tmp_path, database, requests=150, kills=1))
    assert result.accepted == result.stored == 150
    assert result.duplicates <= 5  # --mark-every


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="PostgreSQL scenario: runs when the suite runs on PostgreSQL (DATABASE_URL), "
    "and always in `make chaos`",
)
def test_postgres_restart_under_load_answers_451_then_recovers_by_itself(tmp_path):
    unavailable = private_postgres_unavailable()
    if unavailable:
        pytest.fail(f"a private PostgreSQL cluster is needed: {unavailable}")
    result = passed(scenarios.postgres_restart(tmp_path, messages=30, outages=2))
    # Stored once each (checked inside); a crash may make the worker re-send its last marks.
    assert result.sent == result.accepted == result.stored == 30


@pytest.mark.skipif(
    ON_POSTGRES,
    reason="SQLite scenario: runs when the suite runs on SQLite (plain `make test`), "
    "and always in `make chaos`",
)
def test_sqlite_disk_full_answers_451_and_keeps_the_database_intact(tmp_path):
    """On a real small filesystem: a 24 MB tmpfs mounted for the test (we run as root here and
    mounting is permitted), filled with a file until ENOSPC. Where mounting is refused, the
    scenario falls back to SQLite's `PRAGMA max_page_count` in the listener's connections,
    which raises the same SQLITE_FULL; the result's `injected` says which one ran."""
    result = passed(scenarios.sqlite_full(tmp_path, before=5, while_full=3, after=3))
    assert result.sent == result.accepted == result.stored >= 11
    assert result.duplicates == 0
