"""Reads for finance's refund approvals (/approvals/): the open requests, oldest first, each in
money terms with the charge, the ticket and who asked; one request for the approve and decline
steps; the count beside the navigation's link. A constant handful of queries."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _

from common.l10n import format_when
from payments import stripe_words
from payments.models import Charge
from payments.money import format_money, to_major

from .models import RefundApproval

PAGE_SIZE = 100  # a queue longer than this is a process problem, not a paging one


@dataclass(frozen=True)
class ApprovalRow:
    approval: RefundApproval
    money: str  # "$25.00"
    reason: str  # Stripe's reason in words
    asked_by: str
    asked_at: str  # in the reader's language and zone
    asked_at_iso: dt.datetime
    approve_url: str  # the refund form, pre-filled with what was asked
    approve_fields: dict  # what was asked, posted straight to the preview (approve in one click)

    @property
    def ticket(self):
        return self.approval.ticket


def _open():
    return RefundApproval.objects.filter(status=RefundApproval.Status.OPEN)


def open_count() -> int:
    """How many requests wait for finance (the navigation's count; the partial index answers)."""
    return _open().count()


def approve_url(approval: RefundApproval) -> str:
    """The refund form for this request, filled by the flow's query-string prefill (the form
    still validates it, and the preview says it in money terms)."""
    query = urlencode({"amount": to_major(approval.amount, approval.currency), "reason": approval.reason,
                       "note": approval.note})
    return f"{reverse('approval_refund_form', args=[approval.pk])}?{query}"


def open_approvals() -> list[ApprovalRow]:
    """The open requests, oldest first (the longest wait on top)."""
    approvals = (_open().select_related("ticket", "requested_by").order_by("requested_at", "id")[:PAGE_SIZE])
    return [
        ApprovalRow(
            approval=a, money=format_money(a.amount, a.currency),
            reason=stripe_words.label("refund.reason", a.reason),
            asked_by=(a.requested_by.get_full_name() or a.requested_by.get_username()) if a.requested_by
            else _("a former colleague"),
            asked_at=format_when(a.requested_at), asked_at_iso=a.requested_at, approve_url=approve_url(a),
            approve_fields={"token": uuid.uuid4().hex, "amount": to_major(a.amount, a.currency),
                            "reason": a.reason, "note": a.note},
        )
        for a in approvals
    ]


def approval(approval_id) -> RefundApproval:
    """One request (any status: a closed one answers that it is closed), else 404."""
    found = RefundApproval.objects.select_related("ticket", "requested_by").filter(pk=approval_id).first()
    if found is None:
        raise Http404(_("No such refund approval"))
    return found


def approval_charge(approval: RefundApproval) -> Charge:
    """The mirrored charge the request is about (the refund form reads its remainder), else 404."""
    charge = Charge.objects.filter(pk=approval.charge_id).only(
        "id", "status", "amount", "amount_captured", "amount_refunded", "currency").first()
    if charge is None:
        raise Http404(_("No such charge"))
    return charge
