"""The editor's form ⇄ a workflow's definition, the editing operations, and what the editor
shows of a draft.

The editor's state is the form itself: every input is named by its path in the definition
("trigger.stripe", "conditions.0.ref", "steps.1.branch.0.if.0.amount", "steps.2.params.text"),
so each operation posts the whole form, `parse` rebuilds the draft, `apply` changes it,
`definition.check` validates it and `build` says what to render, node by node, with each
mistake beside its node and the references known at that point.

    draft = parse(request.POST)
    focus = apply(draft.definition, "add-step:steps:fetch")
    tree = build(draft, focus=focus, choices=selectors.editor_choices())
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _, gettext_lazy, pgettext, pgettext_lazy

from payments import stripe_words

from .conditions import NO_VALUE_OPS, is_money_value
from .definition import ACTIONS, TICKET_TRIGGERS, Issue, Scope, check
from .describe import action_name
from .references import STRIPE_TRIGGERS

MAX_INDEX = 200  # list positions read from a form: a step list or a group holds far fewer
MAX_PARTS = 40  # dots in one input's name
MAX_NESTING = 12  # branches and groups within each other, read from a form
_EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

TRIGGER_KINDS = ("stripe", "ticket", "schedule")
STEP_KINDS = ("fetch", "branch", "action")
NEW_CONDITION = {"ref": "", "op": "eq", "value": ""}

# Each action's inputs, in the order the editor shows them. Kinds: text, textarea, select
# (choices below), tags (a comma-separated list), money (amount and currency).
PARAMS: dict[str, tuple[str, ...]] = {
    "notify": ("team", "user", "text"),
    "update_customer_metadata": ("key", "value"),
    "refund": ("reason", "amount"),
    "create_ticket": ("subject", "team", "priority", "tags", "note", "if_open_ticket"),
    "tag_ticket": ("tags",),
    "assign_ticket": ("user", "team"),
    "set_priority": ("priority",),
    "set_status": ("status",),
    "add_note": ("text",),
    "reply_with_macro": ("macro",),
    "reply_with_draft": (),
    "send_portal_link": (),
}
PARAM_KINDS = {
    "text": "textarea", "note": "textarea", "key": "text", "value": "text", "subject": "text", "tags": "tags",
    "amount": "money", "reason": "select", "priority": "select", "status": "select", "team": "select",
    "user": "select", "macro": "select", "if_open_ticket": "select",
}
# Blank means something for these (a blank metadata value removes the key): kept as "".
KEEP_BLANK = {("update_customer_metadata", "value")}
REFUND_REASONS = ("fraudulent", "duplicate", "requested_by_customer")


def param_label(name: str, action: str = "") -> str:
    labels = {
        "text": _("Text"), "note": _("First internal note"), "key": _("Metadata key"),
        "value": _("Value (blank removes the key)"), "subject": _("Subject"), "tags": _("Tags (comma-separated)"),
        "amount": _("Amount (blank: all that is left)"), "reason": _("Reason"), "priority": _("Priority"),
        "status": _("Status"), "team": pgettext("workflow", "Team"), "user": pgettext("workflow", "Person"),
        "macro": _("Macro"), "if_open_ticket": _("When the customer has an open ticket"),
    }
    if action == "add_note" and name == "text":
        return _("Internal note")
    return labels.get(name, name)


OPERATORS = {
    "eq": pgettext_lazy("condition", "equals"),
    "ne": pgettext_lazy("condition", "does not equal"),
    "gt": pgettext_lazy("condition", "is greater than"),
    "gte": pgettext_lazy("condition", "is at least"),
    "lt": pgettext_lazy("condition", "is less than"),
    "lte": pgettext_lazy("condition", "is at most"),
    "contains": pgettext_lazy("condition", "contains"),
    "starts_with": pgettext_lazy("condition", "starts with"),
    "in": pgettext_lazy("condition", "is one of"),
    "is_set": pgettext_lazy("condition", "is set"),
    "is_not_set": pgettext_lazy("condition", "is not set"),
    "changed": pgettext_lazy("condition", "changed"),
    "changed_from": pgettext_lazy("condition", "changed from"),
    "changed_to": pgettext_lazy("condition", "changed to"),
}
_BY_KIND = {
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_not_set"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "is_set", "is_not_set"),
    "time": ("eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_not_set"),
    "text": ("eq", "ne", "contains", "starts_with", "in", "is_set", "is_not_set"),
    "id": ("eq", "ne", "starts_with", "in", "is_set", "is_not_set"),
    "bool": ("eq", "ne", "is_set", "is_not_set"),
    "list": ("contains", "is_set", "is_not_set"),
}
_CHANGES = ("changed", "changed_from", "changed_to")
KIND_WORDS = {
    "money": pgettext_lazy("reference kind", "amount"), "number": pgettext_lazy("reference kind", "number"),
    "time": pgettext_lazy("reference kind", "date"), "bool": pgettext_lazy("reference kind", "yes or no"),
    "text": pgettext_lazy("reference kind", "text"), "id": pgettext_lazy("reference kind", "id"),
    "list": pgettext_lazy("reference kind", "list"), "map": pgettext_lazy("reference kind", "any key"),
}
TICKET_TRIGGER_WORDS = {
    "ticket.created": gettext_lazy("Ticket created"),
    "message.received": gettext_lazy("Customer message received"),
    "ticket.solved": gettext_lazy("Ticket solved"),
}


def trigger_words(key: str) -> str:
    """"stripe:radar.early_fraud_warning.created" → "Stripe: radar.early_fraud_warning.created";
    "ticket:ticket.created" → "Ticket created"; "schedule:09:00" → "Every day at 09:00"."""
    kind, _sep, value = (key or "").partition(":")
    if kind == "stripe" and value:
        return _("Stripe: %(event)s") % {"event": value}
    if kind == "ticket" and value in TICKET_TRIGGER_WORDS:
        return str(TICKET_TRIGGER_WORDS[value])
    if kind == "schedule" and value:
        return _("Every day at %(time)s") % {"time": value}
    return _("No trigger yet")


# --- the form → a draft ---------------------------------------------------------------------------


@dataclass
class Draft:
    name: str
    workflow_id: int | None
    definition: dict
    inserts: dict[str, str] = field(default_factory=dict)  # "Insert a field" inputs, by the text's path


def _tree(data) -> dict:
    """The form's names as a tree: "steps.0.kind" → tree["steps"]["0"]["kind"][""]."""
    root: dict = {}
    items = data.items() if not hasattr(data, "lists") else ((k, v[-1] if v else "") for k, v in data.lists())
    for key, value in items:
        parts = str(key).split(".")
        if len(parts) > MAX_PARTS:
            continue
        node = root
        for part in parts:
            node = node.setdefault(part, {})
        node[""] = value if isinstance(value, str) else ""
    return root


def _get(node: dict, name: str) -> str:
    return (node.get(name) or {}).get("", "")


def _indexed(node: dict) -> list[dict]:
    """The children at list positions 0, 1, 2 … of a node, in order (gaps closed)."""
    found = sorted((int(k), v) for k, v in (node or {}).items() if k.isdigit() and len(k) <= 3 and int(k) < MAX_INDEX)
    return [v for _k, v in found]


def parse(data) -> Draft:
    """The draft a posted editor form holds (every value text, as typed)."""
    tree = _tree(data)
    trigger = tree.get("trigger") or {}
    kind = _get(trigger, "kind")
    kind = kind if kind in TRIGGER_KINDS else "stripe"
    definition: dict[str, Any] = {"trigger": {kind: _get(trigger, kind).strip()}}
    group = _group(tree.get("conditions") or {}, 0)
    if next(iter(group.values())):
        definition["conditions"] = group
    definition["steps"] = _steps(tree.get("steps") or {}, 0)
    workflow = _get(tree, "workflow")
    inserts = {path: text for path, text in _flat(tree.get("insert") or {}, "") if text.strip()}
    return Draft(name=_get(tree, "name").strip(), workflow_id=int(workflow) if workflow.isdigit() and len(workflow) < 12 else None,
                 definition=definition, inserts=inserts)


def _flat(node: dict, prefix: str, depth: int = 0):
    for key, child in node.items():
        if key == "":
            yield prefix, child
        elif depth < MAX_PARTS:
            yield from _flat(child, f"{prefix}.{key}" if prefix else key, depth + 1)


def _group(node: dict, depth: int) -> dict:
    kind = "any" if _get(node, "group") == "any" else "all"
    items = []
    for child in _indexed(node):
        if _get(child, "node") == "group":
            if depth < MAX_NESTING:
                items.append(_group(child, depth + 1))
        else:
            items.append(_leaf(child))
    return {kind: items}


def _leaf(node: dict) -> dict:
    op = _get(node, "op") or "eq"
    leaf: dict[str, Any] = {"ref": _get(node, "ref").strip(), "op": op}
    if op in NO_VALUE_OPS:
        return leaf
    comparison = op in ("eq", "ne", "gt", "gte", "lt", "lte")
    if comparison and ("amount" in node or "currency" in node):
        leaf["value"] = {"amount": _get(node, "amount").strip(), "currency": _get(node, "currency").strip().lower()}
        return leaf
    text = _get(node, "value") if "value" in node else _get(node, "amount")
    leaf["value"] = [v.strip() for v in text.split(",") if v.strip()] if op == "in" else text.strip()
    return leaf


def _steps(node: dict, depth: int) -> list:
    return [s for s in (_step(child, depth) for child in _indexed(node)) if s is not None]


def _step(node: dict, depth: int) -> dict | None:
    kind = _get(node, "kind")
    if kind == "fetch":
        return {"fetch": _get(node, "fetch")}
    if kind == "branch":
        if depth >= MAX_NESTING:
            return None
        paths = []
        for option in _indexed(node.get("branch") or {}):
            if _get(option, "kind") == "else":
                paths.append({"else": _steps(option.get("else") or {}, depth + 1)})
            else:
                paths.append({"if": _group(option.get("if") or {}, 0), "steps": _steps(option.get("steps") or {}, depth + 1)})
        return {"branch": paths}
    if kind == "action":
        action = _get(node, "action")
        return {"action": action, "params": _params(action, node.get("params") or {}, node.get("extra") or {})}
    return None


def _params(action: str, node: dict, extra: dict) -> dict:
    params: dict[str, Any] = {}
    for name in PARAMS.get(action, ()):
        kind = PARAM_KINDS[name]
        if kind == "money":
            money = node.get(name) or {}
            amount, currency = _get(money, "amount").strip(), _get(money, "currency").strip().lower()
            if amount or currency:
                params[name] = {"amount": amount, "currency": currency}
        elif kind == "tags":
            tags = [t.strip() for t in _get(node, name).split(",") if t.strip()]
            if tags:
                params[name] = tags
        else:
            value = _get(node, name)
            value = value.strip() if kind != "textarea" else value.strip("\r\n ")
            if value or (action, name) in KEEP_BLANK:
                params[name] = value
    # What an imported definition had that the editor has no input for, kept as it was.
    for name in extra:
        if _EXTRA_KEY.match(name) and name not in params and name not in PARAMS.get(action, ()):
            params[name] = _get(extra, name)
    return params


# --- editing operations ----------------------------------------------------------------------------


class OperationError(Exception):
    pass


def _group_list(node) -> list:
    if isinstance(node, dict):
        for group in ("all", "any"):
            if isinstance(node.get(group), list):
                return node[group]
    raise OperationError(node)


def _resolve(root: dict, parts: list[str]):
    node: Any = root
    for part in parts:
        if part.isdigit() and isinstance(node, dict) and ("all" in node or "any" in node):
            node = _group_list(node)[int(part)]
        elif part.isdigit() and isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise OperationError(part)
    return node


def _siblings(definition: dict, path: str) -> tuple[list, int]:
    """The list holding the node at `path`, and its position there."""
    *parent, last = path.split(".")
    if not last.isdigit() or not parent:
        raise OperationError(path)
    holder = _resolve(definition, parent)
    items = holder if isinstance(holder, list) else _group_list(holder)
    index = int(last)
    if index >= len(items):
        raise OperationError(path)
    return items, index


def _new_step(kind: str) -> dict:
    if kind == "fetch":
        return {"fetch": ""}
    if kind == "branch":
        return {"branch": [{"if": {"all": [dict(NEW_CONDITION)]}, "steps": []}, {"else": []}]}
    return {"action": "", "params": {}}


def apply(draft: Draft, op: str) -> str:
    """Change the draft as `op` says; returns the path of the node to focus ("" for none).

    add-step:<list>:<fetch|branch|action>   add-path:<branch>   add-else:<branch>
    add-cond:<group>   add-group:<group>   remove:<node>   up:<node>   down:<node>
    insert:<text>   (a reference into a text, from its "Insert a field" input)
    refresh   (nothing: the trigger or an action changed, show the editor for it)
    """
    definition = draft.definition
    verb, _sep, rest = (op or "").partition(":")
    try:
        if verb == "add-step":
            where, _sep, kind = rest.rpartition(":")
            steps = definition.setdefault("steps", []) if where == "steps" else _resolve(definition, where.split("."))
            if not isinstance(steps, list) or kind not in STEP_KINDS:
                raise OperationError(op)
            steps.append(_new_step(kind))
            # A new branch: straight to its first condition's field.
            return f"{where}.{len(steps) - 1}" + (".branch.0.if.0" if kind == "branch" else "")
        if verb in ("add-path", "add-else"):
            paths = _resolve(definition, rest.split("."))
            if not isinstance(paths, list):
                raise OperationError(op)
            last_is_else = bool(paths) and isinstance(paths[-1], dict) and "else" in paths[-1]
            if verb == "add-else":
                if last_is_else:
                    return f"{rest}.{len(paths) - 1}"
                paths.append({"else": []})
                return f"{rest}.{len(paths) - 1}"
            position = len(paths) - 1 if last_is_else else len(paths)
            paths.insert(position, {"if": {"all": [dict(NEW_CONDITION)]}, "steps": []})
            return f"{rest}.{position}.if.0"
        if verb in ("add-cond", "add-group"):
            if rest == "conditions" and not definition.get("conditions"):
                definition["conditions"] = {"all": []}
            items = _group_list(_resolve(definition, rest.split(".")))
            items.append(dict(NEW_CONDITION) if verb == "add-cond" else {"any": [dict(NEW_CONDITION)]})
            return f"{rest}.{len(items) - 1}" + (".0" if verb == "add-group" else "")
        if verb == "remove":
            items, index = _siblings(definition, rest)
            del items[index]
            if rest.startswith("conditions.") and not _group_list(definition["conditions"]) and rest.count(".") == 1:
                definition.pop("conditions", None)
            return ""
        if verb in ("up", "down"):
            items, index = _siblings(definition, rest)
            other = index - 1 if verb == "up" else index + 1
            if 0 <= other < len(items):
                items[index], items[other] = items[other], items[index]
                return f"{verb}:{rest.rsplit('.', 1)[0]}.{other}"
            return f"{verb}:{rest}"
        if verb == "insert":
            ref = draft.inserts.get(rest, "").strip()
            *step, params, name = rest.split(".")
            holder = _resolve(definition, step)
            if params != "params" or not isinstance(holder, dict) or not ref or len(ref) > 120:
                raise OperationError(op)
            values = holder.setdefault("params", {})
            text = values.get(name) if isinstance(values.get(name), str) else ""
            values[name] = f"{text}{' ' if text and not text.endswith(' ') else ''}{{{{ {ref} }}}}"
            draft.inserts.pop(rest, None)
            return rest
    except (OperationError, IndexError, KeyError, ValueError, TypeError):
        raise OperationError(op) from None
    return ""


# --- a draft → what the editor shows ------------------------------------------------------------------


@dataclass
class Choice:
    value: str
    label: str


@dataclass
class Picker:
    """A field picker: the references known at some points, as a <datalist>."""

    id: str
    options: list[tuple[str, str]]


@dataclass
class Param:
    name: str  # the input's name: steps.2.params.text
    field: str  # text
    label: str
    kind: str
    value: Any = ""
    amount: str = ""
    currency: str = ""
    choices: list[Choice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    placeholders: bool = False  # a text that may hold {{ references }}
    focus: bool = False


@dataclass
class Condition:
    path: str
    is_group: bool
    group: str = "all"
    children: list["Condition"] = field(default_factory=list)
    ref: str = ""
    op: str = "eq"
    value: str = ""
    amount: str = ""
    currency: str = ""
    money: bool = False
    needs_value: bool = True
    list_value: bool = False
    operators: list[Choice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    picker: str = ""
    focus: bool = False
    root: bool = False


@dataclass
class BranchPath:
    path: str
    position: int
    is_else: bool
    condition: Condition | None
    steps: "StepList"
    errors: list[str] = field(default_factory=list)
    unreachable: bool = False
    focus: bool = False


@dataclass
class Step:
    path: str
    number: str  # "2.1.1" as the test results say it
    kind: str
    fetch: str = ""
    fetch_choices: list[Choice] = field(default_factory=list)
    action: str = ""
    action_label: str = ""
    action_choices: list[Choice] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    extras: list[tuple[str, str]] = field(default_factory=list)
    paths: list[BranchPath] = field(default_factory=list)
    has_else: bool = False
    errors: list[str] = field(default_factory=list)
    first: bool = False
    last: bool = False
    focus: bool = False
    focus_button: str = ""  # "up" or "down": the button of a step just moved
    picker: str = ""


@dataclass
class StepList:
    path: str
    steps: list[Step]


@dataclass
class Editor:
    name: str
    workflow_id: int | None
    trigger_kind: str
    trigger_value: str
    stripe_triggers: list[str]
    ticket_triggers: list[Choice]
    conditions: Condition
    steps: StepList
    pickers: list[Picker]
    errors: list[Issue]  # every mistake, for the summary
    general_errors: list[str]  # those about the whole workflow or its trigger
    focus: str
    definition: dict


def _choices(pairs) -> list[Choice]:
    return [Choice(str(v), str(label)) for v, label in pairs]


class _Builder:
    def __init__(self, draft: Draft, issues: list[Issue], scopes: dict[str, Scope], focus: str, choices: dict):
        self.draft, self.scopes, self.focus, self.options = draft, scopes, focus, choices
        self.errors: dict[str, list[str]] = {}
        for issue in issues:
            self.errors.setdefault(issue.path, []).append(issue.message)
        self.used: set[str] = set()
        self.pickers: dict[tuple, Picker] = {}
        trigger = draft.definition.get("trigger") or {}
        self.updated = str(trigger.get("stripe") or "").endswith(".updated")

    def take(self, path: str) -> list[str]:
        self.used.add(path)
        return self.errors.get(path, [])

    def picker(self, scope: Scope | None) -> str:
        if scope is None:
            return ""
        if scope.key not in self.pickers:
            listing = scope.refs.listing()
            self.pickers[scope.key] = Picker(f"wf-refs-{len(self.pickers)}",
                                             [(r.path, str(KIND_WORDS.get(r.kind, r.kind))) for r in listing])
        return self.pickers[scope.key].id

    # conditions
    def condition(self, node, path: str, scope: Scope | None, *, root: bool = False) -> Condition:
        focus = self.focus == path
        if isinstance(node, dict) and ("all" in node or "any" in node):
            group = "any" if "any" in node and "all" not in node else "all"
            items = node.get(group) if isinstance(node.get(group), list) else []
            return Condition(path, True, group=group, errors=self.take(path), root=root, focus=focus,
                             children=[self.condition(item, f"{path}.{i}", scope) for i, item in enumerate(items)])
        if root:  # a lone condition is shown as a group of one
            return Condition(path, True, group="all", errors=self.take(path), root=True,
                             children=[self.condition(node, f"{path}.0", scope)] if node else [])
        node = node if isinstance(node, dict) else {}
        ref, op, value = str(node.get("ref") or ""), str(node.get("op") or "eq"), node.get("value")
        kind = scope.refs.kind(ref) if scope is not None and ref else ""
        money = (is_money_value(value) or kind == "money") and op in ("eq", "ne", "gt", "gte", "lt", "lte")
        offered = list(_BY_KIND.get(kind, tuple(o for o in OPERATORS if o not in _CHANGES)))
        if self.updated:
            offered += [o for o in _CHANGES if o not in offered]
        if op not in offered:
            offered.append(op)
        condition = Condition(path, False, ref=ref, op=op, money=money, needs_value=op not in NO_VALUE_OPS,
                              list_value=op == "in", errors=self.take(path), picker=self.picker(scope), focus=focus,
                              operators=[Choice(o, str(OPERATORS.get(o, o))) for o in offered])
        if money:
            if is_money_value(value):
                condition.amount, condition.currency = str(value["amount"]), str(value["currency"]).upper()
            elif value not in (None, "", []):
                condition.amount = str(value)
        elif isinstance(value, list):
            condition.value = ", ".join(str(v) for v in value)
        elif is_money_value(value):
            condition.value = str(value["amount"])
        elif isinstance(value, dict):
            condition.value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif value is not None:
            condition.value = str(value)
        return condition

    # steps
    def steps(self, steps, path: str, number: str) -> StepList:
        items = steps if isinstance(steps, list) else []
        out = [self.step(step, f"{path}.{i}", f"{number}{i + 1}", first=i == 0, last=i == len(items) - 1)
               for i, step in enumerate(items)]
        return StepList(path, out)

    def step(self, node, path: str, number: str, *, first: bool, last: bool) -> Step:
        scope = self.scopes.get(path)
        node = node if isinstance(node, dict) else {}
        kind = "fetch" if "fetch" in node else "branch" if "branch" in node else "action" if "action" in node else "empty"
        step = Step(path, number, kind, first=first, last=last, focus=self.focus == path, errors=self.take(path),
                    picker=self.picker(scope))
        moved = self.focus.partition(":")
        if moved[2] == path and moved[0] in ("up", "down"):
            # The moved step keeps focus on a button it still has.
            step.focus_button = "down" if (moved[0] == "up" and first) else "up" if (moved[0] == "down" and last) else moved[0]
            if first and last:
                step.focus_button = ""
        if kind == "fetch":
            step.fetch = str(node["fetch"] or "")
            names = list(scope.fetchable) if scope is not None else []
            if step.fetch and step.fetch not in names:
                names.append(step.fetch)
            step.fetch_choices = [Choice(n, n) for n in names]
        elif kind == "branch":
            paths = node["branch"] if isinstance(node["branch"], list) else []
            seen_else = False
            for position, option in enumerate(paths):
                here = f"{path}.branch.{position}"
                option = option if isinstance(option, dict) else {}
                is_else = "else" in option
                branch_scope = self.scopes.get(here, scope)
                branch_path = BranchPath(
                    here, position + 1, is_else,
                    None if is_else else self.condition(option.get("if") or {"all": []}, f"{here}.if", branch_scope, root=True),
                    self.steps(option.get("else") if is_else else option.get("steps"), f"{here}.else" if is_else else f"{here}.steps",
                               f"{number}.{position + 1}."),
                    errors=self.take(here), unreachable=seen_else, focus=self.focus == here)
                seen_else = seen_else or is_else
                step.paths.append(branch_path)
            step.has_else = seen_else
        elif kind == "action":
            step.action = str(node.get("action") or "")
            step.action_label = action_name(step.action) if step.action else ""
            step.action_choices = [Choice(a, action_name(a)) for a in ACTIONS]
            if step.action and step.action not in ACTIONS:
                step.action_choices.append(Choice(step.action, step.action))
            params = node.get("params") if isinstance(node.get("params"), dict) else {}
            step.params = [self.param(step.action, name, params.get(name), f"{path}.params.{name}")
                           for name in PARAMS.get(step.action, ())]
            step.extras = [(k, v) for k, v in params.items()
                           if k not in PARAMS.get(step.action, ()) and isinstance(v, str) and _EXTRA_KEY.match(k)]
            for k in params:  # a mistake about a parameter the editor has no input for: shown on the step
                if k not in PARAMS.get(step.action, ()):
                    step.errors = step.errors + self.take(f"{path}.params.{k}")
        return step

    def param(self, action: str, name: str, value, path: str) -> Param:
        kind = PARAM_KINDS[name]
        param = Param(path, name, param_label(name, action), kind, errors=self.take(path),
                      placeholders=kind in ("text", "textarea") and name not in ("key",), focus=self.focus == path)
        if kind == "money":
            if is_money_value(value):
                param.amount, param.currency = str(value["amount"]), str(value["currency"]).upper()
        elif kind == "tags":
            param.value = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value or "")
        else:
            param.value = "" if value is None else str(value)
        if kind == "select":
            param.choices = self.select_choices(action, name)
            if param.value and param.value not in {c.value for c in param.choices}:
                param.choices.append(Choice(param.value, _("%(value)s (not found)") % {"value": param.value}))
        return param

    def select_choices(self, action: str, name: str) -> list[Choice]:
        from tickets.models import Ticket

        nobody = Choice("", "—")
        if name == "reason":
            return _choices((r, stripe_words.label("refund.reason", r)) for r in REFUND_REASONS)
        if name == "priority":
            return ([Choice("", _("Normal (the default)"))] if action == "create_ticket" else []) + _choices(Ticket.Priority.choices)
        if name == "status":
            return _choices(Ticket.Status.choices)
        if name == "team":
            return [nobody] + [Choice(slug, label) for slug, label in self.options.get("teams", [])]
        if name == "user":
            return [nobody] + [Choice(username, label) for username, label in self.options.get("users", [])]
        if name == "macro":
            return [Choice("", _("Choose a macro"))] + [Choice(n, n) for n in self.options.get("macros", [])]
        if name == "if_open_ticket":
            return [Choice("", _("Open a new ticket anyway")), Choice("note", _("Add the note to that ticket instead"))]
        return []


def editor_definition(definition) -> dict:
    """A stored definition as the editor holds it: a copy, each lone condition (the trigger's,
    a branch path's) made a group of one, as the editor shows it."""
    import copy

    definition = copy.deepcopy(definition) if isinstance(definition, dict) else {}
    if isinstance(definition.get("conditions"), dict) and not _is_group(definition["conditions"]):
        definition["conditions"] = {"all": [definition["conditions"]]}
    _wrap_paths(definition.get("steps"), 0)
    return definition


def _is_group(node) -> bool:
    return isinstance(node, dict) and ("all" in node or "any" in node)


def _wrap_paths(steps, depth: int) -> None:
    if not isinstance(steps, list) or depth > MAX_NESTING:
        return
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("branch"), list):
            continue
        for option in step["branch"]:
            if not isinstance(option, dict):
                continue
            if isinstance(option.get("if"), dict) and not _is_group(option["if"]):
                option["if"] = {"all": [option["if"]]}
            _wrap_paths(option.get("else") if "else" in option else option.get("steps"), depth + 1)


def _settle(definition: dict, scopes: dict[str, Scope]) -> bool:
    """An amount typed for a field that turned out not to be one (its reference was changed to
    a text) becomes that field's value; True when anything changed."""
    changed = False

    def walk(node, scope: Scope, depth: int) -> None:
        nonlocal changed
        if not isinstance(node, dict) or depth > MAX_NESTING:
            return
        for group in ("all", "any"):
            if isinstance(node.get(group), list):
                for item in node[group]:
                    walk(item, scope, depth + 1)
                return
        ref, value = node.get("ref"), node.get("value")
        if isinstance(ref, str) and is_money_value(value):
            kind = scope.refs.kind(ref)
            if kind and kind != "money":
                node["value"] = str(value.get("amount") or "")
                changed = True

    for path, scope in scopes.items():
        where = "conditions" if path == "conditions" else f"{path}.if" if re.search(r"\.branch\.\d+$", path) else ""
        if not where:
            continue
        try:
            walk(_resolve(definition, where.split(".")), scope, 0)
        except (OperationError, IndexError, KeyError, TypeError):
            continue
    return changed


def build(draft: Draft, *, focus: str = "", choices: dict | None = None) -> Editor:
    """What the editor shows of `draft`: its nodes with their mistakes and field pickers."""
    scopes: dict[str, Scope] = {}
    issues = check(draft.definition, scopes)
    if _settle(draft.definition, scopes):
        scopes = {}
        issues = check(draft.definition, scopes)
    builder = _Builder(draft, issues, scopes, focus, choices or {})
    definition = draft.definition
    trigger = definition.get("trigger") if isinstance(definition.get("trigger"), dict) else {}
    kind = next((k for k in TRIGGER_KINDS if k in trigger), "stripe")
    conditions = builder.condition(definition.get("conditions") or {"all": []}, "conditions", scopes.get("conditions"),
                                   root=True)
    steps = builder.steps(definition.get("steps"), "steps", "")
    general = [i.message for i in issues if i.path in ("", "trigger", "steps")]
    builder.used.update(("", "trigger", "steps"))
    # A mistake whose node isn't shown (a malformed import): said at the top, never lost.
    general += [i.message for i in issues if i.path not in builder.used]
    return Editor(
        name=draft.name, workflow_id=draft.workflow_id, trigger_kind=kind, trigger_value=str(trigger.get(kind) or ""),
        stripe_triggers=list(STRIPE_TRIGGERS),
        ticket_triggers=[Choice(t, str(TICKET_TRIGGER_WORDS[t])) for t in TICKET_TRIGGERS],
        conditions=conditions, steps=steps, pickers=list(builder.pickers.values()), errors=issues,
        general_errors=general, focus=focus, definition=definition)


# --- a planned run, as "Test with a past event" and the backtest show it ---------------------------


@dataclass
class PlannedStep:
    number: str  # "2.1.1"
    kind: str
    status: str  # done, planned, error
    title: str
    details: list[tuple[str, str]] = field(default_factory=list)
    message: str = ""  # a notification's or a note's text, as it would be sent
    error: str = ""


def describe_step(step) -> PlannedStep:
    """One engine.StepResult in words: what was fetched, which path was taken, what an action
    would do with its parameters rendered."""
    detail = step.detail or {}
    if step.kind == "fetch":
        title = (_("Fetch %(object)s %(id)s") % {"object": detail.get("object", ""), "id": detail.get("id") or ""}).strip()
        return PlannedStep(step.path, step.kind, step.status, title, error=step.error)
    if step.kind == "branch":
        chosen = detail.get("path")
        if step.status == "error":
            title = _("Branch: path %(n)s could not be decided") % {"n": chosen}
        elif chosen == "else":
            title = _("Branch: took “all other cases”")
        elif chosen is None:
            title = _("Branch: no path matched, nothing to do")
        else:
            title = _("Branch: took path %(n)s") % {"n": chosen}
        return PlannedStep(step.path, step.kind, step.status, title, error=step.error)
    action = str(detail.get("action") or "")
    params = detail.get("params") if isinstance(detail.get("params"), dict) else {}
    planned = PlannedStep(step.path, step.kind, step.status, action_name(action), error=step.error)
    for name, value in params.items():
        if name in ("text", "note") and isinstance(value, str):
            planned.message = value
            continue
        if is_money_value(value):
            shown = f"{value['amount']} {str(value['currency']).upper()}"
        elif isinstance(value, list):
            shown = ", ".join(str(v) for v in value)
        elif name == "reason":
            shown = stripe_words.label("refund.reason", str(value))
        else:
            shown = str(value)
        planned.details.append((param_label(name, action), shown))
    if action == "refund" and "amount" not in params:
        planned.details.append((param_label("amount", action), _("all that is left of the charge")))
    return planned
