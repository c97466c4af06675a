"""The Stripe panel beside a ticket, and the refund flow started from it (HTMX).

Refund: GET form → POST preview (plan_refund, describe()) → POST confirm (refund_charge) →
the result, with an HX-Trigger that makes the panel reload its figures. The form's uuid4
token is the idempotency key: a double submit or a retry never refunds twice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from payments import errors
from payments.actions import refunds
from payments.money import decimals, format_money, to_major
from tickets.models import Contact, Ticket

from .. import actions as console_actions
from .. import panel_selectors

PANEL_TEMPLATE = "customers/panel.html"
REFUND_TEMPLATE = "actions/refund.html"
REFRESH_EVENT = "paydesk:panel-refresh"

ERROR_STATUS = (
    (errors.ActionInProgress, 409),
    (errors.StripeActionFailed, 502),
    (errors.ActionRefused, 400),  # RefundLimitExceeded is one
    (errors.ActionError, 400),
)


@require_GET
@permission_required("payments.view_charge", raise_exception=True)
def customer_panel(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=contact_id)
    context = {"panel": panel_selectors.panel(contact), "can_refund": request.user.has_perm("payments.refund_charge")}
    return render(request, PANEL_TEMPLATE + ("#panel" if request.htmx else ""), context)


def _charge(contact_id: int, charge_id: str):
    charge = panel_selectors.contact_charge(contact_id, charge_id)
    if charge is None:
        raise Http404("No such charge for this customer.")
    return charge


def ticket_beside(contact_id: int, raw: str) -> Ticket | None:
    """The ticket the panel sits beside, if it is this contact's (a stale or foreign id: 404)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    ticket = Ticket.objects.filter(pk=raw, requester_id=contact_id).first() if raw.isdigit() else None
    if ticket is None:
        raise Http404("No such ticket for this customer.")
    return ticket


def _amount(raw: str, currency: str) -> int | None:
    """Major units as typed ("12.50") to minor units; blank: all that remains."""
    raw = (raw or "").strip().replace(",", "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.ActionRefused(f"“{raw[:20]}” is not an amount.", code="amount") from None
    minor = value.scaleb(decimals(currency))
    if minor != minor.to_integral_value():
        raise errors.ActionRefused(
            f"{currency.upper()} amounts have at most {decimals(currency)} decimals.", code="amount")
    return int(minor)


def _failure(exc: Exception) -> tuple[int, str]:
    """(HTTP status, message for the person) for an action that did not happen."""
    if isinstance(exc, PermissionDenied):
        return 403, str(exc) or "Your role can't refund charges."
    return next(code for cls, code in ERROR_STATUS if isinstance(exc, cls)), exc.message


def _form_context(request, contact_id: int, charge) -> dict:
    data = request.POST if request.method == "POST" else {}
    token = data.get("token") or uuid.uuid4().hex
    # The ticket the panel sits beside (?ticket=<id>): the refund's audit names it.
    ticket = ticket_beside(contact_id, data.get("ticket", request.GET.get("ticket", "")))
    return {
        "contact_id": contact_id, "charge": charge, "token": token,
        "amount": data.get("amount", ""), "reason": data.get("reason", "requested_by_customer"),
        "note": data.get("note", ""), "ticket": ticket.pk if ticket else "", "ticket_obj": ticket,
        "ticket_ref": f"#{ticket.number}" if ticket else "",
        "reasons": [(r, r.replace("_", " ").capitalize()) for r in refunds.REFUND_REASONS],
        "remainder": format_money(max(0, min(charge.amount - charge.amount_refunded,
                                               charge.amount_captured or charge.amount)), charge.currency),
        "remainder_major": to_major(max(0, charge.amount - charge.amount_refunded), charge.currency),
    }


@require_GET
@permission_required("payments.refund_charge", raise_exception=True)
def refund_form(request: HttpRequest, contact_id: int, charge_id: str) -> HttpResponse:
    charge = _charge(contact_id, charge_id)
    return render(request, REFUND_TEMPLATE + "#form", _form_context(request, contact_id, charge))


@require_POST
@permission_required("payments.refund_charge", raise_exception=True)
def refund_preview(request: HttpRequest, contact_id: int, charge_id: str) -> HttpResponse:
    charge = _charge(contact_id, charge_id)
    context = _form_context(request, contact_id, charge)
    try:
        amount = _amount(context["amount"], charge.currency)
        plan = refunds.plan_refund(charge.id, actor=request.user, amount=amount, currency=charge.currency)
    except (errors.ActionError, PermissionDenied) as exc:
        status, context["error"] = _failure(exc)
        # Over their limit beside a ticket: the agent can hand this very refund to finance.
        context["ask_finance"] = isinstance(exc, errors.RefundLimitExceeded) and bool(context["ticket"])
        return render(request, REFUND_TEMPLATE + "#form", context, status=status)
    context.update(plan=plan, description=plan.describe(), amount_minor=plan.amount)
    return render(request, REFUND_TEMPLATE + "#preview", context)


@require_POST
@permission_required("payments.refund_charge", raise_exception=True)
def refund_confirm(request: HttpRequest, contact_id: int, charge_id: str) -> HttpResponse:
    charge = _charge(contact_id, charge_id)
    context = _form_context(request, contact_id, charge)
    try:
        raw = request.POST.get("amount_minor", "")
        amount = int(raw) if raw.isdigit() else None
        result = refunds.refund_charge(
            charge.id, actor=request.user, amount=amount, currency=charge.currency,
            reason=context["reason"], note=context["note"], ticket_ref=context["ticket_ref"],
            idempotency_key=context["token"],
        )
    except (errors.ActionError, PermissionDenied) as exc:
        status, context["error"] = _failure(exc)
        return render(request, REFUND_TEMPLATE + "#result", context, status=status)
    context["message"] = result.message
    response = render(request, REFUND_TEMPLATE + "#result", context)
    response["HX-Trigger"] = REFRESH_EVENT
    return response


@require_POST
@permission_required(("payments.refund_charge", "tickets.note_ticket"), raise_exception=True)
def refund_ask_finance(request: HttpRequest, contact_id: int, charge_id: str) -> HttpResponse:
    """The refund form's "Ask finance" after a limit refusal: the same amount, reason and note
    go to finance on the ticket (console.actions.request_refund_approval)."""
    charge = _charge(contact_id, charge_id)
    context = _form_context(request, contact_id, charge)
    try:
        if context["ticket_obj"] is None:
            raise errors.ActionRefused("Open the customer's ticket to ask finance on it.", code="ticket")
        amount = _amount(context["amount"], charge.currency)
        if amount is None:  # blank: all that is left
            amount = max(0, charge.amount - charge.amount_refunded)
        refusal = ""
        try:
            refunds.plan_refund(charge.id, actor=request.user, amount=amount, currency=charge.currency)
        except errors.RefundLimitExceeded as exc:
            refusal = exc.message
        if not refusal:
            raise errors.ActionRefused("This refund is within your limit: review and confirm it yourself.",
                                               code="within_limit")
        asked = console_actions.request_refund_approval(
            request.user, ticket=context["ticket_obj"], charge_id=charge.id, amount=amount,
            currency=charge.currency, reason=context["reason"], note=context["note"], refusal=refusal,
            token=context["token"],
        )
    except (errors.ActionError, PermissionDenied) as exc:
        status, context["error"] = _failure(exc)
        return render(request, REFUND_TEMPLATE + "#result", context, status=status)
    except ValidationError as exc:
        context["error"] = exc.messages[0]
        return render(request, REFUND_TEMPLATE + "#result", context, status=400)
    context["message"] = asked.message
    response = render(request, REFUND_TEMPLATE + "#result", context)
    response["HX-Trigger"] = REFRESH_EVENT
    return response
