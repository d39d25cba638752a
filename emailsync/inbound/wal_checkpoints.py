"""On SQLite, the listener's write-ahead log is checkpointed beside its batches, not in them.

In WAL mode every commit appends its pages to the log, and the commit that takes the log past
1,000 pages copies the log back into the database file and syncs both before it returns. On the
listener that commit is one every sender of the batch is waiting for: with batches of eight
trigger emails, COMMIT averaged 1.5 ms with SQLite's automatic checkpoints and 0.8 ms without
(`bench/ingest_stages.py --statements`, docs/PERFORMANCE.md). So a thread of the listener
checkpoints twice a second instead, while the sessions are talking SMTP rather than waiting.

Each checkpoint is two passes. The first copies the log back while batches go on writing, as
SQLite allows. The second takes the listeners' writer lock (the file `smtp.writers_turn` locks)
and copies what the log gained meanwhile, a batch or two: a checkpoint that overlaps a batch
never finds the log fully copied back, and SQLite only starts the log afresh when it is, so
under steady load the log would grow without end. Under the lock for the whole copy, the
checkpoint held every batch for 7–33 ms twice a second once the database had grown: the
random keys of a batch's indexes dirty about 23 pages per email (docs/PERFORMANCE.md).

The listener's own connection still checkpoints by itself past `BACKSTOP_PAGES`, should the
thread fall behind, and its log file is cut back to `LOG_FILE_LIMIT` when the log starts
afresh. The web and worker processes keep SQLite's automatic checkpoints.
"""

import contextlib
import fcntl
import logging
import sqlite3
import threading

from django.db import connection

log = logging.getLogger("emailsync.smtpd")

INTERVAL = 0.5  # seconds between checkpoints
BACKSTOP_PAGES = 10_000  # 40 MB of log: the thread copies back far less than that each time
LOG_FILE_LIMIT = 64 * 1024 * 1024  # bytes the log file keeps once it starts afresh
LOCK_SUFFIX = ".listener-lock"  # beside the database: the listeners' writer lock
# A log this long means readers have kept it from starting afresh for a while (a long-running
# read in another process, say): worth an operator's look.
LONG_LOG_PAGES = 50_000

_configured = threading.local()
_checkpointer_running = threading.Event()  # in this process: only then may commits skip it


def database_file() -> str | None:
    """The SQLite database's file, or None (another database, or one in memory)."""
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    if name in ("", ":memory:") or name.startswith("file:"):
        return None
    return name


def keep_checkpoints_out_of_commits() -> None:
    """For the calling thread's connection (the listener's committer): checkpoint only past
    the backstop. A setting of the connection, so it is made again for each new one."""
    if not _checkpointer_running.is_set() or database_file() is None:
        return
    connection.ensure_connection()
    raw = connection.connection
    if getattr(_configured, "raw", None) is raw:
        return
    raw.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    raw.execute(f"PRAGMA journal_size_limit = {LOG_FILE_LIMIT}")
    _configured.raw = raw


class Checkpointer:
    """A thread that checkpoints one SQLite database's log every `interval` seconds."""

    def __init__(self, path: str, interval: float = INTERVAL):
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Checkpointer":
        self._thread = threading.Thread(target=self._run, name="smtpd-checkpoint", daemon=True)
        self._thread.start()
        _checkpointer_running.set()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        _checkpointer_running.clear()
        with contextlib.suppress(sqlite3.Error):
            self.checkpoint()  # what the last batches wrote, before the process goes

    @contextlib.contextmanager
    def writers_turn(self):
        # Its own open file, not the committer's: flock excludes open files, not threads.
        with open(self.path + LOCK_SUFFIX, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint, finished between batches: (1 if it could not start, pages
        in the log, pages copied back)."""
        # mode=rw: a database that has gone is an error here, not a new empty file.
        db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=1)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # beside the batches: the bulk
            with self.writers_turn():  # between two batches: the rest
                busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()
        if logged > LONG_LOG_PAGES:
            log.warning("SQLite log: %d pages long (a long-running reader?)", logged)
        return busy, logged, copied

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except (sqlite3.Error, OSError):  # busy, or the file gone: the next round tries
                log.warning("SQLite checkpoint failed", exc_info=True)
