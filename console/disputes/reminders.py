"""Deadline reminders (Celery beat, hourly: tasks.remind_due_disputes).

Every dispute that needs a response within REMIND_WITHIN and has no submitted evidence gets,
once, a finance ticket with the facts (team settings.CONSOLE_FINANCE_TEAM), or, when the
dispute is already worked on an open ticket, that ticket escalated: priority urgent and an
internal note. Once per dispute: the claim is a compare-and-swap on DisputeCase.reminded_at
(`UPDATE … WHERE reminded_at IS NULL`) in the same transaction as the ticket it leads to, so a
second beat, a redelivered task or a concurrent worker finds it set and does nothing, and a
failure leaves it unclaimed for the next beat.

The tickets are opened by the disputes service user (SERVICE_USERNAME, in the workflow role:
ticket work only, no refunds of its own doing here, cannot log in), so the audit log names it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from console.roles import WORKFLOW_ROLE
from payments.models import Charge, Dispute
from payments.money import format_money
from payments.stripe_words import label
from tickets import actions as ticket_actions
from tickets.models import Team, Ticket

from .actions import _link, cases_for
from .models import DisputeCase

log = logging.getLogger(__name__)

REMIND_WITHIN = dt.timedelta(hours=72)
RESPOND = ("needs_response", "warning_needs_response")
SERVICE_USERNAME = "disputes"


def service_user():
    """The user reminders act as: in the workflow role, unable to log in (made on first use)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=SERVICE_USERNAME, defaults={"first_name": "Dispute reminders", "is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not user.groups.filter(name=WORKFLOW_ROLE).exists():
        user.groups.add(Group.objects.get(name=WORKFLOW_ROLE))
    return user


def due_disputes(now: dt.datetime | None = None):
    """Disputes needing a response due within REMIND_WITHIN (or overdue) with no evidence submitted
    and no reminder yet."""
    now = now or timezone.now()
    reminded = DisputeCase.objects.filter(reminded_at__isnull=False).values("dispute_id")
    return (Dispute.objects.filter(status__in=RESPOND, due_by__isnull=False, due_by__lte=now + REMIND_WITHIN)
            .exclude(data__evidence_details__submission_count__gt=0)
            .exclude(pk__in=reminded).order_by("due_by", "id"))


def facts(dispute: Dispute, charge: Charge | None, now: dt.datetime) -> str:
    """The ticket's note: what is disputed, for how much, why, and by when (written in English:
    a beat task has no reader)."""
    data = dispute.data or {}
    card = (data.get("payment_method_details") or {}).get("card") or {}
    left = dispute.due_by - now
    hours = int(left.total_seconds() // 3600)
    lines = [
        f"Dispute {dispute.id} needs a response by {dispute.due_by:%Y-%m-%d %H:%M} UTC "
        + (f"({hours} hours left)." if hours >= 0 else f"({-hours} hours overdue)."),
        f"Amount: {format_money(dispute.amount, dispute.currency)}",
        f"Reason: {label('dispute.reason', dispute.reason) if dispute.reason else '—'}"
        + (f" (network code {card['network_reason_code']})" if card.get("network_reason_code") else ""),
        f"Charge: {dispute.charge}" + (f" · {charge.description}" if charge is not None and charge.description else ""),
        "Evidence: " + ("a draft is saved, not submitted" if (data.get("evidence_details") or {}).get("has_evidence")
                        else "none yet"),
        f"Paydesk: /disputes/{dispute.id}/",
    ]
    if dispute.status.startswith("warning_"):
        lines.insert(1, "This is an inquiry: answering it may prevent a chargeback.")
    return "\n".join(lines)


def remind(dispute: Dispute, *, actor, now: dt.datetime) -> Ticket | None:
    """Remind once: claim the dispute's case, then open a finance ticket or escalate the linked
    one, in one transaction. None when another run claimed it first."""
    charge = Charge.objects.filter(pk=dispute.charge).first()
    cases_for([dispute.id])  # the row to claim, made outside the claim's transaction
    with transaction.atomic():
        claimed = DisputeCase.objects.filter(dispute_id=dispute.id, reminded_at__isnull=True).update(
            reminded_at=now, updated=now)
        if not claimed:
            return None
        case = DisputeCase.objects.select_related("ticket").get(dispute_id=dispute.id)
        note = facts(dispute, charge, now)
        ticket = case.ticket
        if ticket is not None and ticket.status in Ticket.ACTIVE_STATUSES:
            ticket_actions.set_priority(actor=actor, ticket=ticket, priority=Ticket.Priority.URGENT)
            ticket_actions.add_note(actor=actor, ticket=ticket, body=note)
            return ticket
        requester = _requester(charge)
        if requester is None:
            # Nobody to open it for: leave it unclaimed, so a later beat tries again (say, once the
            # charge is mirrored).
            transaction.set_rollback(True)
            log.warning("dispute %s: no customer to open a reminder ticket for", dispute.id)
            return None
        money = format_money(dispute.amount, dispute.currency)
        kind = "Inquiry" if dispute.status.startswith("warning_") else "Dispute"
        ticket = ticket_actions.create_ticket(
            actor=actor, requester=requester, subject=f"{kind} {dispute.id} due {dispute.due_by:%Y-%m-%d}: {money}"[:200],
            priority=Ticket.Priority.URGENT if dispute.due_by - now < dt.timedelta(hours=24) else Ticket.Priority.HIGH,
            team=Team.objects.filter(slug=settings.CONSOLE_FINANCE_TEAM).first(), tags=["dispute"], note=note)
        _link(actor, dispute.id, ticket, reminder=True)
        return ticket


def _requester(charge: Charge | None):
    """The contact of the disputed charge's customer (or of its billing email)."""
    if charge is None:
        return None
    if charge.customer:
        return ticket_actions.resolve_contact("stripe_customer", charge.customer)[0]
    if charge.billing_email:
        return ticket_actions.resolve_contact("email", charge.billing_email)[0]
    return None


def remind_due_disputes(now: dt.datetime | None = None) -> int:
    """Remind every due dispute once; how many reminders this run made."""
    now = now or timezone.now()
    actor = None
    made = 0
    for dispute in due_disputes(now).iterator(chunk_size=200):
        actor = actor or service_user()
        try:
            if remind(dispute, actor=actor, now=now) is not None:
                made += 1
        except Exception:  # one dispute's failure must not stop the others; it stays unclaimed
            log.exception("dispute %s: the reminder failed", dispute.id)
    return made
