"""Where webhook events come from: small receivers on the models' saves and the worker's marks.

Each receiver runs inside the transaction that made the change, so the delivery rows commit (or
roll back) with it. Receivers look at `update_fields` and the status before touching the
database, so unrelated saves cost nothing.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver

from emailsync.outbox.worker import requests_sent
from emailsync.review_requests.models import ReviewRequest
from emailsync.reviews.models import Review

from . import serializers
from .models import WebhookEndpoint
from .webhooks import emit


def _changed(update_fields, *names) -> bool:
    return update_fields is not None and any(n in update_fields for n in names)


def review_event(review: Review, created: bool, update_fields) -> str | None:
    status = review.status
    if status == Review.Status.MISSING_VERIFICATION and (
        created or _changed(update_fields, "confirmed_at")
    ):
        return "review.submitted"
    if status == Review.Status.VERIFIED and _changed(update_fields, "verified_at"):
        return "review.verified"
    if (
        status == Review.Status.REJECTED
        and review.rejected_at is not None
        and _changed(update_fields, "rejected_at")
    ):
        return "review.rejected"
    return None


@receiver(post_save, sender=Review, dispatch_uid="emailsync.api.review_events")
def on_review_saved(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if raw:
        return
    event = review_event(instance, created, update_fields)
    if event:
        emit(instance.agency, event, serializers.review(instance))


@receiver(post_save, sender=ReviewRequest, dispatch_uid="emailsync.api.request_events")
def on_request_saved(sender, instance, created, update_fields=None, raw=False, **kwargs):
    if raw or instance.status != ReviewRequest.Status.BOUNCED:
        return
    if created or _changed(update_fields, "status"):
        emit(instance.agency, "request.bounced", serializers.review_request(instance))


@receiver(requests_sent, dispatch_uid="emailsync.api.requests_sent")
def on_requests_sent(sender, request_ids, **kwargs):
    if not WebhookEndpoint.objects.filter(
        active=True, agency__review_requests__id__in=request_ids
    ).exists():
        return
    rows = ReviewRequest.objects.filter(id__in=request_ids).select_related(
        "agency", "recruiter__user"
    )
    for rr in rows:
        emit(rr.agency, "request.sent", serializers.review_request(rr))
