"""/health (database and worker heartbeat) and /metrics (Prometheus text, behind a token)."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.db import DatabaseError
from django.utils import timezone

from emailsync.inbound.models import Trigger
from emailsync.operations import metrics as metrics_module
from emailsync.outbox.models import OutboundEmail, WorkerHeartbeat
from emailsync.outbox.worker import Worker
from emailsync.review_requests.models import ReviewRequest, Suppression, address_hash

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def metrics_token(settings):
    settings.EMAILSYNC_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


# -- the worker's heartbeat -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_worker_records_one_heartbeat_row_and_writes_it_at_most_every_few_seconds(
    django_assert_num_queries,
):
    worker = Worker(name="w-1", run_jobs=False)
    worker.run_once()
    row = WorkerHeartbeat.objects.get()
    assert row.worker == "w-1" and timezone.now() - row.seen_at < timedelta(seconds=5)
    first = row.seen_at
    with django_assert_num_queries(0):
        assert worker.beat() is False  # within the interval: no write at all
    with django_assert_num_queries(1):  # a single upsert
        assert worker.beat(force=True) is True
    assert WorkerHeartbeat.objects.count() == 1
    assert WorkerHeartbeat.objects.get().seen_at >= first
    Worker(name="w-2", run_jobs=False).run_once()
    assert set(WorkerHeartbeat.objects.values_list("worker", flat=True)) == {"w-1", "w-2"}


@pytest.mark.django_db
def test_a_starting_worker_prunes_heartbeats_of_workers_gone_for_a_day():
    WorkerHeartbeat.objects.create(worker="gone", seen_at=timezone.now() - timedelta(days=2))
    WorkerHeartbeat.objects.create(worker="recent", seen_at=timezone.now() - timedelta(hours=1))
    worker = Worker(name="w-new", run_jobs=False)
    worker.stop()  # run_forever prunes, then leaves its loop at once
    worker.run_forever(poll=0.01)
    assert set(WorkerHeartbeat.objects.values_list("worker", flat=True)) == {"recent"}


# -- /health ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_reports_a_live_worker_in_one_query(client, django_assert_max_num_queries):
    Worker(name="w-1", run_jobs=False).beat()
    with django_assert_max_num_queries(1):
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["worker"] == "ok"
    assert 0 <= body["worker_heartbeat_age_seconds"] < 5
    assert client.get("/health?strict=1").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("last_seen", [None, timedelta(seconds=61), timedelta(hours=3)])
def test_a_stale_or_missing_worker_is_reported_but_fails_only_the_strict_check(client, last_seen):
    if last_seen is not None:
        WorkerHeartbeat.objects.create(worker="w-old", seen_at=timezone.now() - last_seen)
    response = client.get("/health")
    # A web server without a worker still serves pages, and `serve` waits for this answer.
    assert response.status_code == 200
    assert response.json()["worker"] == "stale" and response.json()["database"] == "ok"
    strict = client.get("/health?strict=1")
    assert strict.status_code == 503
    assert strict.json() | {"worker_heartbeat_age_seconds": None} == {
        "status": "error",
        "database": "ok",
        "worker": "stale",
        "worker_heartbeat_age_seconds": None,
    }


@pytest.mark.django_db
def test_health_is_503_when_the_database_fails(client):
    with mock.patch(
        "emailsync.operations.views.heartbeat_age", side_effect=DatabaseError("gone away")
    ):
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}


# -- /metrics: access -------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_do_not_exist_without_a_configured_token(client, settings):
    settings.EMAILSYNC_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert scrape(client, "").status_code == 404
    assert scrape(client, "anything").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
    ],
)
def test_metrics_refuse_a_missing_or_wrong_token(client, metrics_token, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "emailsync_" not in response.content.decode()


@pytest.mark.django_db
def test_the_token_is_compared_in_constant_time(client, metrics_token):
    with mock.patch("emailsync.operations.views.hmac.compare_digest", return_value=False) as cmp:
        assert scrape(client).status_code == 401
    cmp.assert_called_once_with(TOKEN.encode(), TOKEN.encode())


# -- /metrics: the figures --------------------------------------------------------------------


def add_trigger(agency, status, age=timedelta(0)):
    return Trigger.objects.create(
        agency=agency,
        message_id_hash=f"{status}-{Trigger.objects.count()}",
        status=status,
        received_at=timezone.now() - age,
    )


def add_request(agency, status, **fields):
    now = timezone.now()
    return ReviewRequest.objects.create(
        agency=agency,
        source="manual",
        email=f"r{ReviewRequest.objects.count()}@example.test",
        status=status,
        send_after=fields.pop("send_after", now),
        deadline=now + timedelta(hours=72),
        **fields,
    )


def add_email(status, *, send_after=None, sent_at=None, kind="review_request", request=None):
    return OutboundEmail.objects.create(
        kind=kind,
        template="review_request",
        to_email="someone@example.test",
        status=status,
        send_after=send_after or timezone.now(),
        sent_at=sent_at,
        review_request=request,
    )


def seed(agency, scale: int):
    now = timezone.now()
    for _ in range(scale):
        add_trigger(agency, "accepted")
        add_trigger(agency, "accepted", age=timedelta(days=3))
        add_trigger(agency, "quarantined")
        add_trigger(agency, "quarantined", age=timedelta(days=2))
        add_request(agency, "scheduled")
        add_request(agency, "sent")
        add_email("sent", sent_at=now - timedelta(minutes=1))
        add_email("sent", sent_at=now - timedelta(minutes=30))
    return now


@pytest.mark.django_db
def test_metrics_expose_each_figure_with_help_and_type(client, metrics_token, agency):
    now = seed(agency, 1)
    add_trigger(agency, "blocked", age=timedelta(hours=2))
    request = add_request(agency, "scheduled", send_after=now - timedelta(minutes=10))
    add_email("queued", send_after=now - timedelta(minutes=10), request=request)
    add_email("queued", send_after=now + timedelta(hours=1))  # not due yet
    Suppression.objects.create(address_hash=address_hash("a@example.test"), reason="bounced")
    Suppression.objects.create(
        address_hash=address_hash("b@example.test"),
        reason="bounced",
        created_at=now - timedelta(days=2),
    )
    Suppression.objects.create(address_hash=address_hash("c@example.test"), reason="unsubscribed")
    WorkerHeartbeat.objects.create(worker="w-1", seen_at=now - timedelta(seconds=12))

    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[0] != "#"}
    for name in names:  # every figure is introduced by its HELP and TYPE lines
        assert re.search(rf"^# HELP {name} \S.*\n# TYPE {name} gauge\n{name}[ {{]", text, re.M)
    got = parse(text)
    assert got['emailsync_triggers{status="accepted"}'] == 2
    assert got['emailsync_triggers{status="quarantined"}'] == 2
    assert got['emailsync_triggers{status="blocked"}'] == 1
    assert got['emailsync_triggers{status="released"}'] == 0  # every status, even when none
    assert got['emailsync_triggers_last_24h{status="accepted"}'] == 1
    assert got['emailsync_triggers_last_24h{status="quarantined"}'] == 1
    assert got['emailsync_triggers_last_24h{status="blocked"}'] == 1
    assert got["emailsync_triggers_quarantined"] == 2
    assert got['emailsync_review_requests{status="scheduled"}'] == 2
    assert got['emailsync_review_requests{status="sent"}'] == 1
    assert got['emailsync_review_requests{status="bounced"}'] == 0
    assert 600 <= got["emailsync_outbox_oldest_due_age_seconds"] < 660
    assert got["emailsync_sends_per_minute"] == pytest.approx(1 / 5)
    assert got["emailsync_bounces_last_24h"] == 1
    assert 12 <= got["emailsync_worker_heartbeat_age_seconds"] < 60


@pytest.mark.django_db
def test_metrics_with_nothing_on_record(client, metrics_token):
    text = scrape(client).content.decode()
    got = parse(text)
    assert got["emailsync_outbox_oldest_due_age_seconds"] == 0
    assert got["emailsync_sends_per_minute"] == 0
    assert "emailsync_worker_heartbeat_age_seconds +Inf" in text  # never seen: alerts fire


@pytest.mark.django_db
def test_metrics_cost_the_same_few_queries_whatever_the_data(
    client, metrics_token, agency, django_assert_max_num_queries
):
    seed(agency, 1)
    with django_assert_max_num_queries(metrics_module.QUERIES):
        small = parse(scrape(client).content.decode())
    seed(agency, 5)
    with django_assert_max_num_queries(metrics_module.QUERIES):
        large = parse(scrape(client).content.decode())
    assert (
        large['emailsync_triggers{status="accepted"}']
        == 6 * small['emailsync_triggers{status="accepted"}']
    )


def test_label_values_are_escaped():
    text = metrics_module.render_metrics(
        [metrics_module.Metric("x", "h", [({"k": 'a"b\\c'}, 1.5)])]
    )
    assert text == '# HELP x h\n# TYPE x gauge\nx{k="a\\"b\\\\c"} 1.5\n'
