"""`make bench`: every benchmark, each against its own in-run baseline, in one table.

    .venv/bin/python bench/suite.py [--quick | --full] [--only ingest,dispatch,web,scale]
                                    [--json FILE]

Runs bench/ingest.py, bench/dispatch.py, bench/web.py and bench/scale.py one after another, each
as its own process with a size and a time limit, on loopback only, each writing its results as
JSON; then prints one table: the figure, its in-run baseline, the ratio, the target and whether
it is met. A benchmark that fails or runs out of time is a row that says so (and the suite
exits 1); a missed target is a row that says so (the suite still exits 0: it measures).

Sizes: the default is a mid size (about a quarter of an hour on a 2-core box); `--quick` is a
smoke run of a few minutes whose ratios are rough; `--full` uses the sizes docs/PERFORMANCE.md
reports (the web benchmark with 1,000,000 reviews). PostgreSQL: the server BENCH_POSTGRES names
(default postgres://postgres@127.0.0.1:5432); the suite creates its own databases and drops them.
The logs of each run are kept under var/bench/<time>/.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH = ROOT / "bench"

SIZES = {
    "quick": {
        "ingest": ["--messages", "500", "--warmup", "50", "--big-sessions", "5", "--big-mib", "1"],
        "dispatch": ["--messages", "500", "--rounds", "1"],
        "web": ["--reviews", "20000", "--agencies", "500", "--requests", "60"],
        "scale": ["--triggers", "2000", "--agencies", "100", "--history-reviews", "2000"],
    },
    "default": {
        "ingest": ["--messages", "2000", "--warmup", "200", "--big-sessions", "20"],
        "dispatch": ["--messages", "2000", "--rounds", "2"],
        "web": ["--reviews", "200000", "--agencies", "2000", "--requests", "200"],
        "scale": ["--triggers", "20000", "--agencies", "1000", "--history-reviews", "20000"],
    },
    "full": {
        "ingest": ["--messages", "3000", "--warmup", "200"],
        "dispatch": ["--messages", "5000", "--rounds", "3"],
        "web": ["--reviews", "1000000", "--agencies", "10000", "--requests", "300"],
        "scale": ["--triggers", "20000", "--agencies", "1000", "--history-reviews", "100000"],
    },
}
TIME_LIMITS = {"quick": 600, "default": 1800, "full": 3600}  # seconds per benchmark
SCALE_NOTE = (
    "2 cores run 2 listeners, 2 workers, 2 web processes, PostgreSQL, the sink and the load "
    "client: a second listener has no core of its own"
)


def postgres_server() -> str:
    return os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{postgres_server()}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_benchmark(name: str, argv: list[str], env: dict, log: Path, limit: int) -> str | None:
    """Run one benchmark; None when it finished, else why not."""
    started = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv[1:])}", flush=True)
    with open(log, "wb") as out:
        try:
            code = subprocess.run(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=limit
            ).returncode
        except subprocess.TimeoutExpired:
            return f"stopped after {limit} s"
    print(f"    {time.monotonic() - started:.0f} s, log {log}", flush=True)
    return f"exit code {code}" if code else None


# --- rows of the table from each benchmark's JSON ------------------------------------------


def row(benchmark, figure, baseline, ratio, target, met, note=""):
    return {
        "benchmark": benchmark,
        "figure": figure,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }


def ingest_rows(data) -> list[dict]:
    rows = []
    for r in data:
        label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}.get(r["database"], r["database"])
        ratio = r["ratio"]
        once = r.get("exactly_once")
        rows.append(
            row(
                f"ingest, {label}",
                f"smtpd {r['smtpd']['per_second']:.0f} msg/s",
                f"bare aiosmtpd {r['bare']['per_second']:.0f} msg/s",
                f"{ratio:.2f}",
                "≥ 0.5",
                ratio >= 0.5,
                "" if once else "NOT exactly once",
            )
        )
    return rows


def dispatch_rows(data) -> list[dict]:
    rows = []
    for db, f in data["databases"].items():
        label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}.get(db, db)
        two = f.get("worker_2_per_s")
        rows.append(
            row(
                f"dispatch, {label}",
                f"worker {f['worker_1_per_s']:.0f} msg/s",
                f"raw send_messages {f['raw_per_s']:.0f} msg/s",
                f"{f['ratio']:.2f}",
                "≥ 0.6",
                f["ratio"] >= 0.6,
                (f"per round {f['ratio_per_round']}" + (f"; 2 workers {two:.0f}/s" if two else "")),
            )
        )
    return rows


def web_rows(data) -> list[dict]:
    pages = data["pages"]
    trivial = pages["trivial view"]
    rows = []
    for kind, p in pages.items():
        if kind == "trivial view":
            continue
        rows.append(
            row(
                f"web, {kind} ({data['reviews']:,} reviews)",
                f"p95 {p['p95_ms']:.1f} ms",
                f"trivial view p95 {trivial['p95_ms']:.1f} ms",
                f"{p['p95_ratio']:.1f}×",
                "≤ 8×",
                p["p95_ratio"] <= 8,
                f"p50 {p['p50_ms']:.1f} ms = {p['p50_ratio']:.1f}× the trivial view's",
            )
        )
    return rows


def scale_rows(data) -> list[dict]:
    one, two = data["one_listener"], data["two_listeners"]
    ratio = data["listener_ratio"]
    plans = data.get("plans", [])
    slowest = max(plans, key=lambda p: p["execution_ms"], default=None)
    return [
        row(
            f"scale, {data['triggers']:,} triggers / {data['agencies']:,} agencies, PostgreSQL",
            f"2 listeners {two['per_second']:.0f} msg/s",
            f"1 listener {one['per_second']:.0f} msg/s",
            f"{ratio:.2f}",
            "≥ 1.7",
            ratio >= 1.7,
            "" if ratio >= 1.7 else SCALE_NOTE,
        ),
        row(
            "scale, exactly once",
            f"{data['stored']['requests']:,} requests, {data['stored']['deliveries']:,} delivered",
            f"expected {data['expected_requests']:,} (of {data['recipient_slots']:,} recipients)",
            "–",
            "every check",
            data["exactly_once"],
            ", ".join(k for k, ok in data["checks"].items() if not ok),
        ),
        row(
            "scale, last 250 → last delivery",
            f"{data['last_250_to_last_delivery_seconds']:.1f} s",
            "–",
            "–",
            "–",
            None,
            "two workers, requests due at once",
        ),
        row(
            "scale, hot queries (EXPLAIN ANALYZE)",
            f"{len(plans)} plans, slowest {slowest['execution_ms']:.2f} ms" if slowest else "–",
            "–",
            "–",
            "–",
            None,
            f"slowest: {slowest['query']}; the plans are in scale.log" if slowest else "",
        ),
    ]


READERS = {"ingest": ingest_rows, "dispatch": dispatch_rows, "web": web_rows, "scale": scale_rows}


def machine() -> str:
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    postgres = "PostgreSQL ?"
    try:
        import psycopg

        with psycopg.connect(f"{postgres_server()}/postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        postgres = f"PostgreSQL {version.split()[0]}"
    except Exception:  # noqa: BLE001, S110 - only a description; the benchmarks will say more
        pass
    return (
        f"{os.cpu_count()} cores{memory}, Python {platform.python_version()}, {postgres} on "
        f"{postgres_server().rsplit('@', 1)[-1]}"
    )


def table(rows: list[dict]) -> str:
    def met(value):
        return "–" if value is None else ("yes" if value else "**no**")

    lines = [
        "| benchmark | figure | in-run baseline | ratio | target | met | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['figure']} | {r['baseline']} | {r['ratio']} | "
            f"{r['target']} | {met(r['met'])} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    size.add_argument("--full", action="store_true", help="the sizes docs/PERFORMANCE.md reports")
    parser.add_argument("--only", default="ingest,dispatch,web,scale")
    parser.add_argument("--json", help="also write the table's rows to this file")
    args = parser.parse_args()
    profile = "quick" if args.quick else "full" if args.full else "default"
    limit = TIME_LIMITS[profile]
    chosen = [b for b in args.only.split(",") if b]
    unknown = set(chosen) - set(READERS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = ROOT / "var" / "bench" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL"}}
    env["BENCH_POSTGRES"] = postgres_server()
    tag = f"{os.getpid()}"
    load_before = os.getloadavg()
    started = time.monotonic()
    rows: list[dict] = []
    failed = []
    for name in chosen:
        out = logs / f"{name}.json"
        argv = [PYTHON, str(BENCH / f"{name}.py"), *SIZES[profile][name], "--json", str(out)]
        bench_env = dict(env)
        database = None
        if name == "dispatch":
            database = f"emailsync_suite_dispatch_{tag}"
        elif name == "web":
            database = f"emailsync_suite_web_{tag}"
        if database:
            bench_env["DATABASE_URL"] = f"{postgres_server()}/{database}"
        try:
            problem = run_benchmark(name, argv, bench_env, logs / f"{name}.log", limit)
        finally:
            if database:
                drop_database(database)
        if problem is None and out.exists():
            try:
                rows.extend(READERS[name](json.loads(out.read_text())))
                continue
            except (KeyError, TypeError, ValueError) as exc:
                problem = f"unreadable results ({exc!r})"
        problem = problem or "no results written"
        failed.append(name)
        rows.append(row(name, "–", "–", "–", "–", False, f"FAILED: {problem}; see {logs}"))

    load_after = os.getloadavg()
    minutes = (time.monotonic() - started) / 60
    header = (
        f"Benchmark suite ({profile} sizes), {time.strftime('%Y-%m-%d %H:%M')} — {machine()}; "
        f"{minutes:.0f} min; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"(above the core count means other work shared the box)."
    )
    print()
    print(header)
    print()
    print(table(rows))
    print(f"\nLogs and each benchmark's JSON: {logs}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"header": header, "profile": profile, "rows": rows}, indent=2)
        )
    (logs / "suite.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
