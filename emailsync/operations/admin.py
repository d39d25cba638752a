from django.conf import settings
from django.contrib import admin

from .models import DevelopmentMessage


def development_outbox_on() -> bool:
    return bool(settings.DEBUG and settings.DEVELOPMENT_OUTBOX)


@admin.register(DevelopmentMessage)
class DevelopmentMessageAdmin(admin.ModelAdmin):
    """The development outbox's rows, in the admin only while the outbox is in use: in
    production mail goes to a real server and the table stays empty, so listing it there only
    confuses an operator looking for sent mail."""

    list_display = ["created_at", "subject", "recipients"]
    readonly_fields = ["created_at", "sender", "recipients", "subject", "raw"]

    def has_module_permission(self, request):
        return development_outbox_on() and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return development_outbox_on() and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return development_outbox_on() and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return development_outbox_on() and super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        return False  # rows are emails the platform sent
