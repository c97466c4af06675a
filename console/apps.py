from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import receivers, tasks  # noqa: F401  (listens to the domains; registers queue's task names)
        post_migrate.connect(_roles_after_migrate, sender=self, dispatch_uid="console.roles")


def _roles_after_migrate(sender, apps=None, **kwargs):
    from .roles import ensure_roles

    ensure_roles(apps)
