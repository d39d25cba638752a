import hmac
import re

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from emailsync.outbox.worker import HEARTBEAT_STALE, heartbeat_age

from .metrics import collect_metrics, render_metrics
from .models import DevelopmentMessage
from .outbox import parts


def outbox_enabled(view):
    def wrapper(request, *args, **kwargs):
        if not (settings.DEBUG and settings.DEVELOPMENT_OUTBOX):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@outbox_enabled
def outbox(request):
    page = Paginator(DevelopmentMessage.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "operations/outbox.html", {"page": page})


@outbox_enabled
def outbox_message(request, message_id):
    message = get_object_or_404(DevelopmentMessage, pk=message_id)
    bodies = parts(message)
    return render(
        request,
        "operations/outbox_message.html",
        {
            "message": message,
            "text": bodies.get("text/plain", ""),
            "has_html": "text/html" in bodies,
        },
    )


@outbox_enabled
def outbox_html(request, message_id):
    message = get_object_or_404(DevelopmentMessage, pk=message_id)
    html = parts(message).get("text/html")
    if html is None:
        raise Http404
    # Links open outside the preview frame (our pages refuse to be framed), as in a mail client.
    html = re.sub(
        r"(?i)<head(\s[^>]*)?>", lambda m: m.group(0) + '<base target="_blank">', html, count=1
    )
    if '<base target="_blank">' not in html:
        html = '<base target="_blank">' + html
    response = HttpResponse(html)
    # Emails carry inline styles; scripts stay off and the page may only be framed by ourselves.
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'self'"
    )
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response


@outbox_enabled
def outbox_text(request, message_id):
    message = get_object_or_404(DevelopmentMessage, pk=message_id)
    return HttpResponse(
        parts(message).get("text/plain", ""), content_type="text/plain; charset=utf-8"
    )


def health(request):
    """Liveness for load balancers: the database answers (one query, which also reads the
    newest worker heartbeat).

    The worker's state is reported (`worker: ok` when one went round its loop within the last
    60 s, else `stale`) but only fails the check with `?strict=1`: a web server is healthy
    without a worker, and `emailsync serve` waits for /health before its worker need be up.
    """
    try:
        age = heartbeat_age()
    except Exception:  # any database failure means "not healthy", whatever its class
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    worker_ok = age is not None and age < HEARTBEAT_STALE
    body = {
        "status": "ok",
        "database": "ok",
        "worker": "ok" if worker_ok else "stale",
        "worker_heartbeat_age_seconds": None if age is None else round(age.total_seconds(), 1),
    }
    if not worker_ok and request.GET.get("strict") in ("1", "true", "yes"):
        body["status"] = "error"
        return JsonResponse(body, status=503)
    return JsonResponse(body)


def metrics(request):
    """Operational figures in Prometheus' text format, for a bearer token from the environment
    (`EMAILSYNC_METRICS_TOKEN`); without one configured the endpoint does not exist."""
    token = settings.EMAILSYNC_METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(
        render_metrics(collect_metrics()), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
    response["Cache-Control"] = "no-store"
    return response
