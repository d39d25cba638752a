"""Server-side binding and prepared statements on Django's own PostgreSQL connection.

Django binds parameters on the client and never prepares statements, which suits the ORM's
endless variety of queries. A handful of statements run constantly — the listener's batch
writes and lookups, the public pages' reviews — and for those both choices cost more than the
database's work: quoting every value in Python, and planning the same statement on every call.
This cursor sends values in binary (`%b` placeholders; `%s` works too) and, when asked, has
PostgreSQL prepare each statement once per connection. It is the same connection, so it runs
inside Django's transaction, and it is wrapped like Django's own cursors, so statements are
counted, logged with their values in place, and their errors are Django's.

Prepared statements need a connection that lasts (session pooling, or none); behind a
transaction-mode pooler set `EMAILSYNC_PREPARED_QUERIES=0`.
"""

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper


class PreparingCursor(psycopg.Cursor):
    """Every statement prepared (psycopg keeps them per connection, keyed by the SQL text and
    the parameters' types)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _LoggedCursor(CursorDebugWrapper):
    """Logs the statement with its values in place, as Django logs its own queries, rather
    than the `$1` text PostgreSQL prepared."""

    def execute(self, sql, params=None):
        shown = self.db.ops.compose_sql(sql.replace("%b", "%s"), params)
        with self.debug_sql(shown, params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


def server_side_cursor(prepare: bool):
    """A cursor on the default connection (PostgreSQL only) binding on the server."""
    # The wrapper itself, looked up once: each attribute read through django.db.connection
    # is a context-local lookup, and a busy caller makes a few hundred of them per second.
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    db.ensure_connection()
    pg = db.connection
    if prepare and pg.prepare_threshold is None:
        # Django turns psycopg's preparing off for the whole connection (None). A threshold no
        # statement reaches keeps it off for everything else and lets these ask for it.
        pg.prepare_threshold = 2**31
    with db.wrap_database_errors:
        raw = (PreparingCursor if prepare else psycopg.Cursor)(pg)
    if db.queries_logged:
        return _LoggedCursor(raw, db)
    return db.make_cursor(raw)
