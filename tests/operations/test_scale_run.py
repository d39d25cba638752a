"""The scale run at reduced size: two listeners on one port, two workers and two web processes
on one PostgreSQL database, with recipients repeating within and across agencies. Every trigger
is recorded once, exactly the expected review requests exist, and each is delivered once.

bench/scale.py is the run (`make bench` runs it at full size, 20,000 triggers); this test only
asserts its exactly-once checks, never its timings.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the scale run is PostgreSQL-only: multiple listeners and workers on one database",
    ),
]

ROOT = Path(__file__).resolve().parents[2]


def server_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"


def test_two_listeners_two_workers_exactly_once(tmp_path):
    out = tmp_path / "scale.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            *("--triggers", "1000", "--agencies", "100", "--history-reviews", "500"),
            *("--settle", "1", "--no-plans", "--postgres", server_url(), "--json", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), run.stdout[-3000:] + run.stderr[-5000:]
    result = json.loads(out.read_text())
    assert result["checks"] == dict.fromkeys(result["checks"], True), result["checks"]
    assert run.returncode == 0, run.stderr[-3000:]
    # The workload really overlaps: fewer requests than recipient slots, some asked already.
    assert result["expected_requests"] < result["recipient_slots"]
    assert result["stored"]["recipient_outcomes"].get("skipped:recently_asked", 0) > 0
    assert result["stored"]["requests"] == result["expected_requests"]
    assert result["stored"]["deliveries"] == result["expected_requests"]
    assert result["two_listeners"]["accepted"] > 0 and result["one_listener"]["accepted"] > 0
    assert result["web_pages_ok"]
    assert set(result["exit_codes"].values()) == {0}
