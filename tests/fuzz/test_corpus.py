"""The deterministic fast subset of the fuzz corpus (every variant of every family at least
once, a few hundred messages) through the in-process listener, over real sockets.

The full corpus (10,000+) runs against the real `emailsync smtpd` process with
`make fuzz` (tests/fuzz/run.py); a small slice of that runs here as a slow test.
"""

import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.conf import settings

from tests.inbound.test_privacy import database_dump

from .checks import (
    Result,
    check_database,
    check_replies,
    find_leaks,
    markers_index,
)
from .client import send
from .corpus import FAMILIES, FAST_COUNTS, FULL_COUNTS, case, generate

SEED = 11
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)  # a fixed moment, for the determinism test


def send_all(cases, listener, bcc):
    inbound = settings.EMAILSYNC_INBOUND_DOMAIN
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(lambda c: send(c, "127.0.0.1", listener.port, bcc, inbound), cases)
        )
    return [Result(c, o) for c, o in zip(cases, outcomes, strict=True)]


@pytest.mark.parametrize("family", list(FAST_COUNTS))
def test_fast_subset(family, fuzz_listener, fuzz_bcc, fuzz_keys, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    cases = [case(family, i, SEED, now, fuzz_keys) for i in range(FAST_COUNTS[family])]
    results = send_all(cases, fuzz_listener, fuzz_bcc)
    for result in results:
        check_replies(result)
    # Still answering: a clean message after the family gets its trigger.
    probe = send_all([case("baseline", 999_999, SEED, now, fuzz_keys)], fuzz_listener, fuzz_bcc)
    results += probe
    assert probe[0].outcome.trigger_ids, probe[0].outcome
    check_database(results)
    index = markers_index(results)
    out, err = capfd.readouterr()
    assert not find_leaks(database_dump(), index, "the database dump")
    for where, text in (("logs", caplog.text), ("stdout", out), ("stderr", err)):
        assert not find_leaks(text, index, where)
        for address in fuzz_bcc.values():
            assert address.split("@")[0].rsplit("-", 1)[1] not in text
    problems = [f"{r.case.name}: {'; '.join(r.violations)}" for r in results if r.violations]
    assert not problems, "\n".join(problems[:20])


def test_the_corpus_is_deterministic():
    # Without keys: a DKIM signature holds its signing time (t=) and each run makes its keys,
    # so signed messages differ only in their DKIM-Signature field.
    def build(seed):
        return [c.raw for c in generate(seed, FAST_COUNTS, NOW, {})]

    first = build(SEED)
    assert first == build(SEED)
    assert first != build(SEED + 1)
    assert len(first) >= 300


def test_the_full_corpus_has_ten_thousand_messages_in_every_family():
    assert sum(FULL_COUNTS.values()) >= 10_000
    assert set(FULL_COUNTS) == set(FAMILIES) == set(FAST_COUNTS)


def test_a_case_is_rebuilt_from_its_family_and_index(fuzz_keys):
    every = list(generate(SEED, {"display_names": 5}, NOW, fuzz_keys))
    again = case("display_names", 3, SEED, NOW, fuzz_keys)
    assert again.raw == every[3].raw and again.variant == every[3].variant


@pytest.mark.slow
def test_a_slice_of_the_full_run_against_the_real_listener_process():
    """`python -m tests.fuzz.run` itself, at 2 % scale: the real `emailsync smtpd` process, the
    DNS server, the table and the exit status (SQLite, and PostgreSQL when DATABASE_URL is)."""
    env = {**os.environ, "EMAILSYNC_TESTING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", "--scale", "0.02", "--concurrency", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "OK: no violations" in result.stdout
    assert "| **total** |" in result.stdout
