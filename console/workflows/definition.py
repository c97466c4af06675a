"""A workflow's definition: one trigger, its conditions, then steps. JSON, saved with each
version and exported as it is (diffable, reviewable). `validate_definition` is what the editor
shows inline and what an import must pass before anything is saved.

    {
      "trigger": {"stripe": "radar.early_fraud_warning.created"},     # or {"ticket": "ticket.created"},
                                                                    # or {"schedule": "09:00"}
      "conditions": {"all": [...]},                                  # optional: see conditions.py
      "steps": [
        {"fetch": "charge"},
        {"branch": [
          {"if": {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}},
           "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
          {"else": [{"action": "notify", "params": {"team": "finance", "text": "Fraud warning on {{ charge.id }}"}}]}
        ]}
      ]
    }

A fetch adds an object to what later steps (and branches inside them) may refer to; a fetch
inside a branch is known only inside it. `{{ reference }}` in an action's text is filled when
it runs, and must be a reference known at that point.

`check(definition)` says the same as `validate_definition` with the place of each mistake (the
editor shows it beside the node); `check(definition, scopes)` also fills `scopes` with what is
known at each point (the field picker's references, what a fetch may bring). A place is the
node's path in the definition, as the editor names its inputs: "trigger", "conditions.0.1",
"steps.1.branch.0.if.0", "steps.1.branch.1.else.0", "steps.2.params.text".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from . import conditions as _conditions
from .conditions import is_money_value, validate as validate_conditions
from .references import STRIPE_TRIGGERS, RESOURCES, References, available, fetchable, root_name, ticket_references

TICKET_TRIGGERS = ("ticket.created", "message.received", "ticket.solved")
# The actions a step may take, with the parameters each requires (all of them call the
# console's existing actions when the engine runs them).
ACTIONS: dict[str, tuple[str, ...]] = {
    "notify": ("text",),  # and "user" or "team"
    "update_customer_metadata": ("key",),  # "value" blank removes the key
    "refund": ("reason",),  # "amount" (with its currency) for a part; the whole remainder without
    "create_ticket": ("subject",),
    "tag_ticket": ("tags",),
    "assign_ticket": (),  # "user" and/or "team"
    "set_priority": ("priority",),
    "set_status": ("status",),
    "add_note": ("text",),
    "reply_with_macro": ("macro",),
    "reply_with_draft": (),  # the draft assist wrote for the message (a message.received trigger)
    "send_portal_link": (),
}
# What a customer message's triage links it to (message.linked_<name>), fetchable by name.
MESSAGE_LINKED = ("charge", "subscription", "invoice", "refund")
MAX_STEPS = 100
MAX_BRANCH_DEPTH = 5
MAX_TEXT = 5000
MAX_DEFINITION_BYTES = 200_000
_SCHEDULE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte"}


@dataclass(frozen=True)
class Issue:
    """One mistake and the path of the node it concerns ("" for the whole workflow)."""

    path: str
    message: str


@dataclass(frozen=True)
class Scope:
    """What is known at one point of a workflow: the references a condition or a text may use,
    and the resources a fetch may start from (the trigger's object, then what was fetched)."""

    trigger: str
    refs: References
    resources: tuple[str, ...]

    @property
    def fetchable(self) -> tuple[str, ...]:
        """What a fetch step may bring from here (by name), not counting what is here already."""
        here = {root_name(r) for r in self.resources}
        return tuple(sorted({f for r in self.resources for f in fetchable(r)} - here))

    @property
    def key(self) -> tuple:
        return (self.trigger, self.resources)


def trigger_key(definition: dict) -> str:
    """"stripe:charge.dispute.created", "ticket:ticket.created", "schedule:09:00": the index
    by which the engine finds the active workflows for an event."""
    trigger = definition.get("trigger") or {}
    for kind in ("stripe", "ticket", "schedule"):
        if kind in trigger:
            return f"{kind}:{trigger[kind]}"
    return ""


def validate_definition(definition) -> list[str]:
    """Everything wrong with `definition`, in the reader's language; [] when it may be saved."""
    return [issue.message for issue in check(definition)]


def check(definition, scopes: dict[str, Scope] | None = None) -> list[Issue]:
    """Everything wrong with `definition`, each with the path of its node; `scopes` (when given)
    gets what is known at "conditions", at each step and at each path of a branch."""
    if not isinstance(definition, dict):
        return [Issue("", _("A workflow is an object with a trigger and steps."))]
    try:
        size = len(json.dumps(definition))
    except (TypeError, ValueError, RecursionError):
        return [Issue("", _("A workflow holds only text, numbers, lists and objects."))]
    if size > MAX_DEFINITION_BYTES:
        return [Issue("", _("This workflow is too large to save."))]
    issues: list[Issue] = []
    refs = _trigger(definition.get("trigger"), issues)
    if refs is None:
        return issues
    scope = Scope(trigger_key(definition), refs, tuple(_fetch_roots(definition.get("trigger"))))
    if scopes is not None:
        scopes["conditions"] = scope
    facts: dict[str, str] = {}
    if definition.get("conditions") not in (None, {}):
        _condition_tree(definition["conditions"], refs, "conditions", issues)
        facts = _cross_currency(definition["conditions"], "conditions", {}, issues)
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        issues.append(Issue("steps", _("Add at least one step.")))
        return issues
    _steps(steps, scope, issues, depth=0, counter=[0], path="steps", facts=facts, scopes=scopes)
    return issues


def _fetch_roots(trigger) -> list[str]:
    if isinstance(trigger, dict) and trigger.get("stripe") in STRIPE_TRIGGERS:
        return [STRIPE_TRIGGERS[trigger["stripe"]]]
    return []


def _trigger(trigger, issues: list[Issue]) -> References | None:
    if not isinstance(trigger, dict) or len(trigger) != 1:
        issues.append(Issue("trigger", _("Choose one trigger: a Stripe event, a ticket event or a schedule.")))
        return None
    (kind, value), = trigger.items()
    if kind == "stripe" and value in STRIPE_TRIGGERS:
        return available(value)
    if kind == "ticket" and value in TICKET_TRIGGERS:
        return ticket_references(value)
    if kind == "schedule" and isinstance(value, str) and _SCHEDULE.match(value):
        return References({})
    if kind in ("stripe", "ticket", "schedule") and value in ("", None):
        issues.append(Issue("trigger", _("Choose the event or the time that starts this workflow.")))
        return None
    issues.append(Issue("trigger", _("“%(trigger)s” is not a trigger Paydesk knows.") % {"trigger": str(value)[:60]}))
    return None


# --- conditions, each mistake at its node ------------------------------------------------------


def _condition_tree(tree, refs: References, root: str, issues: list[Issue]) -> None:
    """conditions.validate's messages for `tree`, in its order, each placed at the condition
    it is about (the group itself for what concerns the group)."""
    placed: list[tuple[str, str, bool]] = []
    _leaves(tree, root, refs, placed, depth=0, count=[0])
    no_field = validate_conditions({"ref": "", "op": "eq", "value": "x"})[0]  # conditions.py's words for it
    for message in validate_conditions(tree, refs):
        at = next((i for i, (_path, said, _blank) in enumerate(placed) if said == message), None)
        if at is None:
            issues.append(Issue(root, message))
            continue
        path, _said, blank = placed.pop(at)
        # A condition just added, its field not chosen yet: said as what to do.
        issues.append(Issue(path, _("Choose a field to compare.") if blank and message == no_field else message))


def _leaves(node, path: str, refs, out: list[tuple[str, str, bool]], *, depth: int, count: list[int]) -> None:
    count[0] += 1
    if count[0] > getattr(_conditions, "MAX_CONDITIONS", 200):
        return
    if isinstance(node, dict):
        for group in ("all", "any"):
            if group in node:
                items = node[group]
                if depth >= getattr(_conditions, "MAX_DEPTH", 8) or not isinstance(items, list):
                    return
                for i, item in enumerate(items):
                    _leaves(item, f"{path}.{i}", refs, out, depth=depth + 1, count=count)
                return
    blank = isinstance(node, dict) and node.get("ref") in ("", None)
    out.extend((path, message, blank) for message in validate_conditions(node, refs))


def _pinned(node, depth: int = 0) -> dict[str, str]:
    """The currencies an all-group (or a lone condition) pins: `charge.currency equals usd`
    → {"charge": "usd"}."""
    if not isinstance(node, dict) or depth > 8:
        return {}
    if "all" in node:
        out: dict[str, str] = {}
        for item in node["all"] if isinstance(node["all"], list) else []:
            out.update(_pinned(item, depth + 1))
        return out
    ref, value = node.get("ref"), node.get("value")
    if (node.get("op") == "eq" and isinstance(ref, str) and ref.endswith(".currency") and isinstance(value, str)
            and value.strip()):
        return {ref.rsplit(".", 1)[0]: value.strip().lower()}
    return {}


def _cross_currency(tree, root: str, facts: dict[str, str], issues: list[Issue]) -> dict[str, str]:
    """An amount compared in one currency where the conditions around it say another is a
    mistake, not a silent false. Returns the currencies pinned for what runs after `tree`."""
    here = {**facts, **_pinned(tree)}
    _amounts(tree, root, here, issues, depth=0)
    return here


def _amounts(node, path: str, facts: dict[str, str], issues: list[Issue], *, depth: int) -> None:
    if not isinstance(node, dict) or depth > 8:
        return
    for group in ("all", "any"):
        if group in node and isinstance(node[group], list):
            inner = {**facts, **_pinned(node)} if group == "all" else facts
            for i, item in enumerate(node[group]):
                _amounts(item, f"{path}.{i}", inner, issues, depth=depth + 1)
            return
    ref, value = node.get("ref"), node.get("value")
    if not (isinstance(ref, str) and "." in ref and node.get("op") in _COMPARISONS and is_money_value(value)):
        return
    parent = ref.rsplit(".", 1)[0]
    own, currency = facts.get(parent), str(value.get("currency") or "").strip().lower()
    if own and currency and own != currency:
        issues.append(Issue(path, _("%(ref)s is in %(own)s here (the conditions say %(parent)s.currency is %(own)s); "
                                    "it can't be compared with an amount in %(currency)s.")
                            % {"ref": ref, "own": own.upper(), "parent": parent, "currency": currency.upper()}))


# --- steps ---------------------------------------------------------------------------------------


def _steps(steps, scope: Scope, issues: list[Issue], *, depth: int, counter: list[int], path: str,
           facts: dict[str, str], scopes: dict | None) -> None:
    """Check `steps` in order; a fetch widens what the steps after it (here) may refer to."""
    refs, resources = scope.refs, list(scope.resources)
    for index, step in enumerate(steps):
        here = f"{path}.{index}"
        if scopes is not None:
            scopes[here] = Scope(scope.trigger, refs, tuple(resources))
        counter[0] += 1
        if counter[0] > MAX_STEPS:
            if counter[0] == MAX_STEPS + 1:
                issues.append(Issue(here, _("A workflow may have at most %(n)s steps.") % {"n": MAX_STEPS}))
            return
        if not isinstance(step, dict) or len(step) == 0:
            issues.append(Issue(here, _("Step %(n)s is empty.") % {"n": index + 1}))
            continue
        if "fetch" in step:
            name = step["fetch"]
            sources = {f for resource in resources for f in fetchable(resource)}
            if scope.trigger == "ticket:message.received":
                sources |= set(MESSAGE_LINKED)  # the objects assist linked the message to
            if name not in sources:
                issues.append(Issue(here, _("Step %(n)s: there is no %(object)s to fetch from here.")
                                    % {"n": index + 1, "object": str(name)[:40]}))
                continue
            resource = next(r for r in RESOURCES if root_name(r) == name)
            refs = available_with(refs, resource)
            resources.append(resource)
        elif "branch" in step:
            _branch(step["branch"], Scope(scope.trigger, refs, tuple(resources)), issues, index=index, depth=depth,
                    counter=counter, path=f"{here}.branch", facts=facts, scopes=scopes)
        elif "action" in step:
            _action(step, refs, issues, index=index, path=here)
        else:
            issues.append(Issue(here, _("Step %(n)s is not a fetch, a branch or an action.") % {"n": index + 1}))


def available_with(refs: References, resource: str) -> References:
    from .references import fields

    return References({**refs.kinds, **fields(resource)})


def _branch(paths, scope: Scope, issues: list[Issue], *, index: int, depth: int, counter, path: str,
            facts: dict[str, str], scopes: dict | None) -> None:
    step_path = path.rsplit(".", 1)[0]
    if depth >= MAX_BRANCH_DEPTH:
        issues.append(Issue(step_path, _("Branches may be nested at most %(n)s deep.") % {"n": MAX_BRANCH_DEPTH}))
        return
    if not isinstance(paths, list) or not paths:
        issues.append(Issue(step_path, _("Step %(n)s: a branch needs at least one path.") % {"n": index + 1}))
        return
    for position, option in enumerate(paths):
        here = f"{path}.{position}"
        if scopes is not None:
            scopes[here] = scope
        if not isinstance(option, dict):
            issues.append(Issue(here, _("Step %(n)s: a branch holds paths with conditions and steps.")
                                % {"n": index + 1}))
            continue
        inner = facts
        if "else" in option:
            if position != len(paths) - 1:
                issues.append(Issue(here, _("Step %(n)s: “all other cases” must come last; the paths after it would "
                                            "never run.") % {"n": index + 1}))
            body, body_path = option["else"], f"{here}.else"
        else:
            _condition_tree(option.get("if"), scope.refs, f"{here}.if", issues)
            inner = _cross_currency(option.get("if"), f"{here}.if", facts, issues)
            body, body_path = option.get("steps"), f"{here}.steps"
        if not isinstance(body, list) or not body:
            issues.append(Issue(here, _("Step %(n)s: each path of a branch needs at least one step.")
                                % {"n": index + 1}))
            continue
        _steps(body, scope, issues, depth=depth + 1, counter=counter, path=body_path, facts=inner, scopes=scopes)


def _action(step: dict, refs: References, issues: list[Issue], *, index: int, path: str) -> None:
    name, params = step.get("action"), step.get("params") or {}
    if name not in ACTIONS:
        if name in ("", None):
            issues.append(Issue(path, _("Step %(n)s: choose an action.") % {"n": index + 1}))
        else:
            issues.append(Issue(path, _("Step %(n)s: “%(action)s” is not an action a workflow can take.")
                                % {"n": index + 1, "action": str(name)[:40]}))
        return
    if not isinstance(params, dict):
        issues.append(Issue(path, _("Step %(n)s: the action's settings must be an object.") % {"n": index + 1}))
        return
    for required in ACTIONS[name]:
        if params.get(required) in (None, "", []):
            issues.append(Issue(f"{path}.params.{required}", _("Step %(n)s: %(action)s needs “%(field)s”.")
                                % {"n": index + 1, "action": name, "field": required}))
    if name == "notify" and not (params.get("user") or params.get("team")):
        issues.append(Issue(f"{path}.params.team", _("Step %(n)s: say who is notified (a person or a team).")
                            % {"n": index + 1}))
    for key, value in params.items():
        if isinstance(value, str):
            at = f"{path}.params.{key}"
            if len(value) > MAX_TEXT:
                issues.append(Issue(at, _("Step %(n)s: “%(field)s” is too long.") % {"n": index + 1, "field": str(key)[:40]}))
            for ref in _PLACEHOLDER.findall(value):
                if ref not in refs:
                    issues.append(Issue(at, _("Step %(n)s: {{ %(ref)s }} is not available here.")
                                        % {"n": index + 1, "ref": ref[:60]}))
