from django.contrib import admin

from .roles import ADMIN_ROLE, has_role


def _admin_role_only(request) -> bool:
    """Django admin is for data fixes by the admin role, nobody else."""
    return request.user.is_active and has_role(request.user, ADMIN_ROLE)


admin.site.has_permission = _admin_role_only
admin.site.site_header = "Paydesk data fixes"
admin.site.site_title = "Paydesk admin"
admin.site.index_title = "Stripe mirror and audit log"
admin.site.site_url = "/"
