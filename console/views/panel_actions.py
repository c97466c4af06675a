"""The panel's other actions, in the refund flow's shape (console.confirm): GET form → POST
preview (plan_*, describe()) → POST confirm (the action, with exactly what was previewed).

- cancel a subscription now or at the period's end, optionally refunding the unused part of
  the last invoice (the preview's time stamp is the one the refund is computed at);
- set or remove one metadata key of a Stripe customer (e.g. Tier=VIP);
- create a billing-portal link in the customer's locale and send it as a reply on the ticket
  the panel sits beside (?ticket=<id>); without a ticket the link is shown to copy.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _

from payments.actions import customers, subscriptions
from payments.models import Customer, Subscription
from tickets.models import Contact
from tickets.selectors import customer_language

from .. import actions as console_actions
from .. import panel_selectors
from ..confirm import ConfirmFlow, Outcome
from ..forms import CancelForm, MetadataForm, PortalForm


def _customer_ids(contact_id: int) -> list[str]:
    ids = panel_selectors.contact_customer_ids(contact_id)
    if not ids:
        raise Http404(_("No Stripe customer is linked to this contact"))
    return ids


def _ticket_ref(ticket) -> str:
    return f"#{ticket.number}" if ticket else ""


class CancelFlow(ConfirmFlow):
    name = "cancel"
    template = "actions/cancel.html"
    form_class = CancelForm
    permission = "payments.cancel_subscription"

    def target(self, request, contact_id, subscription_id):
        sub = Subscription.objects.filter(pk=subscription_id, customer__in=_customer_ids(contact_id)).first()
        if sub is None:
            raise Http404(_("No such subscription for this customer"))
        return sub

    def context(self, request, sub):
        return {"subscription": sub}

    def plan(self, request, sub, data, ticket):
        at_period_end = data["when"] != "now"
        plan = subscriptions.plan_cancel(sub.id, actor=request.user, at_period_end=at_period_end,
                                         refund_last_invoice_prorated=data["refund"])
        # as_of: the refund confirmed is the one computed now and shown, not one recomputed later.
        return plan.describe(), {"at_period_end": at_period_end, "prorated": data["refund"],
                                 "feedback": data["feedback"], "comment": data["comment"], "as_of": plan.as_of}

    def execute(self, request, sub, params, ticket, token):
        result = subscriptions.cancel_subscription(
            sub.id, actor=request.user, at_period_end=params["at_period_end"],
            refund_last_invoice_prorated=params["prorated"], feedback=params["feedback"], comment=params["comment"],
            ticket_ref=_ticket_ref(ticket), idempotency_key=token, as_of=params["as_of"],
        )
        # A second submit of this confirmation says what the first did; nothing is done twice.
        return Outcome(message=result.message)


class _CustomerFlow(ConfirmFlow):
    """An action on one of the contact's Stripe customers (the form picks which)."""

    def target(self, request, contact_id):
        return {"contact": contact_id, "customer_ids": _customer_ids(contact_id)}

    def target_id(self, target) -> str:
        return str(target["contact"])

    def form_kwargs(self, request, target):
        return {"customer_ids": target["customer_ids"]}

    def context(self, request, target):
        return {"customer_ids": target["customer_ids"]}


class MetadataFlow(_CustomerFlow):
    name = "metadata"
    template = "actions/metadata.html"
    form_class = MetadataForm
    permission = "payments.update_customer_metadata"

    def context(self, request, target):
        ids = target["customer_ids"]
        chosen = request.GET.get("customer") or ids[0]
        if chosen not in ids:
            raise Http404(_("No such Stripe customer for this contact"))
        # The current metadata, so the agent sees what a key says now.
        data = Customer.objects.filter(pk=chosen).values_list("data", flat=True).first() or {}
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        return {**super().context(request, target), "chosen": chosen, "current": sorted(metadata.items())}

    def initial(self, request, target):
        return {"customer": self.context(request, target)["chosen"]}

    def plan(self, request, target, data, ticket):
        changes = {data["key"]: data["value"]}
        plan = customers.plan_metadata_update(data["customer"], changes, actor=request.user)
        return plan.describe(), {"customer": data["customer"], "changes": changes}

    def execute(self, request, target, params, ticket, token):
        result = customers.update_customer_metadata(
            params["customer"], params["changes"], actor=request.user, ticket_ref=_ticket_ref(ticket),
            idempotency_key=token,
        )
        return Outcome(message=result.message)


def _customer_locale(customer_id: str, contact_id: int, ticket) -> str:
    """The language the portal opens in, fixed at the preview so the confirmation does what it
    said: the first of the Stripe customer's preferred_locales ("ja-JP"), else the contact's
    language as the tickets know it (what they wrote in, their channel)."""
    data = Customer.objects.filter(pk=customer_id).values_list("data", flat=True).first() or {}
    locales = data.get("preferred_locales") or []
    if isinstance(locales, list) and locales and isinstance(locales[0], str) and locales[0].strip():
        return locales[0]
    contact = Contact.objects.filter(pk=contact_id).first()
    return customer_language(contact, ticket) if contact is not None else settings.LANGUAGE_CODE


class PortalFlow(_CustomerFlow):
    name = "portal"
    template = "actions/portal.html"
    form_class = PortalForm
    permission = "payments.create_portal_session"
    prefill = ("flow",)

    def _subscriptions(self, target) -> list[str]:
        return list(Subscription.objects.filter(customer__in=target["customer_ids"]).exclude(
            status__in=subscriptions.ENDED_SUBSCRIPTION).order_by("-created").values_list("id", flat=True))

    def form_kwargs(self, request, target):
        return {**super().form_kwargs(request, target), "subscription_ids": self._subscriptions(target)}

    def plan(self, request, target, data, ticket):
        if ticket is not None and not request.user.has_perm("tickets.reply_ticket"):
            raise PermissionDenied(_("Your role can't reply on tickets."))
        flow = data["flow"]
        about_one = flow in ("subscription_cancel", "subscription_update")
        params = {"customer": data["customer"], "flow": flow, "subscription": data["subscription"] if about_one else "",
                  "coupon": data["coupon"] if flow == "subscription_cancel" else "",
                  "locale": _customer_locale(data["customer"], target["contact"], ticket)}
        plan = customers.plan_portal_session(
            params["customer"], actor=request.user, flow=flow or None, subscription_id=params["subscription"] or None,
            retention_coupon=params["coupon"] or None, locale=params["locale"],
        )
        return plan.describe(), params

    def execute(self, request, target, params, ticket, token):
        sent = console_actions.send_portal_link(
            actor=request.user, ticket=ticket, customer_id=params["customer"], flow=params["flow"],
            subscription_id=params["subscription"], coupon=params["coupon"], locale=params["locale"], token=token,
        )
        return Outcome(message=sent.message, error=sent.error, url=sent.url, refresh=False)


cancel_flow, metadata_flow, portal_flow = CancelFlow(), MetadataFlow(), PortalFlow()
