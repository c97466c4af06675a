"""Reads for the Stripe panel beside a ticket: everything the mirror knows about one contact's
Stripe customers, in a constant handful of queries whatever the history's size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from payments.models import Charge, Customer, Dispute, EarlyFraudWarning, Invoice, Price, Product, Subscription
from payments.money import format_money
from tickets.models import Contact, Identity

from .timeline import plan_text

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


def _remainder(c: Charge) -> int:
    remainder = c.amount - c.amount_refunded
    if c.amount_captured:
        remainder = min(remainder, c.amount_captured)
    return max(0, remainder)


def _ts(value) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc) if value else None


def _period_end(sub: Subscription) -> dt.datetime | None:
    if sub.current_period_end:
        return sub.current_period_end
    # Since API 2025-03-31 the period lives on the items.
    items = ((sub.data or {}).get("items") or {}).get("data") or []
    ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
    return _ts(max(ends)) if ends else None


def _item_prices(sub: Subscription) -> list[tuple[str, dict]]:
    """(price id, the price as embedded) for each item of a subscription."""
    items = ((sub.data or {}).get("items") or {}).get("data") or []
    out = []
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        price = price if isinstance(price, dict) else {"id": price}
        if price.get("id"):
            out.append((price["id"], price))
    return out


def plan_names(subscriptions: list[Subscription]) -> dict[str, str]:
    """Subscription id → what it is ("Coffee club ($15.00/month)"), in two queries for all of
    them: the mirror's prices, then their products."""
    wanted = {pid for s in subscriptions for pid, _ in _item_prices(s)}
    prices = {p.id: p for p in Price.objects.filter(pk__in=wanted).only(
        "id", "product", "nickname", "unit_amount", "currency", "recurring_interval")}
    products = dict(Product.objects.filter(pk__in={p.product for p in prices.values() if p.product})
                    .values_list("id", "name"))
    names = {}
    for s in subscriptions:
        labels = []
        for pid, embedded in _item_prices(s):
            row = prices.get(pid)
            product = embedded.get("product")
            name = (product.get("name") if isinstance(product, dict) else "") or (
                products.get(row.product) if row else "") or (row.nickname if row else "") or embedded.get("nickname")
            amount = row.unit_amount if row else embedded.get("unit_amount", embedded.get("amount"))
            currency = (row.currency if row else "") or embedded.get("currency") or ""
            interval = (row.recurring_interval if row else "") or (embedded.get("recurring") or {}).get("interval") \
                or embedded.get("interval") or ""
            labels.append(plan_text(name or pid, amount, currency, interval))
        names[s.id] = ", ".join(labels)
    return names


def panel(contact: Contact) -> Panel:
    ids = contact_customer_ids(contact.pk)
    result = Panel(contact=contact, customers=[], customer_ids=ids)
    if not ids:
        return result
    result.customers = list(Customer.objects.filter(pk__in=ids).only("id", "name", "email", "delinquent"))
    charges = list(
        Charge.objects.filter(customer__in=ids).order_by("-created", "-id")
        .only("id", "created", "status", "amount", "amount_captured", "amount_refunded", "refunded", "disputed",
              "currency", "description")[:RECENT_CHARGES]
    )
    for c in charges:
        remainder = _remainder(c)
        result.charges.append(ChargeRow(
            id=c.id, created=c.created, status=c.status, currency=c.currency,
            amount=format_money(c.amount, c.currency),
            refunded=format_money(c.amount_refunded, c.currency) if c.amount_refunded else "",
            remainder=format_money(remainder, c.currency), remainder_minor=remainder,
            description=c.description, disputed=c.disputed,
            fully_refunded=c.amount_refunded > 0 and remainder == 0,
            refundable=c.status == "succeeded" and remainder > 0 and not c.disputed,
        ))
    subscriptions = list(Subscription.objects.filter(customer__in=ids).order_by("-created", "-id")[:RECENT_CHARGES])
    names = plan_names(subscriptions)
    for s in subscriptions:
        ended = s.canceled_at or _ts((s.data or {}).get("ended_at"))
        result.subscriptions.append({
            "id": s.id, "status": s.status, "status_label": s.status.replace("_", " "), "period_end": _period_end(s),
            "cancel_at_period_end": s.cancel_at_period_end, "canceled_at": s.canceled_at, "ended_at": ended,
            "plan": names.get(s.id, ""),
        })
    invoices = Invoice.objects.filter(customer__in=ids, status__in=OPEN_INVOICE_STATUSES).defer("data")
    for i in invoices.order_by("-created", "-id"):
        result.invoices.append({
            "id": i.id, "number": i.number, "status": i.status.replace("_", " "), "due_date": i.due_date,
            "amount_due": format_money(i.amount_due - i.amount_paid, i.currency),
        })
    # Disputes and warnings name the charge, not the customer: a subquery keeps it one query each.
    charge_ids = Charge.objects.filter(customer__in=ids).values("id")
    for d in Dispute.objects.filter(charge__in=charge_ids).defer("data").order_by("-created", "-id")[:RECENT_CHARGES]:
        result.disputes.append({
            "id": d.id, "charge": d.charge, "status": d.status, "status_label": d.status.replace("_", " "),
            "reason": d.reason.replace("_", " "),
            "amount": format_money(d.amount, d.currency), "due_by": d.due_by,
            "needs_response": d.status in ("needs_response", "warning_needs_response"),
            "active": d.status in ACTIVE_DISPUTES,
        })
    warnings = EarlyFraudWarning.objects.filter(charge__in=charge_ids).defer("data")
    for w in warnings.order_by("-created", "-id")[:RECENT_CHARGES]:
        result.fraud_warnings.append({
            "id": w.id, "charge": w.charge, "fraud_type": w.fraud_type.replace("_", " "),
            "actionable": w.actionable, "created": w.created,
        })
    return result


def contact_charge(contact_id: int, charge_id: str) -> Charge | None:
    """The charge, if it belongs to one of the contact's Stripe customers (else None)."""
    ids = Identity.objects.filter(contact_id=contact_id, kind=Identity.Kind.STRIPE_CUSTOMER).values("value")
    return Charge.objects.filter(pk=charge_id, customer__in=ids).only("id", "amount", "amount_captured",
                                                                       "amount_refunded", "currency").first()
