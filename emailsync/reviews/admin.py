from django.contrib import admin

from .models import Review


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["agency", "recruiter", "rating", "status", "submitted_at"]
    list_filter = ["status", "rating"]
    search_fields = ["agency__name", "recruiter__display_name", "placement_ref"]
    raw_id_fields = ["review_request", "recruiter", "agency"]
    readonly_fields = ["submitted_at", "updated_at", "confirmed_at", "admins_notified_at"]
