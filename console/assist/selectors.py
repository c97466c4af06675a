"""What assist reads: a contact's recent Stripe history from the mirror (charges, refunds,
subscriptions, invoices, disputes), as plain rows, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from payments.models import Charge, Customer, Dispute, Invoice, Refund, Subscription
from payments.stripe_objects import card_details, subscription_period, ts
from tickets.models import Identity, Message

HISTORY_DAYS = 400  # a customer writes about what happened this year, rarely earlier
LIMIT = 200


@dataclass
class History:
    customer_ids: list[str]
    customer_name: str = ""  # the name on the (first named) Stripe customer
    charges: list[dict] = field(default_factory=list)  # newest first
    refunds: list[dict] = field(default_factory=list)
    subscriptions: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)
    disputes: list[dict] = field(default_factory=list)

    def charge(self, charge_id: str) -> dict | None:
        return next((c for c in self.charges if c["id"] == charge_id), None)

    def refunds_of(self, charge_id: str) -> list[dict]:
        return [r for r in self.refunds if r["charge"] == charge_id]


def contact_customer_ids(contact_id: int | None) -> list[str]:
    if not contact_id:
        return []
    return list(Identity.objects.filter(contact_id=contact_id, kind=Identity.Kind.STRIPE_CUSTOMER)
                .order_by("value").values_list("value", flat=True))


def history(contact_id: int | None, *, until: dt.datetime) -> History:
    """The contact's Stripe objects from HISTORY_DAYS before `until` up to it (a message is
    about what had happened when it was written)."""
    ids = contact_customer_ids(contact_id)
    out = History(customer_ids=ids)
    if not ids:
        return out
    since = until - dt.timedelta(days=HISTORY_DAYS)
    out.customer_name = next((n for n in Customer.objects.filter(pk__in=ids).order_by("id")
                              .values_list("name", flat=True) if n), "")
    charges = (Charge.objects.filter(customer__in=ids, created__gte=since, created__lte=until)
               .order_by("-created", "-id")[:LIMIT])
    for c in charges:
        data = c.data or {}
        card = card_details(data)
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        out.charges.append({
            "id": c.id, "created": c.created, "amount": c.amount, "currency": (c.currency or "").lower(),
            "status": c.status, "paid": c.paid, "amount_refunded": c.amount_refunded, "refunded": c.refunded,
            "disputed": c.disputed, "invoice": c.invoice, "description": c.description or "",
            "metadata": {str(k): str(v) for k, v in metadata.items()}, "failure_code": c.failure_code,
            "failure_message": data.get("failure_message") or "", "last4": (card or {}).get("last4") or "",
            "brand": (card or {}).get("brand") or "", "receipt_url": data.get("receipt_url") or "",
        })
    charge_ids = [c["id"] for c in out.charges]
    for r in Refund.objects.filter(charge__in=charge_ids).order_by("-created", "-id")[:LIMIT]:
        out.refunds.append({"id": r.id, "charge": r.charge, "amount": r.amount, "currency": (r.currency or "").lower(),
                            "status": r.status, "reason": r.reason, "created": r.created})
    for s in Subscription.objects.filter(customer__in=ids).order_by("-created", "-id")[:LIMIT]:
        data = s.data or {}
        start, end = subscription_period(data)
        out.subscriptions.append({
            "id": s.id, "status": s.status, "created": s.created, "canceled_at": s.canceled_at,
            "cancel_at_period_end": s.cancel_at_period_end,
            "current_period_end": s.current_period_end or ts(end), "ended_at": ts(data.get("ended_at")),
            "cancel_at": ts(data.get("cancel_at")), "currency": (s.currency or "").lower(),
        })
    for i in Invoice.objects.filter(customer__in=ids, created__gte=since).order_by("-created", "-id")[:LIMIT]:
        data = i.data or {}
        out.invoices.append({
            "id": i.id, "number": i.number, "status": i.status, "created": i.created, "charge": i.charge,
            "subscription": i.subscription, "amount_due": i.amount_due, "amount_paid": i.amount_paid,
            "currency": (i.currency or "").lower(), "next_payment_attempt": ts(data.get("next_payment_attempt")),
            "hosted_invoice_url": data.get("hosted_invoice_url") or "", "invoice_pdf": data.get("invoice_pdf") or "",
        })
    for d in Dispute.objects.filter(charge__in=charge_ids).defer("data").order_by("-created", "-id")[:LIMIT]:
        out.disputes.append({"id": d.id, "charge": d.charge, "status": d.status, "amount": d.amount,
                             "currency": (d.currency or "").lower(), "created": d.created})
    return out


def message_for_triage(message_id: int) -> Message | None:
    """A customer's message with what triage needs of its ticket and contact."""
    return (Message.objects.select_related("ticket", "ticket__requester", "contact")
            .filter(pk=message_id, kind=Message.Kind.INBOUND).first())


def earlier_intent(message: Message):
    """The latest reading of an earlier customer message on the same ticket that said what it
    was about (not "other"), or None."""
    from tickets.models import MessageTriage

    return (MessageTriage.objects.filter(message__ticket_id=message.ticket_id, message__kind=Message.Kind.INBOUND,
                                         message__created__lt=message.created)
            .exclude(intent="other").order_by("-message__created", "-message_id").first())


def latest_customer_message(ticket_id: int) -> Message | None:
    return (Message.objects.select_related("ticket", "ticket__requester")
            .filter(ticket_id=ticket_id, kind=Message.Kind.INBOUND).order_by("-created", "-id").first())
