"""Merging two tickets of one requester about the same thing, and undoing it (the contact
merge's shape: contacts.contact_merge and undo_merge).

The merged ticket's messages move to the survivor, its tags join the survivor's, and it is
closed with merged_into set, so its page points at the survivor and a customer's later
email on its thread lands there (messages._thread_email follows merged_into). A TicketMerge
records exactly what moved and what the merged ticket was, so undo puts back exactly that.

Who may: the merge permission (agents and admins, not finance: console.roles TICKETS_MERGE)
and changing tickets, since a merge closes one. There is no separate ticket-merge permission
(that would need a migration); merging contacts is the nearest right.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from audit.actors import require
from audit.models import AuditAction

from ..models import Message, Ticket, TicketMerge
from ._common import audit, author, tags_named, target_of
from ._rules import check_version, refresh_sla
from .errors import ActionError, UndoRefused

MERGE_PERMISSIONS = ("tickets.change_ticket", "tickets.merge_contacts")
# How far a customer's reply follows merged_into (a ticket merged into one later merged on).
MERGE_CHAIN_LIMIT = 5


def _pk(value) -> int:
    return value.pk if isinstance(value, Ticket) else int(value)


def live_ticket(ticket: Ticket | None) -> Ticket | None:
    """The ticket a conversation lives on now: `ticket`, or the one it was merged into
    (following a chain of merges, at most MERGE_CHAIN_LIMIT steps)."""
    for _step in range(MERGE_CHAIN_LIMIT):
        if ticket is None or not ticket.merged_into_id:
            break
        onward = Ticket.objects.filter(pk=ticket.merged_into_id).first()
        if onward is None:
            break
        ticket = onward
    return ticket


def check_mergeable(survivor: Ticket, merged: Ticket) -> None:
    """Why `merged` cannot go into `survivor`, as an ActionError; nothing when it can. The page's
    list of candidates and the action apply the same rules."""
    if survivor.pk == merged.pk:
        raise ActionError(_("A ticket cannot be merged into itself."), code="invalid")
    if merged.merged_into_id:
        raise ActionError(_("Ticket #%(number)s was already merged into another ticket.")
                          % {"number": merged.number}, code="merged")
    if survivor.merged_into_id:
        raise ActionError(_("Ticket #%(number)s was merged into another ticket; merge into that one.")
                          % {"number": survivor.number}, code="merged")
    if survivor.requester_id != merged.requester_id:
        raise ActionError(_("Only tickets of the same requester can be merged; #%(merged)s and #%(survivor)s "
                            "are from different contacts.") % {"merged": merged.number, "survivor": survivor.number},
                          code="other_requester")
    if merged.status == Ticket.Status.CLOSED:
        raise ActionError(_("Ticket #%(number)s is closed and cannot be merged.") % {"number": merged.number},
                          code="closed")
    if survivor.status not in Ticket.ACTIVE_STATUSES:
        raise ActionError(_("Ticket #%(number)s is not open; merge into an open or pending ticket.")
                          % {"number": survivor.number}, code="closed")


def merge_tickets(*, actor, survivor, merged, reason: str = "", survivor_version: int | None = None,
                  merged_version: int | None = None) -> TicketMerge:
    """Merge `merged` into `survivor` (both of one requester): its messages and tags move to the
    survivor, it is closed and points at the survivor. The versions, when given, are those the
    page showed: a ticket that changed since is refused (StaleTicket), and so is a second
    confirmation of the same merge (the merged ticket is merged already)."""
    require(actor, *MERGE_PERMISSIONS, doing=pgettext_lazy("permission", "merge tickets"))
    survivor_pk, merged_pk = _pk(survivor), _pk(merged)
    if survivor_pk == merged_pk:
        raise ActionError(_("A ticket cannot be merged into itself."), code="invalid")
    with transaction.atomic():
        # Both rows locked in id order, so two opposite merges cannot deadlock; the second of
        # two concurrent merges waits here and then finds the first one's merged_into.
        locked = {
            t.pk: t for t in Ticket.objects.select_for_update(of=("self",))
            .filter(pk__in=[survivor_pk, merged_pk]).order_by("pk")
        }
        if len(locked) != 2:
            raise ActionError(_("One of the tickets no longer exists."), code="not_found")
        survivor, merged = locked[survivor_pk], locked[merged_pk]
        check_mergeable(survivor, merged)
        check_version(survivor, survivor_version)
        check_version(merged, merged_version)

        message_ids = list(Message.objects.filter(ticket=merged).order_by("created", "id").values_list("pk", flat=True))
        have = set(survivor.tags.values_list("name", flat=True))
        tags_added = sorted(set(merged.tags.values_list("name", flat=True)) - have)
        moved = {
            "messages": message_ids,
            "tags": tags_added,
            "status": merged.status,
            "solved_at": merged.solved_at.isoformat() if merged.solved_at else None,
            "last_message_at": merged.last_message_at.isoformat() if merged.last_message_at else None,
            "assignee": merged.assignee_id,
            "survivor_last_message_at": (survivor.last_message_at.isoformat()
                                         if survivor.last_message_at else None),
            "number": merged.number,
            "subject": merged.subject,
        }
        now = timezone.now()
        Message.objects.filter(pk__in=message_ids).update(ticket=survivor)
        if tags_added:
            survivor.tags.add(*tags_named(tags_added))
        latest = Message.objects.filter(ticket=survivor).aggregate(latest=Max("created"))["latest"]
        last_message_at = max(filter(None, [survivor.last_message_at, latest]), default=None)
        Ticket.objects.filter(pk=survivor.pk).update(
            last_message_at=last_message_at, version=F("version") + 1, updated=now,
        )
        merged.status, merged.merged_into = Ticket.Status.CLOSED, survivor
        merged.solved_at = merged.solved_at or now
        refresh_sla(merged)
        Ticket.objects.filter(pk=merged.pk).update(
            status=merged.status, solved_at=merged.solved_at, sla_due=merged.sla_due, merged_into=survivor,
            version=F("version") + 1, updated=now,
        )
        survivor.refresh_from_db(fields=["version", "updated", "last_message_at"])
        merged.refresh_from_db(fields=["version", "updated"])
        moved["merged_version"] = merged.version
        record = TicketMerge.objects.create(
            survivor=survivor, merged=merged, actor=author(actor), reason=(reason or "")[:255], moved=moved,
            survivor_version=survivor.version,
        )
        common = {"merge": record.pk, "messages": len(message_ids), "tags": tags_added, "reason": reason or ""}
        audit(actor, AuditAction.TICKET_MERGE, target_of(survivor), merged=f"#{merged.number}",
              merged_number=merged.number, survivor_number=survivor.number, role="survivor", **common)
        audit(actor, AuditAction.TICKET_MERGE, target_of(merged), survivor=f"#{survivor.number}",
              merged_number=merged.number, survivor_number=survivor.number, role="merged",
              status={"from": moved["status"], "to": Ticket.Status.CLOSED}, **common)
    return record


def undo_ticket_merge(*, actor, merge) -> TicketMerge:
    """Put back what a ticket merge moved: its messages return to the merged ticket, the tags it
    added leave the survivor, and the merged ticket gets its status back.

    Unlike the contact merge, a survivor that moved on does not forbid undo: the survivor is a
    live conversation (the customer writes again, an agent replies) and what arrived after the
    merge simply stays on it, since only the recorded message ids move back. Undo is refused
    when it can no longer put back exactly what moved: already undone, a merged message no
    longer on the survivor, or either ticket merged on into a third one since."""
    require(actor, *MERGE_PERMISSIONS, doing=pgettext_lazy("permission", "undo ticket merges"))
    pk = merge.pk if isinstance(merge, TicketMerge) else merge
    with transaction.atomic():
        record = TicketMerge.objects.select_for_update().filter(pk=pk).first()
        if record is None:
            raise ActionError(_("No ticket merge %(id)s.") % {"id": pk}, code="not_found")
        if record.undone_at:
            raise UndoRefused(_("This merge was already undone."), code="undone")
        locked = {
            t.pk: t for t in Ticket.objects.select_for_update(of=("self",))
            .filter(pk__in=[record.survivor_id, record.merged_id]).order_by("pk")
        }
        survivor, merged = locked[record.survivor_id], locked[record.merged_id]
        if survivor.merged_into_id:
            raise UndoRefused(_("Ticket #%(number)s was merged into another ticket since; undo that merge first.")
                              % {"number": survivor.number}, code="changed")
        if merged.merged_into_id != survivor.pk:
            raise UndoRefused(_("Ticket #%(number)s is no longer merged into #%(survivor)s.")
                              % {"number": merged.number, "survivor": survivor.number}, code="changed")
        moved = record.moved or {}
        message_ids = [int(i) for i in moved.get("messages", [])]
        if Message.objects.filter(pk__in=message_ids, ticket=survivor).count() != len(set(message_ids)):
            raise UndoRefused(_("Some of the merged messages are no longer on #%(number)s; undo is no longer safe.")
                              % {"number": survivor.number}, code="changed")
        now = timezone.now()
        Message.objects.filter(pk__in=message_ids).update(ticket=merged)
        added = moved.get("tags", [])
        if added:
            survivor.tags.remove(*survivor.tags.filter(name__in=added))
        latest = Message.objects.filter(ticket=survivor).aggregate(latest=Max("created"))["latest"]
        before = parse_datetime(moved["survivor_last_message_at"]) if moved.get("survivor_last_message_at") else None
        Ticket.objects.filter(pk=survivor.pk).update(
            last_message_at=latest or before or survivor.last_message_at, version=F("version") + 1, updated=now,
        )
        status = moved.get("status") or Ticket.Status.OPEN
        merged.status = status if status in Ticket.Status.values else Ticket.Status.OPEN
        merged.solved_at = parse_datetime(moved["solved_at"]) if moved.get("solved_at") else None
        refresh_sla(merged)
        last = parse_datetime(moved["last_message_at"]) if moved.get("last_message_at") else merged.last_message_at
        Ticket.objects.filter(pk=merged.pk).update(
            status=merged.status, solved_at=merged.solved_at, sla_due=merged.sla_due, merged_into=None,
            last_message_at=last, version=F("version") + 1, updated=now,
        )
        record.undone_at = now
        record.undone_by = author(actor)
        record.save(update_fields=["undone_at", "undone_by"])
        common = {"merge": record.pk, "messages": len(message_ids), "tags": added,
                  "merged_number": merged.number, "survivor_number": survivor.number}
        audit(actor, AuditAction.TICKET_MERGE_UNDO, target_of(survivor), merged=f"#{merged.number}",
              role="survivor", **common)
        audit(actor, AuditAction.TICKET_MERGE_UNDO, target_of(merged), survivor=f"#{survivor.number}",
              role="merged", status={"from": Ticket.Status.CLOSED, "to": merged.status}, **common)
    return record
