"""Test against history: run a draft against the stored events of the last N days with no side
effects, through the same plan_run a live run uses, and say per event whether it matched, which
branch it took and what each action would have done, with totals.

    report = backtest(definition, days=30)
    report.matched, report.totals["refund"], report.refunds  # {"usd": 2400, "jpy": 3000}
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from payments.selectors import mirrored, stored_events
from payments.stripe_objects import refundable

from .conditions import minor_units
from .definition import validate_definition
from .engine import StepResult, plan_run, stripe_context

MAX_LISTED = 500  # events listed one by one; the totals count them all


@dataclass
class EventOutcome:
    event_id: str
    created: int | None
    matched: bool
    steps: list[StepResult]
    error: str = ""


@dataclass
class BacktestReport:
    events: int = 0
    matched: int = 0
    failed: int = 0  # runs that stopped on an error (a missing object, a cross-currency comparison)
    totals: Counter = field(default_factory=Counter)  # planned actions by name
    refunds: Counter = field(default_factory=Counter)  # refunded minor units by currency
    refunds_of_unknown_amount: int = 0
    outcomes: list[EventOutcome] = field(default_factory=list)  # the first MAX_LISTED matched or failed

    @property
    def tickets(self) -> int:
        return self.totals["create_ticket"]

    @property
    def notifications(self) -> int:
        return self.totals["notify"]


class BacktestError(Exception):
    pass


def _refund_amount(step: StepResult, context: dict) -> tuple[int, str] | None:
    """What a planned refund would refund: the amount it names, else what the charge has left."""
    amount = step.detail["params"].get("amount")
    if isinstance(amount, dict):
        try:
            return minor_units(amount)
        except ValueError:
            return None
    charge = context.get("charge")
    if isinstance(charge, dict) and isinstance(charge.get("currency"), str):
        return refundable(charge), charge["currency"].lower()
    return None


def backtest(definition: dict, *, days: int = 30, until: dt.datetime | None = None) -> BacktestReport:
    """Every stored event of the definition's trigger (a Stripe event, or a ticket event from the
    tickets and messages kept) in the last `days` days."""
    errors = validate_definition(definition)
    if errors:
        raise BacktestError("; ".join(errors))
    trigger = definition.get("trigger") or {}
    if not (trigger.get("stripe") or trigger.get("ticket")):
        raise BacktestError(_("A scheduled workflow has no past events to be tested against."))
    until = until or timezone.now()
    since = until - dt.timedelta(days=max(1, min(int(days), 3660)))
    memo: dict[tuple[str, str], dict | None] = {}  # an object fetched once for all events

    def fetch(resource: str, object_id: str) -> dict | None:
        key = (resource, object_id)
        if key not in memo:
            memo[key] = mirrored(resource, object_id)
        return memo[key]

    report = BacktestReport()
    for event_id, created, context in _events(trigger, since, until):
        report.events += 1
        plan = plan_run(definition, context, fetch=fetch)
        failed = bool(plan.error) or any(s.status == "error" for s in plan.steps)
        if plan.matched:
            report.matched += 1
        if failed:
            report.failed += 1
        for step in plan.actions:
            report.totals[step.detail["action"]] += 1
            if step.detail["action"] == "refund":
                refund = _refund_amount(step, context)
                if refund is None:
                    report.refunds_of_unknown_amount += 1
                else:
                    report.refunds[refund[1]] += refund[0]
        if (plan.matched or failed) and len(report.outcomes) < MAX_LISTED:
            error = plan.error or next((s.error for s in plan.steps if s.status == "error"), "")
            report.outcomes.append(EventOutcome(event_id, created, plan.matched, plan.steps, error))
    return report


def _events(trigger: dict, since, until):
    """(event id, Unix time, context) of each stored event of the trigger, oldest first."""
    if trigger.get("stripe"):
        for payload in stored_events(trigger["stripe"], since=since, until=until):
            yield payload.get("id"), payload.get("created"), stripe_context(payload)
        return
    from .selectors import ticket_events

    yield from ticket_events(trigger["ticket"], since=since, until=until)
