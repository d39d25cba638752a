"""Where the listener's CPU goes, stage by stage, in one process without SMTP (not a test).

    .venv/bin/python bench/ingest_stages.py [--messages 2000] [--batch 8]
        [--profile STAGE] [--statements]

Builds the same DKIM-signed ~1.6 kB messages as bench/ingest.py, then times, with the process's
CPU clock, each stage the listener runs per message: header parsing, DKIM and
Authentication-Results evidence, and `ingest_batch` (rules plus every database read and write)
in batches of the size group commit typically forms. With --profile STAGE it prints the
hottest functions of that stage. The database is SQLite in a temporary directory unless
DATABASE_URL is set.
"""

import argparse
import atexit
import collections
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument(
        "--profile",
        choices=["parse_headers", "evidence", "ingest_batch"],
        help="print the hottest functions of one stage",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also print each database statement's count and wall time per batch",
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-stages-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the SQLite file and var dir
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/stages.sqlite3")
    os.environ.update(
        SECRET_KEY="bench-" + "x" * 40,
        DEBUG="0",
        EMAILSYNC_TESTING="0",
        EMAILSYNC_INBOUND_DOMAIN="in.bench.test",
        EMAILSYNC_VAR_DIR=tmp,
    )
    import ingest as load_bench  # bench/ingest.py: the same seed and messages

    agencies = load_bench.seed(args.agencies)
    keys = {a["domain"]: load_bench.make_key(a["domain"]) for a in agencies}
    records = {f"bench._domainkey.{d}.".encode(): k[1] for d, k in keys.items()}

    def dnsfunc(name, timeout=5):
        return records.get(name)

    messages = []
    for i in range(args.messages):
        agency = agencies[i % len(agencies)]
        messages.append(load_bench.make_message(i, agency, keys[agency["domain"]][0], "s"))

    from emailsync.inbound.authenticity import load_public_suffix_list
    from emailsync.inbound.evidence import gather_evidence
    from emailsync.inbound.headers import parse_headers, split_message_view
    from emailsync.inbound.ingest import Inbound, ingest_batch

    load_public_suffix_list()  # as the listener does at startup, outside the stages timed
    profiler = cProfile.Profile(time.process_time)
    clock = time.process_time

    def timed(stage, call, *call_args, **call_kwargs):
        start = clock()
        if stage == args.profile:
            profiler.enable()
        try:
            return call(*call_args, **call_kwargs)
        finally:
            if stage == args.profile:
                profiler.disable()
            spent[stage] += clock() - start

    spent = {"split": 0.0, "parse_headers": 0.0, "evidence": 0.0, "ingest_batch": 0.0}
    statements = collections.defaultdict(lambda: [0, 0.0])

    def statement_timer(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = statements[" ".join(sql.split())[:70]]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    if args.statements:
        from django.db import connection

        connection.execute_wrappers.append(statement_timer)
        commit = connection._commit

        def timed_commit():  # COMMIT is no cursor statement; the wrappers never see it
            start = time.perf_counter()
            try:
                return commit()
            finally:
                statements["COMMIT"][0] += 1
                statements["COMMIT"][1] += time.perf_counter() - start

        connection._commit = timed_commit
    pending = []
    for _sender, rcpts, raw in messages:
        header, body = timed("split", split_message_view, raw)
        headers = timed("parse_headers", parse_headers, header)
        evidence = timed("evidence", gather_evidence, header, body, dnsfunc, headers, raw)
        pending.append(Inbound(tuple(rcpts), header, body, evidence, "smtp", headers))
        if len(pending) == args.batch:
            timed("ingest_batch", ingest_batch, pending)
            pending = []
    if pending:
        timed("ingest_batch", ingest_batch, pending)
    total = sum(spent.values())
    print(f"{args.messages} messages, batches of {args.batch}, CPU ms per message:")
    for stage, seconds in spent.items():
        print(f"  {stage:<14} {seconds * 1000 / args.messages:6.3f}")
    print(f"  {'total':<14} {total * 1000 / args.messages:6.3f}")
    if args.statements:
        batches = -(-args.messages // args.batch)
        print(f"statements per batch of {args.batch} (wall ms each, on average):")
        for sql, (count, seconds) in sorted(statements.items(), key=lambda x: -x[1][1]):
            print(f"  {count / batches:5.2f} × {seconds * 1000 / count:6.3f}  {sql}")
    if args.profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(50)


if __name__ == "__main__":
    main()
