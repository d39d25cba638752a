"""A database outage in the worker's log: a line a minute, not a traceback every tick."""

import logging

import psycopg
import pytest
from django.db import OperationalError

from emailsync.outbox import worker as worker_module
from emailsync.outbox.worker import Stats, Worker


def outage() -> OperationalError:
    try:
        raise OperationalError("connection failed: Connection refused") from (
            psycopg.OperationalError("connection failed: Connection refused")
        )
    except OperationalError as exc:
        return exc


@pytest.mark.django_db
def test_an_outage_is_one_line_while_it_lasts_and_its_end_is_said(caplog, monkeypatch):
    """Found by running the worker against an unreachable database: each tick (every few
    seconds) logged a sixty-line ERROR traceback, burying everything else in the log."""
    worker = Worker()
    results = [outage(), outage(), outage(), "ok", ValueError("a real fault")]

    def scripted_tick():
        result = results.pop(0)
        if not results:
            worker.stop()
        if isinstance(result, Exception):
            raise result
        return Stats()

    worker.tick = scripted_tick
    # As on a machine that booted a moment ago: the monotonic clock starts near zero.
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: 5.0)
    with caplog.at_level(logging.INFO, logger="emailsync.worker"):
        worker.run_forever(poll=0.001)
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    outage_lines = [line for line in lines if "database unavailable" in line[1]]
    assert len(outage_lines) == 1 and outage_lines[0][0] == "WARNING"
    assert outage_lines[0][2] is None and "Connection refused" in outage_lines[0][1]
    assert any("database reachable again" in message for _, message, _ in lines)
    faults = [line for line in lines if line[1] == "worker tick failed"]
    assert len(faults) == 1 and faults[0][2] is not None  # a fault keeps its traceback
