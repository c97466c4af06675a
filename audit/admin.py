import json

from django.contrib import admin
from django.utils.html import format_html

from common.admin import ReadOnlyAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit log is append-only: readable here, never edited."""

    list_display = ("created", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("=target", "action", "actor__username")
    search_help_text = "Search by target (a Stripe id), action or username"
    date_hierarchy = "created"
    list_select_related = ("actor",)
    show_full_result_count = False
    fields = ("created", "actor", "action", "target", "pretty_details")
    readonly_fields = fields

    @admin.display(description="Details")
    def pretty_details(self, obj):
        return format_html(
            '<pre style="white-space:pre-wrap;font-size:12px;margin:0">{}</pre>',
            json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False),
        )

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("audit.view_audit")

