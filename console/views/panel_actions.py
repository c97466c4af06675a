"""The panel's other actions, in the refund flow's shape (console/views/panel.py): GET form → POST
preview (plan_*, describe()) → POST confirm (the action, the form's uuid4 token as its
idempotency key) → the result fragment.

- cancel a subscription now or at the period's end, optionally refunding the unused part of
  the last invoice (the preview's time stamp is the one the refund is computed at);
- set or remove one metadata key of a Stripe customer (e.g. Tier=VIP);
- create a billing-portal link in the customer's locale and send it as a reply on the ticket
  the panel sits beside (?ticket=<id>); without a ticket the link is shown to copy.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from payments import errors
from payments.actions import customers, subscriptions
from payments.models import Customer, Subscription
from tickets import actions as ticket_actions
from tickets.models import Message

from .. import panel_selectors
from .panel import REFRESH_EVENT, _failure, ticket_beside

CANCEL_TEMPLATE = "actions/cancel.html"
METADATA_TEMPLATE = "actions/metadata.html"
PORTAL_TEMPLATE = "actions/portal.html"
REFUSED = (errors.ActionError, PermissionDenied)

PORTAL_FLOW_LABELS = {
    "": "The portal's home page",
    "payment_method_update": "Update the payment method",
    "subscription_cancel": "Cancel a subscription",
    "subscription_update": "Change a subscription's plan",
}
# What the reply says the link is for; the portal itself opens in the customer's language.
PORTAL_PURPOSE = {
    "": "manage your billing",
    "payment_method_update": "update your payment method",
    "subscription_cancel": "cancel your subscription",
    "subscription_update": "change your plan",
}


# --- shared ----------------------------------------------------------------------------------


def _customer_ids(contact_id: int) -> list[str]:
    ids = panel_selectors.contact_customer_ids(contact_id)
    if not ids:
        raise Http404("No Stripe customer is linked to this contact.")
    return ids


def _base(request, contact_id: int) -> dict:
    data = request.POST if request.method == "POST" else {}
    ticket = ticket_beside(contact_id, data.get("ticket", request.GET.get("ticket", "")))
    return {
        "contact_id": contact_id, "token": data.get("token") or uuid.uuid4().hex,
        "ticket": ticket, "ticket_id": ticket.pk if ticket else "",
        "ticket_ref": f"#{ticket.number}" if ticket else "",
    }


def _refused(request, template: str, context: dict, exc: Exception) -> HttpResponse:
    status, context["error"] = _failure(exc)
    return render(request, template, context, status=status)


def _done(request, template: str, context: dict, *, refresh: bool = True) -> HttpResponse:
    response = render(request, template, context)
    if refresh:
        response["HX-Trigger"] = REFRESH_EVENT
    return response


# --- cancel a subscription -------------------------------------------------------------------


def _subscription(contact_id: int, subscription_id: str) -> Subscription:
    sub = Subscription.objects.filter(pk=subscription_id, customer__in=_customer_ids(contact_id)).first()
    if sub is None:
        raise Http404("No such subscription for this customer.")
    return sub


def _cancel_context(request, contact_id: int, sub: Subscription) -> dict:
    data = request.POST if request.method == "POST" else {}
    context = _base(request, contact_id)
    context.update(
        subscription=sub, when=data.get("when", "period_end"), refund=data.get("refund") == "on",
        feedback=data.get("feedback", ""), comment=data.get("comment", ""),
        feedbacks=[(f, f.replace("_", " ").capitalize()) for f in subscriptions.CANCEL_FEEDBACK],
    )
    return context


@require_GET
@permission_required("payments.cancel_subscription", raise_exception=True)
def cancel_form(request: HttpRequest, contact_id: int, subscription_id: str) -> HttpResponse:
    sub = _subscription(contact_id, subscription_id)
    return render(request, CANCEL_TEMPLATE + "#form", _cancel_context(request, contact_id, sub))


@require_POST
@permission_required("payments.cancel_subscription", raise_exception=True)
def cancel_preview(request: HttpRequest, contact_id: int, subscription_id: str) -> HttpResponse:
    sub = _subscription(contact_id, subscription_id)
    context = _cancel_context(request, contact_id, sub)
    try:
        plan = subscriptions.plan_cancel(
            sub.id, actor=request.user, at_period_end=context["when"] != "now",
            refund_last_invoice_prorated=context["refund"],
        )
    except REFUSED as exc:
        return _refused(request, CANCEL_TEMPLATE + "#form", context, exc)
    # as_of: the refund confirmed is the one computed now and shown, not one recomputed later.
    context.update(description=plan.describe(), as_of=plan.as_of)
    return render(request, CANCEL_TEMPLATE + "#preview", context)


@require_POST
@permission_required("payments.cancel_subscription", raise_exception=True)
def cancel_confirm(request: HttpRequest, contact_id: int, subscription_id: str) -> HttpResponse:
    sub = _subscription(contact_id, subscription_id)
    context = _cancel_context(request, contact_id, sub)
    raw_as_of = request.POST.get("as_of", "")
    try:
        result = subscriptions.cancel_subscription(
            sub.id, actor=request.user, at_period_end=context["when"] != "now",
            refund_last_invoice_prorated=context["refund"], feedback=context["feedback"],
            comment=context["comment"], ticket_ref=context["ticket_ref"], idempotency_key=context["token"],
            as_of=int(raw_as_of) if raw_as_of.isdigit() else None,
        )
    except errors.PartiallyCompleted as exc:
        # The cancellation happened (mirrored, audited): say what failed and refresh the panel.
        context["error"] = exc.message
        return _done(request, CANCEL_TEMPLATE + "#result", context)
    except REFUSED as exc:
        return _refused(request, CANCEL_TEMPLATE + "#result", context, exc)
    # A second submit of this confirmation says what the first did; nothing is done twice.
    context["message"] = result.message
    return _done(request, CANCEL_TEMPLATE + "#result", context)


# --- customer metadata -----------------------------------------------------------------------


def _metadata_context(request, contact_id: int) -> dict:
    data = request.POST if request.method == "POST" else {}
    ids = _customer_ids(contact_id)
    customer = data.get("customer") or request.GET.get("customer") or ids[0]
    if customer not in ids:
        raise Http404("No such Stripe customer for this contact.")
    context = _base(request, contact_id)
    context.update(customer=customer, customer_ids=ids, key=data.get("key", "Tier"), value=data.get("value", ""))
    return context


@require_GET
@permission_required("payments.update_customer_metadata", raise_exception=True)
def metadata_form(request: HttpRequest, contact_id: int) -> HttpResponse:
    context = _metadata_context(request, contact_id)
    # The current metadata, so the agent sees what a key says now.
    data = Customer.objects.filter(pk=context["customer"]).values_list("data", flat=True).first() or {}
    context["current"] = sorted((data.get("metadata") or {}).items())
    return render(request, METADATA_TEMPLATE + "#form", context)


@require_POST
@permission_required("payments.update_customer_metadata", raise_exception=True)
def metadata_preview(request: HttpRequest, contact_id: int) -> HttpResponse:
    context = _metadata_context(request, contact_id)
    try:
        plan = customers.plan_metadata_update(context["customer"], {context["key"]: context["value"]}, actor=request.user)
    except REFUSED as exc:
        return _refused(request, METADATA_TEMPLATE + "#form", context, exc)
    context["description"] = plan.describe()
    return render(request, METADATA_TEMPLATE + "#preview", context)


@require_POST
@permission_required("payments.update_customer_metadata", raise_exception=True)
def metadata_confirm(request: HttpRequest, contact_id: int) -> HttpResponse:
    context = _metadata_context(request, contact_id)
    try:
        result = customers.update_customer_metadata(
            context["customer"], {context["key"]: context["value"]}, actor=request.user,
            ticket_ref=context["ticket_ref"], idempotency_key=context["token"],
        )
    except REFUSED as exc:
        return _refused(request, METADATA_TEMPLATE + "#result", context, exc)
    context["message"] = result.message
    return _done(request, METADATA_TEMPLATE + "#result", context)


# --- billing-portal link ---------------------------------------------------------------------


def _portal_context(request, contact_id: int) -> dict:
    data = request.POST if request.method == "POST" else {}
    context = _metadata_context(request, contact_id)  # the same customer choice
    ids = context["customer_ids"]
    context.update(
        flow=data.get("flow", "payment_method_update"), subscription_id=data.get("subscription", ""),
        coupon=data.get("coupon", ""), flows=list(PORTAL_FLOW_LABELS.items()),
        subscriptions=list(Subscription.objects.filter(customer__in=ids).exclude(
            status__in=subscriptions.ENDED_SUBSCRIPTION).order_by("-created").values_list("id", flat=True)),
    )
    return context


def _portal_kwargs(context: dict) -> dict:
    about_one = context["flow"] in ("subscription_cancel", "subscription_update")
    # The customer's own language: the first of their Stripe preferred_locales ("ja-JP" → ja).
    data = Customer.objects.filter(pk=context["customer"]).values_list("data", flat=True).first() or {}
    locales = data.get("preferred_locales") or []
    return {
        "flow": context["flow"] or None,
        "subscription_id": context["subscription_id"] if about_one else None,
        "retention_coupon": context["coupon"] if context["flow"] == "subscription_cancel" else None,
        "locale": locales[0] if locales else None,
    }


@require_GET
@permission_required("payments.create_portal_session", raise_exception=True)
def portal_form(request: HttpRequest, contact_id: int) -> HttpResponse:
    return render(request, PORTAL_TEMPLATE + "#form", _portal_context(request, contact_id))


@require_POST
@permission_required("payments.create_portal_session", raise_exception=True)
def portal_preview(request: HttpRequest, contact_id: int) -> HttpResponse:
    context = _portal_context(request, contact_id)
    try:
        if context["ticket"] is not None and not request.user.has_perm("tickets.reply_ticket"):
            raise PermissionDenied("Your role can't reply on tickets.")
        plan = customers.plan_portal_session(context["customer"], actor=request.user, **_portal_kwargs(context))
    except REFUSED as exc:
        return _refused(request, PORTAL_TEMPLATE + "#form", context, exc)
    context["description"] = plan.describe()
    return render(request, PORTAL_TEMPLATE + "#preview", context)


def _reply_body(flow: str, url: str) -> str:
    return (
        f"Here is a secure link to {PORTAL_PURPOSE.get(flow, PORTAL_PURPOSE[''])}:\n{url}\n\n"
        "Please open it within a few minutes; it stops working after that. "
        "Don't share it: it opens your billing settings."
    )


@require_POST
@permission_required("payments.create_portal_session", raise_exception=True)
def portal_confirm(request: HttpRequest, contact_id: int) -> HttpResponse:
    context = _portal_context(request, contact_id)
    ticket = context["ticket"]
    try:
        if ticket is not None and not request.user.has_perm("tickets.reply_ticket"):
            raise PermissionDenied("Your role can't reply on tickets.")
        result = customers.create_portal_session(
            context["customer"], actor=request.user, **_portal_kwargs(context),
            ticket_ref=context["ticket_ref"], idempotency_key=context["token"],
        )
    except REFUSED as exc:
        return _refused(request, PORTAL_TEMPLATE + "#result", context, exc)
    url = result.url
    if ticket is None:
        made = "This confirmation already created this link" if result.replayed else "Billing-portal link created"
        context.update(url=url, message=f"{made}. Copy it to the customer:")
        return _done(request, PORTAL_TEMPLATE + "#result", context, refresh=False)
    # A retried confirmation gets Stripe's same session back (same idempotency key): send it once.
    if Message.objects.filter(ticket=ticket, body_text__contains=url).exists():
        context["message"] = (f"This confirmation already sent this link on ticket #{ticket.number}; "
                              "nothing was sent again.")
        return _done(request, PORTAL_TEMPLATE + "#result", context, refresh=False)
    if result.replayed:
        # This confirmation made the link before but it isn't on the ticket (its reply failed,
        # or Stripe no longer replays that answer): never risk sending a second link.
        context.update(url=url, error=(f"This confirmation already created a link that was not sent on ticket "
                                       f"#{ticket.number}; nothing was sent now. Copy it instead:"))
        return _done(request, PORTAL_TEMPLATE + "#result", context, refresh=False)
    try:
        message = ticket_actions.reply(actor=request.user, ticket=ticket, body=_reply_body(context["flow"], url))
    except (ValidationError, PermissionDenied) as exc:
        # The session exists but was not sent: the agent may still pass the link on by hand.
        reason = "; ".join(getattr(exc, "messages", None) or [str(exc)])
        context.update(url=url, error=f"The link was created but not sent: {reason} Copy it instead:")
        return _done(request, PORTAL_TEMPLATE + "#result", context, refresh=False)
    context["message"] = f"Billing-portal link sent on ticket #{ticket.number} by {message.get_channel_display()}."
    return _done(request, PORTAL_TEMPLATE + "#result", context, refresh=False)
