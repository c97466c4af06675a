"""console listens to what payments and tickets announce, and composes."""

from django.dispatch import receiver

from payments.signals import payments_action

from . import audit


@receiver(payments_action, dispatch_uid="console.audit.payments")
def audit_payments_action(sender, actor, action, target, details, **kwargs):
    audit.record(actor, action, target, details)
