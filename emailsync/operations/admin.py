from django.contrib import admin

from .models import DevelopmentMessage


@admin.register(DevelopmentMessage)
class DevelopmentMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "subject", "recipients"]
    readonly_fields = ["created_at", "sender", "recipients", "subject", "raw"]
