"""Refund approvals asked for before console.RefundApproval existed (0008).

Agents had asked finance the old way: a note on the ticket, the `refund-approval` tag, the
finance team, and the audit row REFUND_APPROVAL_REQUESTED (target: the charge; details: amount,
currency, reason, note, ticket "#<number>", token). Each such row without an approval (matched by
its token) becomes one, so finance's queue (/approvals/) shows it:

- skipped when the row lacks what an approval needs (a whole positive amount, a currency, a
  charge id, a ticket that still exists);
- approved when the payments mirror holds refunds of the charge made since the request that add
  up to at least the amount asked (decided by whoever made the refund that reached it, per its
  CHARGE_REFUND audit row; at the refund's time);
- declined ("closed on the ticket before…") when it was not refunded and the ticket no longer
  carries the tag: someone dealt with it on the ticket, and finance's queue is for what is waiting;
- open otherwise.

The team the ticket was in before it went to finance is read from the ticket's assignment audit
row written with the request, where there is one. Idempotent (a second run finds every token);
reverse does nothing (the rows are left: they may have been decided since).
"""

import datetime as dt
import uuid

from django.db import migrations

REQUESTED = "refund.approval_requested"
ASSIGNED = "ticket.assign"
REFUNDED = "charge.refund"
APPROVAL_TAG = "refund-approval"
CLOSED_BEFORE = "Closed on the ticket before refund approvals were tracked (no refund was made since)."
NEAR = dt.timedelta(seconds=10)


def _previous_team(AuditEntry, Team, entry, number: int):
    row = (AuditEntry.objects.filter(action=ASSIGNED, target=f"ticket:{number}", actor_id=entry.actor_id,
                                     created__gte=entry.created - NEAR, created__lte=entry.created + NEAR)
           .order_by("id").values_list("details", flat=True).first())
    team = ((row or {}).get("team") or {}) if isinstance(row, dict) else {}
    team_id = team.get("from") if isinstance(team, dict) else None
    return Team.objects.filter(pk=team_id).first() if isinstance(team_id, int) else None


def _refunded_since(Refund, AuditEntry, charge: str, since, amount: int):
    """(the refund that brought the total to `amount`, the total, its maker's id), or Nones."""
    total = 0
    for refund in (Refund.objects.filter(charge=charge, created__gte=since, deleted=False,
                                         status__in=("succeeded", "pending"))
                   .order_by("created", "id")):
        total += refund.amount or 0
        if total >= amount:
            maker = (AuditEntry.objects.filter(action=REFUNDED, target=charge, details__refund=refund.pk)
                     .values_list("actor_id", flat=True).first())
            return refund, total, maker
    return None, None, None


def backfill(apps, schema_editor):
    AuditEntry = apps.get_model("audit", "AuditEntry")
    RefundApproval = apps.get_model("console", "RefundApproval")
    Ticket = apps.get_model("tickets", "Ticket")
    Team = apps.get_model("tickets", "Team")
    Refund = apps.get_model("payments", "Refund")
    known = set(RefundApproval.objects.values_list("token", flat=True))
    for entry in AuditEntry.objects.filter(action=REQUESTED).order_by("created", "id"):
        d = entry.details if isinstance(entry.details, dict) else {}
        token = str(d.get("token") or "")[:64] or f"backfill-audit-{entry.pk}"
        if token in known:
            continue
        amount, currency = d.get("amount"), str(d.get("currency") or "").lower()
        number, charge = str(d.get("ticket") or ""), entry.target or ""
        if (not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0 or len(currency) != 3
                or not currency.isalpha() or not charge or not number.startswith("#") or not number[1:].isdigit()):
            continue
        ticket = Ticket.objects.filter(number=int(number[1:])).first()
        if ticket is None:
            continue
        refund, total, maker = _refunded_since(Refund, AuditEntry, charge, entry.created - NEAR, amount)
        fields = {}
        if refund is not None:
            fields = {"status": "approved", "refund_id": refund.pk, "refunded": total, "decided_by_id": maker,
                      "decided_at": refund.created}
        elif not ticket.tags.filter(name=APPROVAL_TAG).exists():
            fields = {"status": "declined", "decline_reason": CLOSED_BEFORE, "decided_at": entry.created}
        approval = RefundApproval.objects.create(
            ticket=ticket, charge_id=charge[:255], amount=amount, currency=currency,
            reason=str(d.get("reason") or "requested_by_customer")[:32], note=str(d.get("note") or ""),
            refusal="", requested_by_id=entry.actor_id, previous_team=_previous_team(AuditEntry, Team, entry, ticket.number),
            token=token, refund_token=uuid.uuid4().hex, **fields,
        )
        # requested_at is auto_now_add: the request's own time, set after.
        RefundApproval.objects.filter(pk=approval.pk).update(requested_at=entry.created)
        known.add(token)


class Migration(migrations.Migration):

    dependencies = [
        ("console", "0009_userpreference_after_solve"),
        ("audit", "0002_labels"),
        ("payments", "0008_search_trigram_indexes"),
        ("tickets", "0008_macro_teams_usage_ticket_merge"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
    ]
