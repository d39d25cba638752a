"""Unsubscribe: one click, honoured by every agency on the platform, and undoable.

- `POST /unsubscribe/<token>/` is RFC 8058 one-click: no login, no CSRF token (mail providers post
  `List-Unsubscribe=One-Click` from their own servers), idempotent.
- `GET` only shows a page with a confirm button: link scanners and previews fetch URLs, and must
  never unsubscribe anyone.
- The same page offers "undo" after an unsubscribe, which lifts only a suppression the person made
  themselves (never a bounce or a spam complaint).
- `mailto:unsubscribe-<request id>-<mac>@<inbound domain>` is the other List-Unsubscribe method;
  the SMTP listener calls `process_unsubscribe_mail` for it.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .bounces import signed_local_part, suppress_address, verify_local_part
from .models import ReviewRequest, Suppression

log = logging.getLogger("emailsync.unsubscribe")


def unsubscribe_path(request: ReviewRequest) -> str:
    return reverse("unsubscribe", args=[request.token])


def unsubscribe_url(request: ReviewRequest) -> str:
    return settings.EMAILSYNC_PUBLIC_URL + unsubscribe_path(request)


def unsubscribe_local_part(request: ReviewRequest) -> str:
    return signed_local_part("unsubscribe", request.pk)


def unsubscribe_mailto(request: ReviewRequest) -> str:
    local = unsubscribe_local_part(request)
    return f"mailto:{local}@{settings.EMAILSYNC_INBOUND_DOMAIN}?subject=unsubscribe"


def verify_unsubscribe_local(local: str) -> int | None:
    """The review request id in an unsubscribe address's local part, or None if not genuine."""
    return verify_local_part("unsubscribe", local)


def unsubscribe_request(request: ReviewRequest) -> bool:
    """Suppress the request's address everywhere; True if it was not suppressed before."""
    with transaction.atomic():
        existed = Suppression.for_address(request.email).exists()
        suppress_address(request.email, Suppression.Reason.UNSUBSCRIBED)
        if request.status not in {ReviewRequest.Status.COMPLETED, ReviewRequest.Status.CANCELLED}:
            request.status_reason = "Unsubscribed"
            request.save(update_fields=["status_reason"])
    if not existed:
        log.info("unsubscribed via request %s", request.pk)
    return not existed


def undo_unsubscribe(request: ReviewRequest) -> bool:
    """Lift the person's own unsubscribe; bounces and complaints stay."""
    deleted, _ = (
        Suppression.for_address(request.email)
        .filter(reason=Suppression.Reason.UNSUBSCRIBED)
        .delete()
    )
    if deleted and request.status_reason == "Unsubscribed":
        request.status_reason = ""
        request.save(update_fields=["status_reason"])
    return bool(deleted)


def process_unsubscribe_mail(local: str) -> str:
    """For mail to `unsubscribe-<id>-<mac>@<inbound domain>`; returns a short outcome."""
    request_id = verify_unsubscribe_local(local)
    if request_id is None:
        return "rejected: bad signature"
    request = ReviewRequest.objects.filter(pk=request_id).first()
    if request is None:
        return "ignored: unknown request"
    unsubscribe_request(request)
    return "unsubscribed"


def suppression_state(request: ReviewRequest) -> str:
    """Why the request's address is suppressed, or ''. With two suppressions (its own and its
    mailbox's), one the person cannot undo (a bounce, a complaint) is the one that counts."""
    reasons = set(Suppression.for_address(request.email).values_list("reason", flat=True))
    lasting = sorted(reasons - {Suppression.Reason.UNSUBSCRIBED})
    return lasting[0] if lasting else ("unsubscribed" if reasons else "")


@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(http_request, token: str):
    review_request = (
        ReviewRequest.objects.select_related("agency").filter(token=token).first()
        if len(token) <= 64
        else None
    )
    if review_request is None:
        raise Http404
    done = ""
    if http_request.method == "POST":
        if http_request.POST.get("action") == "undo":
            undo_unsubscribe(review_request)
            done = "resubscribed"
        else:  # the confirm button, or an RFC 8058 one-click POST from a mail provider
            unsubscribe_request(review_request)
            done = "unsubscribed"
    state = suppression_state(review_request)
    return render(
        http_request,
        "review_requests/unsubscribe.html",
        {
            "brand": review_request.agency,  # the reviewer pages' look: the agency's name, logo
            "address": review_request.email,
            "token": review_request.token,
            "state": state,
            "done": done,
            "can_undo": state == Suppression.Reason.UNSUBSCRIBED,
        },
    )


urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
]
