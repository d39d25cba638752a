"""Telling a database outage from a fault, for the long-running processes (listener, worker).

An outage (the server down, unreachable, restarting, never answering) is expected weather:
every process waits and retries, and its log says so in one line. A fault (a bug, a constraint,
a deadlock) is worth its traceback. Both processes log them differently, so both ask here.
"""

import psycopg
from django.db import InterfaceError, OperationalError


def database_unavailable(exc: BaseException) -> bool:
    """No connection to the database (down, unreachable, refusing): an outage, not a fault.
    psycopg raises its base OperationalError for a connection that failed or was lost; a
    deadlock or a serialization failure is a subclass of it, and a batch's business. So is
    ConnectionTimeout, raised after DATABASE_CONNECT_TIMEOUT by a server that never answers:
    an outage all the same."""
    if isinstance(exc, InterfaceError):
        return True
    cause = exc.__cause__
    return isinstance(exc, OperationalError) and (
        type(cause) in (psycopg.OperationalError, psycopg.errors.ConnectionTimeout)
        # Connection exceptions (08…), and the server shutting down or starting (57P01-03).
        or (getattr(cause, "sqlstate", None) or "").startswith(("08", "57P0"))
    )


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class NotRecorded(Exception):
    """Our side failed to record what a well-formed webhook post told us (a fault of ours): the
    sender must retry it, unlike a post it cannot mend. Webhook receivers raise it so the
    answer can tell the two apart (api/esp_urls.py)."""
