"""`python -m tests.chaos.run` (`make chaos`): every fault scenario at full length, one table.

The scenarios are the ones `make test` runs small (tests/chaos/scenarios.py); here they send more
mail and inject more faults, on SQLite and on a private PostgreSQL cluster made for the run
(initdb into a temporary directory; the machine's own PostgreSQL is never touched). Loopback
only. Exits 1 if any scenario fails.

    python -m tests.chaos.run [--scale 0.5] [--only listener,worker,postgres,disk] [--keep]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument(
        "--only",
        default="listener,worker,postgres,disk",
        help="comma-separated: listener, worker, postgres, disk",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsync.settings")
    os.environ.setdefault("EMAILSYNC_TESTING", "1")
    import django

    django.setup()
    from . import scenarios
    from .product import PrivateCluster, SqliteDatabase, private_postgres_unavailable

    def n(size: int) -> int:
        return max(1, round(size * args.scale))

    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="emailsync-chaos-"))
    results: list[tuple[scenarios.Result, float]] = []
    unavailable = private_postgres_unavailable()
    cluster = None
    try:
        databases = [("sqlite", lambda name: SqliteDatabase(work / name / "product.sqlite3"))]
        if unavailable:
            print(f"PostgreSQL scenarios cannot run: {unavailable}", file=sys.stderr)
        else:
            cluster = PrivateCluster()
            databases.append(("postgres", cluster.database))

        def run(label, scenario, *a, **kw):
            started = time.monotonic()
            print(f"… {label}", file=sys.stderr, flush=True)
            result = scenario(*a, **kw)
            results.append((result, time.monotonic() - started))
            print(f"  {'pass' if result.passed else 'FAIL'}", file=sys.stderr, flush=True)

        for kind, make in databases:
            if "listener" in only:
                name = f"listener-{kind}"
                db = make(name)
                run(name, scenarios.listener_kill, work / name, db, messages=n(300), kills=n(8))
                db.drop()
            if "worker" in only:
                name = f"worker-{kind}"
                db = make(name)
                run(name, scenarios.worker_kill, work / name, db, requests=n(1500), kills=n(5))
                db.drop()
        if "postgres" in only:
            if unavailable:
                results.append((unrunnable("PostgreSQL restart under load", unavailable), 0.0))
            else:
                run("postgres", scenarios.postgres_restart, work / "postgres", messages=n(300),
                    outages=n(6))  # fmt: skip
        if "disk" in only:
            run("disk", scenarios.sqlite_full, work / "disk", before=n(100), while_full=n(20),
                after=n(50))  # fmt: skip
    finally:
        if cluster:
            cluster.drop()
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    return 0 if results and all(r.passed for r, _ in results) else 1


def unrunnable(name: str, why: str):
    from .scenarios import Result

    result = Result(name, "PostgreSQL (private)", "not run")
    result.failures.append(why)
    return result


def table(results) -> str:
    header = ["scenario", "database", "injected", "sent", "accepted", "stored", "duplicates",
              "result"]  # fmt: skip
    rows = [
        [
            r.scenario,
            r.database,
            r.injected,
            r.sent,
            r.accepted,
            r.stored,
            r.duplicates,
            "pass" if r.passed else "FAIL",
        ]  # fmt: skip
        for r, _ in results
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(f"{c:,}" if isinstance(c, int) else c for c in row) + " |"
              for row in rows]  # fmt: skip
    lines.append("")
    for r, seconds in results:
        lines.append(f"- {r.scenario} ({r.database}, {seconds:.0f} s): {'; '.join(r.notes)}")
        lines += [f"    FAILURE: {f}" for f in r.failures]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
