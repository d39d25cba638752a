"""Public profiles: what is shown about an agency and its recruiters, and what keeps it honest.

A review is *public* when its status is verified and no operator has hidden it (a `Moderation`
row exists only while a review is hidden). Nothing else is ever shown, counted or aggregated.

`AgencyRating` / `RecruiterRating` hold the aggregates the pages, the widget and the directory
read. They are recomputed for one agency (and its affected recruiters) whenever a review or a
moderation changes (see `signals.py`), never per page view; `emailsync profiles check-aggregates`
compares them with a from-scratch recomputation.
"""

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.reviews.models import Review

REPLY_MAX = 2000


def public_reviews(queryset=None):
    """Verified and not hidden: the only reviews that may appear anywhere public.

    "Not hidden" is a NOT EXISTS on the moderation row (an anti-join through its unique index),
    so a page's ordered, limited scan of verified reviews never reads the whole moderation table.
    """
    queryset = Review.objects.all() if queryset is None else queryset
    hidden = Moderation.objects.filter(review_id=OuterRef("pk"))
    return queryset.filter(~Exists(hidden), status=Review.Status.VERIFIED)


def one_decimal(total: int, count: int) -> float | None:
    """`total / count` to one decimal, halves rounded up as people expect (17 stars from 4
    reviews is 4.3), which float rounding does not do (round(4.25, 1) is 4.2)."""
    if not count:
        return None
    return (total * 20 + count) // (2 * count) / 10


class ReviewReply(models.Model):
    """The agency's one public reply to a review; edits and removals are in the audit log."""

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="reply")
    text = models.TextField(max_length=REPLY_MAX)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "review replies"

    def __str__(self) -> str:
        return f"Reply to review {self.review_id}"


class Moderation(models.Model):
    """An operator hid this review from every public place. Deleting the row shows it again."""

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="moderation")
    hidden_at = models.DateTimeField(default=timezone.now)
    hidden_reason = models.CharField(
        max_length=300, help_text=_("Shown to the agency. Be factual; it is not shown publicly.")
    )
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "hidden review"
        verbose_name_plural = "hidden reviews"
        ordering = ["-hidden_at"]

    def __str__(self) -> str:
        return f"Review {self.review_id} hidden"


class ReviewReport(models.Model):
    """A visitor's report about a public review, waiting in the operators' moderation queue."""

    class Reason(models.TextChoices):
        FAKE = "fake", _("It is fake or not about a real placement")
        OFFENSIVE = "offensive", _("It is abusive, hateful or offensive")
        PERSONAL = "personal", _("It reveals someone's personal information")
        CONFLICT = "conflict", _("It was written by someone with a conflict of interest")
        OTHER = "other", _("Something else")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        HIDDEN = "hidden", _("Review hidden")
        DISMISSED = "dismissed", _("Dismissed")

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.TextField(max_length=2000, blank=True)
    contact_email = models.EmailField(blank=True, help_text=_("Optional, never shown."))
    client_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="report_queue")]

    def __str__(self) -> str:
        return f"Report on review {self.review_id} ({self.get_reason_display()})"


class Rating(models.Model):
    """Aggregates of public reviews. `score` is the Bayesian average, `rank` the directory order
    (score less a recency penalty); both are defined in `aggregates.py` and docs/PROFILES.md."""

    count = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    star_1 = models.PositiveIntegerField(default=0)
    star_2 = models.PositiveIntegerField(default=0)
    star_3 = models.PositiveIntegerField(default=0)
    star_4 = models.PositiveIntegerField(default=0)
    star_5 = models.PositiveIntegerField(default=0)
    candidate_count = models.PositiveIntegerField(default=0)
    candidate_total = models.PositiveIntegerField(default=0)
    client_count = models.PositiveIntegerField(default=0)
    client_total = models.PositiveIntegerField(default=0)
    last_review_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(default=0)
    rank = models.FloatField(default=0)
    # Anything shown on the page changed (a review, a reply, the agency's or recruiter's details):
    # the pages' Last-Modified and ETag.
    changed_at = models.DateTimeField(default=timezone.now)

    FIELDS = (
        "count",
        "total",
        "star_1",
        "star_2",
        "star_3",
        "star_4",
        "star_5",
        "candidate_count",
        "candidate_total",
        "client_count",
        "client_total",
        "last_review_at",
        "score",
        "rank",
    )

    class Meta:
        abstract = True

    @property
    def average(self) -> float | None:
        return one_decimal(self.total, self.count)

    @property
    def candidate_average(self) -> float | None:
        return one_decimal(self.candidate_total, self.candidate_count)

    @property
    def client_average(self) -> float | None:
        return one_decimal(self.client_total, self.client_count)

    def stars(self) -> list[tuple[int, int, int]]:
        """(stars, count, percent of all) from 5 down to 1, for the bars."""
        return [
            (n, c, round(100 * c / self.count) if self.count else 0)
            for n, c in ((n, getattr(self, f"star_{n}")) for n in range(5, 0, -1))
        ]

    def values(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}


class AgencyRating(Rating):
    agency = models.OneToOneField(
        Agency, primary_key=True, on_delete=models.CASCADE, related_name="rating"
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["-rank", "-count", "agency"],
                condition=Q(count__gt=0),
                name="agency_rating_directory",
            ),
            models.Index(fields=["changed_at"], name="agency_rating_changed"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}: {self.count} reviews"


class RecruiterRating(Rating):
    recruiter = models.OneToOneField(
        RecruiterProfile, primary_key=True, on_delete=models.CASCADE, related_name="rating"
    )
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="recruiter_ratings")

    def __str__(self) -> str:
        return f"{self.recruiter_id}: {self.count} reviews"


class EmptyRating:
    """Stands in for a rating row that does not exist yet (no public review so far)."""

    count = total = candidate_count = client_count = candidate_total = client_total = 0
    star_1 = star_2 = star_3 = star_4 = star_5 = 0
    last_review_at = None
    score = rank = 0.0
    average = candidate_average = client_average = None
    changed_at = None

    def stars(self):
        return [(n, 0, 0) for n in range(5, 0, -1)]


def rating_of(obj) -> Rating | EmptyRating:
    try:
        return obj.rating
    except (AgencyRating.DoesNotExist, RecruiterRating.DoesNotExist):
        return EmptyRating()
