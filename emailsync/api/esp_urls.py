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
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError
from django.http import JsonResponse
from django.urls import URLPattern

from emailsync.operations.outages import NotRecorded, first_line

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
        except NotRecorded:
            # Ours to fix; the ESP retries a 5xx, and the mail is recorded once we can.
            log.exception("ESP webhook %s: not recorded; answering 500", request.path)
            return JsonResponse(
                {"error": "not_recorded", "detail": "Not recorded here; please retry."},
                status=500,
            )
        except DatabaseError:  # a delivery event when the database is down: retry later
            log.warning("ESP webhook %s: database unavailable; answering 503", request.path)
            return JsonResponse({"error": "unavailable", "detail": "Try again later."}, status=503)
        except SuspiciousOperation:
            raise  # anymail's own refusals (a bad signature): Django answers 400
        except Exception as exc:
            if not malformed(exc):
                raise
            # Raised while anymail read the post (our receivers raise NotRecorded): not JSON,
            # its fields missing. A clear 400, not a server error page retried for days.
            log.warning(
                "ESP webhook %s: malformed payload (%s: %s)",
                request.path,
                type(exc).__name__,
                first_line(exc)[:200],
            )
            return JsonResponse(
                {
                    "error": "malformed_payload",
                    "detail": "The request body is not this provider's webhook format.",
                },
                status=400,
            )

    return guarded


RETRY_AFTER = 600  # seconds: an hourly limit frees up gradually
# What reading a post that is not the ESP's format raises (JSONDecodeError and
# UnicodeDecodeError are ValueErrors). Anything else (anymail's configuration, a fetch from the
# ESP failing) stays a 500 with its traceback: the ESP retries, and the operator sees why.
MALFORMED = (ValueError, KeyError, IndexError, TypeError)


def malformed(exc: BaseException) -> bool:
    # anymail wraps some of them (SES: "Malformed SNS message body", from the JSON error).
    return isinstance(exc, MALFORMED) or isinstance(exc.__cause__, MALFORMED)


urlpatterns = [
    URLPattern(p.pattern, requires_webhook_secret(p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
]
