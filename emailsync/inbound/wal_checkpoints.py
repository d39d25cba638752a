"""On SQLite, the listener's write-ahead log is checkpointed beside its commits, not in them.

In WAL mode every commit appends its pages to the log, and the commit that takes the log past
1,000 pages copies the log back into the database file and syncs both before it returns. On the
listener that commit is one every sender of the batch is waiting for: with batches of eight
trigger emails, COMMIT averaged 1.5 ms with SQLite's automatic checkpoints and 0.8 ms without
(`bench/ingest_stages.py --statements`, docs/PERFORMANCE.md). So the listener's own connection
never checkpoints, and a thread of the listener does, twice a second, in PASSIVE mode: it copies
back what no reader still needs and never waits for, or blocks, a reader or a writer. The web
and worker processes keep SQLite's automatic checkpoints.
"""

import logging
import sqlite3
import threading

from django.db import connection

log = logging.getLogger("emailsync.smtpd")

INTERVAL = 0.5  # seconds between checkpoints
# A log this long after a checkpoint means a reader has held an old snapshot for a while: the
# log can only be reused once no reader needs its start. Worth an operator's look.
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
    """For the calling thread's connection (the listener's committer): no automatic checkpoint.
    A setting of the connection, so it is made again for each new one."""
    if not _checkpointer_running.is_set():
        return
    raw = connection.connection
    if raw is None or getattr(_configured, "raw", None) is raw or database_file() is None:
        return
    raw.execute("PRAGMA wal_autocheckpoint = 0")
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
        try:
            self.checkpoint()  # what the last batches wrote, before the process goes
        except sqlite3.Error:
            log.warning("SQLite checkpoint failed", exc_info=True)

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (1 if it could not start, pages in the log, pages copied)."""
        db = sqlite3.connect(self.path, timeout=1)
        try:
            busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()
        if logged - copied > LONG_LOG_PAGES:
            log.warning(
                "SQLite log: %d pages not yet copied back (a long-running reader?)",
                logged - copied,
            )
        return busy, logged, copied

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except sqlite3.Error:  # a busy or vanished file: the next round tries again
                log.warning("SQLite checkpoint failed", exc_info=True)
