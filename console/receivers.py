"""console listens to what payments and tickets announce, and composes."""

from django.dispatch import receiver

from payments import stripe_actions
from payments.signals import payments_action, stripe_event_applied
from tickets.signals import message_received, ticket_created, tickets_action

from . import audit
from .models import AuditEntry


@receiver(payments_action, dispatch_uid="console.audit.payments")
def audit_payments_action(sender, actor, action, target, details, **kwargs):
    audit.record(actor, action, target, details)


@receiver(stripe_actions.action_records, dispatch_uid="console.audit.action_records")
def action_records(sender, action: str, target: str, **kwargs) -> list[dict]:
    """The audit log answers payments' question "what did confirmations already do to this
    object?" (payments never imports console), so a confirmation sent twice is done once."""
    return list(
        AuditEntry.objects.filter(action=action, target=target[:255]).order_by("id").values_list("details", flat=True)
    )


# --- tickets --------------------------------------------------------------------------
@receiver(tickets_action, dispatch_uid="console.audit.tickets")
def audit_tickets_action(sender, actor, action, target, details, **kwargs):
    audit.record(actor, action, target, details)


@receiver(stripe_event_applied, dispatch_uid="console.tickets.stripe_customer")
def link_stripe_customer(sender, event, obj, kind, source, **kwargs):
    """A Stripe customer with an email becomes the stripe_customer identity of the contact
    with that email (created if none), so tickets and payments meet on one contact. Two
    customers with one email end on one contact; a customer whose email changed brings
    its old contact along (the link merges them, recorded and undoable)."""
    if kind != "customer" or obj.get("deleted") or event.get("type") == "customer.deleted":
        return
    email, customer_id = (obj.get("email") or "").strip(), obj.get("id") or ""
    if not email or not customer_id:
        return
    from django.core.exceptions import ValidationError

    from tickets import actions as ticket_actions

    try:
        ticket_actions.link_identity_to(
            actor=None, anchor_kind="email", anchor_value=email, kind="stripe_customer", value=customer_id,
            name=obj.get("name") or "", reason=f"Stripe {event.get('type') or 'customer'}",
        )
    except ValidationError as exc:
        # A malformed email at Stripe must not fail the mirror; the customer just stays unlinked.
        audit.record(None, "identity.link_skipped", f"stripe:{customer_id}", {"error": "; ".join(exc.messages)})


# --- the customer timeline (console.timeline) ----------------------------------------------
@receiver(stripe_event_applied, dispatch_uid="console.timeline.stripe")
def timeline_stripe_event(sender, event, obj, kind, **kwargs):
    from . import timeline

    timeline.upsert(timeline.stripe_entries(event, obj, kind))


@receiver(ticket_created, dispatch_uid="console.timeline.ticket")
def timeline_ticket(sender, ticket, **kwargs):
    from . import timeline

    timeline.upsert([timeline.ticket_entry(ticket)])


@receiver(message_received, dispatch_uid="console.timeline.message")
def timeline_message(sender, message, ticket, **kwargs):
    from . import timeline

    timeline.upsert([timeline.message_entry(message, ticket)])
