from django.contrib import admin

from .models import Placement, PlacementImport


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["candidate_name", "client_company", "external_ref", "start_date", "agency"]
    search_fields = ["candidate_name", "client_company", "external_ref", "agency__name"]
    raw_id_fields = ["agency", "recruiter", "created_by"]


@admin.register(PlacementImport)
class PlacementImportAdmin(admin.ModelAdmin):
    list_display = ["agency", "filename", "status", "processed_rows", "total_rows", "created_at"]
    exclude = ["content"]
    readonly_fields = ["errors"]
    raw_id_fields = ["agency", "created_by"]
