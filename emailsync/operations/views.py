import re

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

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
    """Liveness for load balancers: the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy", whatever its class
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
