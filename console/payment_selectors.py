"""Reads for the payment page, the centre of an investigation: the charge as Stripe's own page
shows it (payments' selectors and stripe_objects say the Stripe facts), and what only Paydesk
knows beside it — the customer's contact and their tickets. A constant handful of queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from payments.models import Charge, Customer, Dispute, EarlyFraudWarning, PaymentIntent, Refund
from payments.stripe_objects import PaymentFacts, payment_facts, ref, refundable, ts
from tickets.models import Contact, Identity, Ticket

from .selectors import why_charged

RECENT_TICKETS = 10
ACTIVE_DISPUTES = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


@dataclass
class RefundRow:
    id: str
    amount: int
    currency: str
    reason: str
    status: str
    created: dt.datetime | None
    mirrored: bool  # False: known only from the charge's embedded list


@dataclass
class PaymentPage:
    charge: Charge
    facts: PaymentFacts
    refundable: int
    order: dict  # the charge's metadata, the payment intent's filling what the charge lacks
    order_from_intent: set[str]  # the keys that came from the payment intent
    refunds: list[RefundRow]
    disputes: list[Dispute]
    fraud_warnings: list[EarlyFraudWarning]
    why: dict | None  # console.selectors.why_charged: the invoice, the subscription, the plan
    customer: Customer | None
    contact: Contact | None
    tickets: list[dict] = field(default_factory=list)
    tickets_total: int = 0

    @property
    def open_disputes(self) -> list[Dispute]:
        return [d for d in self.disputes if d.status in ACTIVE_DISPUTES]


def _refunds(charge: Charge) -> list[RefundRow]:
    """The mirror's refunds of the charge, and those only the charge's own list names (older API
    versions embed them; the mirror may not have fetched them yet)."""
    rows = [
        RefundRow(r.id, r.amount, r.currency, r.reason, r.status, r.created, True)
        for r in Refund.objects.filter(charge=charge.pk).defer("data").order_by("-created", "-id")
    ]
    seen = {r.id for r in rows}
    embedded = ((charge.data or {}).get("refunds") or {})
    for r in (embedded.get("data") if isinstance(embedded, dict) else None) or []:
        if isinstance(r, dict) and r.get("id") and r["id"] not in seen and isinstance(r.get("amount"), int):
            rows.append(RefundRow(r["id"], r["amount"], r.get("currency") or charge.currency, r.get("reason") or "",
                                  r.get("status") or "", ts(r.get("created")), False))
    rows.sort(key=lambda r: (r.created or dt.datetime.min.replace(tzinfo=dt.timezone.utc), r.id), reverse=True)
    return rows


def contact_of_customer(customer_id: str) -> Contact | None:
    """The contact the Stripe customer is linked to (the one it was merged into, if merged)."""
    if not customer_id:
        return None
    identity = (Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id)
                .select_related("contact", "contact__merged_into").order_by("pk").first())
    if identity is None:
        return None
    contact = identity.contact
    return contact.merged_into if contact.merged_into_id else contact


def payment_page(charge_id: str, *, with_tickets: bool) -> PaymentPage | None:
    charge = Charge.objects.filter(pk=charge_id).first()
    if charge is None:
        return None
    data = charge.data or {}
    order = dict(data.get("metadata") or {}) if isinstance(data.get("metadata"), dict) else {}
    from_intent: set[str] = set()
    intent_id = charge.payment_intent or ref(data.get("payment_intent"))
    if intent_id:
        intent = PaymentIntent.objects.filter(pk=intent_id).values_list("data", flat=True).first() or {}
        for key, value in (intent.get("metadata") or {}).items():
            if key not in order:
                order[key] = value
                from_intent.add(key)
    customer = Customer.objects.filter(pk=charge.customer).only("id", "name", "email").first() if charge.customer else None
    page = PaymentPage(
        charge=charge, facts=payment_facts(data), refundable=refundable(charge), order=order,
        order_from_intent=from_intent, refunds=_refunds(charge),
        disputes=list(Dispute.objects.filter(charge=charge.pk).defer("data").order_by("-created", "-id")),
        fraud_warnings=list(EarlyFraudWarning.objects.filter(charge=charge.pk).defer("data").order_by("-created", "-id")),
        why=why_charged(charge.pk), customer=customer, contact=contact_of_customer(charge.customer),
    )
    if with_tickets and page.contact is not None:
        tickets = Ticket.objects.filter(requester=page.contact)
        page.tickets = list(tickets.order_by("-created", "-id").values(
            "number", "subject", "status", "created", "last_message_at")[:RECENT_TICKETS])
        for t in page.tickets:
            t["status_label"] = Ticket.Status(t["status"]).label if t["status"] in Ticket.Status.values else t["status"]
        page.tickets_total = len(page.tickets) if len(page.tickets) < RECENT_TICKETS else tickets.count()
    return page
