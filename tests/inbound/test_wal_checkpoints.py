"""On SQLite the listener's commits leave the write-ahead log alone, and its own thread
copies the log back into the database file instead (wal_checkpoints.py)."""

import fcntl
import os
import sqlite3
import time

import pytest
from django.db import connection

from emailsync.inbound import wal_checkpoints
from emailsync.inbound.wal_checkpoints import Checkpointer

PAGE = 4096


def writer(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")  # what the listener's connection is given
    db.execute("CREATE TABLE IF NOT EXISTS trigger_rows (id INTEGER PRIMARY KEY, body TEXT)")
    return db


def write_pages(db, pages):
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO trigger_rows (body) VALUES (?)", [("x" * 3000,) for _ in range(pages)]
    )
    db.execute("COMMIT")


def test_a_checkpoint_copies_the_log_the_commits_left_alone(tmp_path):
    path = str(tmp_path / "listener.sqlite3")
    db = writer(path)
    write_pages(db, 1500)  # past SQLite's automatic checkpoint at 1,000 pages
    # No commit copied anything back: the data is only in the log.
    assert os.path.getsize(path) < 10 * PAGE
    assert os.path.getsize(path + "-wal") > 1500 * PAGE

    busy, logged, copied = Checkpointer(path).checkpoint()

    assert busy == 0 and logged == copied >= 1500
    assert os.path.getsize(path) > 1500 * PAGE
    db.close()


def test_under_steady_writing_the_log_keeps_starting_afresh(tmp_path):
    """Batch after batch, each in the listeners' writer lock as `smtp.writers_turn` takes it,
    with the moment between them in which a listener's sessions talk SMTP: the checkpoints
    fall between batches, so the log never outgrows what is written between two checkpoints.
    (Overlapping the batches, they never found the log fully copied back, and the log grew by
    every page written.)"""
    path = str(tmp_path / "listener.sqlite3")
    db = writer(path)
    lock = open(path + wal_checkpoints.LOCK_SUFFIX, "a+b")  # noqa: SIM115 - closed below
    checkpointer = Checkpointer(path, interval=0.02).start()
    written, largest = 0, 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                write_pages(db, 20)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            written += 20
            largest = max(largest, os.path.getsize(path + "-wal"))
            time.sleep(0.002)
    finally:
        checkpointer.stop()
        lock.close()
        db.close()
    assert written > 1000  # enough that an endless log would show
    assert largest < written * PAGE / 4


def test_a_database_that_has_gone_is_an_error_not_a_new_file(tmp_path):
    path = str(tmp_path / "gone.sqlite3")
    with pytest.raises(sqlite3.OperationalError):
        Checkpointer(path).checkpoint()
    assert not os.path.exists(path)


def test_the_thread_keeps_checkpointing_until_stopped(tmp_path):
    path = str(tmp_path / "listener.sqlite3")
    db = writer(path)
    checkpointer = Checkpointer(path, interval=0.02).start()
    try:
        write_pages(db, 300)
        deadline = time.monotonic() + 10
        while os.path.getsize(path) < 300 * PAGE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.path.getsize(path) > 300 * PAGE
        write_pages(db, 300)
    finally:
        checkpointer.stop()  # and one last checkpoint for what came after the last round
    assert os.path.getsize(path) > 600 * PAGE
    assert not checkpointer._thread.is_alive()
    db.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write-ahead log")
@pytest.mark.django_db
def test_the_committers_connection_skips_automatic_checkpoints_only_while_one_runs(
    monkeypatch, tmp_path
):
    def automatic():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            return cursor.fetchone()[0]

    # The test database lives in memory; the listener's is a file.
    monkeypatch.setattr(wal_checkpoints, "database_file", lambda: str(tmp_path / "x"))
    monkeypatch.setattr(wal_checkpoints._configured, "raw", None, raising=False)
    wal_checkpoints.keep_checkpoints_out_of_commits()
    assert automatic() == 1000  # no checkpointer in this process: commits must still do it

    wal_checkpoints._checkpointer_running.set()
    try:
        connection.close()  # a batch may be the first on a new connection
        wal_checkpoints.keep_checkpoints_out_of_commits()
        assert automatic() == wal_checkpoints.BACKSTOP_PAGES
    finally:
        wal_checkpoints._checkpointer_running.clear()
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint = 1000")
        wal_checkpoints._configured.raw = None


def test_a_checkpoint_copies_the_log_while_a_batch_holds_the_writers_lock(tmp_path):
    """The bulk of the copy goes on beside the batches; only the rest waits for the writers'
    lock, so a batch is held for the pages the log gained meanwhile, not for the whole copy."""
    path = str(tmp_path / "listener.sqlite3")
    db = writer(path)
    write_pages(db, 1500)
    lock = open(path + wal_checkpoints.LOCK_SUFFIX, "a+b")  # noqa: SIM115 - closed below
    fcntl.flock(lock, fcntl.LOCK_EX)  # a batch is being written
    checkpointer = Checkpointer(path, interval=0.01).start()
    try:
        deadline = time.monotonic() + 10
        while os.path.getsize(path) <= 1500 * PAGE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.getsize(path) > 1500 * PAGE  # copied while the lock was held
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        checkpointer.stop()
        lock.close()
        db.close()
