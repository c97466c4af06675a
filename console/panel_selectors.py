"""Reads for the Stripe panel beside a ticket: everything the mirror knows about one contact's
Stripe customers, in a constant handful of queries whatever the history's size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from common.l10n import format_date
from payments.models import Charge, Customer, Dispute, EarlyFraudWarning, Invoice, Subscription
from payments.money import format_money
from payments.stripe_words import label
from payments.stripe_objects import Plans, card_label, refundable, subscription_period, ts
from tickets.models import Contact, Identity

RECENT_CHARGES = 10
OPEN_INVOICE_STATUSES = ("open", "draft", "uncollectible")
# Disputes still needing someone (Stripe's statuses before a decision).
ACTIVE_DISPUTES = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


@dataclass
class ChargeRow:
    id: str
    created: dt.datetime | None
    status: str
    amount: str
    refunded: str
    remainder: str
    remainder_minor: int
    currency: str
    description: str
    disputed: bool
    fully_refunded: bool
    refundable: bool
    status_label: str = ""  # Stripe's status in the reader's language
    created_label: str = ""  # the day, in the reader's language and time zone
    card: str = ""  # "Visa ending 5556", as the payment page and the refund preview say it


@dataclass
class Panel:
    contact: Contact
    customers: list[Customer]
    customer_ids: list[str]
    charges: list[ChargeRow] = field(default_factory=list)
    subscriptions: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)
    disputes: list[dict] = field(default_factory=list)
    fraud_warnings: list[dict] = field(default_factory=list)


def contact_customer_ids(contact_id: int) -> list[str]:
    return list(
        Identity.objects.filter(contact_id=contact_id, kind=Identity.Kind.STRIPE_CUSTOMER)
        .order_by("value").values_list("value", flat=True)
    )


def panel(contact: Contact) -> Panel:
    ids = contact_customer_ids(contact.pk)
    result = Panel(contact=contact, customers=[], customer_ids=ids)
    if not ids:
        return result
    result.customers = list(Customer.objects.filter(pk__in=ids).only("id", "name", "email", "delinquent"))
    charges = list(
        Charge.objects.filter(customer__in=ids).order_by("-created", "-id")
        .only("id", "created", "status", "amount", "amount_captured", "amount_refunded", "refunded", "disputed",
              "currency", "description", "data")[:RECENT_CHARGES]
    )
    for c in charges:
        remainder = refundable(c)
        result.charges.append(ChargeRow(
            id=c.id, created=c.created, status=c.status, currency=c.currency,
            amount=format_money(c.amount, c.currency),
            refunded=format_money(c.amount_refunded, c.currency) if c.amount_refunded else "",
            remainder=format_money(remainder, c.currency), remainder_minor=remainder,
            description=c.description, disputed=c.disputed,
            fully_refunded=c.amount_refunded > 0 and remainder == 0,
            refundable=c.status == "succeeded" and remainder > 0 and not c.disputed,
            status_label=label("charge.status", c.status), created_label=format_date(c.created),
            card=card_label(c.data or {}),
        ))
    subscriptions = list(Subscription.objects.filter(customer__in=ids).order_by("-created", "-id")[:RECENT_CHARGES])
    plans = Plans.of(s.data or {} for s in subscriptions)  # two queries for all of them
    for s in subscriptions:
        ended = s.canceled_at or ts((s.data or {}).get("ended_at"))
        period_end = s.current_period_end or ts(subscription_period(s.data or {})[1])
        result.subscriptions.append({
            "id": s.id, "status": s.status, "status_label": label("subscription.status", s.status),
            "period_end": period_end, "period_end_label": format_date(period_end),
            "cancel_at_period_end": s.cancel_at_period_end, "canceled_at": s.canceled_at, "ended_at": ended,
            "ended_label": format_date(ended),
            "plan": plans.subscription_label(s.data or {}),
        })
    invoices = Invoice.objects.filter(customer__in=ids, status__in=OPEN_INVOICE_STATUSES).defer("data")
    for i in invoices.order_by("-created", "-id"):
        result.invoices.append({
            "id": i.id, "number": i.number, "status": label("invoice.status", i.status), "due_date": i.due_date,
            "due_date_label": format_date(i.due_date),
            "amount_due": format_money(i.amount_due - i.amount_paid, i.currency),
        })
    # Disputes and warnings name the charge, not the customer: a subquery keeps it one query each.
    charge_ids = Charge.objects.filter(customer__in=ids).values("id")
    for d in Dispute.objects.filter(charge__in=charge_ids).defer("data").order_by("-created", "-id")[:RECENT_CHARGES]:
        result.disputes.append({
            "id": d.id, "charge": d.charge, "status": d.status, "status_label": label("dispute.status", d.status),
            "reason": label("dispute.reason", d.reason),
            "amount": format_money(d.amount, d.currency), "due_by": d.due_by,
            "needs_response": d.status in ("needs_response", "warning_needs_response"),
            "active": d.status in ACTIVE_DISPUTES,
        })
    warnings = EarlyFraudWarning.objects.filter(charge__in=charge_ids).defer("data")
    for w in warnings.order_by("-created", "-id")[:RECENT_CHARGES]:
        result.fraud_warnings.append({
            "id": w.id, "charge": w.charge, "fraud_type": label("early_fraud_warning.fraud_type", w.fraud_type),
            "actionable": w.actionable, "created": w.created,
        })
    return result


def contact_charge(contact_id: int, charge_id: str) -> Charge | None:
    """The charge, if it belongs to one of the contact's Stripe customers (else None)."""
    ids = Identity.objects.filter(contact_id=contact_id, kind=Identity.Kind.STRIPE_CUSTOMER).values("value")
    return Charge.objects.filter(pk=charge_id, customer__in=ids).only(
        "id", "status", "amount", "amount_captured", "amount_refunded", "currency").first()
