import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin import ReadOnlyAdmin

from .models import AuditAction, AuditEntry


class ActionFilter(admin.SimpleListFilter):
    """The actions by what a person calls them; the query parameter stays `action`."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action.value, action.label) for action in AuditAction]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit log is append-only: readable here, never edited."""

    list_display = ("created", "actor", "action_label", "target")
    list_filter = (ActionFilter,)
    search_fields = ("=target", "action", "actor__username")
    search_help_text = _("Search by target (a Stripe id), action or username")
    date_hierarchy = "created"
    list_select_related = ("actor",)
    show_full_result_count = False
    fields = ("created", "actor", "action", "target", "pretty_details")
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, obj):
        """The action as people say it (the entry itself shows the stored name)."""
        try:
            return AuditAction(obj.action).label
        except ValueError:  # a row written before its action was renamed
            return obj.action

    @admin.display(description=_("Details"))
    def pretty_details(self, obj):
        return format_html(
            '<pre style="white-space:pre-wrap;font-size:12px;margin:0">{}</pre>',
            json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False),
        )

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("audit.view_audit")
