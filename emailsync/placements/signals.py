"""Automatic verification: a review whose placement reference names one of the agency's
placements exactly is verified against it, when the agency opted in."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from emailsync.reviews.models import Review

from .models import Placement, VerificationSettings


@receiver(post_save, sender=Review, dispatch_uid="placements.auto_verify")
def auto_verify(sender, instance: Review, raw=False, **kwargs):
    if (
        raw
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
    if placement is not None:
        instance.verify(placement, by=None)
