"""The figures `/metrics` exposes, read in a fixed number of queries whatever the data's size.

Every figure is a gauge read from the database at scrape time, so any web server answers the same
and nothing is lost when a process restarts. Counts of rows are counts of what is on record:
triggers are purged after `EMAILSYNC_TRIGGER_RETENTION_DAYS`, so their totals can fall.
"""

import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from emailsync.inbound.models import Trigger
from emailsync.outbox.models import OutboundEmail
from emailsync.outbox.worker import heartbeat_age, oldest_due_age
from emailsync.review_requests.models import ReviewRequest, Suppression

SENDS_WINDOW = timedelta(minutes=5)
DAY = timedelta(days=1)
QUERIES = 7  # what collect_metrics() costs; tests hold it to this


@dataclass
class Metric:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)
    type: str = "gauge"


def collect_metrics(now=None) -> list[Metric]:
    now = now or timezone.now()
    since = now - DAY

    triggers = dict.fromkeys(Trigger.Status.values, (0, 0))
    for status, total, recent in (
        Trigger.objects.order_by()
        .values_list("status")
        .annotate(total=Count("id"), recent=Count("id", filter=Q(received_at__gte=since)))
    ):
        triggers[status] = (total, recent)

    requests = dict.fromkeys(ReviewRequest.Status.values, 0)
    for status, n in ReviewRequest.objects.order_by().values_list("status").annotate(n=Count("id")):
        requests[status] = n

    oldest = oldest_due_age(now)
    sent = OutboundEmail.objects.filter(
        status=OutboundEmail.Status.SENT, sent_at__gt=now - SENDS_WINDOW, sent_at__lte=now
    ).count()
    bounces = Suppression.objects.filter(
        reason=Suppression.Reason.BOUNCED, created_at__gte=since
    ).count()
    beat = heartbeat_age(now)

    quarantined = Trigger.Status.QUARANTINED
    return [
        Metric(
            "emailsync_triggers",
            "Triggers (BCC copies received) on record, by status.",
            [({"status": s}, total) for s, (total, _) in triggers.items()],
        ),
        Metric(
            "emailsync_triggers_last_24h",
            "Triggers received in the last 24 hours, by their status now.",
            [({"status": s}, recent) for s, (_, recent) in triggers.items()],
        ),
        Metric(
            "emailsync_triggers_quarantined",
            "Triggers waiting in quarantine (not authentic enough, not released).",
            [({}, triggers[quarantined][0])],
        ),
        Metric(
            "emailsync_review_requests",
            "Review requests on record, by status.",
            [({"status": s}, n) for s, n in requests.items()],
        ),
        Metric(
            "emailsync_outbox_oldest_due_age_seconds",
            "Age of the oldest due-but-unsent review request or reminder (0 when none).",
            [({}, oldest.total_seconds() if oldest else 0.0)],
        ),
        Metric(
            "emailsync_sends_per_minute",
            "Emails sent per minute, averaged over the last 5 minutes.",
            [({}, sent / (SENDS_WINDOW.total_seconds() / 60))],
        ),
        Metric(
            "emailsync_bounces_last_24h",
            "Addresses suppressed after a hard bounce in the last 24 hours.",
            [({}, bounces)],
        ),
        Metric(
            "emailsync_worker_heartbeat_age_seconds",
            "Seconds since the most recently seen worker went round its loop (+Inf: never).",
            [({}, beat.total_seconds() if beat is not None else math.inf)],
        ),
    ]


def _value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 3))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


def render_metrics(metrics: list[Metric]) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for labels, value in metric.samples:
            lines.append(f"{metric.name}{_labels(labels)} {_value(value)}")
    return "\n".join(lines) + "\n"
