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
"""

from __future__ import annotations

import json
import re

from django.utils.translation import gettext as _

from .conditions import validate as validate_conditions
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
    "send_portal_link": (),
}
MAX_STEPS = 100
MAX_BRANCH_DEPTH = 5
MAX_TEXT = 5000
MAX_DEFINITION_BYTES = 200_000
_SCHEDULE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


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
    if not isinstance(definition, dict):
        return [_("A workflow is an object with a trigger and steps.")]
    try:
        size = len(json.dumps(definition))
    except (TypeError, ValueError):
        return [_("A workflow holds only text, numbers, lists and objects.")]
    if size > MAX_DEFINITION_BYTES:
        return [_("This workflow is too large to save.")]
    errors: list[str] = []
    refs = _trigger(definition.get("trigger"), errors)
    if refs is None:
        return errors
    if definition.get("conditions") not in (None, {}):
        errors += validate_conditions(definition["conditions"], refs)
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        errors.append(_("Add at least one step."))
        return errors
    counter = [0]
    _steps(steps, refs, _fetch_roots(definition.get("trigger")), errors, depth=0, counter=counter)
    return errors


def _fetch_roots(trigger) -> list[str]:
    if isinstance(trigger, dict) and trigger.get("stripe") in STRIPE_TRIGGERS:
        return [STRIPE_TRIGGERS[trigger["stripe"]]]
    return []


def _trigger(trigger, errors: list[str]) -> References | None:
    if not isinstance(trigger, dict) or len(trigger) != 1:
        errors.append(_("Choose one trigger: a Stripe event, a ticket event or a schedule."))
        return None
    (kind, value), = trigger.items()
    if kind == "stripe" and value in STRIPE_TRIGGERS:
        return available(value)
    if kind == "ticket" and value in TICKET_TRIGGERS:
        return ticket_references(value)
    if kind == "schedule" and isinstance(value, str) and _SCHEDULE.match(value):
        return References({})
    errors.append(_("“%(trigger)s” is not a trigger Paydesk knows.") % {"trigger": str(value)[:60]})
    return None


def _steps(steps, refs: References, resources: list[str], errors: list[str], *, depth: int, counter: list[int]) -> None:
    """Check `steps` in order; a fetch widens what the steps after it (here) may refer to."""
    refs, resources = References(dict(refs.kinds)), list(resources)
    for index, step in enumerate(steps):
        counter[0] += 1
        if counter[0] > MAX_STEPS:
            if counter[0] == MAX_STEPS + 1:
                errors.append(_("A workflow may have at most %(n)s steps.") % {"n": MAX_STEPS})
            return
        if not isinstance(step, dict) or len(step) == 0:
            errors.append(_("Step %(n)s is empty.") % {"n": index + 1})
            continue
        if "fetch" in step:
            name = step["fetch"]
            sources = {f for resource in resources for f in fetchable(resource)}
            if name not in sources:
                errors.append(_("Step %(n)s: there is no %(object)s to fetch from here.")
                              % {"n": index + 1, "object": str(name)[:40]})
                continue
            resource = next(r for r in RESOURCES if root_name(r) == name)
            refs = available_with(refs, resource)
            resources.append(resource)
        elif "branch" in step:
            _branch(step["branch"], refs, resources, errors, index=index, depth=depth, counter=counter)
        elif "action" in step:
            _action(step, refs, errors, index=index)
        else:
            errors.append(_("Step %(n)s is not a fetch, a branch or an action.") % {"n": index + 1})


def available_with(refs: References, resource: str) -> References:
    from .references import fields

    return References({**refs.kinds, **fields(resource)})


def _branch(paths, refs, resources, errors, *, index: int, depth: int, counter) -> None:
    if depth >= MAX_BRANCH_DEPTH:
        errors.append(_("Branches may be nested at most %(n)s deep.") % {"n": MAX_BRANCH_DEPTH})
        return
    if not isinstance(paths, list) or not paths:
        errors.append(_("Step %(n)s: a branch needs at least one path.") % {"n": index + 1})
        return
    for position, path in enumerate(paths):
        if not isinstance(path, dict):
            errors.append(_("Step %(n)s: a branch holds paths with conditions and steps.") % {"n": index + 1})
            continue
        if "else" in path:
            if position != len(paths) - 1:
                errors.append(_("Step %(n)s: “all other cases” must come last; the paths after it would never run.")
                              % {"n": index + 1})
            body = path["else"]
        else:
            errors += validate_conditions(path.get("if"), refs)
            body = path.get("steps")
        if not isinstance(body, list) or not body:
            errors.append(_("Step %(n)s: each path of a branch needs at least one step.") % {"n": index + 1})
            continue
        _steps(body, refs, resources, errors, depth=depth + 1, counter=counter)


def _action(step: dict, refs: References, errors: list[str], *, index: int) -> None:
    name, params = step.get("action"), step.get("params") or {}
    if name not in ACTIONS:
        errors.append(_("Step %(n)s: “%(action)s” is not an action a workflow can take.")
                      % {"n": index + 1, "action": str(name)[:40]})
        return
    if not isinstance(params, dict):
        errors.append(_("Step %(n)s: the action's settings must be an object.") % {"n": index + 1})
        return
    for required in ACTIONS[name]:
        if params.get(required) in (None, "", []):
            errors.append(_("Step %(n)s: %(action)s needs “%(field)s”.")
                          % {"n": index + 1, "action": name, "field": required})
    if name == "notify" and not (params.get("user") or params.get("team")):
        errors.append(_("Step %(n)s: say who is notified (a person or a team).") % {"n": index + 1})
    for key, value in params.items():
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                errors.append(_("Step %(n)s: “%(field)s” is too long.") % {"n": index + 1, "field": str(key)[:40]})
            for ref in _PLACEHOLDER.findall(value):
                if ref not in refs:
                    errors.append(_("Step %(n)s: {{ %(ref)s }} is not available here.") % {"n": index + 1, "ref": ref[:60]})
