"""The Stripe panel beside a ticket and on the customer page, and the refund started from it.

Refund: GET form → POST preview (plan_refund, describe()) → POST confirm (refund_charge), the
steps of console.confirm; the result carries an HX-Trigger that makes the panel reload its
figures. An agent refused by their limit beside a ticket can hand exactly that refund to
finance ("Ask finance"): the refusal carries it signed, as a preview carries a confirmation.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import permission_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from payments.actions import refunds
from payments.errors import ActionRefused, RefundLimitExceeded
from payments.money import format_money, to_major
from payments.stripe_objects import refundable
from tickets.models import Contact

from .. import actions as console_actions
from .. import panel_selectors
from ..confirm import REFRESH_EVENT, REFUSALS, ConfirmFlow, Outcome, failure, ticket_beside
from ..forms import RefundForm

PANEL_TEMPLATE = "customers/panel.html"
REFUND_TEMPLATE = "actions/refund.html"
HANDOVER_SALT = "paydesk.confirm.ask_finance"


@require_GET
@permission_required("payments.view_charge", raise_exception=True)
def customer_panel(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=contact_id)
    context = {"panel": panel_selectors.panel(contact), "can_refund": request.user.has_perm("payments.refund_charge")}
    return render(request, PANEL_TEMPLATE + ("#panel" if request.htmx else ""), context)


class RefundFlow(ConfirmFlow):
    name = "refund"
    template = REFUND_TEMPLATE
    form_class = RefundForm
    permission = "payments.refund_charge"
    prefill = ("amount", "reason", "note")

    def target(self, request, contact_id, charge_id):
        charge = panel_selectors.contact_charge(contact_id, charge_id)
        if charge is None:
            raise Http404(_("No such charge for this customer"))
        return charge

    def form_kwargs(self, request, charge):
        return {"currency": charge.currency}

    def context(self, request, charge):
        left = refundable(charge)
        # The person's own limit, shown before they type an amount (None: no limit, nothing shown).
        limit = refunds.refund_limit(request.user, charge.currency)
        return {"charge": charge, "remainder": format_money(left, charge.currency),
                "remainder_major": to_major(left, charge.currency), "refundable": left > 0,
                "refund_limit": format_money(limit, charge.currency) if limit is not None else ""}

    def plan(self, request, charge, data, ticket):
        plan = refunds.plan_refund(charge.id, actor=request.user, amount=data["amount"], currency=charge.currency)
        # The amount is the one shown, even when the person left it blank (all that was left then).
        return plan.describe(), {"amount": plan.amount, "currency": plan.currency, "reason": data["reason"],
                                 "note": data["note"]}

    def refused(self, request, charge, data, ticket, exc, context):
        # Over their limit beside a ticket: the agent can hand this very refund to finance.
        if isinstance(exc, RefundLimitExceeded) and ticket is not None:
            amount = data["amount"] if data["amount"] is not None else refundable(charge)
            context["handover"] = signing.dumps({
                "user": request.user.pk, "charge": charge.id, "ticket": ticket.pk, "amount": amount,
                "currency": charge.currency, "reason": data["reason"], "note": data["note"],
                "refusal": exc.message, "token": data["token"],
            }, salt=HANDOVER_SALT, compress=True)

    def execute(self, request, charge, params, ticket, token):
        result = refunds.refund_charge(
            charge.id, actor=request.user, amount=params["amount"], currency=params["currency"],
            reason=params["reason"], note=params["note"], ticket_ref=f"#{ticket.number}" if ticket else "",
            idempotency_key=token,
        )
        return Outcome(message=result.message)


refund_flow = RefundFlow()


@require_POST
@permission_required(("payments.refund_charge", "tickets.note_ticket"), raise_exception=True)
def refund_ask_finance(request: HttpRequest, contact_id: int, charge_id: str) -> HttpResponse:
    """The refund form's "Ask finance" after a limit refusal: exactly the refund that was refused
    (carried signed by the refusal) goes to finance on the ticket, once per refusal shown."""
    charge = refund_flow.target(request, contact_id, charge_id)
    context = {"contact_id": contact_id, "charge": charge, **refund_flow.context(request, charge)}
    try:
        try:
            asked = signing.loads(request.POST.get("handover", ""), salt=HANDOVER_SALT, max_age=15 * 60)
        except signing.BadSignature:
            raise ActionRefused(_("Review the refund again; this hand-over is not one Paydesk showed."),
                                code="handover") from None
        if asked.get("user") != request.user.pk or asked.get("charge") != charge.id:
            raise ActionRefused(_("This hand-over was made for another refund; review it again."), code="handover")
        ticket = ticket_beside(contact_id, asked.get("ticket"))
        if ticket is None:
            raise ActionRefused(_("Open the customer's ticket to ask finance on it."), code="ticket")
        try:  # still over the limit? (someone may have raised it, or refunded meanwhile)
            refunds.plan_refund(charge.id, actor=request.user, amount=asked["amount"], currency=charge.currency)
        except RefundLimitExceeded:
            pass
        else:
            raise ActionRefused(_("This refund is within your limit: review and confirm it yourself."),
                                code="within_limit")
        result = console_actions.request_refund_approval(
            actor=request.user, ticket=ticket, charge_id=charge.id, amount=asked["amount"], currency=charge.currency,
            reason=asked["reason"], note=asked["note"], refusal=asked["refusal"],
            token=asked.get("token") or uuid.uuid4().hex,
        )
    except REFUSALS as exc:
        status, context["error"] = failure(exc)
        return render(request, REFUND_TEMPLATE + "#result", context, status=status)
    context["message"] = result.message
    response = render(request, REFUND_TEMPLATE + "#result", context)
    response["HX-Trigger"] = REFRESH_EVENT
    return response

