"""Where the listener's CPU goes, stage by stage, in one process without SMTP (not a test).

    .venv/bin/python bench/ingest_stages.py [--messages 2000] [--batch 8] [--profile]

Builds the same DKIM-signed ~1.6 kB messages as bench/ingest.py, then times, with the process's
CPU clock, each stage the listener runs per message: header parsing, DKIM and
Authentication-Results evidence, and `ingest_batch` (rules plus every database read and write)
in batches of the size group commit typically forms. With --profile it prints the hottest
functions of the whole run. The database is SQLite in a temporary directory unless
DATABASE_URL is set.
"""

import argparse
import cProfile
import os
import pstats
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
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-stages-")
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

    from emailsync.inbound.evidence import gather_evidence
    from emailsync.inbound.headers import parse_headers, split_message_view
    from emailsync.inbound.ingest import Inbound, ingest_batch

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    clock = time.process_time
    spent = {"split": 0.0, "parse_headers": 0.0, "evidence": 0.0, "ingest_batch": 0.0}
    pending = []
    for _sender, rcpts, raw in messages:
        t0 = clock()
        header, body = split_message_view(raw)
        t1 = clock()
        headers = parse_headers(header)
        t2 = clock()
        evidence = gather_evidence(header, body, dnsfunc, headers=headers, raw=raw)
        t3 = clock()
        spent["split"] += t1 - t0
        spent["parse_headers"] += t2 - t1
        spent["evidence"] += t3 - t2
        pending.append(Inbound(tuple(rcpts), header, body, evidence, "smtp", headers))
        if len(pending) == args.batch:
            t0 = clock()
            ingest_batch(pending)
            spent["ingest_batch"] += clock() - t0
            pending = []
    if pending:
        t0 = clock()
        ingest_batch(pending)
        spent["ingest_batch"] += clock() - t0
    if profiler:
        profiler.disable()
    total = sum(spent.values())
    print(f"{args.messages} messages, batches of {args.batch}, CPU ms per message:")
    for stage, seconds in spent.items():
        print(f"  {stage:<14} {seconds * 1000 / args.messages:6.3f}")
    print(f"  {'total':<14} {total * 1000 / args.messages:6.3f}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


if __name__ == "__main__":
    main()
