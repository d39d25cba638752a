"""The operators' moderation queue: visitors' reports, hiding a review with a reason the agency
sees, and showing it again. Every hide and unhide is also written to the agency's audit log."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone

from .models import AgencyRating, Moderation, RecruiterRating, ReviewReply, ReviewReport


def hide(review, reason: str, by) -> bool:
    """Hide one review (idempotent). Returns whether it was newly hidden."""
    with transaction.atomic():
        _, created = Moderation.objects.get_or_create(
            review=review, defaults={"hidden_reason": reason, "hidden_by": by}
        )
        if created:
            review.agency.record(by, "review.hidden", f"review {review.pk}", reason=reason)
    return created


def unhide(moderation, by) -> None:
    with transaction.atomic():
        review = moderation.review
        moderation.delete()
        review.agency.record(by, "review.unhidden", f"review {review.pk}")


class HideForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the agency, not to the public.",
    )


@admin.register(ReviewReport)
class ReviewReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "review", "agency_name", "reason", "status", "rating", "excerpt"]
    list_filter = ["status", "reason"]
    search_fields = ["review__agency__name", "detail"]
    readonly_fields = [
        "review",
        "reason",
        "detail",
        "contact_email",
        "client_hash",
        "created_at",
        "handled_at",
        "handled_by",
        "review_text",
    ]
    fields = readonly_fields[:-1] + ["status", "review_text"]
    actions = ["hide_reviews", "dismiss"]
    list_select_related = ["review__agency"]

    @admin.display(description="agency")
    def agency_name(self, obj):
        return obj.review.agency.name

    @admin.display(description="rating")
    def rating(self, obj):
        return obj.review.rating

    @admin.display(description="review")
    def excerpt(self, obj):
        return obj.review.text[:120]

    @admin.display(description="review text")
    def review_text(self, obj):
        return obj.review.text

    def has_add_permission(self, request):
        return False

    @admin.action(description="Hide the reported reviews (asks for a reason)")
    def hide_reviews(self, request, queryset):
        form = HideForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            now, hidden = timezone.now(), 0
            for report in queryset.select_related("review__agency"):
                hidden += hide(report.review, form.cleaned_data["reason"], request.user)
            for_reviews = ReviewReport.objects.filter(
                review__in=queryset.values("review"), status=ReviewReport.Status.OPEN
            )
            for_reviews.update(
                status=ReviewReport.Status.HIDDEN, handled_at=now, handled_by=request.user
            )
            self.message_user(request, f"Hid {hidden} review(s).", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/profiles/hide_reviews.html",
            {
                **self.admin_site.each_context(request),
                "title": "Hide reviews",
                "form": form,
                "reports": queryset.select_related("review__agency"),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Dismiss the selected reports")
    def dismiss(self, request, queryset):
        n = queryset.filter(status=ReviewReport.Status.OPEN).update(
            status=ReviewReport.Status.DISMISSED, handled_at=timezone.now(), handled_by=request.user
        )
        self.message_user(request, f"Dismissed {n} report(s).", messages.SUCCESS)


@admin.register(Moderation)
class ModerationAdmin(admin.ModelAdmin):
    list_display = ["review", "hidden_at", "hidden_by", "hidden_reason"]
    search_fields = ["review__agency__name", "hidden_reason"]
    raw_id_fields = ["review"]
    readonly_fields = ["hidden_at", "hidden_by"]
    actions = ["show_again"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.hidden_by = request.user
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            action = "review.hidden_reason_changed" if change else "review.hidden"
            obj.review.agency.record(
                request.user, action, f"review {obj.review_id}", reason=obj.hidden_reason
            )

    def delete_model(self, request, obj):
        unhide(obj, request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("review__agency"):
            unhide(obj, request.user)

    @admin.action(description="Show the selected reviews again")
    def show_again(self, request, queryset):
        n = 0
        for obj in queryset.select_related("review__agency"):
            unhide(obj, request.user)
            n += 1
        self.message_user(request, f"{n} review(s) are public again.", messages.SUCCESS)


@admin.register(ReviewReply)
class ReviewReplyAdmin(admin.ModelAdmin):
    list_display = ["review", "author", "updated_at"]
    raw_id_fields = ["review", "author"]


class RatingAdmin(admin.ModelAdmin):
    readonly_fields = [f.name for f in AgencyRating._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AgencyRating)
class AgencyRatingAdmin(RatingAdmin):
    list_display = ["agency", "count", "average", "score", "rank", "changed_at"]
    search_fields = ["agency__name"]


@admin.register(RecruiterRating)
class RecruiterRatingAdmin(RatingAdmin):
    list_display = ["recruiter", "agency", "count", "average", "score", "changed_at"]
    readonly_fields = [f.name for f in RecruiterRating._meta.fields]
