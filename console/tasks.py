"""Celery tasks: the customer timeline's entries for what tickets and the audit log announce.
Thin, idempotent (entries are upserted by their source) and retried on database errors."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from audit.models import AuditEntry
from tickets.models import Message, Ticket

from . import timeline

RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 5, "retry_backoff_max": 600,
         "max_retries": 8, "acks_late": True}


@shared_task(**RETRY)
def timeline_ticket_task(ticket_id: int) -> int:
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    return timeline.upsert([timeline.ticket_entry(ticket)]) if ticket else 0


@shared_task(**RETRY)
def timeline_message_task(message_id: int) -> int:
    message = Message.objects.select_related("ticket").filter(pk=message_id).first()
    return timeline.upsert([timeline.message_entry(message, message.ticket)]) if message else 0


@shared_task(**RETRY)
def timeline_audit_task(entry_id: int) -> bool:
    entry = AuditEntry.objects.select_related("actor").filter(pk=entry_id).first()
    if entry is None:
        return False
    timeline.on_audit(entry)
    return True
