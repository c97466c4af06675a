"""Workflow conditions (console/workflows/conditions.py): references, operators, groups, money
in the currency's real units, and the validation the editor and imports show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from console.workflows.conditions import (
    MISSING, OPERATORS, ConditionError, compile_condition, evaluate, minor_units, resolve, validate,
)


def money(amount: str, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


def compiled(condition, context):
    return compile_condition(condition)(context)


@pytest.fixture(params=[evaluate, compiled], ids=["interpreted", "compiled"])
def holds(request):
    """Every example is checked both ways: the interpreter and the compiled condition."""
    return request.param


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


def test_amounts_compare_within_their_currency(holds):
    assert holds({"ref": "payment_intent.amount", "op": "gt", "value": money("1,000", "usd")}, PAYMENT)
    assert not holds({"ref": "payment_intent.amount", "op": "gt", "value": money("1,500", "usd")}, PAYMENT)
    assert holds({"ref": "payment_intent.amount", "op": "gte", "value": money("1,500.00", "usd")}, PAYMENT)
    yen = {"charge": {"amount": 1000, "currency": "jpy"}}
    assert holds({"ref": "charge.amount", "op": "eq", "value": money("1,000", "jpy")}, yen)
    assert holds({"ref": "charge.amount", "op": "lt", "value": money("1,001", "JPY")}, yen)


def test_a_comparison_across_currencies_is_an_error_not_a_silent_false(holds):
    yen = {"charge": {"amount": 1000, "currency": "jpy"}}
    with pytest.raises(ConditionError, match="charge.amount is in JPY; it can't be compared with an amount in USD"):
        holds({"ref": "charge.amount", "op": "lt", "value": money("15", "usd")}, yen)
    with pytest.raises(ConditionError, match="order.amount has no currency beside it to compare with USD"):
        holds({"ref": "order.amount", "op": "gt", "value": money("1", "usd")}, {"order": {"amount": 5}})


# --- operators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("condition, expected", [
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
def test_operators(condition, expected, holds):
    assert holds(condition, PAYMENT) is expected


def test_groups_all_and_any_nest(holds):
    vip_or_big = {"any": [
        {"ref": "customer.metadata.tier", "op": "eq", "value": "VIP"},
        {"all": [{"ref": "payment_intent.amount", "op": "gt", "value": money("1,000", "usd")},
                 {"ref": "ticket.channel", "op": "eq", "value": "line"}]},
    ]}
    assert holds(vip_or_big, PAYMENT)
    assert holds({"all": []}, PAYMENT) and not holds({"any": []}, PAYMENT)


def test_changed_from_and_to_read_previous_attributes(holds):
    context = {"subscription": {"status": "past_due", "cancel_at_period_end": True},
               "previous": {"subscription": {"status": "active"}}}
    assert holds({"ref": "subscription.status", "op": "changed_from", "value": "active"}, context)
    assert holds({"ref": "subscription.status", "op": "changed_to", "value": "past_due"}, context)
    assert holds({"ref": "subscription.status", "op": "changed"}, context)
    # A field that did not change in this event never matches a change.
    assert not holds({"ref": "subscription.cancel_at_period_end", "op": "changed_to", "value": True}, context)


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
    expected = outcome(reference, tree, obj)
    assert outcome(evaluate, tree, obj) == expected
    assert outcome(compiled, tree, obj) == expected  # the engine's path (console/workflows/index.py)


# --- the compiled path against the interpreter, on anything at all ---------------------------------
# Not only valid trees: malformed nodes, unknown operators, values of every JSON kind, contexts
# with lists, digits, booleans and "previous". The compiled condition must give the same answer,
# or raise the same exception with the same words.

FIELDS = ["amount", "currency", "tags", "0", "1", "metadata", "n"]
# Few distinct values, in the conditions and in the contexts alike, so that they often meet.
POOL = [None, True, False, 0, 5, 1500, 10**20, 5.0, 0.5, 1e17 + 16, float("nan"),
        "", "5", "1,500", "true", "usd", "JPY", "kwd", "VIP", "vip", "²"]
# 1e17 + 16 is a float whose shortest text (…020) is not its value (…016); 100,000,000,000,000.017
# KWD (…017 fils) lies between the two.
AMOUNTS = ["0", "5", "1,500", "15.5", "1e3", "x", "1e400", "0.001", "100,000,000,000,000.017"]
MONEY = [money(amount, currency) for amount in AMOUNTS for currency in ("usd", "JPY", "kwd", "us")]
scalars = st.sampled_from(POOL)
small = st.one_of(scalars, st.lists(scalars, max_size=3))
field_values = st.one_of(small, small, small, st.dictionaries(st.sampled_from(FIELDS), small, max_size=4),
                         st.lists(st.dictionaries(st.sampled_from(FIELDS), small, max_size=3), max_size=2))
objects = st.dictionaries(st.sampled_from(FIELDS), field_values, min_size=3, max_size=7)
any_refs = st.builds(lambda parts: ".".join(parts), st.lists(st.sampled_from(FIELDS + ["charge", "previous", "²"]),
                                                             min_size=1, max_size=4))
any_values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=2),
    st.sampled_from(MONEY),
)
MALFORMED = [{"op": "eq", "value": 1}, {"ref": "charge.amount"}, "all", {"all": "abc"}, {"any": None},
             {"ref": 5, "op": "eq"}, {"ref": "charge.tags", "op": ["eq"]}]


def paths(node, prefix=""):
    """Every reference into `node` (dict keys and list positions) with the value there."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = f"{prefix}{key}"
        yield path, value
        yield from paths(value, path + ".")


@st.composite
def cases(draw):
    """A context, and a tree of conditions mostly about what is in it: its references, its
    values (and its lists' items), amounts beside currencies, changes against "previous"."""
    charge = draw(objects)
    previous = draw(st.one_of(st.none(), small, st.builds(lambda p: {"charge": p}, objects),
                              st.builds(lambda keys: {"charge": {k: v for k, v in charge.items() if k in keys}},
                                        st.sets(st.sampled_from(FIELDS)))))
    context = {"charge": charge, **({"previous": previous} if previous is not None else {})}
    present = list(paths(context))
    refs = st.one_of(st.sampled_from([path for path, _value in present]), any_refs)
    values = st.one_of(st.sampled_from([value for _path, value in present]), any_values)
    with_value = st.builds(lambda ref, op, value: {"ref": ref, "op": op, "value": value},
                           refs, st.sampled_from(sorted(OPERATORS) + ["resembles"]), values)
    leaves = st.one_of(with_value, with_value, with_value,  # mostly well-formed, so most trees get evaluated
                       st.builds(lambda ref, op: {"ref": ref, "op": op}, refs, st.sampled_from(sorted(OPERATORS))),
                       st.sampled_from(MALFORMED))
    tree = draw(st.recursive(leaves, lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, max_size=3))), max_leaves=6))
    return tree, context


def exact(evaluate_fn, tree, context):
    try:
        return "ok", evaluate_fn(tree, context)
    except Exception as exc:  # whatever it is, both must raise it alike
        return "raised", type(exc), str(exc)


def nodes(tree, context):
    """The tree, every group and leaf in it (so that a leaf a group never reaches is checked
    all the same), and each leaf's field with every operator, against its own value, what the
    context holds there (and each item of it), every value of the pool (alone and in a list) and
    amounts."""
    yield tree
    for group in ("all", "any"):
        if isinstance(tree, dict) and group in tree:
            if isinstance(tree[group], list):
                for item in tree[group]:
                    yield from nodes(item, context)
            return
    if not isinstance(tree, dict) or not isinstance(tree.get("ref"), str):
        return
    try:
        there = resolve(tree["ref"], context)
    except ValueError:
        there = MISSING
    found = [] if there is MISSING else [there, [there], *(there if isinstance(there, list) else [])]
    values = [tree.get("value"), *found, *POOL, *([p] for p in POOL), *MONEY]
    for op in sorted(OPERATORS):
        for value in values:
            yield {"ref": tree["ref"], "op": op, "value": value}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(cases())
def test_compiled_conditions_answer_exactly_as_the_interpreter(case):
    tree, context = case
    for node in nodes(tree, context):
        result = exact(compiled, node, context)
        assert result == exact(evaluate, node, context), node
        if result[0] == "ok":
            assert type(result[1]) is bool


@pytest.mark.parametrize("amount", [1e17 + 16, 1e17 + 32, 100000000000000017, 1.5, float("inf"), float("nan"),
                                    True, "17"])
@pytest.mark.parametrize("op", ["eq", "ne", "gt", "gte", "lt", "lte"])
def test_compiled_amounts_read_odd_numbers_as_the_interpreter_does(amount, op):
    # A float is read by its shortest text (1e17 + 16 as …020), not its binary value (…016).
    condition = {"ref": "charge.amount", "op": op, "value": money("100,000,000,000,000.017", "kwd")}
    context = {"charge": {"amount": amount, "currency": "KWD"}}
    assert exact(compiled, condition, context) == exact(evaluate, condition, context)


def test_compiled_leaves_agree_with_the_interpreter_on_every_pool_value():
    """Every operator, on every value of the pool (and lists of them) in the context and in the
    condition, amounts among them, and as a change: exhaustively, not by chance."""
    actuals = [*POOL, MISSING, [], ["VIP", 5], [True, "5"], {"n": 1}, "True", "false", "VIP and more"]
    values = [*POOL, *([p] for p in POOL), ["vip", 1500, True], [], {"n": 1}, *MONEY, "True", "vi", "ip"]
    for actual in actuals:
        for currency in ("kwd", "JPY"):
            charge = {"currency": currency} if actual is MISSING else {"amount": actual, "currency": currency}
            for previous in ({}, {"charge": {"amount": "5"}}):
                context = {"charge": charge, "previous": previous}
                for op in sorted(OPERATORS):
                    for value in values:
                        condition = {"ref": "charge.amount", "op": op, "value": value}
                        assert exact(compiled, condition, context) == exact(evaluate, condition, context), (
                            condition, context)
