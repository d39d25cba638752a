"""Keep the aggregates equal to the reviews, whichever code path changed a review.

Receivers on `reviews.Review` and on `Moderation` recompute the one agency's row and the affected
recruiters' rows in the same transaction as the change. A review moved to another recruiter
refreshes both. Changes that bypass signals (`QuerySet.update`, raw SQL) are caught by
`emailsync profiles check-aggregates --repair`.

Replies and edits to an agency's or recruiter's public details only bump `changed_at`, so cached
pages revalidate.
"""

import threading

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from emailsync.agencies.models import Agency, RecruiterProfile, User
from emailsync.reviews.models import Review

from . import aggregates
from .models import Moderation, ReviewReply

# Fields of a review that no public number or page depends on: saving only these is free.
PRIVATE_FIELDS = {"admins_notified_at", "updated_at", "editable_until", "confirmed_at"}

# Agencies being deleted in this thread: their rows go with them (Django sends every pre_delete
# before it deletes anything), so the cascade's own signals must not recreate rating rows.
_going = threading.local()


def _is_going(agency_id) -> bool:
    return agency_id in getattr(_going, "ids", set())


@receiver(pre_delete, sender=Agency)
def agency_going(sender, instance, **kwargs):
    if not hasattr(_going, "ids"):
        _going.ids = set()
    _going.ids.add(instance.pk)


@receiver(post_delete, sender=Agency)
def agency_gone(sender, instance, **kwargs):
    getattr(_going, "ids", set()).discard(instance.pk)


@receiver(pre_save, sender=Review)
def remember_previous_keys(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None:
        instance._profiles_previous = None
        return
    instance._profiles_previous = (
        Review.objects.filter(pk=instance.pk).values_list("agency_id", "recruiter_id").first()
    )


@receiver(post_save, sender=Review)
def review_saved(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    if update_fields is not None and set(update_fields) <= PRIVATE_FIELDS:
        return
    if created and instance.status != Review.Status.VERIFIED:
        return  # a new unverified review changes nothing public
    previous = getattr(instance, "_profiles_previous", None)
    recruiters = {instance.recruiter_id}
    if previous and previous[0] != instance.agency_id:
        aggregates.refresh(previous[0], {previous[1]})
    elif previous:
        recruiters.add(previous[1])
    aggregates.refresh(instance.agency_id, recruiters)


@receiver(post_delete, sender=Review)
def review_deleted(sender, instance, **kwargs):
    if not _is_going(instance.agency_id):
        aggregates.refresh(instance.agency_id, {instance.recruiter_id})


def _moderation_changed(instance):
    review = Review.objects.filter(pk=instance.review_id).values("agency_id", "recruiter_id")
    review = review.first()
    if review is not None and not _is_going(review["agency_id"]):
        aggregates.refresh(review["agency_id"], {review["recruiter_id"]})


@receiver(post_save, sender=Moderation)
def moderation_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        _moderation_changed(instance)


@receiver(post_delete, sender=Moderation)
def moderation_deleted(sender, instance, **kwargs):
    _moderation_changed(instance)


def _reply_changed(instance):
    review = Review.objects.filter(pk=instance.review_id).values("agency_id", "recruiter_id")
    review = review.first()
    if review is not None and not _is_going(review["agency_id"]):
        aggregates.touch(review["agency_id"], {review["recruiter_id"]})


@receiver(post_save, sender=ReviewReply)
def reply_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        _reply_changed(instance)


@receiver(post_delete, sender=ReviewReply)
def reply_deleted(sender, instance, **kwargs):
    _reply_changed(instance)


@receiver(post_save, sender=Agency)
def agency_saved(sender, instance, created, raw=False, **kwargs):
    if not raw and not created:
        aggregates.touch(instance.pk)


@receiver(post_save, sender=RecruiterProfile)
def recruiter_saved(sender, instance, created, raw=False, **kwargs):
    if not raw:
        aggregates.touch(instance.agency_id, {instance.pk})


@receiver(post_save, sender=User)
def member_saved(sender, instance, created, raw=False, update_fields=None, **kwargs):
    # Joining, leaving or being renamed changes the agency page's list of recruiters.
    if raw or created or not instance.agency_id:
        return
    if update_fields is not None and not {"is_active", "agency", "full_name", "role"} & set(
        update_fields
    ):
        return
    profile = RecruiterProfile.objects.filter(user=instance).values_list("pk", flat=True).first()
    aggregates.touch(instance.agency_id, {profile} if profile else ())
