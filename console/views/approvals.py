"""Finance's refund approvals (/approvals/): the refunds agents over their limit asked for, and
the two answers.

Approve opens the normal refund flow (console.confirm: form → preview in money terms →
confirm), pre-filled from the request; the confirmation refunds through
payments.actions.refunds.refund_charge with the request's own idempotency key (so approving
twice refunds once) and then closes the request (console.actions.close_refund_approval).
Decline is a small form with the reason. Finance and admins only: agents, who may refund
within their limit, ask here but don't decide.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from payments.actions import refunds
from payments.errors import ActionRefused
from payments.money import format_money, to_major
from payments.stripe_objects import refundable

from .. import actions as console_actions
from .. import approval_selectors
from ..confirm import REFUSALS, ConfirmFlow, Outcome, failure
from ..forms import RefundForm
from ..models import RefundApproval
from .panel import RefundFlow

TEMPLATE = "approvals/approvals.html"


def _decider(request: HttpRequest) -> None:
    if not console_actions.may_decide_approvals(request.user):
        raise PermissionDenied(_("Only finance decides refund approvals."))


@require_GET
@permission_required("payments.refund_charge", raise_exception=True)
@vary_on_headers("HX-Request")
def approvals(request: HttpRequest) -> HttpResponse:
    """The open requests, oldest first; HTMX gets the list alone (after a refund or a decline)."""
    _decider(request)
    context = {"rows": approval_selectors.open_approvals(), "nav": "approvals"}
    return render(request, TEMPLATE + ("#list" if request.htmx else ""), context)


class ApprovalRefundFlow(ConfirmFlow):
    """The refund flow of the customer panel, on a request: the same form, plan and preview
    (RefundFlow's), the request's refund key, and the request closed once refunded."""

    name = "approval_refund"
    template = "approvals/refund.html"
    form_class = RefundForm
    permission = "payments.refund_charge"
    prefill = RefundFlow.prefill

    def target(self, request, contact_id=None, approval_id=None):
        _decider(request)  # before anything is looked up
        return approval_selectors.approval(approval_id)

    def form_kwargs(self, request, approval):
        return {"currency": approval.currency}

    def initial(self, request, approval):
        # A bare link (no query string) still opens what was asked.
        return {"amount": to_major(approval.amount, approval.currency), "reason": approval.reason,
                "note": approval.note}

    def context(self, request, approval):
        charge = approval_selectors.approval_charge(approval)
        left = refundable(charge)
        limit = refunds.refund_limit(request.user, charge.currency)
        return {"approval": approval, "charge": charge, "remainder": format_money(left, charge.currency),
                "remainder_major": to_major(left, charge.currency), "refundable": left > 0,
                "refund_limit": format_money(limit, charge.currency) if limit is not None else ""}

    def plan(self, request, approval, data, ticket):
        if approval.status != RefundApproval.Status.OPEN:
            raise ActionRefused(_("This request is already closed."), code="closed")
        plan = refunds.plan_refund(approval.charge_id, actor=request.user, amount=data["amount"],
                                   currency=approval.currency)
        return plan.describe(), {"amount": plan.amount, "currency": plan.currency, "reason": data["reason"],
                                 "note": data["note"]}

    def execute(self, request, approval, params, ticket, token):
        if approval.status == RefundApproval.Status.DECLINED:
            raise ActionRefused(_("This request was declined; nothing was refunded."), code="closed")
        # The request's key, not the form's: two previews of one request refund once.
        result = refunds.refund_charge(
            approval.charge_id, actor=request.user, amount=params["amount"], currency=params["currency"],
            reason=params["reason"], note=params["note"], ticket_ref=f"#{approval.ticket.number}",
            idempotency_key=approval.refund_token,
        )
        closed = console_actions.close_refund_approval(actor=request.user, approval=approval, refund=result.refund)
        return Outcome(message=f"{result.message} {closed.message}", refresh=False)


approval_refund_flow = ApprovalRefundFlow()


@require_POST
@permission_required("payments.refund_charge", raise_exception=True)
def approval_decline(request: HttpRequest, approval_id: int) -> HttpResponse:
    """Decline a request with a reason: the agent who asked reads it on the ticket and under the bell."""
    _decider(request)
    approval = approval_selectors.approval(approval_id)
    try:
        closed = console_actions.close_refund_approval(
            actor=request.user, approval=approval, decline_reason=request.POST.get("reason", "")[:2000])
    except REFUSALS as exc:
        status, error = failure(exc)
        context = {"rows": approval_selectors.open_approvals(), "nav": "approvals", "error": error,
                   "declining": approval.pk}
        return render(request, TEMPLATE + ("#list" if request.htmx else ""), context, status=status)
    messages.success(request, closed.message)
    return redirect("approvals")
