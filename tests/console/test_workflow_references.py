"""The field picker's references (console/workflows/references.py), read from the stripe SDK's
typed resource classes: what each trigger offers, what a fetch adds, each field's kind, and
that conditions are validated against them."""

import pytest

from console.workflows.conditions import validate
from console.workflows.references import STRIPE_TRIGGERS, available, fetchable, fields


def test_the_seed_examples_are_offered_with_their_kinds():
    payment = available("payment_intent.succeeded")
    assert payment.kind("payment_intent.amount") == "money"  # an amount with a currency beside it
    assert payment.kind("payment_intent.customer") == "id"  # expandable: a fetch can bring it
    assert payment.kind("payment_intent.created") == "time"
    assert "payment_intent.metadata.tier" in payment  # any metadata key
    warning = available("radar.early_fraud_warning.created", fetched=["charge"])
    assert warning.kind("charge.outcome.risk_level") == "text"
    assert warning.kind("charge.amount") == "money" and warning.kind("charge.disputed") == "bool"
    assert "charge.outcome.risk_level" not in available("radar.early_fraud_warning.created")  # not fetched yet


def test_lists_offer_their_first_items_fields():
    invoice = available("invoice.payment_failed")
    assert invoice.kind("invoice.lines") == "list"
    assert invoice.kind("invoice.lines.data.0.amount") == "money"
    assert invoice.kind("invoice.amount_due") == "money" and invoice.kind("invoice.next_payment_attempt") == "time"


def test_fetches_are_the_expandable_resources():
    assert fetchable("radar.early_fraud_warning") == ("charge", "payment_intent")
    assert fetchable("payment_intent") == ("customer",)
    assert "customer" in fetchable("charge") and "customer" in fetchable("subscription")


@pytest.mark.parametrize("trigger", sorted(STRIPE_TRIGGERS))
def test_every_trigger_offers_its_objects_fields(trigger):
    refs = available(trigger)
    root = STRIPE_TRIGGERS[trigger].rsplit(".", 1)[-1]
    assert f"{root}.id" in refs and len(refs) > 5
    assert all(path.startswith(root + ".") for path in refs)


def test_unknown_trigger_is_refused():
    with pytest.raises(KeyError):
        available("charge.exploded")


def test_conditions_are_validated_against_what_is_available():
    refs = available("radar.early_fraud_warning.created")
    assert validate({"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}, refs) == [
        "charge.amount is not available here."]
    refs = available("radar.early_fraud_warning.created", fetched=["charge"])
    assert validate({"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}, refs) == []
    assert validate({"ref": "charge.metadata.order_id", "op": "is_set"}, refs) == []


def test_fields_are_bounded():
    # Deep objects (every payment method's details) stop at a depth a picker can show.
    assert all(path.count(".") <= 6 for path in fields("charge"))
