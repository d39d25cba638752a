"""The dashboard: requests sent → opened → reviewed, reviews per month, average rating over time,
and per recruiter — drawn as server-side SVG (readable without JavaScript, no CDN).

A handful of aggregate queries whatever the agency's size.
"""

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncMonth
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from emailsync.agencies.access import admin_required
from emailsync.profiles.models import rating_of
from emailsync.review_requests.models import ReviewRequest, Source
from emailsync.reviews.models import Review

from .leaks import current_alert

MONTHS = 12
WIDTH, HEIGHT, PAD = 600, 200, 28
# Room above the tallest bar for its value, which is drawn 4 px above the bar's top.
HEADROOM = 16


def month_starts(today: date, n: int) -> list[date]:
    months, y, m = [], today.year, today.month
    for _month in range(n):
        months.append(date(y, m, 1))
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return list(reversed(months))


def bars(values: list[float], labels: list[str], top: float | None = None) -> dict:
    """Coordinates for an SVG bar chart (the template draws them)."""
    top = top or max([*values, 1])
    slot = (WIDTH - PAD) / max(len(values), 1)
    items = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = 0 if not value else max(2, (HEIGHT - PAD - HEADROOM) * value / top)
        items.append(
            {
                "x": round(PAD + i * slot + slot * 0.15, 1),
                "y": round(HEIGHT - PAD - h, 1),
                "w": round(slot * 0.7, 1),
                "h": round(h, 1),
                "cx": round(PAD + i * slot + slot / 2, 1),
                "ty": round(HEIGHT - PAD - h - 4, 1),
                "value": value,
                "label": label,
            }
        )
    return {
        "label_y": HEIGHT - 10,
        "items": items,
        "width": WIDTH,
        "height": HEIGHT,
        "base": HEIGHT - PAD,
        "top": top,
    }


def line(values: list[float | None], labels: list[str], top: float = 5) -> dict:
    slot = (WIDTH - PAD) / max(len(values), 1)
    points = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        if value is None:
            continue
        points.append(
            {
                "x": round(PAD + i * slot + slot / 2, 1),
                "y": round(HEIGHT - PAD - (HEIGHT - PAD * 2) * value / top, 1),
                "value": round(value, 2),
                "label": label,
            }
        )
    return {
        "points": points,
        "path": " ".join(f"{p['x']},{p['y']}" for p in points),
        "labels": [
            {"x": round(PAD + i * slot + slot / 2, 1), "label": label}
            for i, label in enumerate(labels)
        ],
        "width": WIDTH,
        "height": HEIGHT,
        "base": HEIGHT - PAD,
        "label_y": HEIGHT - 10,
    }


@admin_required
def dashboard(request):
    agency = request.agency
    tz = ZoneInfo(agency.time_zone)
    today = timezone.now().astimezone(tz).date()
    months = month_starts(today, MONTHS)
    labels = [date_format(m, "M") for m in months]
    since = timezone.now() - timedelta(days=90)
    requests = ReviewRequest.objects.filter(agency=agency).exclude(source=Source.SETUP_TEST)
    funnel = requests.filter(sent_at__gte=since).aggregate(
        sent=Count("id"),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        reviewed=Count("id", filter=Q(completed_at__isnull=False)),
    )
    counted = Review.objects.filter(agency=agency).counted()
    start = timezone.make_aware(timezone.datetime(months[0].year, months[0].month, 1), timezone=tz)
    by_month = {
        row["month"].date() if hasattr(row["month"], "date") else row["month"]: row
        for row in counted.filter(submitted_at__gte=start)
        .annotate(month=TruncMonth("submitted_at", tzinfo=tz))
        .values("month")
        .annotate(n=Count("id"), avg=Avg("rating"))
    }
    per_month = [by_month.get(m, {}).get("n", 0) for m in months]
    avg_month = [by_month.get(m, {}).get("avg") for m in months]
    recruiters = (
        agency.profiles.of_members()
        .annotate(
            requests=Count(
                "review_requests",
                filter=Q(review_requests__sent_at__gte=since)
                & ~Q(review_requests__source=Source.SETUP_TEST),
                distinct=True,
            ),
        )
        .select_related("rating")
        .order_by("display_name")
    )
    review_stats = {
        row["recruiter"]: row
        for row in counted.values("recruiter").annotate(
            n=Count("id"),
            verified=Count("id", filter=Q(status=Review.Status.VERIFIED)),
        )
    }
    rows = [
        {
            "profile": p,
            "requests": p.requests,
            "reviews": review_stats.get(p.pk, {}).get("n", 0),
            "verified": review_stats.get(p.pk, {}).get("verified", 0),
            # What the recruiter's public profile shows (verified, not hidden by moderators),
            # not an average that counted reviews still missing verification.
            "avg": rating_of(p).average,
        }
        for p in recruiters
    ]
    funnel_steps = [funnel["sent"], funnel["opened"], funnel["reviewed"]]
    return render(
        request,
        "workspace/dashboard/dashboard.html",
        {
            "funnel": funnel,
            "funnel_chart": bars(funnel_steps, [_("Sent"), _("Opened"), _("Reviewed")]),
            "months_chart": bars(per_month, labels),
            "rating_chart": line(avg_month, labels),
            "rows": rows,
            "total_reviews": sum(per_month),
            "leak": current_alert(agency),
        },
    )
