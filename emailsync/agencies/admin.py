from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import (
    Agency,
    AgencyDomain,
    AuditEntry,
    Invitation,
    RecruiterProfile,
    SenderAddress,
    User,
)


class DomainInline(admin.TabularInline):
    model = AgencyDomain
    extra = 0


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "created_at"]
    search_fields = ["name", "slug", "domains__domain"]
    inlines = [DomainInline]

    # An operator's delete is the same as `emailsync agency delete`: locked against the SMTP
    # listener's batches, members' sessions ended, uploaded files removed.
    def delete_model(self, request, obj):
        from emailsync.privacy.agencies import delete_agency

        delete_agency(obj)

    def delete_queryset(self, request, queryset):
        from emailsync.privacy.agencies import delete_agency

        for agency in queryset:
            delete_agency(agency)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "agency", "role", "is_active", "is_staff"]
    list_filter = ["role", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Agency", {"fields": ["agency", "role"]}),
        (
            "Access",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "full_name", "password1", "password2"]})]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The role, agency and active flags are part of the session hash already; bumping the
        # version as well means undoing the change later does not bring old sessions back.
        if change and {"role", "agency", "is_active", "is_staff"} & set(form.changed_data):
            obj.end_other_sessions()


class SenderInline(admin.TabularInline):
    model = SenderAddress
    extra = 0


@admin.register(RecruiterProfile)
class RecruiterProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "agency", "job_title", "slug"]
    search_fields = ["display_name", "senders__email"]
    inlines = [SenderInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "agency", "role", "created_at", "expires_at", "accepted_at"]
    exclude = ["token_hash"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "agency", "actor", "action", "subject"]
    list_filter = ["action"]
    readonly_fields = ["agency", "actor", "action", "subject", "detail", "created_at"]
