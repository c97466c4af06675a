from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssistConfig(AppConfig):
    name = "console.assist"
    label = "assist"
    verbose_name = _("Assist")

    def ready(self):
        from . import tasks  # noqa: F401  (registers the tasks' names)
