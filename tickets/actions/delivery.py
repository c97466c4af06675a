"""Sending replies: the claim a worker takes on a queued reply, what it records after, and
the agent's retry of a failed one. The send itself is the channel's (email_out, line.push),
which raises DeliveryFailed when the channel refuses the reply for good."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import pgettext_lazy
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import require
from audit.models import AuditAction

from .. import queue
from ..models import Message, Ticket
from ._common import audit, target_of
from .errors import ActionError, DeliveryFailed, TicketClosed  # noqa: F401  (the senders raise DeliveryFailed)


def enqueue_delivery(message_id: int) -> None:
    queue.enqueue("tickets.tasks.deliver_message_task", message_id)


def claim_delivery(message_id: int, *, actor=None) -> Message | None:
    """Mark a queued (or long-stuck sending) message as sending; None if someone else has it
    or it is already sent. The claim is a compare-and-swap, so a redelivered task sends once.
    Paydesk does this itself (the delivery task), as it does the two marks below."""
    require(actor, "tickets.change_message", doing=pgettext_lazy("permission", "send replies"), system=True)
    stale = timezone.now() - dt.timedelta(minutes=10)
    claimed = Message.objects.filter(pk=message_id, kind=Message.Kind.OUTBOUND).filter(
        Q(delivery_status=Message.Delivery.QUEUED)
        | Q(delivery_status=Message.Delivery.SENDING, delivery_started_at__lt=stale)
    ).update(
        delivery_status=Message.Delivery.SENDING,
        delivery_started_at=timezone.now(),
        delivery_attempts=F("delivery_attempts") + 1,
    )
    if not claimed:
        return None
    return Message.objects.select_related("ticket", "ticket__requester", "author").get(pk=message_id)


def mark_delivered(message_id: int, *, actor=None, channel_message_id: str = "") -> None:
    require(actor, "tickets.change_message", doing=pgettext_lazy("permission", "send replies"), system=True)
    with transaction.atomic():
        fields = {"delivery_status": Message.Delivery.SENT, "delivery_error": "", "sent_at": timezone.now()}
        if channel_message_id:
            fields["channel_message_id"] = channel_message_id[:998]
        Message.objects.filter(pk=message_id).update(**fields)
        ticket_id = Message.objects.filter(pk=message_id).values_list("ticket_id", flat=True).first()
        audit(actor, AuditAction.MESSAGE_DELIVERED, f"message:{message_id}", ticket=ticket_id)


def mark_delivery_failed(message_id: int, error: str, *, actor=None, final: bool) -> None:
    """Record a failed attempt: back to queued for the task's retry, or failed for an agent."""
    require(actor, "tickets.change_message", doing=pgettext_lazy("permission", "send replies"), system=True)
    with transaction.atomic():
        Message.objects.filter(pk=message_id).exclude(delivery_status=Message.Delivery.SENT).update(
            delivery_status=Message.Delivery.FAILED if final else Message.Delivery.QUEUED,
            delivery_error=error[:2000],
        )
        if final:
            ticket_id = Message.objects.filter(pk=message_id).values_list("ticket_id", flat=True).first()
            audit(actor, AuditAction.MESSAGE_DELIVERY_FAILED, f"message:{message_id}", ticket=ticket_id,
                  error=error[:500])


def retry_delivery(*, actor, message) -> Message:
    """Queue a failed outbound message again (the retry button)."""
    require(actor, "tickets.retry_delivery", doing=pgettext_lazy("permission", "retry replies"))
    pk = message.pk if isinstance(message, Message) else message
    with transaction.atomic():
        msg = Message.objects.select_for_update().filter(pk=pk).select_related("ticket").first()
        if msg is None or msg.kind != Message.Kind.OUTBOUND:
            raise ActionError(_("Only replies to customers can be retried."), code="invalid")
        if msg.delivery_status != Message.Delivery.FAILED:
            if msg.delivery_status == Message.Delivery.SENT:
                text = _("This reply was sent; only a failed reply can be retried.")
            else:
                text = _("This reply is still being sent; only a failed reply can be retried.")
            raise ActionError(text, code="not_failed")
        if msg.ticket.status == Ticket.Status.CLOSED:
            raise TicketClosed(_("Ticket #%(number)s is closed.") % {"number": msg.ticket.number}, code="closed")
        msg.delivery_status = Message.Delivery.QUEUED
        msg.save(update_fields=["delivery_status"])
        audit(actor, AuditAction.MESSAGE_RETRY, target_of(msg.ticket), message=msg.pk)
        enqueue_delivery(msg.pk)
    return msg
