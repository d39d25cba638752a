"""Benchmark: how fast `emailsync smtpd` accepts trigger emails, against a bare aiosmtpd server
measured in the same run with the same client (the ratio is the figure; machines are noisy).

    .venv/bin/python bench/ingest.py [--messages 5000] [--databases sqlite,postgres]

Each message is ~1.6 kB, DKIM-signed by its agency's domain, To two people and Cc one, sent in a
new SMTP session. The listener verifies every signature through real DNS packets (a loopback
DNS server), runs every rule and commits a trigger with three review requests before its 250.
Only loopback is used; every run is bounded in count and time.
"""

import argparse
import asyncio
import base64
import email.utils
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
INBOUND_DOMAIN = "in.bench.test"
TIME_LIMIT = 300  # seconds for any one load phase


# --- the load client: minimal asyncio SMTP, one session per message --------------------------


async def read_reply(reader) -> tuple[int, str]:
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        lines.append(line.decode(errors="replace").rstrip())
        if len(line) < 4 or line[3:4] != b"-":
            return int(lines[-1][:3]), "\n".join(lines)


def dot_stuff(data: bytes) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


async def send_one(port: int, mail_from: str, rcpts: list[str], data: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await read_reply(reader)
        for command in [
            b"EHLO load.bench",
            f"MAIL FROM:<{mail_from}>".encode(),
            *[f"RCPT TO:<{r}>".encode() for r in rcpts],
        ]:
            writer.write(command + b"\r\n")
            code, _ = await read_reply(reader)
            if code >= 400:
                return code, time.perf_counter() - start
        writer.write(b"DATA\r\n")
        await read_reply(reader)
        body = dot_stuff(data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        writer.write(body + b".\r\n")
        code, _ = await read_reply(reader)
        elapsed = time.perf_counter() - start
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return code, elapsed
    finally:
        writer.close()


async def load(port: int, messages, concurrency: int) -> dict:
    queue = list(reversed(messages))
    codes, latencies = [], []

    async def worker():
        while queue:
            mail_from, rcpts, data = queue.pop()
            try:
                code, elapsed = await send_one(port, mail_from, rcpts, data)
            except (OSError, ConnectionError):
                code, elapsed = 0, 0.0
            codes.append(code)
            latencies.append(elapsed)

    start, client0, busy0 = time.perf_counter(), time.process_time(), machine_busy_seconds()
    await asyncio.wait_for(asyncio.gather(*[worker() for _ in range(concurrency)]), TIME_LIMIT)
    wall = time.perf_counter() - start
    client_cpu, busy = time.process_time() - client0, machine_busy_seconds() - busy0
    accepted = sum(1 for c in codes if c == 250)
    ok = sorted(lat for lat, c in zip(latencies, codes, strict=True) if c == 250) or [0.0]
    return {
        "messages": len(messages),
        "accepted": accepted,
        "seconds": wall,
        "per_second": accepted / wall if wall else 0.0,
        "p50_ms": statistics.median(ok) * 1000,
        "p99_ms": ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000,
        "codes": {str(c): codes.count(c) for c in sorted(set(codes))},
        "latencies": [lat for lat, c in zip(latencies, codes, strict=True) if c == 250],
        # Where the machine's cores went: the load client's own share, and every process's.
        "client_cpu_ms_per_message": client_cpu * 1000 / max(1, accepted),
        "machine_cpu_ms_per_message": busy * 1000 / max(1, accepted),
        "machine_cores_busy": busy / wall if wall else 0.0,
    }


def combine(phases: list[dict]) -> dict:
    """One side's rounds as one run: rates over the summed time, latencies over all."""
    accepted = sum(p["accepted"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    latencies = sorted(lat for p in phases for lat in p["latencies"]) or [0.0]
    codes: dict[str, int] = {}
    for p in phases:
        for code, n in p["codes"].items():
            codes[code] = codes.get(code, 0) + n
    per_message = max(1, accepted)
    return {
        "messages": sum(p["messages"] for p in phases),
        "accepted": accepted,
        "seconds": seconds,
        "per_second": accepted / seconds if seconds else 0.0,
        "round_per_second": [p["per_second"] for p in phases],
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "codes": codes,
        "cpu_ms_per_message": sum(p["cpu_seconds"] for p in phases) * 1000 / per_message,
        "client_cpu_ms_per_message": sum(
            p["client_cpu_ms_per_message"] * p["accepted"] for p in phases
        )
        / per_message,
        "machine_cpu_ms_per_message": sum(
            p["machine_cpu_ms_per_message"] * p["accepted"] for p in phases
        )
        / per_message,
        "machine_cores_busy": sum(p["machine_cores_busy"] * p["seconds"] for p in phases) / seconds
        if seconds
        else 0.0,
    }


# --- processes ------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU time every core spent on anything but idling and waiting for disk, since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its children (a pre-forked listener is a parent and N children)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def cpu_seconds(pid: int) -> float:
    total = 0
    for member in process_tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of the whole listener (its processes' peaks added up)."""
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, env, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- data -----------------------------------------------------------------------------------


def make_key(domain: str = "", key_size: int = 2048):
    """A DKIM signing key (PEM) and the TXT record that publishes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)  # noqa: S505
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


PARAGRAPH = (
    "Congratulations again on accepting the offer. Your start date is confirmed for "
    "Monday at 9am; please bring photo ID and your bank details for payroll. Your "
    "manager will meet you at reception and walk you through the first week's plan. "
)


def make_message(n: int, agency: dict, pem: bytes, tag: str, body_bytes: int = 1000) -> tuple:
    import dkim

    message = EmailMessage()
    message["From"] = f"Recruiter {agency['index']} <{agency['sender']}>"
    to = [
        f"Candidate {tag}{n} <cand.{tag}{n}@people.bench>",
        f"Partner {tag}{n} <partner.{tag}{n}@people.bench>",
    ]
    message["To"] = ", ".join(to)
    message["Cc"] = f"Client {tag}{n} <client.{tag}{n}@clients.bench>"
    message["Subject"] = f"Welcome aboard, your first day ({tag}{n})"
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = f"<{tag}-{n}-{os.getpid()}@{agency['domain']}>"
    text = (PARAGRAPH * (body_bytes // len(PARAGRAPH) + 1))[:body_bytes]
    message.set_content(text)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    signature = dkim.sign(
        raw,
        b"bench",
        agency["domain"].encode(),
        pem,
        include_headers=[b"from", b"to", b"cc", b"subject", b"date", b"message-id"],
    )
    return agency["sender"], [agency["bcc"]], signature + raw


# --- work done inside the product's environment (run as subprocesses) -----------------------


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailsync.settings")
    import django

    django.setup()


def seed(count: int) -> list[dict]:
    setup_django()
    from django.core.management import call_command

    from emailsync.agencies.models import Agency, User
    from emailsync.inbound.models import InboundAddress
    from emailsync.review_requests.models import EmailSyncSettings

    call_command("migrate", verbosity=0)
    agencies = []
    for i in range(count):
        domain = f"agency{i}.bench"
        agency, _ = Agency.create_with_admin(
            name=f"Bench Agency {i}", admin_email=f"admin@{domain}", domains=(domain,)
        )
        User.objects.create_user(
            email=f"recruiter@{domain}", full_name=f"Recruiter {i}", agency=agency
        )
        EmailSyncSettings.objects.filter(agency=agency).delete()
        EmailSyncSettings.objects.create(agency=agency, enabled=True, rate_limit_per_hour=10**6)
        agencies.append(
            {
                "index": i,
                "domain": domain,
                "sender": f"recruiter@{domain}",
                "bcc": InboundAddress.current_for(agency).address,
            }
        )
    return agencies


def count() -> dict:
    setup_django()
    from emailsync.inbound.models import Trigger
    from emailsync.review_requests.models import ReviewRequest

    return {
        "triggers": Trigger.objects.count(),
        "accepted": Trigger.objects.filter(status="accepted").count(),
        "requests": ReviewRequest.objects.count(),
    }


def product_env(database_url: str, workdir: Path, root: Path = ROOT) -> dict:
    """The environment the product runs in for a benchmark: the checkout at `root`."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-" + "x" * 40,
        "DEBUG": "0",
        "EMAILSYNC_TESTING": "0",
        "EMAILSYNC_INBOUND_DOMAIN": INBOUND_DOMAIN,
        "EMAILSYNC_VAR_DIR": str(workdir),
        "PYTHONPATH": str(root),
    }


def in_product(env, what: str, *args, root: Path = ROOT) -> object:
    """Seed or count in the checkout at `root`, with its own code and migrations."""
    out = subprocess.run(
        [PYTHON, str(root / "bench" / "ingest.py"), what, *map(str, args)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- one database ---------------------------------------------------------------------------


def bench_database(label: str, database_url: str, args, workdir: Path) -> dict:
    from dns_server import TxtServer

    env = product_env(database_url, workdir)
    agencies = in_product(env, "seed", args.agencies)
    keys = {a["domain"]: make_key(a["domain"]) for a in agencies}
    dns_server = TxtServer({f"bench._domainkey.{d}": k[1] for d, k in keys.items()})
    env["EMAILSYNC_DNS_RESOLVERS"] = dns_server.address

    def batch(tag, n, body_bytes=1000):
        return [
            make_message(
                i,
                agencies[i % len(agencies)],
                keys[agencies[i % len(agencies)]["domain"]][0],
                tag,
                body_bytes,
            )
            for i in range(n)
        ]

    warm, timed = batch("w", args.warmup), batch("t", args.messages)
    size = statistics.mean(len(m[2]) for m in timed)
    big = batch("big", args.big_sessions, body_bytes=args.big_mib * 1024 * 1024)
    results = {"database": label, "message_bytes": round(size)}

    # Both servers stay up and take turns: each round loads the bare server and then the
    # listener with the same number of messages, so a slow patch of a noisy machine falls on
    # both sides of a round rather than on one side of the whole run.
    bare_port, port = free_port(), free_port()
    bare = start(
        [PYTHON, str(ROOT / "bench" / "bare_smtpd.py"), str(bare_port)], env, workdir / "bare.log"
    )
    processes = ["--processes", str(args.processes)] if args.processes else []
    listener = start(
        [PYTHON, "-m", "emailsync.cli", "smtpd", "--port", str(port), *processes],
        env,
        workdir / "smtpd.log",
    )
    bare_messages = batch("b", args.messages)
    rounds = max(1, args.rounds)
    try:
        wait_for_port(bare_port)
        wait_for_port(port)
        asyncio.run(load(bare_port, warm, args.concurrency))
        results["warmup_accepted"] = asyncio.run(load(port, warm, args.concurrency))["accepted"]
        phases = {"bare": [], "smtpd": []}
        sides = [
            ("bare", bare_port, bare.pid, bare_messages),
            ("smtpd", port, listener.pid, timed),
        ]
        for r in range(rounds):
            # Each round's pair in the opposite order to the last (a, b, b, a, a, b…): a
            # machine slowing down or speeding up through a round favours neither side.
            for side, side_port, pid, messages in sides if r % 2 == 0 else sides[::-1]:
                share = messages[r * len(messages) // rounds : (r + 1) * len(messages) // rounds]
                cpu0 = cpu_seconds(pid)
                phase = asyncio.run(load(side_port, share, args.concurrency))
                phase["cpu_seconds"] = cpu_seconds(pid) - cpu0
                phases[side].append(phase)
        for side in phases:
            results[side] = combine(phases[side])
        results["round_ratios"] = [
            s["per_second"] / b["per_second"] if b["per_second"] else 0.0
            for b, s in zip(phases["bare"], phases["smtpd"], strict=True)
        ]
        results["bare"]["big"] = asyncio.run(load(bare_port, big, args.big_sessions))
        results["bare"]["peak_rss_mib"] = peak_rss_mib(bare.pid)
        results["smtpd"]["big"] = asyncio.run(load(port, big, args.big_sessions))
        results["smtpd"]["peak_rss_mib"] = peak_rss_mib(listener.pid)
    finally:
        stop(bare)
        stop(listener)
        results["dns_queries"] = dns_server.queries
        dns_server.close()
    results["stored"] = in_product(env, "count")
    # The figure: the median of the rounds' ratios (each round's pair measured seconds apart
    # at most); the whole-run ratio is kept beside it.
    results["ratio"] = statistics.median(results["round_ratios"])
    results["whole_run_ratio"] = results["smtpd"]["per_second"] / results["bare"]["per_second"]
    # Every message answered 250 is stored once, and nothing else is (a 421 or 451 is the
    # client's to retry, and is counted in the codes).
    accepted = results["warmup_accepted"] + results["smtpd"]["accepted"]
    accepted += results["smtpd"]["big"]["accepted"]
    results["exactly_once"] = results["stored"]["triggers"] == accepted
    return results


def postgres_database(name: str) -> str:
    base = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    subprocess.run(
        ["psql", f"{base}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True
    )
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    return f"{base}/{name}"


def drop_postgres(name: str) -> None:
    base = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    subprocess.run(
        ["psql", f"{base}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        check=False,
    )


def report(all_results: list[dict]) -> str:
    rows = [
        "| database | bare aiosmtpd msg/s | emailsync smtpd msg/s | ratio (target ≥ 0.5), "
        "median of rounds | rounds' ratios; whole run | "
        "p50 / p99 ms (smtpd) | p50 / p99 ms (bare) | CPU ms/msg smtpd (bare) | "
        "peak RSS MiB, 100 × 10 MiB, smtpd (bare) | exactly once |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        s, b = r["smtpd"], r["bare"]
        rows.append(
            f"| {r['database']} | {b['per_second']:.0f} | {s['per_second']:.0f} | "
            f"**{r['ratio']:.2f}** | "
            f"{', '.join(f'{x:.2f}' for x in r['round_ratios'])}; {r['whole_run_ratio']:.2f} | "
            f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f} | "
            f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} | {s['cpu_ms_per_message']:.2f} "
            f"({b['cpu_ms_per_message']:.2f}) | "
            f"{s['peak_rss_mib']:.0f} ({b['peak_rss_mib']:.0f}) | "
            f"{'yes' if r['exactly_once'] else 'NO'} ({r['stored']['triggers']} triggers, "
            f"{r['stored']['requests']} requests) |"
        )
    rows += [
        "",
        "| database | run | cores busy (of the machine) | CPU ms/msg: load client | "
        "server process | everything on the machine |",
        "|---|---|---|---|---|---|",
    ]
    for r in all_results:
        for run in ("bare", "smtpd"):
            x = r[run]
            rows.append(
                f"| {r['database']} | {run} | {x['machine_cores_busy']:.2f} | "
                f"{x['client_cpu_ms_per_message']:.2f} | {x['cpu_ms_per_message']:.2f} | "
                f"{x['machine_cpu_ms_per_message']:.2f} |"
            )
    return "\n".join(rows)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in {"seed", "count"}:
        result = seed(int(sys.argv[2])) if sys.argv[1] == "seed" else count()
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=9, help="turns each server takes (the ratio is their median)"
    )
    parser.add_argument("--agencies", type=int, default=20)
    parser.add_argument("--big-sessions", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=10)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="listener processes (default: the listener's own default)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    results = []
    for label in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            workdir = Path(tmp)
            if label == "sqlite":
                results.append(
                    bench_database(label, f"sqlite:///{workdir / 'bench.sqlite3'}", args, workdir)
                )
            else:
                name = f"emailsync_bench_{os.getpid()}"
                try:
                    results.append(bench_database(label, postgres_database(name), args, workdir))
                finally:
                    drop_postgres(name)
        print(json.dumps(results[-1], indent=2), file=sys.stderr)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
