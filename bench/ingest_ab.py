"""Benchmark two versions of the listener against each other, and both against the bare server.

    .venv/bin/python bench/ingest_ab.py --a REV --b REV [--database postgres|sqlite]
        [--messages 12000] [--rounds 24] [--b-args "--processes 2"]

REV is a git revision of this repository (checked out in a temporary worktree) or the path of
a checkout. bench/ingest.py's ratio moves by ±0.05 between runs of the same code on this kind
of box, so a change worth 5% cannot be seen by comparing two of its runs. Here both listeners
and the bare server run side by side, each with its own database, and take turns in short
rounds (every order of the three in rotation), so a slow patch of the machine falls on all
three. The figure is B's rate over A's in each round: their median and geometric mean, with
a 90% bootstrap interval of the mean. The same DKIM-signed messages go to all three (only the
envelope's BCC address differs), and every message answered 250 must be stored once.
"""

import argparse
import asyncio
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import ingest as load_bench  # noqa: E402 - the load client, messages and process helpers
from dns_server import TxtServer  # noqa: E402

PYTHON = sys.executable


def checkout(revision: str, workdir: Path, side: str) -> Path:
    """A path as it is; otherwise a detached worktree of `revision` (one per side, so both
    sides may name the same revision)."""
    if Path(revision).is_dir():
        return Path(revision).resolve()
    tree = workdir / f"tree-{side}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), revision],
        check=True,
    )
    return tree


def readdressed(messages, agencies: list[dict]):
    """The same signed messages, BCC'd to this database's agencies (the envelope only)."""
    bcc = {a["sender"]: a["bcc"] for a in agencies}
    return [(sender, [bcc[sender]], data) for sender, _, data in messages]


def interval(ratios: list[float], seed: int = 25) -> tuple[float, float]:
    """A 90% bootstrap interval of the geometric mean of `ratios`."""
    rng = random.Random(seed)
    means = sorted(
        statistics.geometric_mean(rng.choices(ratios, k=len(ratios))) for _ in range(2000)
    )
    return means[100], means[1899]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="git revision or checkout path")
    parser.add_argument("--b", required=True, help="git revision or checkout path")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=12000)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--a-args", default="", help="extra `emailsync smtpd` arguments for A")
    parser.add_argument("--b-args", default="", help="extra `emailsync smtpd` arguments for B")
    args = parser.parse_args()

    if args.rounds % 6:
        parser.error(
            "--rounds must be a multiple of 6, so that each order of the three runs equally"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    sides, processes, databases, succeeded = {}, {}, [], False
    try:
        for name, revision, extra in (("A", args.a, args.a_args), ("B", args.b, args.b_args)):
            tree = checkout(revision, workdir, name)
            (workdir / name).mkdir()
            if args.database == "postgres":
                databases.append(f"emailsync_ab_{name.lower()}_{os.getpid()}")
                url = load_bench.postgres_database(databases[-1])
            else:
                url = f"sqlite:///{workdir / name / 'bench.sqlite3'}"
            env = load_bench.product_env(url, workdir / name, tree)
            sides[name] = {"tree": tree, "env": env, "extra": extra.split()}
            sides[name]["agencies"] = load_bench.in_product(env, "seed", args.agencies, root=tree)
        agencies = sides["A"]["agencies"]  # the same domains and senders in both databases
        keys = {a["domain"]: load_bench.make_key(a["domain"]) for a in agencies}
        dns = TxtServer({f"bench._domainkey.{d}": k[1] for d, k in keys.items()})

        def signed(tag, n):
            return [
                load_bench.make_message(
                    i,
                    agencies[i % len(agencies)],
                    keys[agencies[i % len(agencies)]["domain"]][0],
                    tag,
                )
                for i in range(n)
            ]

        timed, warm = signed("t", args.messages), signed("w", 200)
        ports = {"bare": load_bench.free_port()}
        processes["bare"] = load_bench.start(
            [PYTHON, str(ROOT / "bench" / "bare_smtpd.py"), str(ports["bare"])],
            sides["A"]["env"],
            workdir / "bare.log",
        )
        load = {"bare": timed, "A": None, "B": None}
        for name, side in sides.items():
            side["env"]["EMAILSYNC_DNS_RESOLVERS"] = dns.address
            ports[name] = load_bench.free_port()
            argv = [PYTHON, "-m", "emailsync.cli", "smtpd", "--port", str(ports[name])]
            processes[name] = subprocess.Popen(
                [*argv, *side["extra"]],
                env=side["env"],
                cwd=side["tree"],
                stdout=open(workdir / f"{name}.log", "ab"),  # noqa: SIM115 - the process's
                stderr=subprocess.STDOUT,
            )
            load[name] = readdressed(timed, side["agencies"])
        for port in ports.values():
            load_bench.wait_for_port(port)
        warmed = {"bare": warm, **{n: readdressed(warm, s["agencies"]) for n, s in sides.items()}}
        accepted = {}
        for name, port in ports.items():
            accepted[name] = asyncio.run(load_bench.load(port, warmed[name], args.concurrency))[
                "accepted"
            ]

        phases = {name: [] for name in ports}
        orders = list(itertools.permutations(ports))
        n, rounds = args.messages, args.rounds
        for r in range(rounds):
            for name in orders[r % len(orders)]:
                share = load[name][r * n // rounds : (r + 1) * n // rounds]
                cpu = load_bench.cpu_seconds(processes[name].pid)
                phase = asyncio.run(load_bench.load(ports[name], share, args.concurrency))
                phase["cpu_ms"] = (
                    (load_bench.cpu_seconds(processes[name].pid) - cpu)
                    * 1000
                    / max(1, phase["accepted"])
                )
                phases[name].append(phase)
                accepted[name] += phase["accepted"]
            print(
                f"round {r + 1:2d}: "
                + ", ".join(f"{k} {v[-1]['per_second']:5.0f} msg/s" for k, v in phases.items()),
                flush=True,
            )
        for process in processes.values():
            load_bench.stop(process)
        report(phases, sides, accepted)
        succeeded = True
    finally:
        for process in processes.values():
            if process.poll() is None:
                load_bench.stop(process)
        if "dns" in locals():
            dns.close()
        for database in databases:
            load_bench.drop_postgres(database)
        for side in sides.values():
            if side["tree"].parent == workdir:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(side["tree"])],
                    check=False,
                )
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", file=sys.stderr)


def report(phases: dict, sides: dict, accepted: dict) -> None:
    def rates(name):
        return [p["per_second"] for p in phases[name]]

    def shown(values):
        return ", ".join(f"{v:.2f}" for v in values)

    b_over_a = [b / a for a, b in zip(rates("A"), rates("B"), strict=True)]
    low, high = interval(b_over_a)
    print()
    for name in ("A", "B"):
        ratios = [s / b for s, b in zip(rates(name), rates("bare"), strict=True)]
        cpu = statistics.median(p["cpu_ms"] for p in phases[name])
        print(
            f"{name} ({sides[name]['tree']}): {name}/bare median {statistics.median(ratios):.3f}"
            f" ({shown(ratios)}); CPU ms per email, median of rounds {cpu:.2f}"
        )
    bare_cpu = statistics.median(p["cpu_ms"] for p in phases["bare"])
    print(f"bare: CPU ms per email, median of rounds {bare_cpu:.2f}")
    print(f"B/A by round: {shown(b_over_a)}")
    print(
        f"B/A: median {statistics.median(b_over_a):.3f}, geometric mean "
        f"{statistics.geometric_mean(b_over_a):.3f} (90% interval {low:.3f}-{high:.3f})"
    )
    for name, side in sides.items():
        stored = load_bench.in_product(side["env"], "count", root=side["tree"])
        print(
            f"{name}: {accepted[name]} answered 250, {stored['triggers']} triggers stored: "
            + ("exactly once" if stored["triggers"] == accepted[name] else "MISMATCH")
        )


if __name__ == "__main__":
    main()
