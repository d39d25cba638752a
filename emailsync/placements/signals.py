"""Automatic verification: a review whose placement reference names one of the agency's
placements exactly is verified against it, when the agency opted in.

Only when the review first reaches Missing Verification: as it is stored (a request link's
review) or when its reviewer confirms it (a recruiter link's review). An admin's undo also puts a
review back in Missing Verification, precisely so that it can be looked at again or rejected; a
reviewer's edit saves it there too. Neither may verify it behind the admin's back.
"""

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from emailsync.reviews.models import Review

from .models import Placement, VerificationSettings


@receiver(pre_save, sender=Review, dispatch_uid="placements.auto_verify_due")
def note_first_arrival(sender, instance: Review, raw=False, **kwargs):
    """Whether this save is the review's arrival in Missing Verification (see auto_verify)."""
    instance._auto_verify_due = False
    if (
        raw
        or instance.status != Review.Status.MISSING_VERIFICATION
        or instance.verified_at is not None
        or instance.rejected_at is not None
    ):
        return
    if instance._state.adding:
        instance._auto_verify_due = True
        return
    before = Review.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    instance._auto_verify_due = before in (None, Review.Status.UNCONFIRMED)


@receiver(post_save, sender=Review, dispatch_uid="placements.auto_verify")
def auto_verify(sender, instance: Review, raw=False, **kwargs):
    due, instance._auto_verify_due = getattr(instance, "_auto_verify_due", False), False
    if (
        raw
        or not due
        or instance.status != Review.Status.MISSING_VERIFICATION
        or instance.placement_id
        or not instance.placement_ref
    ):
        return
    if not VerificationSettings.objects.filter(
        agency_id=instance.agency_id, auto_verify_exact_ref=True
    ).exists():
        return
    placement = Placement.objects.filter(
        agency_id=instance.agency_id, external_ref=instance.placement_ref
    ).first()
    if placement is not None and not placement.names_someone_else(instance.reviewer_email):
        instance.verify(placement, by=None)
