"""payments.stripe_objects: Stripe's shapes read once — refundable amounts, payment-method
labels, the current period (top level or on the items), and what a plan is called."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Charge
from payments.stripe_objects import (
    Plans, card_label, payment_facts, payment_method_label, plan_label, plan_name, plan_text, price_label, ref,
    refundable, subscription_period, ts,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_references_and_times():
    assert ref({"id": "ch_1", "object": "charge"}) == "ch_1" and ref("ch_2") == "ch_2" and ref(None) == ""
    assert ts(0) is None and ts(None) is None and ts("garbage") is None and ts(10**20) is None
    assert ts(1_700_000_000) == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("charge, left", [
    ({"amount": 5000, "amount_refunded": 2000, "amount_captured": 5000, "status": "succeeded"}, 3000),
    ({"amount": 5000, "amount_refunded": 0, "amount_captured": 3000, "status": "succeeded"}, 3000),  # partly captured
    ({"amount": 3200, "amount_refunded": 0, "amount_captured": 0, "status": "failed"}, 0),  # nothing was taken
    ({"amount": 3200, "amount_refunded": 0, "amount_captured": 0, "captured": False, "status": "succeeded"}, 0),  # authorized
    ({"amount": 1000, "amount_refunded": 0, "captured": True, "status": "succeeded"}, 1000),  # old API: no amount_captured
    ({"amount": 1000, "amount_refunded": 1500, "amount_captured": 1000, "status": "succeeded"}, 0),  # never below 0
])
def test_refundable_from_stripes_dict_and_from_the_mirrored_row(charge, left):
    assert refundable(charge) == left
    factories.mirror(factories.ChargeFactory(id="ch_row", **charge))
    assert refundable(Charge.objects.get(pk="ch_row")) == left


def test_payment_method_labels():
    card = {"payment_method_details": {"type": "card", "card": {"brand": "american_express", "last4": "0005"}}}
    assert payment_method_label(card) == "American Express ending 0005"
    assert payment_method_label({"payment_method_details": {"type": "konbini"}}) == "konbini account"
    assert payment_method_label({"source": {"object": "card"}}) == "card"
    assert payment_method_label({}) == "payment method"


def test_card_label_names_the_card_one_way():
    """The payment page, the panel beside a ticket and the refund preview all say it so."""
    def paid(**card):
        return {"payment_method_details": {"type": "card", "card": card}}

    assert card_label(paid(brand="visa", last4="5556")) == "Visa ending 5556"
    assert card_label(paid(brand="mastercard", last4="4444", wallet={"type": "apple_pay", "dynamic_last4": "9999"})) == (
        "Apple Pay (Mastercard ending 4444)")
    assert card_label(paid(brand="amex", last4="0005", wallet=None)) == "American Express ending 0005"
    assert card_label(paid(last4="1234")) == "card ending 1234"
    assert card_label(paid(brand="jcb")) == "JCB"
    assert card_label({"source": {"object": "card", "brand": "Visa", "last4": "4242"}}) == "Visa ending 4242"
    assert card_label({"payment_method_details": {"type": "konbini"}}) == ""
    assert payment_method_label(paid(brand="visa", last4="5556")) == card_label(paid(brand="visa", last4="5556"))


def test_payment_facts_never_invent_the_fee():
    charge = {"amount": 5000, "currency": "jpy", "balance_transaction": "txn_1", "outcome": {
        "type": "authorized", "network_status": "approved_by_network", "risk_level": "normal", "risk_score": 12,
        "seller_message": "Payment complete."},
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "5556", "country": "JP",
                                                             "three_d_secure": {"result": "authenticated",
                                                                                "version": "2.2.0"}}}}
    facts = payment_facts(charge)
    assert (facts.fee, facts.net, facts.balance_transaction) == (None, None, "txn_1")
    assert (facts.card, facts.country, facts.three_d_secure, facts.risk_level, facts.risk_score) == (
        "Visa ending 5556", "JP", "authenticated", "normal", 12)
    charge["balance_transaction"] = {"id": "txn_1", "fee": 180, "net": 4820, "currency": "jpy"}
    facts = payment_facts(charge)
    assert (facts.fee, facts.net, facts.balance_currency, facts.balance_transaction) == (180, 4820, "jpy", "")


def test_the_current_period_lives_at_the_top_or_on_the_items():
    assert subscription_period({"current_period_start": 10, "current_period_end": 20}) == (10, 20)
    items = {"data": [{"current_period_start": 100, "current_period_end": 300},
                      {"current_period_start": 50, "current_period_end": 200}]}
    assert subscription_period({"items": items}) == (50, 300)
    assert subscription_period({}) == (None, None)


def test_plans_are_named_by_one_rule_in_two_queries():
    factories.mirror(
        factories.RESOURCES["product"] | {"id": "prod_tea", "name": "Tea club", "created": 1},
        factories.RESOURCES["price"] | {"id": "price_tea", "product": "prod_tea", "unit_amount": 1500, "currency": "jpy",
                                        "nickname": "Monthly tea", "recurring": {"interval": "month"}, "created": 1},
    )
    mirrored = {"items": {"data": [{"price": {"id": "price_tea", "product": "prod_tea"}}]}}
    nickname_only = {"items": {"data": [{"price": {"id": "price_x", "nickname": "Gift box", "unit_amount": 300,
                                                   "currency": "usd", "recurring": {"interval": "year"}}}]}}
    old_plan = {"plan": {"id": "gold", "name": "Gold", "amount": 2000, "currency": "usd", "interval": "month"}}
    expanded = {"items": {"data": [{"price": {"id": "price_y", "product": {"id": "prod_y", "name": "Coffee"}}}]}}
    with CaptureQueriesContext(connection) as queries:
        plans = Plans.of([mirrored, nickname_only, old_plan, expanded])
        labels = [plans.subscription_label(s) for s in (mirrored, nickname_only, old_plan, expanded)]
    assert len(queries) == 2  # the prices, then their products
    assert labels == ["Tea club (¥1,500/month)", "Gift box ($3.00/year)", "Gold ($20.00/month)", "Coffee"]
    assert plan_name(mirrored) == "Tea club" and plan_label(mirrored) == "Tea club (¥1,500/month)"
    assert price_label("price_tea") == "Tea club (¥1,500/month)" and price_label("price_unknown") == "price_unknown"
    assert plan_text("Tea club", None, "jpy", "month") == "Tea club"
