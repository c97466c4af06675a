"""The rules of a ticket's life that more than one kind of write applies: its SLA due times,
what a status change does, and opening one (an agent's create_ticket, a customer's first
message, the test factories). Not actions themselves: the callers check and audit."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction

from ..models import Contact, Ticket
from ..signals import ticket_created
from ._common import audit, tag_names, tags_named, target_of
from .errors import StaleTicket, TicketClosed


def sla_times(priority: str, start: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(first response due, resolution due) for a ticket of this priority opened at `start`."""
    targets = settings.TICKETS_SLA.get(priority)
    if not targets:
        return None, None
    first, resolution = targets
    return start + first, start + resolution


def refresh_sla(ticket: Ticket) -> None:
    """The one deadline the inbox sorts on: first response, then resolution, none once solved."""
    if ticket.status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        ticket.sla_due = None
    elif ticket.first_responded_at is None:
        ticket.sla_due = ticket.first_response_due
    else:
        ticket.sla_due = ticket.resolution_due


def status_fields(ticket: Ticket, status: str) -> list[str]:
    """Move the ticket to `status` in memory; the fields to save. A closed ticket stays closed."""
    if ticket.status == Ticket.Status.CLOSED and status != Ticket.Status.CLOSED:
        raise TicketClosed(_("Ticket #%(number)s is closed and cannot be reopened.") % {"number": ticket.number},
                           code="closed")
    ticket.status = status
    if status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        ticket.solved_at = ticket.solved_at or timezone.now()
    else:
        ticket.solved_at = None
    refresh_sla(ticket)
    return ["status", "solved_at", "sla_due"]


def check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and ticket.version != expected_version:
        raise StaleTicket(_("Ticket #%(number)s changed since you opened it.") % {"number": ticket.number},
                          code="stale")


def open_ticket(*, actor, requester: Contact, subject: str, channel: str, priority: str = Ticket.Priority.NORMAL,
                team=None, assignee=None, tags: Sequence[str] = (), number: int | None = None) -> Ticket:
    """A new open ticket: its number, its SLA due times from its creation, its tags, its audit
    row, and the ticket_created announcement once the transaction commits."""
    now = timezone.now()
    first_due, resolution_due = sla_times(priority, now)
    ticket = Ticket(
        subject=(subject or "(no subject)").strip()[:255] or "(no subject)",
        channel=channel,
        priority=priority,
        requester=requester,
        team=team,
        assignee=assignee,
        number=number,
        first_response_due=first_due,
        resolution_due=resolution_due,
        last_message_at=now,
    )
    refresh_sla(ticket)
    ticket.save()
    # Due times count from the stored creation time exactly (set_priority recomputes from it),
    # written together with the number, which defaults to the id.
    ticket.first_response_due, ticket.resolution_due = sla_times(priority, ticket.created)
    refresh_sla(ticket)
    ticket.number = ticket.number or ticket.pk
    Ticket.objects.filter(pk=ticket.pk).update(
        number=ticket.number, first_response_due=ticket.first_response_due,
        resolution_due=ticket.resolution_due, sla_due=ticket.sla_due,
    )
    if tags:
        ticket.tags.set(tags_named(tag_names(tags)))
    audit(actor, AuditAction.TICKET_CREATE, target_of(ticket), channel=channel, requester=requester.pk,
          priority=priority, subject=ticket.subject)
    # Listeners (console's timeline) hear of it once it is committed, never inside.
    transaction.on_commit(lambda: ticket_created.send(sender=__name__, ticket=ticket, actor=actor), robust=True)
    return ticket
