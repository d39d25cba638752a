"""The whole fuzz corpus against the real listener process: `python -m tests.fuzz.run`.

For each database (SQLite always; PostgreSQL too when DATABASE_URL points at one) this starts a
fresh database with two agencies, a UDP DNS server holding the test DKIM keys, and
`emailsync smtpd --processes 1` (one process, so a crash is a dead process rather than a
silently restarted fork). It sends every case family by family over real sockets, then sends a
clean message and checks the process is still alive and answering; then it checks the database
(triggers, review requests), dumps every table and reads everything the listener wrote to
stdout/stderr looking for the privacy markers. Prints one table per database; exits 1 on any
violation.

    python -m tests.fuzz.run [--seed N] [--scale F] [--families a,b] [--concurrency N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_SEED = 11


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every family's count")
    parser.add_argument("--families", default="", help="comma-separated subset")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", choices=["sqlite", "postgres"], help="(internal) one run")
    parser.add_argument("--log-level", default="INFO", help="the listener's LOG_LEVEL")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    if args.database:
        return run_one(args)
    databases = ["sqlite"]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        databases.append("postgres")
    passthrough = list(argv if argv is not None else sys.argv[1:])
    codes = []
    for database in databases:
        print(f"\n=== {database} ===", flush=True)
        codes.append(
            subprocess.call(
                [sys.executable, "-m", "tests.fuzz.run", "--database", database, *passthrough]
            )
        )
    return max(codes)


def counts_for(args) -> dict[str, int]:
    from .corpus import FULL_COUNTS

    wanted = [f for f in args.families.split(",") if f] or list(FULL_COUNTS)
    unknown = set(wanted) - set(FULL_COUNTS)
    if unknown:
        raise SystemExit(f"unknown families: {', '.join(sorted(unknown))}")
    return {f: max(1, round(FULL_COUNTS[f] * args.scale)) for f in wanted}


class Listener:
    """`emailsync smtpd` as a child process, its output in files."""

    def __init__(self, var_dir: Path, env: dict):
        from tests.processes import free_port

        self.var_dir, self.env = var_dir, env
        self.port = free_port()
        self.starts = 0
        self.start()

    def start(self):
        from tests.inbound.test_smtpd_process import wait_for_port

        self.starts += 1
        self.stdout = open(self.var_dir / f"smtpd-{self.starts}.out", "wb")  # noqa: SIM115
        self.stderr = open(self.var_dir / f"smtpd-{self.starts}.err", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emailsync.cli", "smtpd", "--port", str(self.port)]
            + ["--processes", "1"],
            env=self.env,
            stdout=self.stdout,
            stderr=self.stderr,
        )
        wait_for_port(self.port)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout.close()
        self.stderr.close()
        return self.process.returncode

    def output(self) -> str:
        text = []
        for path in sorted(self.var_dir.glob("smtpd-*.*")):
            text.append(path.read_bytes().decode("utf-8", "replace"))
        return "\n".join(text)


def run_one(args) -> int:
    var_dir = Path(tempfile.mkdtemp(prefix=f"emailsync-fuzz-{args.database}-"))
    database = None
    if args.database == "postgres":
        from tests.processes import FreshPostgres

        database = FreshPostgres()
        url = database.url
    else:
        url = f"sqlite:///{var_dir / 'fuzz.sqlite3'}"
    os.environ.update(
        DATABASE_URL=url,
        EMAILSYNC_VAR_DIR=str(var_dir),
        EMAILSYNC_TESTING="1",
        DJANGO_SETTINGS_MODULE="emailsync.settings",
    )
    try:
        return fuzz(args, var_dir, url)
    finally:
        if database is not None:
            from django.db import connections

            connections.close_all()
            database.drop()
        if not args.keep:
            import shutil

            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"run directory kept: {var_dir}")


def fuzz(args, var_dir: Path, url: str) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.inbound.test_privacy import database_dump
    from tests.processes import product_env

    from .checks import (
        Result,
        check_database,
        check_replies,
        family_table,
        find_leaks,
        format_table,
        markers_index,
    )
    from .client import send
    from .corpus import TRUSTED_AUTHSERV, case
    from .dkimdns import DnsServer, records, signing_keys

    call_command("migrate", verbosity=0)
    from .checks import setup_agencies

    bcc = setup_agencies()
    keys = signing_keys()
    dns_server = DnsServer(records(keys))
    env = product_env(
        var_dir,
        url,
        EMAILSYNC_DNS_RESOLVERS=f"127.0.0.1:{dns_server.port}",
        EMAILSYNC_TRUSTED_AUTHSERV_IDS=TRUSTED_AUTHSERV,
        LOG_LEVEL=args.log_level,
    )
    listener = Listener(var_dir, env)
    inbound = settings.EMAILSYNC_INBOUND_DOMAIN
    now = datetime.now(UTC)
    counts = counts_for(args)
    print(
        f"{sum(counts.values()):,} messages in {len(counts)} families, seed {args.seed}, "
        f"{args.concurrency} concurrent sessions, listener pid {listener.process.pid}",
        flush=True,
    )
    results: list[Result] = []
    crashes: Counter = Counter()
    probes: list[Result] = []
    started = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        for family, count in counts.items():
            t0 = time.monotonic()
            cases = [case(family, i, args.seed, now, keys) for i in range(count)]
            generated = time.monotonic() - t0
            outcomes = list(
                pool.map(lambda c: send(c, "127.0.0.1", listener.port, bcc, inbound), cases)
            )
            family_results = [Result(c, o) for c, o in zip(cases, outcomes, strict=True)]
            for result in family_results:
                check_replies(result)
            results.extend(family_results)
            # Still alive, and still doing its job: a clean message gets a trigger.
            probe = Result(case("baseline", 900_000 + len(probes), args.seed, now, keys), None)
            probe.outcome = send(probe.case, "127.0.0.1", listener.port, bcc, inbound)
            probes.append(probe)
            problems = sum(bool(r.violations) for r in family_results)
            if not listener.alive() or not probe.outcome.trigger_ids:
                crashes[family] += 1
                print(f"  !! listener down or not answering after {family}: {probe.outcome}")
                if not listener.alive():
                    listener.start()
            print(
                f"  {family:<18} {count:>6,} messages in {time.monotonic() - t0:6.1f}s "
                f"(generated in {generated:.1f}s), {problems} with problems",
                flush=True,
            )
    elapsed = time.monotonic() - started
    alive_at_end = listener.alive()
    listener.stop()
    dns_server.close()

    check_database(results + probes)
    index = markers_index(results + probes)
    dump_leaks = find_leaks(database_dump(), index, "the database dump")
    output = listener.output()
    log_leaks = find_leaks(output, index, "the listener's output")
    tokens = [address.split("@")[0].rsplit("-", 1)[1] for address in bcc.values()]
    token_leaks = [t for t in tokens if t in output]
    tracebacks = output.count("Traceback (most recent call last)")

    table = family_table(results, crashes)
    print(f"\n{args.database}: {len(results):,} messages in {elapsed:.0f}s\n")
    print(format_table(table))
    bad = [r for r in results + probes if r.violations]
    print(
        f"\nlistener alive at the end: {alive_at_end}; restarts: {listener.starts - 1}; "
        f"clean probes answered: {sum(bool(p.outcome.trigger_ids) for p in probes)}/{len(probes)}; "
        f"tracebacks in its output: {tracebacks}; DNS queries served: {dns_server.queries}"
    )
    print(f"marker-shaped strings in the dump: {len(dump_leaks)}, in the output: {len(log_leaks)}")
    for result in bad[:40]:
        print(f"  VIOLATION {result.case.name}: {'; '.join(result.violations)[:300]}")
    if tracebacks:
        lines = output.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
        for i in starts[:10]:
            error = next((x for x in lines[i + 1 :] if x and not x.startswith(" ")), "")
            print(f"  listener logged: {lines[i - 1][:200]} ... {error[:200]}")
    failed = (
        bad
        or dump_leaks
        or log_leaks
        or token_leaks
        or tracebacks
        or sum(crashes.values())
        or not alive_at_end
    )
    print("\nFAILED" if failed else "\nOK: no violations")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
