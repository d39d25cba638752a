"""Two connections at once, for tests of races between the listener and another process."""

import threading

from django.db import connection, connections, transaction

from emailsync.agencies.models import Agency
from emailsync.privacy.agencies import delete_agency


def in_thread(work, results):
    def run():
        try:
            results.append(work())
        except Exception as exc:  # for the test to assert on
            results.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def held_deletion(agency_id: int, deleted: threading.Event, release: threading.Event):
    """Work for `in_thread`: deletes the agency, sets `deleted`, and keeps its transaction
    open (the agency locked, gone for everyone but uncommitted) until `release`."""

    def delete():
        with transaction.atomic():
            counts = delete_agency(Agency.objects.get(pk=agency_id))
            deleted.set()
            release.wait(10)
        return counts

    return delete
