from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Here rather than at the top: these modules import the models, loaded by now.
        from anymail.signals import inbound

        from . import tasks  # noqa: F401  (registers the tasks that tickets.queue names)
        from .webhooks import on_anymail_inbound

        inbound.connect(on_anymail_inbound, dispatch_uid="tickets.webhooks.inbound_email")
