"""Benchmark: server time of the public profile pages against a trivial Django view.

    .venv/bin/python bench/web.py [--reviews 1000000] [--agencies 10000] [--requests 400]

Seeds PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/emailsync_bench_web,
dropped and recreated unless --reuse) with agencies, ten recruiters each and the reviews (80 %
verified, 10 % missing verification, 10 % rejected) using COPY, fills the aggregate tables from a
from-scratch recomputation and ANALYZEs. Then it serves, interleaved: a trivial view returning "ok",
random agency pages, random recruiter pages and directory pages (first page, a deeper page, a
name search, a location search), each over a new loopback HTTP connection to gunicorn (one sync
worker, production settings: DEBUG off, the CSP and security middleware, WhiteNoise). It reports
p50/p95 per page and each as a ratio to the trivial view's.
Target: p95 ≤ 8× the trivial view's p95.
"""

import argparse
import http.client
import io
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/emailsync_bench_web"
RECRUITERS_PER_AGENCY = 10
WORDS = [
    *("great", "recruiter", "listened", "understood", "role", "salary", "interview"),
    *("feedback", "quick", "honest", "placement", "team", "communication", "offer"),
    *("helpful", "professional", "kept", "informed", "throughout"),
]


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


def _value(field, values: dict):
    if field.attname in values:
        return values[field.attname]
    if field.has_default() or not field.null:
        default = field.get_default()
        return "" if default is None and not field.null else default
    return None


def copy_rows(model, rows, fields=None) -> int:
    """COPY rows (dicts keyed by attname; other columns get the field default) into the table."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if fields is None or f.attname in fields]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    n = 0
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        with raw.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
            for values in rows:
                row = []
                for f in fields:
                    v = _value(f, values)
                    if isinstance(v, dict):
                        import json

                        v = json.dumps(v)
                    row.append(v)
                copy.write_row(row)
                n += 1
    return n


def reset_sequence(model) -> None:
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        # Our own models' table names, not input.
        query = f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), COALESCE((SELECT MAX(id) FROM \"{table}\"), 1))"  # noqa: S608, E501
        cursor.execute(query)


def seed(n_agencies: int, n_reviews: int) -> None:
    from django.db import connection, transaction

    from emailsync.agencies.models import Agency, RecruiterProfile, User
    from emailsync.profiles import aggregates
    from emailsync.profiles.models import AgencyRating, RecruiterRating
    from emailsync.review_requests.models import ReviewRequest
    from emailsync.reviews.models import Review

    rng = random.Random(7)
    now = datetime.now(UTC)
    towns = ["Leeds", "London", "Manchester", "Bristol", "Glasgow", "Cardiff", "York", "Bath"]
    started = time.perf_counter()
    with transaction.atomic():
        copy_rows(
            Agency,
            (
                {
                    "id": a,
                    "name": f"Agency {a:05d} Recruitment",
                    "slug": f"agency-{a}",
                    "location": f"{towns[a % len(towns)]}, UK",
                    "created_at": now - timedelta(days=900),
                }
                for a in range(1, n_agencies + 1)
            ),
        )
        n_people = n_agencies * RECRUITERS_PER_AGENCY
        copy_rows(
            User,
            (
                {
                    "id": u,
                    "email": f"r{u}@agency{(u - 1) // RECRUITERS_PER_AGENCY + 1}.test",
                    "password": "!",
                    "full_name": f"Recruiter {u}",
                    "agency_id": (u - 1) // RECRUITERS_PER_AGENCY + 1,
                    "role": "recruiter",
                    "is_active": True,
                    "date_joined": now,
                }
                for u in range(1, n_people + 1)
            ),
        )
        copy_rows(
            RecruiterProfile,
            (
                {
                    "id": u,
                    "user_id": u,
                    "agency_id": (u - 1) // RECRUITERS_PER_AGENCY + 1,
                    "display_name": f"Recruiter {u}",
                    "job_title": "Recruiter",
                    "slug": f"recruiter-{u}",
                    "bio": "Places people in good jobs.",
                }
                for u in range(1, n_people + 1)
            ),
        )

        def requests():
            for r in range(1, n_reviews + 1):
                a = rng.randint(1, n_agencies)
                when = now - timedelta(minutes=rng.randint(1, 60 * 24 * 900))
                yield {
                    "id": r,
                    "agency_id": a,
                    "source": "email_sync",
                    "email": f"p{r}@people.test",
                    "recruiter_id": (a - 1) * RECRUITERS_PER_AGENCY + rng.randint(1, 10),
                    "token": f"t{r}",
                    "status": "completed",
                    "created_at": when,
                    "send_after": when,
                    "deadline": when,
                }

        plan = list(requests())
        copy_rows(ReviewRequest, plan)
        statuses = ["verified"] * 8 + ["missing_verification", "rejected"]

        def reviews():
            for rr in plan:
                status = rng.choice(statuses)
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 60)))
                yield {
                    "id": rr["id"],
                    "agency_id": rr["agency_id"],
                    "review_request_id": rr["id"],
                    "recruiter_id": rr["recruiter_id"],
                    "rating": rng.choice([5, 5, 5, 4, 4, 3, 2, 1]),
                    "text": text.capitalize() + ".",
                    "role": rng.choice(["candidate", "candidate", "client"]),
                    "reviewer_name": f"Person {rr['id']}",
                    "display_name_choice": "initial",
                    "recommend": True,
                    "consent": True,
                    "reviewer_email": rr["email"],
                    "status": status,
                    "submitted_at": rr["created_at"],
                    "updated_at": rr["created_at"],
                    "editable_until": rr["created_at"],
                    "verified_at": rr["created_at"] if status == "verified" else None,
                }

        copy_rows(Review, reviews())
        for model in (Agency, User, RecruiterProfile, ReviewRequest, Review):
            reset_sequence(model)
        seeded = time.perf_counter()
        agencies, recruiters = aggregates.compute_all()
        owner = {u: (u - 1) // RECRUITERS_PER_AGENCY + 1 for u in recruiters}
        copy_rows(
            AgencyRating,
            ({"agency_id": pk, **values, "changed_at": now} for pk, values in agencies.items()),
        )
        copy_rows(
            RecruiterRating,
            (
                {"recruiter_id": pk, "agency_id": owner[pk], **values, "changed_at": now}
                for pk, values in recruiters.items()
            ),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {n_agencies:,} agencies, {n_reviews:,} reviews in "
        f"{seeded - started:.0f} s; aggregates in {time.perf_counter() - seeded:.0f} s",
        flush=True,
    )


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


if __name__ == "__main__":
    main()
