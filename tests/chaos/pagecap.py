"""`python -m tests.chaos.pagecap PAGES smtpd …`: run an `emailsync` command whose SQLite
connections may not grow the database past PAGES pages (`PRAGMA max_page_count`, which is per
connection). A write that needs more fails with SQLite's own SQLITE_FULL ("database or disk is
full"), the error a full disk gives. Used by the disk-full scenario only where mounting a small
filesystem is not permitted."""

import sys

from django.db.backends.signals import connection_created

from emailsync.cli import main


def cap(pages: int):
    def on_connect(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.connection.execute(f"PRAGMA max_page_count = {pages}")

    return on_connect


if __name__ == "__main__":
    pages = int(sys.argv[1])
    connection_created.connect(cap(pages), weak=False)
    sys.argv = ["emailsync", *sys.argv[2:]]
    main()
