"""The hot queries have the indexes they need: EXPLAIN each on PostgreSQL, sequential scans off.

With `enable_seqscan = off` the planner takes any usable index, however small the table, so a
`Seq Scan` left in a plan means no index can serve the query — on a large table, a full read.
Queries are either the code's own (captured while the real view or function runs) or built
exactly as the code builds them, where running the code needs a whole SMTP exchange.
"""

import json
import secrets
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.inbound.models import InboundAddress
from emailsync.inbound.smtp import AddressBook
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import Worker
from emailsync.review_requests.models import (
    AskedRecipient,
    ReviewRequest,
    Suppression,
    address_hash,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are PostgreSQL's"),
]


def seq_scans(plan) -> list[str]:
    """The relations a JSON plan reads with a Seq Scan."""
    found = []
    nodes = [node["Plan"] for node in plan]
    while nodes:
        node = nodes.pop()
        if node.get("Node Type") == "Seq Scan":
            found.append(node.get("Relation Name", "?"))
        nodes.extend(node.get("Plans", []))
    return found


def explain_sql(sql: str, params=None) -> list:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return json.loads(plan) if isinstance(plan, str) else plan


def assert_indexed(queryset, what: str) -> None:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic():
        scans = seq_scans(explain_sql(sql, params))
    assert not scans, f"{what}: Seq Scan on {scans}\n{sql}"


def assert_captured_indexed(captured: CaptureQueriesContext, what: str) -> None:
    selects = [
        q["sql"] for q in captured.captured_queries if q["sql"].lstrip().startswith("SELECT")
    ]
    assert selects, f"{what}: no queries captured"
    problems = []
    with transaction.atomic():
        for sql in selects:
            scans = seq_scans(explain_sql(sql.replace("%", "%%")))
            if scans:
                problems.append(f"Seq Scan on {scans}: {sql}")
    assert not problems, f"{what}:\n" + "\n".join(problems)


@pytest.fixture
def demo(db, settings, tmp_path):
    """The demo agency: reviews in every column, placements, months of history."""
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", "--json", stdout=StringIO())
    return Agency.objects.get(slug="demo-recruitment")


def test_the_check_sees_a_sequential_scan(demo):
    # No index can serve a filter on the recipient's address: the check must say so.
    with pytest.raises(AssertionError, match="Seq Scan on .*outbox_outboundemail"):
        assert_indexed(OutboundEmail.objects.filter(to_email="a@example.test"), "unindexed")


# -- the listener and ingest ------------------------------------------------------------------


def test_rcpt_lookup_of_an_inbound_address_by_token(demo):
    token = InboundAddress.objects.filter(agency=demo).values_list("token", flat=True).first()
    with CaptureQueriesContext(connection) as captured:
        AddressBook(ttl=0).load(token)
    assert_captured_indexed(captured, "RCPT lookup")
    with CaptureQueriesContext(connection) as captured:
        AddressBook(ttl=0).load("no-such-token")
    assert_captured_indexed(captured, "RCPT lookup of an unknown address")


def index_conditions(plan) -> dict[str, list[str]]:
    """Each relation's Index Cond texts in a JSON plan."""
    found: dict[str, list[str]] = {}
    nodes = [node["Plan"] for node in plan]
    while nodes:
        node = nodes.pop()
        if "Index Cond" in node:
            found.setdefault(node.get("Relation Name", "?"), []).append(node["Index Cond"])
        nodes.extend(node.get("Plans", []))
    return found


def test_batch_lookups_probe_the_ledger_by_its_unique_key(demo):
    """The one statement a batch's rules read through. Whom an agency asked recently (three
    rows a trigger, the fastest-growing table) is one probe of the (agency, email) key per
    recipient, whatever statistics the planner has: as a plain join, a planner that thought an
    agency had a row or two (a new install, filling fast) probed by agency alone and read
    every row the agency had."""
    from emailsync.inbound.known import Wanted, read

    token = InboundAddress.objects.filter(agency=demo).values_list("token", flat=True).first()
    wanted = Wanted(
        tokens={token},
        messages={(token, secrets.token_hex(32))},
        senders={(token, "someone@example.test")},
        recipients={(token, "ann@example.test"), (token, "bob@example.test")},
    )
    with CaptureQueriesContext(connection) as captured:
        read(wanted)
    (statement,) = [q["sql"] for q in captured.captured_queries]
    with transaction.atomic():
        plan = explain_sql(statement.replace("%", "%%"))
    probes = index_conditions(plan).get(AskedRecipient._meta.db_table, [])
    assert probes and all("agency_id" in c and "email" in c for c in probes), probes
    assert not seq_scans(plan), statement


def test_suppression_lookup_by_address_hash(demo):
    emails = {"ann@example.test", "bob@example.test"}
    with CaptureQueriesContext(connection) as captured:
        Suppression.suppressed(emails)
    assert_captured_indexed(captured, "suppressions")
    queryset = Suppression.objects.filter(address_hash__in=[address_hash(e) for e in emails])
    assert_indexed(queryset, "suppressions")


# -- the worker -------------------------------------------------------------------------------


def test_outbox_claim_and_load(demo):
    assert ReviewRequest.objects.filter(status="scheduled", queued_at__isnull=True).exists()
    worker = Worker(name="plan", run_jobs=False)
    # The claim (queueing the requests that fell due, then both queries: expired leases and due
    # rows, FOR UPDATE SKIP LOCKED), captured from the worker itself; the rollback leaves the
    # requests waiting and the rows unclaimed.
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            ids = worker.claim(timezone.now() + timedelta(days=30), fixed=True)
        worker.load(ids)
        transaction.set_rollback(True)
    assert ids, "the demo's scheduled requests fall due within 30 days"
    assert_captured_indexed(captured, "outbox claim")
    now = timezone.now()
    due = (
        OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED, send_after__lte=now)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("send_after", "id")
        .values_list("id", flat=True)[:100]
    )
    assert_indexed(due, "outbox due rows")


def test_metrics_figures(demo):
    from emailsync.operations.metrics import collect_metrics

    # /metrics reads recent sends and the newest heartbeat on every scrape: both indexed.
    now = timezone.now()
    assert_indexed(
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.SENT, sent_at__gt=now - timedelta(minutes=5)
        ),
        "sends per minute",
    )
    with CaptureQueriesContext(connection) as captured:
        collect_metrics(now)
    heartbeat = [q for q in captured.captured_queries if "workerheartbeat" in q["sql"]]
    assert len(heartbeat) == 1
    with transaction.atomic():
        assert not seq_scans(explain_sql(heartbeat[0]["sql"].replace("%", "%%")))


# -- the pages --------------------------------------------------------------------------------


def test_reviews_page_columns(demo, client):
    client.force_login(demo.admins().get())
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/app/reviews/")
    assert response.status_code == 200
    assert_captured_indexed(captured, "Reviews page")


def test_public_agency_and_recruiter_pages(demo, client):
    profile = RecruiterProfile.objects.filter(agency=demo).first()
    for url in (
        f"/agencies/{demo.slug}/",
        f"/agencies/{demo.slug}/recruiters/{profile.slug}/",
    ):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, url
        assert_captured_indexed(captured, url)


def test_directory(demo, client):
    for url in ("/agencies/", "/agencies/?page=7"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code in (200, 404), url
        assert_captured_indexed(captured, url)
