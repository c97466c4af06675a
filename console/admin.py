from django.contrib import admin

from .models import AuditEntry
from .roles import ADMIN_ROLE, has_role


def _admin_role_only(request) -> bool:
    """Django admin is for data fixes by the admin role, nobody else."""
    return request.user.is_active and has_role(request.user, ADMIN_ROLE)


admin.site.has_permission = _admin_role_only
admin.site.site_header = "Paydesk data fixes"
admin.site.site_title = "Paydesk admin"


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("target", "action", "actor__username")
    readonly_fields = ("created", "actor", "action", "target", "details")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
