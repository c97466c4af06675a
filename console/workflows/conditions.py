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

import re
from decimal import Decimal, InvalidOperation
from typing import Any

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
