"""Stripe-shaped events and objects for the benchmarks, built with the tests' factories.

Events come in the shape a shop's account produces them: orders (a payment intent created,
then succeeded, with its charge), some refunded, a few disputed or warned about, new
customers, subscription renewals with their invoices. Timestamps follow the story, and
deliveries are locally shuffled, as Stripe's are.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from tests import factories


def _order(rng: random.Random, t: int) -> list[dict]:
    customer = factories.CustomerFactory(created=t - rng.randint(0, 86400 * 90))
    pi = factories.PaymentIntentFactory(
        customer=customer["id"], amount=rng.choice([1200, 2500, 4200, 9900, 15000]), status="requires_payment_method",
        amount_received=0, created=t,
    )
    charge = factories.ChargeFactory(
        customer=customer["id"], payment_intent=pi["id"], amount=pi["amount"], created=t + 2,
        billing_details={"email": customer["email"], "name": customer["name"], "address": None, "phone": None},
    )
    succeeded = {**pi, "status": "succeeded", "amount_received": pi["amount"], "latest_charge": charge["id"]}
    events = [
        factories.event("payment_intent.created", pi, created=t),
        factories.event("charge.succeeded", charge, created=t + 2),
        factories.event("payment_intent.succeeded", succeeded, created=t + 2,
                        previous_attributes={"status": "requires_payment_method", "amount_received": 0}),
    ]
    if rng.random() < 0.4:
        events.insert(0, factories.event("customer.created", customer, created=customer["created"]))
    roll = rng.random()
    if roll < 0.12:
        amount = rng.choice([charge["amount"], charge["amount"] // 2])
        refund = factories.RefundFactory(charge=charge["id"], payment_intent=pi["id"], amount=amount, created=t + 600)
        refunded = {**charge, "amount_refunded": amount, "refunded": amount == charge["amount"]}
        events += [
            factories.event("charge.refunded", refunded, created=t + 600, previous_attributes={"amount_refunded": 0}),
            factories.event("refund.created", refund, created=t + 600),
        ]
    elif roll < 0.15:
        dispute = factories.DisputeFactory(charge=charge["id"], payment_intent=pi["id"], amount=charge["amount"],
                                           created=t + 86400)
        warning = factories.EarlyFraudWarningFactory(charge=charge["id"], payment_intent=pi["id"], created=t + 3600)
        events += [
            factories.event("radar.early_fraud_warning.created", warning, created=t + 3600),
            factories.event("charge.dispute.created", dispute, created=t + 86400),
            factories.event("charge.updated", {**charge, "disputed": True}, created=t + 86400,
                            previous_attributes={"disputed": False}),
        ]
    return events


def _renewal(rng: random.Random, t: int) -> list[dict]:
    customer_id = factories.stripe_id("cus")
    sub = factories.SubscriptionFactory(customer=customer_id, created=t - 86400 * 60)
    invoice = factories.InvoiceFactory(customer=customer_id, subscription=sub["id"], status="open", amount_paid=0,
                                       created=t)
    paid = {**invoice, "status": "paid", "amount_paid": invoice["amount_due"]}
    return [
        factories.event("invoice.created", invoice, created=t),
        factories.event("invoice.paid", paid, created=t + 5, previous_attributes={"status": "open", "amount_paid": 0}),
        factories.event("customer.subscription.updated", sub, created=t + 5,
                        previous_attributes={"current_period_end": t}),
    ]


def make_events(count: int, seed: int = 1) -> list[dict]:
    """`count` events, in roughly the order Stripe would send them."""
    rng = random.Random(seed)
    start = int(time.time()) - 86400 * 7
    events: list[dict] = []
    t = start
    while len(events) < count:
        t += rng.randint(1, 40)
        events += _renewal(rng, t) if rng.random() < 0.2 else _order(rng, t)
    events.sort(key=lambda e: e["created"])
    # Deliveries arrive a little out of order.
    for i in range(0, len(events) - 1, 2):
        if rng.random() < 0.2:
            events[i], events[i + 1] = events[i + 1], events[i]
    return events[:count]


def sign_all(events: list[dict], secret: str) -> list[tuple[bytes, str]]:
    """Bodies and Stripe-Signature headers, all signed now (the tolerance is 300 s)."""
    stamp = int(time.time())
    return [factories.signed(json.dumps(e, separators=(",", ":")), secret, stamp) for e in events]


def write_requests(signed: list[tuple[bytes, str]], path: Path) -> None:
    """One record per request for wrk's Lua script: "<header>\\t<length>\\n<body>"."""
    with open(path, "wb") as out:
        for body, header in signed:
            out.write(f"{header}\t{len(body)}\n".encode())
            out.write(body)


# --- objects as a list call returns them, for the backfill measure ------------------

_BACKFILL_MIX = [
    ("customers", factories.CustomerFactory, 0.25),
    ("payment_intents", factories.PaymentIntentFactory, 0.2),
    ("charges", factories.ChargeFactory, 0.25),
    ("refunds", factories.RefundFactory, 0.08),
    ("subscriptions", factories.SubscriptionFactory, 0.08),
    ("invoices", factories.InvoiceFactory, 0.1),
    ("disputes", factories.DisputeFactory, 0.04),
]


def make_pages(total: int, page_size: int = 100) -> list[tuple[str, list[dict]]]:
    """Pages of `page_size` objects of one resource each, like `list(limit=100)` returns."""
    pages: list[tuple[str, list[dict]]] = []
    for resource, factory, share in _BACKFILL_MIX:
        n = max(page_size, int(total * share) // page_size * page_size)
        objects = [factory() for _ in range(n)]
        pages += [(resource, objects[i : i + page_size]) for i in range(0, n, page_size)]
    return pages
