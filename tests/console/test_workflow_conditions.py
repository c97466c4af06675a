"""Workflow conditions (console/workflows/conditions.py): references, operators, groups, money
in the currency's real units, and the validation the editor and imports show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from console.workflows.conditions import ConditionError, evaluate, minor_units, resolve, validate, MISSING


def money(amount: str, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


PAYMENT = {
    "payment_intent": {"id": "pi_1", "amount": 150000, "currency": "usd", "status": "succeeded",
                       "metadata": {"tier": "VIP"}, "charges": {"data": [{"id": "ch_1", "outcome": {"risk_level": "elevated"}}]}},
    "customer": {"id": "cus_1", "email": "Misaki@Example.jp", "metadata": {}},
    "ticket": {"channel": "line", "priority": "high", "tags": ["refund", "vip"]},
    "message": {"text": "返金をお願いします。Refund please"},
}


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, minor", [
    (money("1,000", "USD"), (100000, "usd")),  # "amount > 1,000 USD" means 100000 cents
    (money("1,000", "jpy"), (1000, "jpy")),  # yen have no minor unit
    (money("1.250", "KWD"), (1250, "kwd")),  # dinars have three
    (money("15", "usd"), (1500, "usd")),
])
def test_money_is_said_in_real_units_and_compared_in_minor_units(value, minor):
    assert minor_units(value) == minor


def test_amounts_compare_within_their_currency():
    assert evaluate({"ref": "payment_intent.amount", "op": "gt", "value": money("1,000", "usd")}, PAYMENT)
    assert not evaluate({"ref": "payment_intent.amount", "op": "gt", "value": money("1,500", "usd")}, PAYMENT)
    assert evaluate({"ref": "payment_intent.amount", "op": "gte", "value": money("1,500.00", "usd")}, PAYMENT)
    yen = {"charge": {"amount": 1000, "currency": "jpy"}}
    assert evaluate({"ref": "charge.amount", "op": "eq", "value": money("1,000", "jpy")}, yen)
    assert evaluate({"ref": "charge.amount", "op": "lt", "value": money("1,001", "JPY")}, yen)


def test_a_comparison_across_currencies_is_an_error_not_a_silent_false():
    yen = {"charge": {"amount": 1000, "currency": "jpy"}}
    with pytest.raises(ConditionError, match="charge.amount is in JPY; it can't be compared with an amount in USD"):
        evaluate({"ref": "charge.amount", "op": "lt", "value": money("15", "usd")}, yen)
    with pytest.raises(ConditionError, match="order.amount has no currency beside it to compare with USD"):
        evaluate({"ref": "order.amount", "op": "gt", "value": money("1", "usd")}, {"order": {"amount": 5}})


# --- operators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("condition, holds", [
    ({"ref": "payment_intent.status", "op": "eq", "value": "succeeded"}, True),
    ({"ref": "payment_intent.status", "op": "ne", "value": "succeeded"}, False),
    ({"ref": "customer.metadata.tier", "op": "is_not_set"}, True),
    ({"ref": "payment_intent.metadata.tier", "op": "is_set"}, True),
    ({"ref": "payment_intent.metadata.tier", "op": "in", "value": ["VIP", "Gold"]}, True),
    ({"ref": "payment_intent.charges.data.0.outcome.risk_level", "op": "eq", "value": "elevated"}, True),
    ({"ref": "payment_intent.charges.data.5.outcome.risk_level", "op": "is_set"}, False),
    ({"ref": "customer.email", "op": "contains", "value": "@example.JP"}, True),  # text ignores case
    ({"ref": "message.text", "op": "contains", "value": "返金"}, True),
    ({"ref": "message.text", "op": "starts_with", "value": "返金を"}, True),
    ({"ref": "ticket.tags", "op": "contains", "value": "vip"}, True),  # a list contains an item
    ({"ref": "ticket.tags", "op": "contains", "value": "dispute"}, False),
    ({"ref": "payment_intent.amount", "op": "eq", "value": "150000"}, True),  # a number typed as text
    ({"ref": "ticket.nothing.deeper", "op": "eq", "value": "x"}, False),
])
def test_operators(condition, holds):
    assert evaluate(condition, PAYMENT) is holds


def test_groups_all_and_any_nest():
    vip_or_big = {"any": [
        {"ref": "customer.metadata.tier", "op": "eq", "value": "VIP"},
        {"all": [{"ref": "payment_intent.amount", "op": "gt", "value": money("1,000", "usd")},
                 {"ref": "ticket.channel", "op": "eq", "value": "line"}]},
    ]}
    assert evaluate(vip_or_big, PAYMENT)
    assert evaluate({"all": []}, PAYMENT) and not evaluate({"any": []}, PAYMENT)


def test_changed_from_and_to_read_previous_attributes():
    context = {"subscription": {"status": "past_due", "cancel_at_period_end": True},
               "previous": {"subscription": {"status": "active"}}}
    assert evaluate({"ref": "subscription.status", "op": "changed_from", "value": "active"}, context)
    assert evaluate({"ref": "subscription.status", "op": "changed_to", "value": "past_due"}, context)
    assert evaluate({"ref": "subscription.status", "op": "changed"}, context)
    # A field that did not change in this event never matches a change.
    assert not evaluate({"ref": "subscription.cancel_at_period_end", "op": "changed_to", "value": True}, context)


def test_resolve_reads_dicts_and_list_items():
    assert resolve("payment_intent.charges.data.0.id", PAYMENT) == "ch_1"
    assert resolve("payment_intent.id.more", PAYMENT) is MISSING


# --- validation ----------------------------------------------------------------------------------


def test_validation_says_what_is_wrong():
    errors = validate({"all": [
        {"ref": "payment_intent.amount", "op": "gt", "value": 1000},  # money without a currency
        {"ref": "payment_intent.status", "op": "eq"},  # no value
        {"ref": "payment_intent.amount", "op": "gt", "value": money("1.5", "jpy")},  # yen have no decimals
        {"ref": "charge.status", "op": "eq", "value": "failed"},  # not available at this point
        {"ref": "ticket.channel", "op": "in", "value": "line"},  # "in" takes a list
        {"ref": "x", "op": "resembles", "value": 1},
        {"ref": "DROP TABLE;", "op": "eq", "value": 1},
    ]}, references={"payment_intent.amount", "payment_intent.status", "ticket.channel", "x"})
    assert errors == [
        "payment_intent.amount is an amount: say its currency (for example 1,000 USD).",
        "payment_intent.status: give a value to compare with.",
        "payment_intent.amount: JPY amounts have at most 0 decimals.",
        "charge.status is not available here.",
        "ticket.channel: “in list” takes a list of values.",
        "Unknown operator “resembles”.",
        "“DROP TABLE;” is not a field reference such as payment_intent.amount.",
    ]
    assert validate({"ref": "payment_intent.amount", "op": "gte", "value": money("1,000", "usd")}) == []


def test_hostile_shapes_are_refused_not_crashed_on():
    deep: dict = {"ref": "a.b", "op": "is_set"}
    for _ in range(50):
        deep = {"all": [deep]}
    assert validate(deep) == ["Groups may be nested at most 8 deep."]
    many = {"any": [{"ref": "a.b", "op": "is_set"}] * 500}
    assert validate(many) == ["A workflow step may have at most 200 conditions."]
    assert validate(["not", "a", "condition"]) == ["A condition must be an object with a field, an operator and a value."]
    assert validate({"ref": "a.b", "op": "eq", "value": {"$where": "1"}}) == [
        "a.b: a value is text, a number, a list or an amount with its currency."]
    assert validate({"ref": "a.amount", "op": "eq", "value": money("1e400", "usd")}) == [
        "a.amount: “1e400” is not an amount."]


def test_validation_in_japanese():
    with translation.override("ja"):
        errors = validate({"ref": "payment_intent.amount", "op": "gt", "value": 1000})
    assert errors == ["payment_intent.amount は金額です。通貨を指定してください（例: 1,000 USD）。"]


# --- against a plain reference, on random Stripe-shaped objects --------------------------------

EXPONENT = {"jpy": 0, "usd": 2, "kwd": 3}
STATUSES = ["succeeded", "failed", "pending", "Succeeded", "requires_action"]


class Refused(Exception):
    pass


def reference(node, obj: dict):
    """The same rules written plainly for the shapes generated below."""
    if "all" in node:
        return all(reference(n, obj) for n in node["all"])
    if "any" in node:
        return any(reference(n, obj) for n in node["any"])
    field = node["ref"].split(".", 1)[1]
    op, value = node["op"], node.get("value")
    actual = obj["charge"].get(field) if "." not in field else obj["charge"].get("metadata", {}).get("tier")
    if op == "is_set":
        return actual not in (None, "")
    if op == "is_not_set":
        return actual in (None, "")
    if isinstance(value, dict):
        if value["currency"] != obj["charge"]["currency"]:
            raise Refused
        expected = int(Decimal(value["amount"]) * 10 ** EXPONENT[value["currency"]])
        return {"eq": actual == expected, "ne": actual != expected, "gt": actual > expected,
                "gte": actual >= expected, "lt": actual < expected, "lte": actual <= expected}[op]
    if actual is None:
        return op == "ne"
    if op in ("gt", "gte", "lt", "lte"):
        return {"gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[op]
    if op == "in":
        return actual in value
    if op == "contains":
        return str(value).casefold() in str(actual).casefold()
    if op == "starts_with":
        return str(actual).casefold().startswith(str(value).casefold())
    return actual == value if op == "eq" else actual != value


currencies = st.sampled_from(sorted(EXPONENT))


@st.composite
def charges(draw):
    currency = draw(currencies)
    charge = {"amount": draw(st.integers(0, 10**9)), "currency": currency, "status": draw(st.sampled_from(STATUSES)),
              "attempt_count": draw(st.integers(0, 5))}
    if draw(st.booleans()):
        charge["metadata"] = {"tier": draw(st.sampled_from(["VIP", "vip", "Gold", ""]))}
    return {"charge": charge}


@st.composite
def money_leaves(draw):
    currency = draw(currencies)
    minor = draw(st.integers(0, 10**9))
    amount = str(Decimal(minor).scaleb(-EXPONENT[currency]))
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]))
    return {"ref": "charge.amount", "op": op, "value": {"amount": amount, "currency": currency}}


text_leaves = st.one_of(
    st.builds(lambda op, v: {"ref": "charge.status", "op": op, "value": v},
              st.sampled_from(["eq", "ne", "contains", "starts_with"]), st.sampled_from(STATUSES + ["succ", "fail"])),
    st.builds(lambda v: {"ref": "charge.status", "op": "in", "value": v}, st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3)),
    st.builds(lambda op: {"ref": "charge.metadata.tier", "op": op}, st.sampled_from(["is_set", "is_not_set"])),
    st.builds(lambda op, v: {"ref": "charge.attempt_count", "op": op, "value": v},
              st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), st.integers(0, 5)),
)
trees = st.recursive(
    st.one_of(money_leaves(), text_leaves),
    lambda children: st.one_of(st.builds(lambda c: {"all": c}, st.lists(children, max_size=4)),
                               st.builds(lambda c: {"any": c}, st.lists(children, max_size=4))),
    max_leaves=12,
)


def outcome(evaluate_fn, tree, obj):
    try:
        return evaluate_fn(tree, obj)
    except (ConditionError, Refused):
        return "refused"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(trees, charges())
def test_random_condition_trees_agree_with_a_plain_reference(tree, obj):
    assert validate(tree) == []
    assert outcome(evaluate, tree, obj) == outcome(reference, tree, obj)
