"""django-anymail's webhook URLs (inbound mail, delivery events), open only once the operator
has set ANYMAIL_WEBHOOK_SECRET.

anymail checks the secret when one is set, but with none it accepts every post and only warns:
a stranger could then mark any address bounced (so it is never asked again, by any agency) or
post a message as if an ESP had received it. Each view here refuses with 503 until the secret
is set: an ESP keeps retrying a 503 (Postmark gives up at once on a 403), so mail posted while
the operator sets the secret up is delivered afterwards. The check runs per request, so a
deployment that adds the secret needs no other change.
"""

import functools
import logging

from anymail import urls as anymail_urls
from django.conf import settings
from django.http import JsonResponse
from django.urls import URLPattern

from .esp import FloodLimited

log = logging.getLogger("emailsync.esp")


def secret_configured() -> bool:
    return bool((getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"))


def requires_webhook_secret(view):
    @functools.wraps(view)  # keeps anymail's csrf_exempt
    def guarded(request, *args, **kwargs):
        if not secret_configured():
            log.warning("ESP webhook %s refused: ANYMAIL_WEBHOOK_SECRET is not set", request.path)
            return JsonResponse(
                {
                    "error": "webhooks_not_configured",
                    "detail": "ESP webhooks are off until ANYMAIL_WEBHOOK_SECRET is set.",
                },
                status=503,
            )
        try:
            return view(request, *args, **kwargs)
        except FloodLimited as limited:
            log.warning("ESP webhook %s: %s; answering 503", request.path, limited)
            response = JsonResponse(
                {
                    "error": "rate_limited",
                    "detail": "Too many emails for this address this hour; try again later.",
                },
                status=503,
            )
            response["Retry-After"] = str(RETRY_AFTER)
            return response

    return guarded


RETRY_AFTER = 600  # seconds: an hourly limit frees up gradually


urlpatterns = [
    URLPattern(p.pattern, requires_webhook_secret(p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
]
