"""console listens to what payments, tickets and the audit log announce, and composes.

Every announcement arrives after the transaction that made it committed, so nothing here
can fail or roll back a mirror write, a message or an action. Stripe events are announced
from payments' own Celery task (which keeps a listener's error on the event and retries);
tickets and audit rows are turned into timeline entries by console's tasks.
"""

import logging

from celery import current_app, current_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.dispatch import receiver

from audit.log import record
from audit.models import AuditAction
from audit.signals import audit_recorded
from payments.signals import stripe_event_applied
from tickets.actions import link_identity_to, set_contact_language
from tickets.signals import message_received, ticket_created, ticket_solved

from . import queue, timeline
from .workflows import runs

log = logging.getLogger(__name__)


@receiver(stripe_event_applied, dispatch_uid="console.tickets.stripe_customer")
def link_stripe_customer(sender, event, obj, kind, **kwargs):
    """A Stripe customer with an email becomes the stripe_customer identity of the contact
    with that email (created if none), so tickets and payments meet on one contact. Two
    customers with one email end on one contact; a customer whose email changed brings
    its old contact along (the link merges them, recorded and undoable)."""
    if kind != "customer" or obj.get("deleted") or event.get("type") == "customer.deleted":
        return
    email, customer_id = (obj.get("email") or "").strip(), obj.get("id") or ""
    if not email or not customer_id:
        return
    try:
        linked = link_identity_to(  # atomic on its own
            actor=None, anchor_kind="email", anchor_value=email, kind="stripe_customer", value=customer_id,
            name=obj.get("name") or "", reason=f"Stripe {event.get('type') or 'customer'}",
        )
        # The customer's own language at Stripe is the one replies to them are written in.
        locales = obj.get("preferred_locales") or []
        if isinstance(locales, list) and locales and isinstance(locales[0], str):
            set_contact_language(actor=None, contact=linked.identity.contact_id, language=locales[0], source="stripe")
    except ValidationError as exc:
        # A malformed email at Stripe is not an error to retry: the customer stays unlinked.
        record(actor=None, action=AuditAction.IDENTITY_LINK_SKIPPED, target=f"stripe:{customer_id}",
               error="; ".join(exc.messages))


@receiver(stripe_event_applied, dispatch_uid="console.timeline.stripe")
def timeline_stripe_event(sender, event, obj, kind, **kwargs):
    timeline.upsert(timeline.stripe_entries(event, obj, kind))  # one statement: atomic on its own


def _react(task: str, *args) -> None:
    """Reactions run in Celery: at once when the announcement is heard inside a task already
    (the Stripe announcement, in the worker: no second round trip through the broker), queued
    when it is heard in a web request. One that fails at once is queued, to be retried."""
    if current_task:
        try:
            current_app.tasks[task](*args)
            return
        except Exception:  # noqa: BLE001  (retried below, by the task's own retry policy)
            log.warning("reaction %s%r failed in place; queued for a retry", task, args, exc_info=True)
    queue.enqueue(task, *args)


@receiver(ticket_created, dispatch_uid="console.timeline.ticket")
def timeline_ticket(sender, ticket, **kwargs):
    _react("console.tasks.timeline_ticket_task", ticket.pk)


@receiver(message_received, dispatch_uid="console.timeline.message")
def timeline_message(sender, message, **kwargs):
    _react("console.tasks.timeline_message_task", message.pk)


@receiver(audit_recorded, dispatch_uid="console.timeline.audit")
def timeline_audit(sender, entry_id, action, actor_id=None, **kwargs):
    if timeline.audit_needs_reaction(action, actor_id):
        _react("console.tasks.timeline_audit_task", entry_id)


# --- workflows: what starts their runs (console/workflows/runs.py). Each call only records the
# runs (once per workflow version and event) and queues them; they are performed in Celery.


@receiver(stripe_event_applied, dispatch_uid="console.workflows.stripe")
def workflows_stripe_event(sender, event, obj, kind, **kwargs):
    runs.start_runs(runs.stripe_trigger(event))


@receiver(ticket_created, dispatch_uid="console.workflows.ticket_created")
def workflows_ticket_created(sender, ticket, **kwargs):
    runs.start_runs(runs.ticket_trigger("ticket.created", ticket))


@receiver(message_received, dispatch_uid="console.workflows.message_received")
def workflows_message_received(sender, message, ticket, **kwargs):
    if message.kind != message.Kind.INBOUND:
        return
    if settings.ASSIST_ENABLED:
        # Assist reads the message first, then starts these runs, so they can use message.intent.
        _react("console.assist.tasks.understand_message_task", message.pk)
    else:
        runs.start_runs(runs.ticket_trigger("message.received", ticket, message))


@receiver(ticket_solved, dispatch_uid="console.workflows.ticket_solved")
def workflows_ticket_solved(sender, ticket, **kwargs):
    runs.start_runs(runs.ticket_trigger("ticket.solved", ticket))
