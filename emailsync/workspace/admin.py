from django.contrib import admin
from django.utils.html import format_html_join

from emailsync.inbound.models import Trigger

from .models import HelpRequest


@admin.register(HelpRequest)
class HelpRequestAdmin(admin.ModelAdmin):
    """The one place operators see setup-test subjects: next to the agency's request for help."""

    list_display = ["agency", "created_by", "created_at", "handled_at"]
    list_filter = ["handled_at"]
    search_fields = ["agency__name", "message"]
    readonly_fields = [
        "agency",
        "created_by",
        "created_at",
        "message",
        "diagnostics",
        "setup_test_subjects",
    ]
    fields = [*readonly_fields, "handled_at"]

    @admin.display(description="Setup-test subjects (kept 7 days)")
    def setup_test_subjects(self, obj):
        tests = Trigger.objects.filter(agency_id=obj.agency_id, is_setup_test=True).exclude(
            subject=""
        )[:20]
        return (
            format_html_join(
                "\n",
                "<div>{} · {} · {} · {}</div>",
                ((t.received_at, t.sender, t.status, t.subject) for t in tests),
            )
            or "—"
        )
