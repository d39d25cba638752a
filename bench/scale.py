"""The scale run: the whole product as separate processes on one PostgreSQL, and exactly-once
checked end to end.

    .venv/bin/python bench/scale.py [--triggers 20000] [--agencies 1000] [--json FILE]

A fresh PostgreSQL database is filled by `emailsync seed-scale` (agencies with recruiters,
sender addresses and some review history), every agency's Email Sync is set to ask at once
(delay 0, no business hours, no hourly cap) and its domain gets a DKIM key served by a loopback
DNS server. Then it starts an SMTP sink for outbound mail, two `emailsync worker`s, two web
processes (gunicorn, as `emailsync serve` runs it) and `emailsync smtpd` listeners sharing one
port with SO_REUSEPORT (`--reuse-port`, one process each).

The load client (asyncio, a new SMTP session per message) sends N DKIM-signed trigger emails,
each To two people and Cc one, drawn so that recipients repeat within an agency and across
agencies. It computes the expectation on its own: per agency, each distinct recipient is asked
exactly once (the 90-day dedupe must hold across listeners and batches). The first messages
warm up one listener; half of the rest go to that one listener and the other half to two
listeners (the second started on the same port), so both rates come from the same run. A reply
other than 250 is retried, as an MTA would.

Afterwards it checks: every trigger recorded exactly once, exactly the expected review requests,
and each delivered to the sink exactly once. It reports accepted messages per second with one
listener and with two, the time from the last 250 to the last delivery, and EXPLAIN ANALYZE of
the hot queries (those tests/operations/test_query_plans.py checks) on the data the run left.
Only loopback is used; every wait is bounded.
"""

import argparse
import asyncio
import email.utils
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
INBOUND_DOMAIN = "in.scale.test"
SELECTOR = "scale"
KEYS = 16  # RSA keys shared among the agencies' domains (each domain still has its own record)
RECIPIENT_DOMAINS = ("people.load.test", "clients.load.test")
PHASE_LIMIT = 600  # seconds for any one load phase
BODY = "\r\n".join(
    [
        "Congratulations on accepting the offer. Your start date is confirmed for Monday at 9am;",
        "please bring photo ID and your bank details. Your manager will meet you at reception",
        "and walk you through the first week's plan.",
    ]
    * 6
)


# --- the workload ------------------------------------------------------------------------------


def plan_workload(n_triggers: int, n_agencies: int, random_seed: int = 10) -> list[dict]:
    """Which agency sends each trigger and to whom. Recipients come from a small pool per agency
    (so an agency meets the same people again) and a pool shared by all agencies."""
    rng = random.Random(random_seed)
    per_agency = max(1, n_triggers // n_agencies)
    shared = [f"shared{i}@{RECIPIENT_DOMAINS[0]}" for i in range(max(20, n_triggers // 8))]
    own = max(4, per_agency * 2)
    plan = []
    for n in range(n_triggers):
        a = n % n_agencies
        picked: list[str] = []
        while len(picked) < 3:
            if rng.random() < 0.25:
                address = rng.choice(shared)
            else:
                domain = RECIPIENT_DOMAINS[len(picked) == 2]
                address = f"a{a}p{rng.randrange(own)}@{domain}"
            if address not in picked:
                picked.append(address)
        plan.append({"n": n, "agency": a, "to": picked[:2], "cc": picked[2:]})
    return plan


def expected_requests(plan: list[dict]) -> set[tuple[int, str]]:
    """Per agency, each distinct recipient is asked once: (agency index, address) pairs."""
    return {(t["agency"], address) for t in plan for address in t["to"] + t["cc"]}


def make_key():
    from ingest import make_key as ingest_key  # bench/ingest.py's, with a smaller key

    # 1024-bit keys: signing 20,000 messages in the client is then affordable; the listener's
    # verification costs about the same for any key size (public exponent 65537).
    return ingest_key(key_size=1024)


_SIGNING: dict = {}


def _sign_init(agencies, pems, run_tag):
    _SIGNING.update(agencies=agencies, pems=pems, run_tag=run_tag)


def sign_trigger(trigger: dict) -> tuple[str, str, bytes]:
    import dkim

    agency = _SIGNING["agencies"][trigger["agency"]]
    to = ", ".join(f"Person {a.split('@')[0]} <{a}>" for a in trigger["to"])
    cc = ", ".join(f"Client {a.split('@')[0]} <{a}>" for a in trigger["cc"])
    headers = [
        f"From: {agency['sender_name']} <{agency['sender']}>",
        f"To: {to}",
        f"Cc: {cc}",
        f"Subject: Your start date is confirmed ({trigger['n']})",
        f"Date: {email.utils.formatdate()}",
        f"Message-ID: <scale-{_SIGNING['run_tag']}-{trigger['n']}@{agency['domain']}>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 7bit",
    ]
    raw = ("\r\n".join(headers) + "\r\n\r\n" + BODY + "\r\n").encode()
    signature = dkim.sign(
        raw,
        SELECTOR.encode(),
        agency["domain"].encode(),
        _SIGNING["pems"][trigger["agency"] % len(_SIGNING["pems"])],
        include_headers=[b"from", b"to", b"cc", b"subject", b"date", b"message-id"],
    )
    return agency["sender"], agency["bcc"], signature + raw


def sign_all(plan, agencies, pems, run_tag) -> list[tuple[str, str, bytes]]:
    with multiprocessing.get_context("fork").Pool(
        os.cpu_count() or 1, initializer=_sign_init, initargs=(agencies, pems, run_tag)
    ) as pool:
        return pool.map(sign_trigger, plan, chunksize=200)


# --- the load client: minimal asyncio SMTP, one session per message ----------------------------


async def read_reply(reader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def send_one(port: int, mail_from: str, rcpt: str, data: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await read_reply(reader)
        for command in (b"EHLO load.scale.test", f"MAIL FROM:<{mail_from}>".encode()):
            writer.write(command + b"\r\n")
            if (code := await read_reply(reader)) >= 400:
                return code
        writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
        if (code := await read_reply(reader)) >= 400:
            return code
        writer.write(b"DATA\r\n")
        await read_reply(reader)
        body = b"\r\n".join(
            b"." + line if line.startswith(b".") else line for line in data.split(b"\r\n")
        )
        writer.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        code = await read_reply(reader)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return code
    finally:
        writer.close()


async def load(port: int, messages: list, concurrency: int) -> dict:
    """Send every message until it is answered 250 (a 4xx or a dropped session is retried after
    a short pause, at most 20 times)."""
    queue = [(m, 0) for m in reversed(messages)]
    codes: Counter = Counter()
    accepted_at: list[float] = []
    failed = 0

    async def worker():
        nonlocal failed
        while queue:
            message, attempts = queue.pop()
            try:
                code = await send_one(port, *message)
            except (OSError, ConnectionError):
                code = 0
            codes[code] += 1
            if code == 250:
                accepted_at.append(time.time())
            elif attempts < 20:
                await asyncio.sleep(0.05)
                queue.insert(0, (message, attempts + 1))
            else:
                failed += 1

    started = time.time()
    await asyncio.wait_for(asyncio.gather(*[worker() for _ in range(concurrency)]), PHASE_LIMIT)
    wall = time.time() - started
    return {
        "messages": len(messages),
        "accepted": len(accepted_at),
        "failed": failed,
        "seconds": wall,
        "per_second": len(accepted_at) / wall if wall else 0.0,
        "codes": {str(c): n for c, n in sorted(codes.items())},
        "last_accepted_at": max(accepted_at, default=started),
    }


# --- the SMTP sink for outbound mail (its own process, so it does not share the client's GIL) --


def run_sink(port: int, out_path: str) -> None:
    from aiosmtpd.smtp import SMTP

    message_id = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - one line per delivery, kept open

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            found = message_id.search(envelope.original_content or b"")
            mid = found.group(1).decode() if found else "-"
            for rcpt in envelope.rcpt_tos:
                out.write(f"{time.time():.6f}\t{mid}\t{rcpt.lower()}\n")
            return "250 OK"

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), hostname="sink.scale.test", loop=loop), "127.0.0.1", port
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()
        out.close()

    asyncio.run(main())


def read_sink(path: Path) -> list[tuple[float, str, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            rows.append((float(parts[0]), parts[1], parts[2]))
    return rows


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return response.status == 200
    except OSError:
        return False


class Processes:
    def __init__(self, env: dict, workdir: Path):
        self.env, self.workdir, self.running, self.stopping = env, workdir, [], set()

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        process.name = name
        self.running.append(process)
        return process

    def emailsync(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [PYTHON, "-m", "emailsync.cli", *args])

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        for p in self.running:
            if p.poll() is not None and p.name not in self.stopping:
                raise RuntimeError(f"{p.name} exited ({p.returncode}):\n{self.log(p.name)[-3000:]}")

    def wait(self, process: subprocess.Popen) -> int:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return process.returncode

    def stop_all(self) -> dict:
        """SIGTERM once to each (a second one means "now" to some), then wait for all."""
        self.signal(*(p.name for p in self.running))
        return {p.name: self.wait(p) for p in reversed(self.running)}

    def signal(self, *names: str) -> None:
        for p in self.running:
            if p.name in names and p.name not in self.stopping and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        self.stopping.update(names)


def emailsync_json(env: dict, *args: str) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "emailsync.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode:
        raise RuntimeError(f"emailsync {' '.join(args)}: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]) if args[-1] == "--json" else {}


# --- the database, read directly (no Django in the driver) -------------------------------------


def create_database(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def prepare_agencies(url: str) -> list[dict]:
    """Ask at once (delay 0, any hour, no hourly cap); one sending recruiter per agency."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE review_requests_emailsyncsettings SET enabled = true, delay_hours = 0, "
            "business_days = '', rate_limit_per_hour = 1000000"
        )
        rows = conn.execute(
            """
            SELECT a.id, a.slug, i.token,
                   (SELECT d.domain FROM agencies_agencydomain d WHERE d.agency_id = a.id
                    ORDER BY d.id LIMIT 1),
                   (SELECT s.email FROM agencies_senderaddress s
                    JOIN agencies_recruiterprofile p ON p.id = s.profile_id
                    JOIN agencies_user u ON u.id = p.user_id
                    WHERE s.agency_id = a.id AND u.role = 'recruiter' ORDER BY s.id LIMIT 1),
                   (SELECT p.display_name FROM agencies_recruiterprofile p
                    JOIN agencies_user u ON u.id = p.user_id
                    WHERE p.agency_id = a.id AND u.role = 'recruiter' ORDER BY p.id LIMIT 1)
            FROM agencies_agency a
            JOIN inbound_inboundaddress i ON i.agency_id = a.id AND i.retired_at IS NULL
            ORDER BY a.id
            """
        ).fetchall()
    return [
        {
            "id": pk,
            "slug": slug,
            "bcc": f"{slug}-{token}@{INBOUND_DOMAIN}",
            "domain": domain,
            "sender": sender,
            "sender_name": name,
        }
        for pk, slug, token, domain, sender, name in rows
    ]


def recorded(url: str, since: datetime) -> dict:
    """What the database holds for this run's load: triggers, requests and their outbox rows."""
    import psycopg

    like = [f"%@{d}" for d in RECIPIENT_DOMAINS]
    with psycopg.connect(url) as conn:
        triggers = conn.execute(
            "SELECT status, count(*) FROM inbound_trigger WHERE received_at >= %s GROUP BY status",
            [since],
        ).fetchall()
        requests = conn.execute(
            "SELECT r.agency_id, r.email, o.message_id, o.status FROM "
            "review_requests_reviewrequest r LEFT JOIN outbox_outboundemail o "
            "ON o.review_request_id = r.id AND o.kind = 'review_request' "
            "WHERE r.email LIKE %s OR r.email LIKE %s",
            like,
        ).fetchall()
        recipients = conn.execute(
            "SELECT t.outcome, t.reason, count(*) FROM inbound_triggerrecipient t "
            "JOIN inbound_trigger g ON g.id = t.trigger_id WHERE g.received_at >= %s "
            "GROUP BY t.outcome, t.reason",
            [since],
        ).fetchall()
    return {
        "triggers": dict(triggers),
        "requests": [(a, e, m, s) for a, e, m, s in requests],
        "recipient_outcomes": {f"{o}:{r}" if r else o: n for o, r, n in recipients},
    }


# --- EXPLAIN ANALYZE of the hot queries (a Django child) ---------------------------------------


def child_plans() -> None:
    """The hot queries, built as tests/operations/test_query_plans.py builds them, explained
    with ANALYZE on the scale data and normal planner settings."""
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection, transaction
    from django.db.models import Q
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from emailsync.agencies.models import Agency, RecruiterProfile
    from emailsync.inbound.models import InboundAddress, Trigger
    from emailsync.inbound.smtp import AddressBook
    from emailsync.outbox.models import OutboundEmail
    from emailsync.review_requests.models import AskedRecipient, Suppression, address_hash
    from tests.operations.test_query_plans import seq_scans

    now = timezone.now()
    agency = Agency.objects.order_by("id").first()
    email = (
        AskedRecipient.objects.filter(agency=agency).values_list("email", flat=True).first()
        or "nobody@example.test"
    )
    queries: list[tuple[str, str, list]] = []

    def add(name, queryset):
        sql, params = queryset.query.sql_with_params()
        queries.append((name, sql, list(params)))

    def captured(name, run):
        with CaptureQueriesContext(connection) as seen:
            run()
        for n, q in enumerate(s for s in seen.captured_queries if s["sql"].startswith("SELECT")):
            queries.append((f"{name} #{n + 1}", q["sql"].replace("%", "%%"), []))

    token = InboundAddress.objects.filter(agency=agency).values_list("token", flat=True).first()
    captured("RCPT lookup", lambda: AddressBook(ttl=0).load(token))
    latest = Trigger.objects.filter(agency=agency).values_list("message_id_hash", flat=True)[:2]
    add(
        "duplicate-trigger check",
        Trigger.objects.filter(
            agency_id__in={agency.pk}, message_id_hash__in=set(latest) | {"x" * 64}
        ).values_list("agency_id", "message_id_hash", "pk", "status", "reason"),
    )
    add(
        "dedupe check",
        AskedRecipient.objects.filter(
            agency_id__in={agency.pk},
            email__in={email, "ann@example.test"},
            last_asked_at__gte=now - timedelta(days=90),
        ).values_list("agency_id", "email", "last_asked_at"),
    )
    add("suppressions", Suppression.objects.filter(address_hash__in=[address_hash(email)]))
    add(
        "outbox due rows",
        OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED, send_after__lte=now)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("send_after", "id")
        .values_list("id", flat=True)[:100],
    )
    add(
        "sends per minute (/metrics)",
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.SENT, sent_at__gt=now - timedelta(minutes=5)
        ),
    )
    client = Client()
    busiest = Agency.objects.order_by("-rating__count").first()
    profile = RecruiterProfile.objects.filter(agency=busiest).order_by("-rating__count").first()
    for name, url in (
        ("agency page", f"/agencies/{busiest.slug}/"),
        ("recruiter page", f"/agencies/{busiest.slug}/recruiters/{profile.slug}/"),
        ("directory", "/agencies/"),
    ):
        captured(name, lambda url=url: client.get(url, headers={"host": "127.0.0.1"}))
    results = []
    for name, sql, params in queries:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            cursor.execute("EXPLAIN " + sql, params)
            text = [row[0] for row in cursor.fetchall()]
        results.append(
            {
                "query": name,
                "seq_scans": seq_scans(plan),
                "execution_ms": round(plan[0]["Execution Time"], 3),
                "plan": text,
            }
        )
    print(json.dumps(results))


# --- the run -----------------------------------------------------------------------------------


def run(args) -> dict:
    from dns_server import TxtServer

    base = args.postgres.rstrip("/")
    name = f"emailsync_scale_{os.getpid()}_{secrets.token_hex(3)}"
    run_tag = secrets.token_hex(4)
    started = time.time()
    result: dict = {
        "triggers": args.triggers,
        "agencies": args.agencies,
        "cpus": os.cpu_count(),
        "concurrency": args.concurrency,
    }
    timeline = result["timeline"] = {}
    url = create_database(base, name)
    workdir = Path(tempfile.mkdtemp(prefix="scale-run-"))
    sink_port, web_ports, smtp_port = free_port(), [free_port(), free_port()], free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "EMAIL_BACKEND"}},
        "DATABASE_URL": url,
        "SECRET_KEY": "scale-" + secrets.token_urlsafe(40),
        "EMAILSYNC_TESTING": "1",  # generated secrets, static files without collectstatic
        "EMAILSYNC_INBOUND_DOMAIN": INBOUND_DOMAIN,
        "EMAILSYNC_VAR_DIR": str(workdir),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink_port),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "emailsync.settings",
    }
    processes = Processes(env, workdir)
    dns = None
    try:
        t = time.time()
        emailsync_json(env, "migrate", "--noinput", "-v0")
        result["seed"] = emailsync_json(
            env,
            "seed-scale",
            "--agencies",
            str(args.agencies),
            "--reviews",
            str(args.history_reviews),
            "--json",
        )
        result["setup_seconds"] = time.time() - t
        timeline["seeded"] = round(time.time() - started, 1)
        agencies = prepare_agencies(url)
        assert len(agencies) == args.agencies, len(agencies)
        keys = [make_key() for _ in range(min(KEYS, len(agencies)))]
        dns = TxtServer(
            {
                f"{SELECTOR}._domainkey.{a['domain']}": keys[i % len(keys)][1]
                for i, a in enumerate(agencies)
            }
        )
        env["EMAILSYNC_DNS_RESOLVERS"] = dns.address

        # Outbound side first: it starts while the client signs the messages.
        sink_file = workdir / "sink.tsv"
        processes.start("sink", [PYTHON, __file__, "--sink", str(sink_port), str(sink_file)])
        for n in (1, 2):
            processes.emailsync(f"worker{n}", "worker", "--poll", "0.2")
        for n, port in enumerate(web_ports, 1):
            processes.start(
                f"web{n}",
                [
                    str(Path(PYTHON).parent / "gunicorn"),
                    "emailsync.wsgi:application",
                    *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
                    *("--worker-class", "gthread", "--threads", "4", "--log-level", "warning"),
                ],
            )

        timeline["processes_started"] = round(time.time() - started, 1)
        plan = plan_workload(args.triggers, len(agencies))
        expected = expected_requests(plan)
        t = time.time()
        messages = sign_all(plan, agencies, [k[0] for k in keys], run_tag)
        result["signing_seconds"] = time.time() - t
        result["expected_requests"] = len(expected)
        result["recipient_slots"] = 3 * len(plan)

        timeline["signed"] = round(time.time() - started, 1)
        wait_for(lambda: port_open(sink_port), 30, "the sink")
        for port in web_ports:
            wait_for(lambda port=port: http_ok(f"http://127.0.0.1:{port}/health"), 60, "web")
        processes.check_alive()

        # Phase 1: one listener. Warm-up (untimed), then the timed half.
        warm = max(1, len(messages) // 50)
        half = warm + (len(messages) - warm) // 2
        timeline["outbound_ready"] = round(time.time() - started, 1)
        listen = ["smtpd", "--port", str(smtp_port), "--processes", "1", "--reuse-port"]
        processes.emailsync("smtpd1", *listen)
        wait_for(lambda: port_open(smtp_port), 60, "the first listener")
        load_started = datetime.now(UTC) - timedelta(seconds=1)
        timeline["listener1_ready"] = round(time.time() - started, 1)
        result["warmup"] = asyncio.run(load(smtp_port, messages[:warm], args.concurrency))
        one = asyncio.run(load(smtp_port, messages[warm:half], args.concurrency))
        result["one_listener"] = one

        # Phase 2: a second listener on the same port (SO_REUSEPORT spreads the connections).
        timeline["phase1_done"] = round(time.time() - started, 1)
        processes.emailsync("smtpd2", *listen)
        wait_for(lambda: "SMTP listener on" in processes.log("smtpd2"), 60, "the second listener")
        time.sleep(1)  # its event loop starts right after that line
        timeline["listener2_ready"] = round(time.time() - started, 1)
        two = asyncio.run(load(smtp_port, messages[half:], args.concurrency))
        result["two_listeners"] = two
        result["listener_ratio"] = two["per_second"] / one["per_second"] if one["per_second"] else 0
        last_250 = max(one["last_accepted_at"], two["last_accepted_at"])
        processes.check_alive()
        processes.signal("smtpd1", "smtpd2")  # they finish closing while the workers deliver

        # Delivery: wait until the sink has every expected request, then a little longer so a
        # duplicate would show up too.
        wait_for(
            lambda: len(read_sink(sink_file)) >= len(expected),  # sink lines: one per rcpt
            max(120, len(expected) / 20),
            f"{len(expected)} deliveries",
            poll=0.2,
        )
        timeline["delivered"] = round(time.time() - started, 1)
        last_delivery = max(row[0] for row in read_sink(sink_file))
        result["last_250_to_last_delivery_seconds"] = last_delivery - last_250
        time.sleep(args.settle)

        # The web processes serve the public pages of the data this run made.
        pages = ["/agencies/", *(f"/agencies/{a['slug']}/" for a in agencies[:3])]
        result["web_pages_ok"] = all(
            http_ok(f"http://127.0.0.1:{port}{page}") for port in web_ports for page in pages
        )
        processes.check_alive()
        result["exit_codes"] = processes.stop_all()
        processes.running = []

        # The checks.
        timeline["stopped"] = round(time.time() - started, 1)
        db = recorded(url, load_started)
        everything = read_sink(sink_file)
        deliveries = [d for d in everything if d[2].endswith(RECIPIENT_DOMAINS)]
        sent_ids = Counter(mid for _, mid, _ in deliveries)
        index_of = {a["id"]: i for i, a in enumerate(agencies)}
        pairs = Counter((index_of[a], e) for a, e, _m, _s in db["requests"])
        outbox_ids = [m for _a, _e, m, _s in db["requests"]]
        accepted = sum(r["accepted"] for r in (result["warmup"], one, two))
        checks = {
            "every_message_answered_250": accepted == len(messages),
            # One row per message (a trigger whose recipients were all asked already is
            # "skipped"; which one of two racing triggers gets there first is not fixed).
            "triggers_recorded_once": sum(db["triggers"].values()) == len(messages)
            and set(db["triggers"]) <= {"accepted", "skipped"},
            "requests_as_expected": set(pairs) == expected,
            "no_request_twice": all(n == 1 for n in pairs.values()),
            "each_request_has_one_outbox_row": None not in outbox_ids
            and len(set(outbox_ids)) == len(outbox_ids) == len(pairs),
            "each_delivered_once": all(sent_ids.get(m) == 1 for m in outbox_ids),
            "nothing_else_delivered": sum(sent_ids.values()) == len(outbox_ids),
            "outbox_marked_sent": all(s == "sent" for _a, _e, _m, s in db["requests"]),
        }
        result["checks"] = checks
        result["exactly_once"] = all(checks.values())
        result["stored"] = {
            "triggers": db["triggers"],
            "requests": len(db["requests"]),
            "deliveries": len(deliveries),
            "other_deliveries": len(everything) - len(deliveries),
            "recipient_outcomes": db["recipient_outcomes"],
        }
        result["dns_queries"] = dns.queries
        timeline["checked"] = round(time.time() - started, 1)
        if args.plans:
            out = subprocess.run(
                [PYTHON, __file__, "--plans"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            result["plans"] = json.loads(out.stdout.strip().splitlines()[-1])
    except BaseException:
        for p in processes.running:
            print(f"--- {p.name} ---\n{processes.log(p.name)[-1500:]}", file=sys.stderr)
        raise
    finally:
        processes.stop_all()
        if dns:
            dns.close()
        if not args.keep:
            drop_database(base, name)
            shutil.rmtree(workdir, ignore_errors=True)
        result["total_seconds"] = time.time() - started
    return result


def report(r: dict) -> str:
    one, two = r["one_listener"], r["two_listeners"]
    lines = [
        f"Scale run: {r['triggers']:,} triggers for {r['agencies']:,} agencies on PostgreSQL, "
        f"{r['cpus']} CPUs shared by every process and the load client (concurrency "
        f"{r['concurrency']}).",
        f"  1 listener : {one['per_second']:7.1f} msg/s ({one['accepted']:,} in "
        f"{one['seconds']:.1f} s, replies {one['codes']})",
        f"  2 listeners: {two['per_second']:7.1f} msg/s ({two['accepted']:,} in "
        f"{two['seconds']:.1f} s, replies {two['codes']})",
        f"  ratio {r['listener_ratio']:.2f} (target ≥ 1.7)",
        f"  last 250 → last delivery: {r['last_250_to_last_delivery_seconds']:.1f} s",
        f"  expected review requests {r['expected_requests']:,} of {r['recipient_slots']:,} "
        f"recipient slots; stored {r['stored']}",
        f"  checks: {r['checks']} → exactly once: {'yes' if r['exactly_once'] else 'NO'}",
        f"  web pages served by both web processes: {'yes' if r['web_pages_ok'] else 'NO'}",
    ]
    for p in r.get("plans", []):
        scans = f"  Seq Scan on {p['seq_scans']}" if p["seq_scans"] else ""
        lines.append(f"\n  EXPLAIN {p['query']} ({p['execution_ms']} ms){scans}")
        lines.extend(f"    {row}" for row in p["plan"])
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--sink":
        run_sink(int(sys.argv[2]), sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--plans":
        child_plans()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=20_000)
    parser.add_argument("--agencies", type=int, default=1_000)
    parser.add_argument(
        "--history-reviews", type=int, default=20_000, help="seed-scale's reviews before the run"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to catch duplicates")
    parser.add_argument("--no-plans", dest="plans", action="store_false")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the logs afterwards"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without a database name",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    result = run(args)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    if not result["exactly_once"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
