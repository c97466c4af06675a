"""The dispute queue's writes, one function per action: who works a dispute and the ticket it
is worked on. Each validates, checks who may (audit.actors.require), runs in one transaction
and writes one audit row per dispute it changed (the row's target is the dispute, so the
customer's timeline shows it). Views call these; they never save a DisputeCase.

The dispute itself is changed at Stripe only (payments.actions.disputes); the deadline
reminder's claim is in reminders.py.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from audit import actors
from audit.log import record
from audit.models import AuditAction
from payments.models import Dispute
from tickets.models import Ticket

from .models import DisputeCase

# At most this many disputes in one bulk assignment (a page of the queue is 50).
MAX_BULK = 200


def cases_for(dispute_ids, *, lock: bool = False) -> dict[str, DisputeCase]:
    """The case row of each dispute, made where missing (an insert that ignores a concurrent
    one), optionally locked for the rest of the transaction."""
    ids = list(dict.fromkeys(dispute_ids))
    DisputeCase.objects.bulk_create([DisputeCase(dispute_id=i) for i in ids], ignore_conflicts=True)
    found = DisputeCase.objects.filter(dispute_id__in=ids).order_by("dispute_id")
    if lock:
        found = found.select_for_update()
    return {c.dispute_id: c for c in found}


def _dispute_ids(dispute_ids) -> list[str]:
    if isinstance(dispute_ids, str):
        dispute_ids = [dispute_ids]
    ids = list(dict.fromkeys(str(i).strip() for i in dispute_ids or () if str(i).strip()))
    if not ids:
        raise ValidationError(_("Choose at least one dispute."), code="required")
    if len(ids) > MAX_BULK:
        raise ValidationError(_("Assign at most %(max)s disputes at once.") % {"max": MAX_BULK}, code="too_many")
    known = set(Dispute.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValidationError(_("There is no dispute %(id)s.") % {"id": unknown[0][:64]}, code="unknown")
    return ids


def _check_assignee(assignee):
    if assignee is None:
        return None
    User = get_user_model()
    if not isinstance(assignee, User):
        assignee = User.objects.filter(pk=assignee).first() if isinstance(assignee, int) else None
    if assignee is None or not assignee.is_active or not assignee.has_perm("disputes.view_disputecase"):
        raise ValidationError(_("Disputes can only be assigned to someone who works the dispute queue."),
                              code="assignee")
    return assignee


def assign_disputes(*, actor, dispute_ids, assignee) -> int:
    """Give the disputes to `assignee` (a user who sees the queue; None: to nobody). Returns how
    many changed hands; a dispute already theirs is left as it is and not audited again."""
    actors.require(actor, "disputes.change_disputecase", doing=pgettext_lazy("permission", "assign disputes"))
    ids = _dispute_ids(dispute_ids)
    assignee = _check_assignee(assignee)
    changed = 0
    with transaction.atomic():
        cases = cases_for(ids, lock=True)
        for dispute_id in ids:
            case = cases[dispute_id]
            if case.assignee_id == (assignee.pk if assignee else None):
                continue
            before = case.assignee.get_username() if case.assignee_id else ""
            case.assignee = assignee
            case.save(update_fields=["assignee", "updated"])
            record(actor=actor, action=AuditAction.DISPUTE_ASSIGN, target=dispute_id,
                   assignee={"from": before, "to": assignee.get_username() if assignee else ""},
                   description=(f"Dispute {dispute_id} assigned to {assignee.get_username()}" if assignee
                                else f"Dispute {dispute_id} unassigned"))
            changed += 1
    return changed


def link_dispute_ticket(*, actor, dispute_id: str, ticket) -> DisputeCase:
    """The ticket the dispute is worked on (None: none). Reminders escalate this ticket rather
    than open another."""
    actors.require(actor, "disputes.change_disputecase", doing=pgettext_lazy("permission", "link tickets to disputes"))
    return _link(actor, _dispute_ids([dispute_id])[0], ticket)


def work_dispute_on_ticket(*, actor, dispute_id: str, ticket, why: str) -> DisputeCase | None:
    """Link `ticket` to a mirrored dispute that has no ticket yet: for the automation that made
    the ticket about the dispute (a workflow), which acts in no person's role; a linked ticket
    stays. None when the dispute is not mirrored."""
    if not Dispute.objects.filter(pk=dispute_id).exists():
        return None
    with transaction.atomic():
        case = cases_for([dispute_id], lock=True)[dispute_id]
        if case.ticket_id is not None:
            return case
        return _link(actor, dispute_id, ticket, automated=why)


def _link(actor, dispute_id: str, ticket, **details) -> DisputeCase:
    if ticket is not None and not isinstance(ticket, Ticket):
        ticket = Ticket.objects.filter(pk=ticket).first() if isinstance(ticket, int) else None
        if ticket is None:
            raise ValidationError(_("There is no such ticket."), code="ticket")
    with transaction.atomic():
        case = cases_for([dispute_id], lock=True)[dispute_id]
        if case.ticket_id == (ticket.pk if ticket else None):
            return case
        before = case.ticket.number if case.ticket_id else None
        case.ticket = ticket
        case.save(update_fields=["ticket", "updated"])
        record(actor=actor, action=AuditAction.DISPUTE_LINK_TICKET, target=dispute_id,
               linked={"from": before, "to": ticket.number if ticket else None},
               ticket=f"#{ticket.number}" if ticket else "", **details,
               description=(f"Ticket #{ticket.number} linked to dispute {dispute_id}" if ticket
                            else f"Ticket unlinked from dispute {dispute_id}"))
    return case
