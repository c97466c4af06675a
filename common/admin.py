"""Django admin pieces with no app of their own."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Readable in the admin, never added, changed or deleted there (logs, mirrors, attempts)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
