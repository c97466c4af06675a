"""What a workflow does with one event: the conditions, then each step in order — fetches,
branches, actions — recorded as it goes. `plan_run` evaluates without side effects; live runs
and backtests both go through it (a live run then performs the actions it planned), so what a
backtest shows is what a run would have done.

    plan = plan_run(version.definition, stripe_context(event))
    plan.matched, [(s.path, s.kind, s.status, s.detail) for s in plan.steps]
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable

from django.utils.translation import gettext as _

from common.l10n import format_when
from payments import stripe_words
from payments.money import format_money
from payments.selectors import mirrored

from .conditions import MISSING, ConditionError, evaluate, is_money_field, resolve
from .references import TIME_FIELD, RESOURCES, STRIPE_TRIGGERS, root_name

_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class StepResult:
    path: str  # "1", "2.1.1": step 1 of the first path of step 2's branch
    kind: str  # fetch, branch, action
    status: str  # done (fetch, branch), planned (an action to perform), error
    detail: dict = field(default_factory=dict)
    error: str = ""


@dataclass
class RunPlan:
    matched: bool
    steps: list[StepResult] = field(default_factory=list)
    error: str = ""

    @property
    def actions(self) -> list[StepResult]:
        return [s for s in self.steps if s.kind == "action" and s.status == "planned"]


def stripe_context(event: dict) -> dict:
    """The context a Stripe event starts a run with: its object under the resource's short name,
    and the previous attributes of an *.updated event under "previous"."""
    resource = STRIPE_TRIGGERS.get(event.get("type") or "", "")
    data = event.get("data") or {}
    obj = data.get("object") or {}
    name = root_name(resource or str(obj.get("object") or "object"))
    context = {name: obj, "event": {"id": event.get("id"), "type": event.get("type"), "created": event.get("created")}}
    if isinstance(data.get("previous_attributes"), dict):
        context["previous"] = {name: data["previous_attributes"]}
    return context


def mirror_fetch(resource: str, object_id: str) -> dict | None:
    return mirrored(resource, object_id)


# Stripe's enum values that have words (payments.stripe_words), by reference: the dispute's
# reason, a cancellation's reason and feedback, an invoice's billing reason …
_WORDS_ALIASES = {"subscription.cancellation_details.reason": "subscription.cancellation_reason",
                  "subscription.cancellation_details.feedback": "subscription.cancellation_feedback"}


def _word_key(ref: str) -> str:
    root, _, rest = ref.partition(".")
    return _WORDS_ALIASES.get(ref) or (f"{root}.{rest}" if "." not in rest else "")


def render(text: str, context: dict) -> str:
    """{{ charge.amount }} → "$22.00"; {{ invoice.next_payment_attempt }} → a date in the reader's
    language and zone; {{ charge.id }} → "ch_…"; an unknown reference → ""."""
    def one(match: re.Match) -> str:
        ref = match.group(1)
        value = resolve(ref, context)
        if value is MISSING or value is None:
            return ""
        if is_money_field(ref.rsplit(".", 1)[-1]) and isinstance(value, int) and not isinstance(value, bool):
            parent = resolve(ref.rsplit(".", 1)[0], context)
            currency = parent.get("currency") if isinstance(parent, dict) else None
            if isinstance(currency, str):
                return format_money(value, currency)
        if TIME_FIELD.match(ref.rsplit(".", 1)[-1]) and isinstance(value, int) and not isinstance(value, bool):
            return format_when(dt.datetime.fromtimestamp(value, tz=dt.timezone.utc))  # a Stripe timestamp
        if isinstance(value, str):
            words = _word_key(ref)
            if words and stripe_words.knows(words, value):
                return stripe_words.label(words, value)  # "Product not received", not product_not_received
        return str(value)

    return _PLACEHOLDER.sub(one, text)


def plan_run(definition: dict, context: dict, *, fetch: Callable[[str, str], dict | None] = mirror_fetch) -> RunPlan:
    """Evaluate `definition` for `context` (which it extends with what fetches bring)."""
    conditions = definition.get("conditions")
    if conditions:
        try:
            if not evaluate(conditions, context):
                return RunPlan(matched=False)
        except ConditionError as exc:
            return RunPlan(matched=False, error=str(exc))
    plan = RunPlan(matched=True)
    _run_steps(definition.get("steps") or [], context, plan, prefix="", fetch=fetch)
    return plan


def _run_steps(steps: list, context: dict, plan: RunPlan, *, prefix: str, fetch) -> bool:
    """False when a step failed: the steps after it don't run (a refund after a failed fetch
    would act on the wrong thing)."""
    for index, step in enumerate(steps, start=1):
        path = f"{prefix}{index}"
        if "fetch" in step:
            result = _fetch(step["fetch"], context, path, fetch)
        elif "branch" in step:
            if not _branch(step["branch"], context, plan, path, fetch):
                return False
            continue  # the branch and its chosen path's steps recorded themselves
        else:
            params = step.get("params") or {}
            result = StepResult(path, "action", "planned", {
                "action": step.get("action"),
                "params": {k: render(v, context) if isinstance(v, str) else v for k, v in params.items()},
            })
            # Texts with references as written, for what is filled again in each reader's language.
            template = {k: v for k, v in params.items() if isinstance(v, str) and "{{" in v}
            if template:
                result.detail["template"] = template
        plan.steps.append(result)
        if result.status == "error":
            return False
    return True


def _fetch(name: str, context: dict, path: str, fetch) -> StepResult:
    resource = next((r for r in RESOURCES if root_name(r) == name), "")
    # The object that leads to it: the first in the context with a field of that name.
    for root, obj in context.items():
        key = name if isinstance(obj, dict) and name in obj else f"linked_{name}"  # message.linked_charge
        if root in ("previous", "event") or not isinstance(obj, dict) or key not in obj:
            continue
        value = obj[key]
        if isinstance(value, dict):  # expanded in the event already
            context[name] = value
            return StepResult(path, "fetch", "done", {"object": name, "id": value.get("id")})
        if isinstance(value, str) and value:
            found = fetch(resource, value)
            if found is None:
                return StepResult(path, "fetch", "error", {"object": name, "id": value},
                                  _("%(id)s is not in the mirror yet.") % {"id": value})
            context[name] = found
            return StepResult(path, "fetch", "done", {"object": name, "id": value})
    return StepResult(path, "fetch", "error", {"object": name},
                      _("There is no %(object)s to fetch from here.") % {"object": name})


def _branch(paths: list, context: dict, plan: RunPlan, path: str, fetch) -> bool:
    """Record the path taken (the first whose conditions hold, else "all other cases", else
    none) and run its steps; False when something in it failed."""
    for number, option in enumerate(paths, start=1):
        if "else" in option:
            chosen, steps = "else", option["else"]
        else:
            try:
                if not evaluate(option.get("if") or {"all": []}, context):
                    continue
            except ConditionError as exc:
                plan.steps.append(StepResult(path, "branch", "error", {"path": number}, str(exc)))
                return False
            chosen, steps = number, option.get("steps") or []
        plan.steps.append(StepResult(path, "branch", "done", {"path": chosen}))
        return _run_steps(steps, context, plan, prefix=f"{path}.{number}.", fetch=fetch)
    plan.steps.append(StepResult(path, "branch", "done", {"path": None}))  # no path matched: nothing to do
    return True


def _model_values(instance, root: str) -> dict:
    """A ticket, contact or message as a run sees it, field by field as references.py lists
    them: relations by what people type (a team's slug, a username, tag names), times as Unix
    seconds like Stripe's."""
    from django.db import models as m

    from .references import _model_kinds

    out: dict = {}
    for path in _model_kinds(type(instance), root):
        name = path.split(".", 1)[1]
        field_name = {"text": "body_text"}.get(name, name) if root == "message" else name
        field = type(instance)._meta.get_field(field_name)
        if field.many_to_many:
            out[name] = sorted(str(getattr(o, "name", o)) for o in getattr(instance, field_name).all())
        elif field.is_relation:
            related = getattr(instance, field_name)
            out[name] = (getattr(related, "slug", None) or getattr(related, "username", None) or related.pk) if related else None
        else:
            value = getattr(instance, field_name)
            if isinstance(field, m.DateTimeField):
                value = int(value.timestamp()) if value else None
            out[name] = value
    return out


def ticket_context(ticket, message=None, *, trigger: str = "") -> dict:
    """The context a ticket event starts a run with: `ticket`, its requester as `contact`, and
    for message.received the `message`."""
    context = {"ticket": _model_values(ticket, "ticket"), "contact": _model_values(ticket.requester, "contact"),
               "event": {"type": trigger, "id": f"ticket:{ticket.pk}"}}
    if message is not None:
        context["message"] = {**_model_values(message, "message"), **triage_values(message)}
    return context


def triage_values(message) -> dict:
    """What assist understood of the message (references.TRIAGE_KINDS); empty values when it
    has not read it (assist off, or it failed): conditions on them are then simply false."""
    from tickets.models import MessageTriage

    triage = MessageTriage.objects.filter(message_id=message.pk).first()
    linked = triage.linked if triage is not None else {}
    return {"intent": triage.intent if triage else "", "confidence": triage.confidence if triage else 0.0,
            "language": triage.language if triage else "",
            "intent_runner_up": triage.runner_up if triage else "",
            "linked_charge": linked.get("charge", ""), "linked_subscription": linked.get("subscription", ""),
            "linked_invoice": linked.get("invoice", ""), "linked_refund": linked.get("refund", ""),
            "customer_refunds": _customer_refunds(message)}


def _customer_refunds(message) -> int:
    """Refunds the message's contact has had (every Stripe customer of theirs, in the mirror):
    a rule can tell a first request from a habit."""
    from payments.models import Charge, Refund
    from tickets.models import Identity

    contact = getattr(message.ticket, "requester_id", None)
    customers = Identity.objects.filter(contact_id=contact, kind=Identity.Kind.STRIPE_CUSTOMER).values("value")
    charges = Charge.objects.filter(customer__in=customers).values("id")
    return Refund.objects.filter(charge__in=charges).exclude(status__in=("failed", "canceled")).count()
