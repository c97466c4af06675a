"""Workflow conditions: a field by dynamic reference, an operator, a value; groups of them.

The first piece of the workflow engine (issue 9): the engine, the editor's inline validation
and the backtest all evaluate conditions here, so a live run and a backtest agree.

A condition is JSON (it is saved with a workflow version and exported):

    {"ref": "payment_intent.amount", "op": "gt", "value": {"amount": "1,000", "currency": "usd"}}
    {"ref": "ticket.channel", "op": "in", "value": ["line", "email"]}
    {"all": [cond, ...]}        {"any": [cond, ...]}

A reference is a dotted path into the run's context, whose roots are the trigger's object and
what earlier steps fetched ("payment_intent", "charge", "customer", "ticket", "message" ...);
a number reads a list item (`lines.data.0.price.id`). `changed_from` / `changed_to` read the
event's `previous_attributes`, kept in the context under "previous" per root.

Money compares in the currency's real units and names its currency: "amount > 1,000 USD" is
100000 cents, "> 1,000 JPY" is 1000 yen. The amount's own currency is the `currency` beside it
in the same object, as Stripe writes them. Comparing an amount in one currency with a value in
another raises ConditionError: it is a mistake to show, never a silent false.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from django.utils.translation import gettext as _

from payments.money import decimals

MISSING = object()
MAX_DEPTH = 8  # groups within groups: an editor never needs more; an import file may try
MAX_CONDITIONS = 200

VALUE_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "contains", "starts_with", "in", "changed_from", "changed_to"}
ORDER_OPS = {"gt", "gte", "lt", "lte"}
NO_VALUE_OPS = {"is_set", "is_not_set", "changed"}
OPERATORS = VALUE_OPS | NO_VALUE_OPS

_REF = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_-]+){0,12}$")
_CURRENCY = re.compile(r"^[a-z]{3}$")
# Stripe's integer amounts that sit beside a `currency` in the same object.
_MONEY_FIELD = re.compile(r"^(amount(_[a-z_]+)?|[a-z_]+_amount|unit_amount|total|subtotal|total_excluding_tax)$")


class ConditionError(Exception):
    """A condition that cannot be evaluated as written (a comparison across currencies)."""


def is_money_field(ref: str) -> bool:
    return bool(_MONEY_FIELD.match(ref.rsplit(".", 1)[-1]))


def is_money_value(value) -> bool:
    return isinstance(value, dict) and set(value) == {"amount", "currency"}


# --- reading the context ------------------------------------------------------------------------


def resolve(ref: str, context: dict) -> Any:
    """The value at `ref`, or MISSING."""
    node: Any = context
    for part in ref.split("."):
        if isinstance(node, dict):
            node = node.get(part, MISSING)
        elif isinstance(node, list) and part.isdigit():
            index = int(part)
            node = node[index] if index < len(node) else MISSING
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def _currency_beside(ref: str, context: dict) -> str:
    parent = resolve(ref.rsplit(".", 1)[0], context) if "." in ref else MISSING
    currency = parent.get("currency") if isinstance(parent, dict) else None
    return currency.lower() if isinstance(currency, str) else ""


def minor_units(value: dict) -> tuple[int, str]:
    """{"amount": "1,000.50", "currency": "USD"} → (100050, "usd"). ValueError when it can't be."""
    currency = str(value.get("currency") or "").strip().lower()
    if not _CURRENCY.match(currency):
        raise ValueError(_("Say the currency as a three-letter code, such as USD or JPY."))
    text = str(value.get("amount", "")).replace(",", "").strip()
    try:
        major = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("“%(text)s” is not an amount.") % {"text": text[:40]}) from None
    if not major.is_finite() or abs(major) >= Decimal(10) ** 15:
        raise ValueError(_("“%(text)s” is not an amount.") % {"text": text[:40]})
    minor = major.scaleb(decimals(currency))
    if minor != minor.to_integral_value():
        raise ValueError(_("%(currency)s amounts have at most %(places)d decimals.")
                         % {"currency": currency.upper(), "places": decimals(currency)})
    return int(minor), currency


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return None


def _same(actual, expected) -> bool:
    """Equality as a person means it: 5 equals "5" and 5.0; True equals "true"; text is exact."""
    if actual is MISSING or actual is None:
        return expected is None or expected == ""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    number = _number(actual)
    if number is not None:
        other = _decimal(expected) if isinstance(expected, str) else _number(expected)
        return other is not None and number == other
    text = _text(actual)
    return text is not None and text == _text(expected)


def _order(op: str, a: Decimal, b: Decimal) -> bool:
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


# --- evaluating -----------------------------------------------------------------------------------


def evaluate(condition: dict, context: dict) -> bool:
    """True when `condition` holds for `context`. An empty group holds (all of nothing)."""
    if "all" in condition:
        return all(evaluate(c, context) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, context) for c in condition["any"])
    return _leaf(condition["ref"], condition["op"], condition.get("value"), context)


def _leaf(ref: str, op: str, value, context: dict) -> bool:
    actual = resolve(ref, context)
    if op == "is_set":
        return actual is not MISSING and actual is not None and actual != ""
    if op == "is_not_set":
        return actual is MISSING or actual is None or actual == ""
    if op in ("changed", "changed_from", "changed_to"):
        root, _dot, rest = ref.partition(".")
        before = resolve(rest, (context.get("previous") or {}).get(root) or {}) if rest else MISSING
        if before is MISSING:
            return False  # the field did not change in this event
        if op == "changed":
            return True
        return _same(before if op == "changed_from" else actual, value)
    if is_money_value(value):
        return _money(ref, op, value, actual, context)
    if op in ORDER_OPS:
        a = _number(actual)
        b = _decimal(value) if isinstance(value, str) else _number(value)
        return a is not None and b is not None and _order(op, a, b)
    if op == "eq":
        return _same(actual, value)
    if op == "ne":
        return not _same(actual, value)
    if op == "in":
        return isinstance(value, list) and any(_same(actual, v) for v in value)
    if op == "contains":
        if isinstance(actual, list):
            return any(_same(item, value) for item in actual)
        text, part = _text(actual), _text(value)
        return text is not None and part is not None and part.casefold() in text.casefold()
    if op == "starts_with":
        text, part = _text(actual), _text(value)
        return text is not None and part is not None and text.casefold().startswith(part.casefold())
    raise ConditionError(_("Unknown operator “%(op)s”.") % {"op": str(op)[:20]})


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _money(ref: str, op: str, value: dict, actual, context: dict) -> bool:
    expected, currency = minor_units(value)
    if actual is MISSING or actual is None:
        return op == "ne"
    amount = _number(actual)
    if amount is None:
        return False
    own = _currency_beside(ref, context)
    if not own:
        raise ConditionError(_("%(ref)s has no currency beside it to compare with %(currency)s.")
                             % {"ref": ref, "currency": currency.upper()})
    if own != currency:
        raise ConditionError(_("%(ref)s is in %(own)s; it can't be compared with an amount in %(currency)s.")
                             % {"ref": ref, "own": own.upper(), "currency": currency.upper()})
    if op == "eq":
        return amount == expected
    if op == "ne":
        return amount != expected
    if op in ORDER_OPS:
        return _order(op, amount, Decimal(expected))
    raise ConditionError(_("Amounts are compared with equals, not equals, greater or less than."))


# --- compiling (the engine's hot path) --------------------------------------------------------
#
# An event is checked against every active workflow of its trigger, so the work that doesn't
# depend on the event is done once per workflow version: references split, values parsed,
# money in minor units, the operator chosen. `compile_condition(c)(context)` answers exactly
# as `evaluate(c, context)` does: the same result, the same exception with the same words (said
# when it is raised, in the language active then). What the compiler doesn't recognise (a
# malformed node, an unknown operator, an amount that isn't one) is left to `evaluate` as
# written, so even its errors are the interpreter's. tests/console/test_workflow_conditions.py
# checks both against a plain reference and against each other on random trees.

Compiled = Callable[[dict], bool]
_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_SMALL = Decimal(10) ** 30  # integral values below this compare as ints (faster, and exact)


def compile_condition(condition) -> Compiled:
    """`condition` as a function of the context, equal to `evaluate(condition, context)`. The
    condition is read once, now: don't change it afterwards."""
    if not isinstance(condition, dict):
        return _interpreted(condition)
    for group, combine in (("all", _all), ("any", _any)):
        if group in condition:
            items = condition[group]
            if type(items) is not list:
                return _interpreted(condition)
            return combine(tuple(compile_condition(item) for item in items))
    ref, op = condition.get("ref"), condition.get("op")
    if type(ref) is not str or type(op) is not str:
        return _interpreted(condition)
    get = _getter(ref)
    if get is None:
        return _interpreted(condition)
    return _compile_leaf(ref, op, condition.get("value"), get) or _interpreted(condition)


def _interpreted(condition) -> Compiled:
    return lambda context: evaluate(condition, context)


def _all(tests: tuple[Compiled, ...]) -> Compiled:
    if not tests:
        return lambda context: True
    if len(tests) == 1:
        (only,) = tests
        return lambda context: True if only(context) else False
    if len(tests) == 2:
        first, second = tests
        return lambda context: True if first(context) and second(context) else False

    def every(context):
        for test in tests:
            if not test(context):
                return False
        return True

    return every


def _any(tests: tuple[Compiled, ...]) -> Compiled:
    if not tests:
        return lambda context: False
    if len(tests) == 1:
        (only,) = tests
        return lambda context: True if only(context) else False
    if len(tests) == 2:
        first, second = tests
        return lambda context: True if first(context) or second(context) else False

    def some(context):
        for test in tests:
            if test(context):
                return True
        return False

    return some


def _getter(ref: str) -> Callable[[Any], Any] | None:
    """resolve(ref, ·) with the reference split once; None when a part reads as a digit but
    isn't an index (resolve then raises, and the interpreter should)."""
    steps = []
    for part in ref.split("."):
        index = None
        if part.isdigit():
            try:
                index = int(part)
            except ValueError:
                return None
        steps.append((part, index))
    if len(steps) == 2 and steps[0][1] is None and steps[1][1] is None:
        (a, _i), (b, _j) = steps

        def get2(node):
            node = node.get(a, MISSING) if isinstance(node, dict) else MISSING
            return node.get(b, MISSING) if isinstance(node, dict) else MISSING

        return get2
    if len(steps) == 3 and all(index is None for _part, index in steps):
        (a, _i), (b, _j), (c, _k) = steps

        def get3(node):
            node = node.get(a, MISSING) if isinstance(node, dict) else MISSING
            node = node.get(b, MISSING) if isinstance(node, dict) else MISSING
            return node.get(c, MISSING) if isinstance(node, dict) else MISSING

        return get3
    steps = tuple(steps)

    def get(node):
        for part, index in steps:
            if isinstance(node, dict):
                node = node.get(part, MISSING)
            elif index is not None and isinstance(node, list):
                node = node[index] if index < len(node) else MISSING
            else:
                return MISSING
            if node is MISSING:
                return MISSING
        return node

    return get


def _int_if_small(number: Decimal):
    """An integral Decimal as an int (ints compare with ints faster); anything else as it is."""
    if abs(number) < _SMALL and number == number.to_integral_value():
        return int(number)
    return number


def _same_as(expected) -> Callable[[Any], bool]:
    """_same(·, expected) with `expected` read once."""
    when_missing = expected is None or expected == ""
    if isinstance(expected, bool):
        lowered = str(expected).lower()

        def same_bool(actual):
            if actual is MISSING or actual is None:
                return when_missing
            return str(actual).lower() == lowered

        return same_bool
    number = _decimal(expected) if isinstance(expected, str) else _number(expected)
    whole = _int_if_small(number) if number is not None else None
    text = _text(expected)

    def same(actual):
        if actual is MISSING or actual is None:
            return when_missing
        kind = type(actual)
        if kind is str:  # not a number: compared as text
            return actual == text
        if kind is int:  # a number: compared as one (an int never equals a fraction)
            return whole is not None and actual == whole
        return _same(actual, expected)

    return same


def _compile_leaf(ref: str, op: str, value, get) -> Compiled | None:
    """_leaf(ref, op, value, ·) as a closure; None for what is left to the interpreter."""
    if op == "is_set":
        def is_set(context):
            actual = get(context)
            return actual is not MISSING and actual is not None and actual != ""
        return is_set
    if op == "is_not_set":
        def is_not_set(context):
            actual = get(context)
            return actual is MISSING or actual is None or actual == ""
        return is_not_set
    if op in ("changed", "changed_from", "changed_to"):
        return _compile_change(ref, op, value, get)
    if is_money_value(value):
        return _compile_money(ref, op, value, get)
    if op in ORDER_OPS:
        return _compile_order(op, value, get)
    if op in ("eq", "ne"):
        same = _same_as(value)
        if op == "eq":
            return lambda context: same(get(context))
        return lambda context: not same(get(context))
    if op == "in":
        return _compile_in(value, get)
    if op in ("contains", "starts_with"):
        return _compile_text(op, value, get)
    return None  # an unknown operator: the interpreter says so


def _compile_change(ref: str, op: str, value, get) -> Compiled:
    root, _dot, rest = ref.partition(".")
    if not rest:
        return lambda context: False  # no field under the root: nothing changed
    before_of = _getter(rest)  # its parts are the reference's, already read as indexes

    def before(context):
        return before_of((context.get("previous") or {}).get(root) or {})

    if op == "changed":
        return lambda context: before(context) is not MISSING
    same = _same_as(value)
    if op == "changed_from":
        def changed_from(context):
            was = before(context)
            return False if was is MISSING else same(was)
        return changed_from

    def changed_to(context):
        if before(context) is MISSING:
            return False
        return same(get(context))

    return changed_to


def _compile_money(ref: str, op: str, value: dict, get) -> Compiled | None:
    if op not in ("eq", "ne", *ORDER_OPS):
        return None  # the interpreter refuses it, after its own checks
    try:
        expected, currency = minor_units(value)
    except Exception:  # not an amount: the interpreter raises, in the reader's language
        return None
    compare = {"eq": operator.eq, "ne": operator.ne, **_ORDER}[op]
    parent_of = _getter(ref.rsplit(".", 1)[0]) if "." in ref else None
    when_missing = op == "ne"

    def money(context):
        actual = get(context)
        if actual is MISSING or actual is None:
            return when_missing
        if type(actual) is int:
            amount = actual
        else:
            amount = _number(actual)
            if amount is None:
                return False
        parent = parent_of(context) if parent_of is not None else MISSING
        own = parent.get("currency") if isinstance(parent, dict) else None
        if type(own) is not str or own.lower() != currency:
            return _money(ref, op, value, actual, context)  # it says why, or decides as written
        return compare(amount, expected)

    return money


def _compile_order(op: str, value, get) -> Compiled:
    bound = _decimal(value) if isinstance(value, str) else _number(value)
    if bound is None:
        return lambda context: False  # nothing is more or less than a value that isn't a number
    compare, whole = _ORDER[op], _int_if_small(bound)

    def order(context):
        actual = get(context)
        if type(actual) is int:
            return compare(actual, whole)
        number = _number(actual)
        return number is not None and compare(number, bound)

    return order


def _compile_in(value, get) -> Compiled:
    if not isinstance(value, list):
        return lambda context: False
    sames = tuple(_same_as(v) for v in value)
    when_missing = any(same(MISSING) for same in sames)
    texts = frozenset(t for v in value if not isinstance(v, bool) and (t := _text(v)) is not None)
    bools = frozenset(str(v).lower() for v in value if isinstance(v, bool))
    numbers = frozenset(n for v in value if not isinstance(v, bool)
                        and (n := _decimal(v) if isinstance(v, str) else _number(v)) is not None)

    def within(context):
        actual = get(context)
        if actual is MISSING or actual is None:
            return when_missing
        kind = type(actual)
        if kind is str:
            return actual in texts or bool(bools) and actual.lower() in bools
        if kind is int:  # equal numbers hash alike, Decimal or int
            return actual in numbers
        for same in sames:
            if same(actual):
                return True
        return False

    return within


def _compile_text(op: str, value, get) -> Compiled:
    same = _same_as(value)
    part = _text(value)
    folded = part.casefold() if part is not None else None

    if op == "contains":
        def contains(context):
            actual = get(context)
            if isinstance(actual, list):  # a list contains an item
                for item in actual:
                    if same(item):
                        return True
                return False
            return False if folded is None or (text := _text(actual)) is None else folded in text.casefold()
        return contains

    def starts_with(context):
        actual = get(context)
        return False if folded is None or (text := _text(actual)) is None else text.casefold().startswith(folded)

    return starts_with


# --- validating (the editor and imports) ------------------------------------------------------


def validate(condition, references: set[str] | None = None) -> list[str]:
    """What is wrong with `condition`, in the reader's language; [] when nothing. `references`:
    the dynamic references available at that point (None: don't check them)."""
    errors: list[str] = []
    count = [0]
    _check(condition, references, errors, depth=0, count=count)
    return errors


def _check(node, references, errors: list[str], *, depth: int, count: list[int]) -> None:
    count[0] += 1
    if count[0] > MAX_CONDITIONS:
        if count[0] == MAX_CONDITIONS + 1:
            errors.append(_("A workflow step may have at most %(n)s conditions.") % {"n": MAX_CONDITIONS})
        return
    if not isinstance(node, dict):
        errors.append(_("A condition must be an object with a field, an operator and a value."))
        return
    for group in ("all", "any"):
        if group in node:
            if depth >= MAX_DEPTH:
                errors.append(_("Groups may be nested at most %(n)s deep.") % {"n": MAX_DEPTH})
                return
            items = node[group]
            if not isinstance(items, list):
                errors.append(_("A group holds a list of conditions."))
                return
            for item in items:
                _check(item, references, errors, depth=depth + 1, count=count)
            return
    ref, op = node.get("ref"), node.get("op")
    if not isinstance(ref, str) or not _REF.match(ref):
        errors.append(_("“%(ref)s” is not a field reference such as payment_intent.amount.") % {"ref": str(ref)[:60]})
        return
    if references is not None and ref not in references:
        errors.append(_("%(ref)s is not available here.") % {"ref": ref})
    if op not in OPERATORS:
        errors.append(_("Unknown operator “%(op)s”.") % {"op": str(op)[:20]})
        return
    value = node.get("value")
    if op in NO_VALUE_OPS:
        return
    if value is None or value == "" or value == []:
        errors.append(_("%(ref)s: give a value to compare with.") % {"ref": ref})
        return
    if op == "in" and not isinstance(value, list):
        errors.append(_("%(ref)s: “in list” takes a list of values.") % {"ref": ref})
        return
    if is_money_value(value):
        try:
            minor_units(value)
        except ValueError as exc:
            errors.append(f"{ref}: {exc}")
        if op not in ("eq", "ne", *ORDER_OPS):
            errors.append(_("Amounts are compared with equals, not equals, greater or less than."))
        return
    if isinstance(value, dict):
        errors.append(_("%(ref)s: a value is text, a number, a list or an amount with its currency.") % {"ref": ref})
        return
    if is_money_field(ref) and op in ("eq", "ne", *ORDER_OPS):
        errors.append(_("%(ref)s is an amount: say its currency (for example 1,000 USD).") % {"ref": ref})
