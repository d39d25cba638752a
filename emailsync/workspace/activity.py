"""The activity log — the fairness audit: every email received (and every manual request),
each recipient's outcome and reason; filterable and exportable as CSV."""

import csv
from datetime import date, datetime, time, timedelta

from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from emailsync.agencies.access import admin_required
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.placements.csvio import Echo, safe_cell

from .forms import ActivityFilterForm
from .labels import header_defects, recipient_reason, structured_problems, trigger_reason


def start_of_day(day: date) -> datetime:
    """Midnight starting `day` in the current time zone (the agency's, in the app)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered(request):
    form = ActivityFilterForm(request.GET or None)
    triggers = Trigger.objects.filter(agency=request.agency)
    if form.is_bound and not form.is_valid():  # a backward date range, say: it matches nothing
        return form, triggers.none()
    data = form.cleaned_data if form.is_bound else {}
    if data.get("status"):
        triggers = triggers.filter(status=data["status"])
    # Days in the agency's zone (the app's current one), fixed as moments here: the export
    # streams its rows after the request's zone has been switched off again.
    if data.get("since"):
        triggers = triggers.filter(received_at__gte=start_of_day(data["since"]))
    if data.get("until"):
        triggers = triggers.filter(received_at__lt=start_of_day(data["until"] + timedelta(days=1)))
    if data.get("q"):
        q = data["q"].strip().lower()
        triggers = triggers.filter(
            Q(sender__icontains=q)
            | Q(
                pk__in=TriggerRecipient.objects.filter(
                    Q(email__icontains=q) | Q(name__icontains=q)
                ).values("trigger_id")
            )
        )
    return form, triggers


@admin_required
def activity_log(request):
    form, triggers = filtered(request)
    page = Paginator(
        triggers.select_related("recruiter").prefetch_related(
            Prefetch("recipients", queryset=TriggerRecipient.objects.order_by("id"))
        ),
        25,
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "workspace/activity/log.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "filtering": any(value.strip() for value in query.values()),
        },
    )


@admin_required
def activity_export(request):
    _form, triggers = filtered(request)
    rows = (
        TriggerRecipient.objects.filter(trigger__in=triggers)
        .order_by("trigger__received_at", "trigger_id", "id")
        .values_list(
            "trigger_id",
            "trigger__received_at",
            "trigger__source",
            "trigger__sender",
            "trigger__recruiter__display_name",
            "trigger__status",
            "trigger__reason",
            "email",
            "role",
            "outcome",
            "reason",
            "trigger__structured_problems",
            "trigger__header_defects",
        )
    )

    def lines():
        writer = csv.writer(Echo())
        yield "\ufeff" + writer.writerow(
            [
                "trigger",
                "received_at",
                "source",
                "sender",
                "recruiter",
                "trigger_status",
                "trigger_reason",
                "trigger_reason_text",
                "recipient",
                "role",
                "outcome",
                "reason",
                "reason_text",
                "structured_problems",
                "structured_problems_text",
                "header_defects",
                "header_defects_text",
            ]
        )
        for (
            tid,
            at,
            source,
            sender,
            rec,
            status,
            treason,
            email,
            role,
            outcome,
            reason,
            stored_problems,
            stored_defects,
        ) in rows.iterator(chunk_size=2000):
            problems = structured_problems(stored_problems)
            defects = header_defects(stored_defects)
            yield writer.writerow(
                [
                    safe_cell(v)
                    for v in (
                        tid,
                        at.isoformat(),
                        source,
                        sender,
                        rec or "",
                        status,
                        treason,
                        trigger_reason(treason),
                        email,
                        role,
                        outcome,
                        reason,
                        recipient_reason(reason),
                        ",".join(code for code, _words in problems),
                        " ".join(words for _code, words in problems),
                        ",".join(code for code, _words in defects),
                        " ".join(words for _code, words in defects),
                    )
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="email-sync-activity-{stamp}.csv"'
    return response
