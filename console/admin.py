from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _, gettext_lazy

from common.admin import ReadOnlyAdmin

from . import actions
from .roles import ADMIN_ROLE, has_role


def _admin_role_only(request) -> bool:
    """Django admin is for data fixes by the admin role, nobody else."""
    return request.user.is_active and has_role(request.user, ADMIN_ROLE)


admin.site.has_permission = _admin_role_only
admin.site.site_header = gettext_lazy("Paydesk data fixes")
admin.site.site_title = gettext_lazy("Paydesk admin")
admin.site.index_title = gettext_lazy("Stripe mirror and audit log")
admin.site.site_url = "/"


@admin.register(AccessAttempt)
class LoginAttemptAdmin(ReadOnlyAdmin):
    """Failed logins django-axes counts, per username and address. Read-only: a lockout is
    lifted with the Unlock action, which goes through console.actions.unlock_login (audited)."""

    list_display = ("username", "ip_address", "failures_since_start", "locked", "attempt_time", "path_info")
    search_fields = ("=username", "=ip_address")
    search_help_text = gettext_lazy("Search by exact username or address")
    date_hierarchy = "attempt_time"
    fields = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info", "user_agent")
    readonly_fields = fields
    actions = ["unlock"]

    @admin.display(description=gettext_lazy("Locked out"), boolean=True)
    def locked(self, obj):
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT


    def has_unlock_permission(self, request):
        return request.user.has_perm("axes.delete_accessattempt")

    @admin.action(description=gettext_lazy("Unlock the selected usernames (from every address)"),
                  permissions=["unlock"])
    def unlock(self, request, queryset):
        for username in sorted(set(queryset.values_list("username", flat=True))):
            try:
                actions.unlock_login(actor=request.user, username=username)
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, _("%(username)s: %(reason)s") % {
                    "username": username, "reason": "; ".join(getattr(exc, "messages", [str(exc)]))}, messages.ERROR)
            else:
                self.message_user(request, _("Unlocked %(username)s: they may log in again.") % {"username": username},
                                  messages.SUCCESS)


# --- users and groups: superusers only in Django admin --------------------------------------------
# The admin role manages people in the console (console/people: audited, sessions ended on
# deactivation), with auth's permissions; Django admin's user pages, which bypass all that,
# stay a superuser's tool.

from django.contrib.auth.admin import GroupAdmin, UserAdmin  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402


class _SuperuserOnly:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


class SuperuserUserAdmin(_SuperuserOnly, UserAdmin):
    pass


class SuperuserGroupAdmin(_SuperuserOnly, GroupAdmin):
    pass


for _model, _admin in ((User, SuperuserUserAdmin), (Group, SuperuserGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
