"""Benchmark: server time of the public profile pages against a trivial Django view.

    .venv/bin/python bench/web.py [--reviews 1000000] [--agencies 10000] [--requests 400]

Seeds PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/emailsync_bench_web,
dropped and recreated unless --reuse) with `emailsync seed-scale`'s data (agencies, ten people
each, the reviews in every state and their history, using COPY), fills the aggregate tables from
a from-scratch recomputation and ANALYZEs. Then it serves, interleaved: a trivial view returning
"ok", random agency pages, random recruiter pages and directory pages (first page, a deeper page, a
name search, a location search), each over a new loopback HTTP connection to gunicorn (one sync
worker, production settings: DEBUG off, the CSP and security middleware, WhiteNoise). It reports
p50/p95 per page and each as a ratio to the trivial view's.
Target: p95 ≤ 8× the trivial view's p95.
"""

import argparse
import http.client
import io
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/emailsync_bench_web"


def recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup(url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        EMAILSYNC_TESTING="1",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="emailsync.settings",
        ALLOWED_HOSTS="testserver,127.0.0.1",
    )
    os.environ.pop("DEBUG", None)
    import django

    django.setup()


def seed(n_agencies: int, n_reviews: int) -> None:
    """`emailsync seed-scale`'s data (emailsync/operations/scale.py): COPY, then the aggregates
    from a from-scratch recomputation, then ANALYZE."""
    from emailsync.operations import scale

    summary = scale.seed(n_agencies, n_reviews, progress_stream=sys.stderr)
    print(scale.describe(summary), flush=True)


# --- the trivial view and the URL map the benchmark serves --------------------------------------


def trivial(request):
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def urlpatterns_for_bench():
    from django.urls import include, path

    return [path("bench/trivial/", trivial), path("", include("emailsync.urls"))]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def __getattr__(name):
    # The URL map gunicorn's copy of this module serves: Django's plus the trivial view.
    if name == "urlpatterns":
        return urlpatterns_for_bench()
    if name == "application":
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    raise AttributeError(name)


def serve(url: str, port: int):
    """gunicorn, one sync worker, the production settings: how the web process really runs."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "bench.web_settings",
    }
    env.pop("DEBUG", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
            "bench.web:application",
        ],
        env=env,
    )
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/trivial/") as r:
                r.read()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def measure(url: str, n_requests: int) -> dict:
    from emailsync.agencies.models import RecruiterProfile

    rng = random.Random(11)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(id) FROM agencies_agency")
        n_agencies = cursor.fetchone()[0]
    recruiter_keys = list(
        RecruiterProfile.objects.values_list("agency__slug", "slug").order_by("?")[:20000]
    )
    connection.close()

    def agency():
        return f"/agencies/agency-{rng.randint(1, n_agencies)}/"

    def recruiter():
        a, r = rng.choice(recruiter_keys)
        return f"/agencies/{a}/recruiters/{r}/"

    deep = f"/agencies/?page={max(1, min(7, n_agencies // 25))}"

    def directory():
        return rng.choice(
            [
                "/agencies/",
                deep,
                "/agencies/?q=agency+00",
                "/agencies/?location=york",
            ]
        )

    kinds = {
        "trivial view": lambda: "/bench/trivial/",
        "agency page": agency,
        "recruiter page": recruiter,
        "directory": directory,
    }
    times = {k: [] for k in kinds}
    port = free_port()
    process = serve(url, port)
    try:
        for i in range(n_requests + 30):
            for kind, make in kinds.items():
                path = make()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                start = time.perf_counter()
                conn.request("GET", path, headers={"Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - start
                conn.close()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status}")
                if i >= 30:  # warm-up
                    times[kind].append(elapsed * 1000)
    finally:
        process.terminate()
        process.wait(10)
    base50 = statistics.median(times["trivial view"])
    base95 = percentile(times["trivial view"], 95)
    rows = {}
    for kind, values in times.items():
        p50, p95 = statistics.median(values), percentile(values, 95)
        rows[kind] = (p50, p95, p50 / base50, p95 / base95)
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400, help="per page kind")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith("postgres"):
        parser.error("bench/web.py needs PostgreSQL (DATABASE_URL=postgres://…)")
    if not args.reuse:
        recreate(url)
    setup(url)
    from django.core.management import call_command

    if not args.reuse:
        call_command("migrate", verbosity=0)
        seed(args.agencies, args.reviews)
    rows = measure(url, args.requests)
    out = io.StringIO()
    out.write(
        f"\n{args.reviews:,} reviews, {args.agencies:,} agencies, {args.requests} requests each\n"
    )
    out.write(
        "| page | p50 ms | p95 ms | p50 ratio | p95 ratio |\n| --- | --- | --- | --- | --- |\n"
    )
    for kind, (p50, p95, r50, r95) in rows.items():
        out.write(f"| {kind} | {p50:.2f} | {p95:.2f} | {r50:.1f}× | {r95:.1f}× |\n")
    print(out.getvalue())
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "reviews": args.reviews,
                    "agencies": args.agencies,
                    "requests": args.requests,
                    "pages": {
                        kind: {"p50_ms": p50, "p95_ms": p95, "p50_ratio": r50, "p95_ratio": r95}
                        for kind, (p50, p95, r50, r95) in rows.items()
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
