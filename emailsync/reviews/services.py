"""What happens when a reviewer submits, edits or confirms: the rules, apart from the pages.

Every change runs in one transaction with the request row locked, so a double click, two tabs or
a replayed POST can neither create two reviews nor complete a request twice. The outbox rows that
tell the agency's admins (or ask the reviewer to confirm) are written in the same transaction: a
review exists if and only if its notification is queued.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import Truncator

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.outbox.models import OutboundEmail, email_admins, enqueue
from emailsync.review_requests.models import (
    AskedRecipient,
    EmailSyncSettings,
    ReviewRequest,
    Source,
    Suppression,
    address_hash,
)
from emailsync.throttling.models import Counter

from .models import EDIT_WINDOW, Review

log = logging.getLogger(__name__)

# How long a recruiter-link reviewer has to click the confirmation link.
CONFIRM_DAYS = 7
# Confirmation emails one address may receive per day (stops us being used to pester someone).
CONFIRMATIONS_PER_ADDRESS = 3
# Requests that can still be answered; anything else is closed (cancelled, bounced, …).
ANSWERABLE = {
    ReviewRequest.Status.SCHEDULED,
    ReviewRequest.Status.SENT,
    ReviewRequest.Status.OPENED,
    ReviewRequest.Status.REMINDED,
}
DIGEST_INTERVAL = timedelta(hours=23)  # "daily", with slack for a job that runs a little early
DUPLICATE_REASON = "duplicate: this agency already asked this reviewer within its dedupe window"
COLLEAGUE_REASON = "colleague: the address belongs to the agency (its domain or a member)"


class AlreadyReviewed(Exception):
    """The request already has its review; submissions are single-use."""


class NotEditable(Exception):
    """The review's 24-hour edit window has closed (or it has been verified or rejected)."""


def request_state(rr: ReviewRequest, now=None) -> str:
    """`open`, `expired` or `closed` for a request that has no review yet."""
    now = now or timezone.now()
    if rr.status == ReviewRequest.Status.EXPIRED or (rr.expires_at and rr.expires_at <= now):
        return "expired"
    if rr.status not in ANSWERABLE:
        return "closed"
    return "open"


def mark_opened(rr: ReviewRequest, now=None) -> None:
    """The reviewer opened the link: note when (once), and move a sent request to *opened*."""
    now = now or timezone.now()
    ReviewRequest.objects.filter(pk=rr.pk, opened_at__isnull=True).update(opened_at=now)
    ReviewRequest.objects.filter(
        pk=rr.pk, status__in=[ReviewRequest.Status.SENT, ReviewRequest.Status.REMINDED]
    ).update(status=ReviewRequest.Status.OPENED)


def _review_fields(data: dict) -> dict:
    return {
        "rating": data["rating"],
        "text": data["text"],
        "role": data["role"],
        "reviewer_name": data.get("reviewer_name", ""),
        "display_name_choice": data["display_name_choice"],
        "recommend": data["recommend"],
        "consent": data["consent"],
    }


def same_review(review: Review, data: dict) -> bool:
    """Whether `data` (a valid review form's) would store exactly what `review` holds: every
    field, the name shown included, so a change to it is never taken for a repeat."""
    return all(getattr(review, field) == value for field, value in _review_fields(data).items())


def submit(rr: ReviewRequest, data: dict, now=None) -> Review:
    """Store the one review a request may have; the request becomes completed."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            locked = ReviewRequest.objects.select_for_update().get(pk=rr.pk)
            if Review.objects.filter(review_request=locked).exists():
                raise AlreadyReviewed
            review = Review.objects.create(
                agency_id=locked.agency_id,
                review_request=locked,
                recruiter_id=locked.recruiter_id,
                placement_ref=locked.placement_ref,
                reviewer_email=locked.email,
                status=Review.Status.MISSING_VERIFICATION,
                submitted_at=now,
                updated_at=now,
                editable_until=now + EDIT_WINDOW,
                confirmed_at=now,  # the link came to their mailbox: already proven
                **_review_fields(data),
            )
            locked.status = ReviewRequest.Status.COMPLETED
            locked.completed_at = now
            locked.opened_at = locked.opened_at or now
            locked.save(update_fields=["status", "completed_at", "opened_at"])
            notify_admins(review, now)
    except IntegrityError:
        # The one-to-one key caught a concurrent submission the lock could not (SQLite).
        raise AlreadyReviewed
    return review


def update(review: Review, data: dict, now=None) -> Review:
    """Change a review inside its edit window."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Review.objects.select_for_update().get(pk=review.pk)
        if not locked.editable(now):
            raise NotEditable
        for field, value in _review_fields(data).items():
            setattr(locked, field, value)
        locked.updated_at = now
        locked.save()
    return locked


@dataclass(frozen=True)
class LinkSubmission:
    review_request: ReviewRequest | None  # None when the address may not be emailed again today


def submit_via_link(
    agency: Agency, recruiter: RecruiterProfile, data: dict, now=None
) -> LinkSubmission:
    """A review from a recruiter's own link: kept unconfirmed, and a confirmation link emailed.

    The page says "check your email" whatever happens here, so it reveals nothing about the
    address (whether it was asked before, unsubscribed, or is being flooded).
    """
    now = now or timezone.now()
    email = data["email"]
    gate = Counter.hit(
        f"reviews:confirm-mail:{address_hash(email)}", CONFIRMATIONS_PER_ADDRESS, 24 * 3600, now
    )
    if not gate.allowed:
        log.info("recruiter-link review dropped: confirmation limit for one address reached")
        return LinkSubmission(None)
    with transaction.atomic():
        rr = ReviewRequest(
            agency=agency,
            source=Source.RECRUITER_LINK,
            email=email,
            name=data.get("reviewer_name", "")[:120],
            role=data["role"],
            recruiter=recruiter,
            status=ReviewRequest.Status.OPENED,
            created_at=now,
            send_after=now,
            deadline=now,
            opened_at=now,
            expires_at=now + timedelta(days=CONFIRM_DAYS),
        )
        rr.save()
        Review.objects.create(
            agency=agency,
            review_request=rr,
            recruiter=recruiter,
            reviewer_email=email,
            status=Review.Status.UNCONFIRMED,
            submitted_at=now,
            updated_at=now,
            editable_until=now + EDIT_WINDOW,
            **_review_fields(data),
        )
        if _may_email(email):
            enqueue(
                OutboundEmail.Kind.NOTIFICATION,
                to_email=email,
                to_name=rr.name,
                template="review_confirm",
                context={
                    "confirm_url": absolute(reverse("review-confirm", args=[rr.token])),
                    "agency_name": agency.name,
                    "recruiter_name": recruiter.display_name,
                    "confirm_days": CONFIRM_DAYS,
                },
                agency=agency,
                review_request=rr,
                dedupe_key=f"review-confirm:{rr.pk}",
            )
    return LinkSubmission(rr)


def _may_email(email: str) -> bool:
    """The reviewer asked for this email, so an unsubscribe does not stop it; a hard bounce or
    a spam complaint does (sending there again would hurt every agency's deliverability)."""
    blocked = {Suppression.Reason.BOUNCED, Suppression.Reason.COMPLAINED}
    return not Suppression.for_address(email).filter(reason__in=blocked).exists()


@dataclass(frozen=True)
class Confirmation:
    outcome: str  # confirmed | already | duplicate | colleague | expired
    review: Review


def is_colleague(agency_id: int, email: str) -> bool:
    """The address is a member's or on one of the agency's domains (Email Sync's exclusion):
    a recruiter link may not be used to review yourself or your own agency."""
    from emailsync.inbound import recipients as rules
    from emailsync.inbound.facts import AgencyFacts

    facts = AgencyFacts.load(agency_id)
    reason = rules.exclusion(
        email.strip().lower(),
        sender="",
        inbound_domain=settings.EMAILSYNC_INBOUND_DOMAIN.lower(),
        agency_domains=facts.domains,
        member_emails=facts.member_emails,
    )
    return reason == rules.COLLEAGUE


def confirm(rr: ReviewRequest, now=None) -> Confirmation:
    """The reviewer clicked the emailed link: the review counts, unless the agency already
    asked this address within its dedupe window (by any way), in which case it does not."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=rr.pk)
        review = Review.objects.select_for_update().get(review_request=locked)
        if review.status != Review.Status.UNCONFIRMED:
            outcome = {DUPLICATE_REASON: "duplicate", COLLEAGUE_REASON: "colleague"}.get(
                review.rejected_reason, "already"
            )
            return Confirmation(outcome, review)
        if locked.expires_at and locked.expires_at <= now:
            return Confirmation("expired", review)
        if is_colleague(locked.agency_id, locked.email):
            review.status, review.rejected_reason = Review.Status.REJECTED, COLLEAGUE_REASON
            review.save(update_fields=["status", "rejected_reason"])
            locked.status, locked.status_reason = ReviewRequest.Status.SKIPPED, "colleague"
            locked.save(update_fields=["status", "status_reason"])
            return Confirmation("colleague", review)
        window = timedelta(days=EmailSyncSettings.for_agency(locked.agency).dedupe_days)
        if AskedRecipient.claim(locked.agency_id, locked.email, now, window):
            review.status = Review.Status.MISSING_VERIFICATION
            review.confirmed_at = now
            review.save(update_fields=["status", "confirmed_at"])
            locked.status = ReviewRequest.Status.COMPLETED
            locked.completed_at = now
            locked.save(update_fields=["status", "completed_at"])
            notify_admins(review, now)
            return Confirmation("confirmed", review)
        review.status = Review.Status.REJECTED
        review.rejected_reason = DUPLICATE_REASON
        review.save(update_fields=["status", "rejected_reason"])
        locked.status = ReviewRequest.Status.SKIPPED
        locked.status_reason = "recently_asked"
        locked.save(update_fields=["status", "status_reason"])
        return Confirmation("duplicate", review)


# Notifications to the agency's admins ---------------------------------------------------------


def absolute(path: str) -> str:
    return settings.EMAILSYNC_PUBLIC_URL + path


def review_page_url(review: Review) -> str:
    """Where an admin verifies this one review: its own page, else the Reviews page."""
    try:
        return absolute(reverse("review-verify", args=[review.pk]))
    except NoReverseMatch:
        return reviews_page_url()


def reviews_page_url() -> str:
    """Where an admin goes to verify: the Reviews page once it exists, else the agency home."""
    for name in ("agency-reviews", "agency-home"):
        try:
            return absolute(reverse(name))
        except NoReverseMatch:
            continue
    return settings.EMAILSYNC_PUBLIC_URL


def review_summary(review: Review, excerpt: int = 200) -> dict:
    """Short strings about a review, small enough for an outbox row's JSON context."""
    return {
        "review_id": review.pk,
        "rating": review.rating,
        "stars": "★" * review.rating + "☆" * (5 - review.rating),
        "recruiter_name": review.recruiter.display_name if review.recruiter else "",
        "reviewer": review.display_name,
        "role": review.role,
        "recommend": review.recommend,
        "excerpt": Truncator(review.text).chars(excerpt),
        "placement_ref": review.placement_ref,
    }


def notify_admins(review: Review, now) -> int:
    """Queue the "new review" email to each admin, unless the agency takes a daily digest."""
    mode = EmailSyncSettings.for_agency(review.agency).review_notifications
    if mode != EmailSyncSettings.ReviewNotifications.EACH:
        return 0
    context = {
        **review_summary(review),
        "reviews_url": review_page_url(review),
        "notifications_url": absolute(reverse("review-notifications")),
    }
    queued = email_admins(
        review.agency, "review_received", context, dedupe_key=f"review-received:{review.pk}"
    )
    Review.objects.filter(pk=review.pk).update(admins_notified_at=now)
    review.admins_notified_at = now
    return queued


def send_due_digests(now=None, force: bool = False) -> dict:
    """Queue one digest per admin of each agency with reviews its admins have not heard about.

    Agencies on the daily digest get at most one per `DIGEST_INTERVAL` (unless `force`); reviews
    left unannounced by an agency that switched from digest to "each" go out at once. Safe to run
    from any number of workers: the pending reviews are claimed under a row lock.
    """
    now = now or timezone.now()
    pending = Review.objects.counted().filter(admins_notified_at__isnull=True)
    agencies = Agency.objects.filter(pk__in=pending.values("agency_id"))
    result = {"agencies": 0, "emails": 0, "reviews": 0}
    for agency in agencies:
        mode = EmailSyncSettings.for_agency(agency).review_notifications
        if mode == EmailSyncSettings.ReviewNotifications.DIGEST and not force:
            last = (
                OutboundEmail.objects.filter(agency=agency, template="review_digest")
                .order_by("-created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if last and last > now - DIGEST_INTERVAL:
                continue
        with transaction.atomic():
            reviews = list(
                pending.filter(agency=agency)
                .select_for_update(of=("self",))
                .select_related("recruiter", "agency")
                .order_by("submitted_at", "id")
            )
            if not reviews:
                continue
            Review.objects.filter(pk__in=[r.pk for r in reviews]).update(admins_notified_at=now)
            context = {
                "count": len(reviews),
                "reviews": [review_summary(r, excerpt=120) for r in reviews[:10]],
                "more": max(0, len(reviews) - 10),
                "reviews_url": reviews_page_url(),
                "notifications_url": absolute(reverse("review-notifications")),
            }
            result["emails"] += email_admins(
                agency,
                "review_digest",
                context,
                dedupe_key=f"review-digest:{agency.pk}:{reviews[-1].pk}",
            )
            result["agencies"] += 1
            result["reviews"] += len(reviews)
    return result
