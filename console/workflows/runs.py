"""Live runs: an event finds the active workflows for its trigger, each gets one run, and the
run performs what `engine.plan_run` planned, step by step, as the workflows service user.

    start_runs(stripe_trigger(event))       # after the event is applied and committed
    perform_run(run_id)                     # in Celery (tasks.perform_run_task)

Exactly once: a run is unique per (version, triggering event), so a redelivered, replayed or
retried event finds the run that exists. The plan is stored on the run before anything is
done; a retry performs only the steps not yet done, each in its own transaction with the
record that it was done, and each Stripe write carries an idempotency key made of the run and
the step — a retried refund step refunds once, even when the worker died after Stripe
answered. A run started while another run performs (a ticket it created, a note it added)
is one level deeper; past MAX_DEPTH, or when one workflow keeps acting on one object, the run
is stopped as a loop.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.log import record
from audit.models import AuditAction

from . import performers
from .engine import plan_run, stripe_context, ticket_context
from .models import WorkflowRun
from .references import STRIPE_TRIGGERS

log = logging.getLogger(__name__)

MAX_DEPTH = 4  # a run started by a run started by … : deeper than this is a loop
LOOP_LIMIT = 5  # runs of one workflow on one object …
LOOP_WINDOW = dt.timedelta(minutes=10)  # … within this: a loop through Stripe (refund → charge.refunded → …)
LEASE = dt.timedelta(minutes=5)  # a claimed run whose worker died is claimed again after this
MAX_ATTEMPTS = 6
BACKOFF = (10, 60, 300, 900, 3600)  # seconds before attempt 2, 3, …

S = WorkflowRun.Status


@dataclass
class Trigger:
    """What happened, as the runs it starts need it."""

    key: str  # the workflows' trigger: "stripe:charge.refunded", "ticket:ticket.created"
    event_key: str  # the event, unique per trigger: "stripe:evt_…", "ticket.created:12"
    context: dict
    object_key: str = ""
    contact_id: int | None = None
    ticket_id: int | None = None
    customer_id: str = ""


@dataclass
class _Scope:
    run_id: int
    depth: int
    touched: list = field(default_factory=list)


_current: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("workflow_run", default=None)


def current_run_id() -> int | None:
    scope = _current.get()
    return scope.run_id if scope else None


# --- what triggers ---------------------------------------------------------------------------------


def _customer_of(obj: dict) -> str:
    if obj.get("object") == "customer":
        return str(obj.get("id") or "")
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if isinstance(customer, str) and customer:
        return customer
    charge = obj.get("charge")  # a fraud warning, a dispute, a refund: the charge knows the customer
    if isinstance(charge, dict):
        return _customer_of(charge)
    if isinstance(charge, str) and charge:
        from payments.selectors import mirrored

        found = mirrored("charge", charge)
        return _customer_of(found) if found else ""
    return ""


def _contact_of(customer_id: str) -> int | None:
    if not customer_id:
        return None
    from tickets.models import Identity

    return (Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id)
            .values_list("contact_id", flat=True).first())


def stripe_trigger(event: dict) -> Trigger | None:
    event_type = event.get("type") or ""
    if event_type not in STRIPE_TRIGGERS or not event.get("id"):
        return None
    context = stripe_context(event)
    obj = (event.get("data") or {}).get("object") or {}
    customer = _customer_of(obj)
    return Trigger(key=f"stripe:{event_type}", event_key=f"stripe:{event['id']}", context=context,
                   object_key=str(obj.get("id") or "")[:200], customer_id=customer[:100],
                   contact_id=_contact_of(customer))


def ticket_trigger(name: str, ticket, message=None) -> Trigger:
    """name: ticket.created, message.received, ticket.solved."""
    source = f"{name}:{message.pk if message is not None else ticket.pk}"
    if name == "ticket.solved":  # solved, reopened and solved again is a second event
        source = f"{source}:{int(ticket.solved_at.timestamp()) if ticket.solved_at else 0}"
    return Trigger(key=f"ticket:{name}", event_key=source, context=ticket_context(ticket, message, trigger=name),
                   object_key=f"ticket:{ticket.pk}", contact_id=ticket.requester_id, ticket_id=ticket.pk)


def schedule_trigger(at: dt.datetime, hhmm: str) -> Trigger:
    day = at.date().isoformat()
    return Trigger(key=f"schedule:{hhmm}", event_key=f"schedule:{day}T{hhmm}",
                   context={"event": {"type": "schedule", "id": f"{day}T{hhmm}", "created": int(at.timestamp())}},
                   object_key=f"schedule:{hhmm}")


# --- starting runs -----------------------------------------------------------------------------------


def _loop_reason(workflow_id: int, object_key: str, depth: int) -> str:
    if depth > MAX_DEPTH:
        return _("Stopped: workflows started one another %(n)s times in a row (a loop).") % {"n": depth}
    if object_key:
        recent = WorkflowRun.objects.filter(workflow_id=workflow_id, object_key=object_key,
                                            created__gte=timezone.now() - LOOP_WINDOW).count()
        if recent >= LOOP_LIMIT:
            return _("Stopped: this workflow already ran %(n)s times on %(object)s in the last minutes (a loop).") % {
                "n": recent, "object": object_key}
    return ""


def start_runs(trigger: Trigger | None) -> list[int]:
    """One run per matching active workflow; each is performed in Celery after commit. The
    same event again finds its runs and starts nothing."""
    if trigger is None:
        return []
    from . import index

    parent = _current.get()
    depth = parent.depth + 1 if parent else 0
    started: list[int] = []
    for candidate in index.matching(trigger.key, trigger.context):
        stop = _loop_reason(candidate.workflow_id, trigger.object_key, depth)
        status = S.STOPPED if stop else (S.FAILED if candidate.error else S.PENDING)
        defaults = dict(
            workflow_id=candidate.workflow_id, trigger=trigger.key, object_key=trigger.object_key, status=status,
            depth=depth, parent_id=parent.run_id if parent else None, contact_id=trigger.contact_id,
            ticket_id=trigger.ticket_id, customer_id=trigger.customer_id, context=trigger.context,
            error=stop or candidate.error or "", finished=timezone.now() if status != S.PENDING else None,
        )
        try:
            with transaction.atomic():
                run, created = WorkflowRun.objects.get_or_create(version_id=candidate.version_id,
                                                                 event_key=trigger.event_key, defaults=defaults)
        except IntegrityError:  # the same event, at the same moment, in another worker
            continue
        if created and status == S.PENDING:
            started.append(run.pk)
            _enqueue(run.pk)  # after commit
    return started


def _enqueue(run_id: int, countdown: int | None = None) -> None:
    from console import queue

    queue.enqueue("console.workflows.tasks.perform_run_task", run_id, countdown=countdown)


# --- performing a run ---------------------------------------------------------------------------------


class TransientFailure(Exception):
    """A step that may succeed later (Stripe unreachable, a lock held): the run is retried."""

    def __init__(self, message: str, countdown: int):
        super().__init__(message)
        self.countdown = countdown


def _claim(run_id: int) -> bool:
    now = timezone.now()
    due = Q(status__in=[S.PENDING, S.FAILED]) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    stale = Q(status=S.RUNNING, claimed_until__lt=now)  # its worker died
    return bool(WorkflowRun.objects.filter(Q(pk=run_id) & (due | stale)).update(
        status=S.RUNNING, claimed_until=now + LEASE, attempts=F("attempts") + 1, next_attempt_at=None))


def _save(run: WorkflowRun, **fields) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    WorkflowRun.objects.filter(pk=run.pk).update(**fields)


def _plan(run: WorkflowRun) -> tuple[list[dict], dict]:
    context = dict(run.context)  # plan_run adds what fetch steps bring
    plan = plan_run(run.version.definition, context)
    steps = []
    for step in plan.steps:
        entry = {"path": step.path, "kind": step.kind, "status": step.status, "detail": step.detail,
                 "error": step.error}
        if step.kind == "action" and step.status == "planned":
            entry["inputs"] = performers.inputs(step.detail.get("action"), step.detail.get("params") or {},
                                                context=context)
        steps.append(entry)
    if plan.error:
        steps.append({"path": "", "kind": "conditions", "status": "error", "detail": {}, "error": plan.error})
    return steps, context


def perform_run(run_id: int) -> WorkflowRun | None:
    """Claim the run, plan it (first attempt), perform what is not yet done. None when another
    worker has it or it is finished."""
    if not _claim(run_id):
        return None
    run = WorkflowRun.objects.select_related("version", "workflow").get(pk=run_id)
    scope = _Scope(run.pk, run.depth)
    token = _current.set(scope)
    try:
        if not run.steps:
            steps, context = _plan(run)
            _save(run, steps=steps, context=context)
            if any(s["status"] == "error" for s in steps):
                failed = next(s for s in steps if s["status"] == "error")
                _finish(run, S.FAILED, failed["error"])
                return run
        for index, step in enumerate(run.steps):
            if step["kind"] == "action" and step["status"] in ("planned", "failed"):
                _perform_step(run, index)
        failed = [s for s in run.steps if s["status"] == "failed"]
        _finish(run, S.FAILED if failed else S.SUCCEEDED, failed[0].get("error", "") if failed else "")
    except TransientFailure as exc:
        countdown = BACKOFF[min(run.attempts - 1, len(BACKOFF) - 1)]
        if run.attempts >= MAX_ATTEMPTS:
            _finish(run, S.FAILED, str(exc))
        else:
            _save(run, status=S.FAILED, error=str(exc), claimed_until=None,
                  next_attempt_at=timezone.now() + dt.timedelta(seconds=countdown))
            _enqueue(run.pk, countdown=countdown)
    finally:
        _current.reset(token)
    return run


def _finish(run: WorkflowRun, status: str, error: str = "") -> None:
    _save(run, status=status, error=error[:2000], finished=timezone.now(), claimed_until=None, next_attempt_at=None)
    transaction.on_commit(lambda: _announce(run.pk))


def _announce(run_id: int) -> None:
    """The run's line on the customer's timeline (and so on its ticket's)."""
    from console import timeline

    run = WorkflowRun.objects.select_related("workflow").filter(pk=run_id).first()
    if run is not None:
        timeline.upsert(timeline.workflow_run_entries(run))


def _perform_step(run: WorkflowRun, index: int) -> None:
    step = dict(run.steps[index])
    started = time.monotonic()
    try:
        with transaction.atomic():
            output = performers.perform(run, step, state=_state(run, index))
            step.update(status="done", output=output, error="")
            _record_step(run, index, step, started)
            if run.ticket_id is None and isinstance(output.get("ticket"), int):
                _save(run, ticket_id=output["ticket"])  # the ticket it opened shows the run
    except performers.Refused as exc:  # Stripe or the rules said no: recorded, the run goes on
        step.update(status="skipped", error=str(exc)[:1000])
        _record_step(run, index, step, started)
    except (performers.Transient, OperationalError, InterfaceError) as exc:
        step.update(status="failed", error=str(exc)[:1000] or exc.__class__.__name__)
        _record_step(run, index, step, started)
        raise TransientFailure(step["error"], 0) from exc
    except Exception as exc:  # noqa: BLE001  (a bug or a broken setting: kept on the run, retried from the UI)
        log.exception("workflow run %s step %s failed", run.pk, step.get("path"))
        step.update(status="failed", error=str(exc)[:1000] or exc.__class__.__name__)
        _record_step(run, index, step, started)


def _record_step(run: WorkflowRun, index: int, step: dict, started: float) -> None:
    step["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    steps = list(run.steps)
    steps[index] = step
    _save(run, steps=steps)


def _state(run: WorkflowRun, index: int) -> dict:
    """What earlier steps of this run made that later ones act on: the ticket a create_ticket
    step opened becomes the ticket that tag/assign/note steps after it touch."""
    ticket_id = run.ticket_id
    for step in run.steps[:index]:
        out = step.get("output") or {}
        if step.get("status") == "done" and out.get("ticket"):
            ticket_id = out["ticket"]
    return {"ticket": ticket_id, "contact": run.contact_id, "customer": run.customer_id}


# --- from the UI -----------------------------------------------------------------------------------


def retry_run(*, actor, run: WorkflowRun | int) -> WorkflowRun:
    """A failed run again, from the step that failed (what was done stays done)."""
    from audit.actors import require
    from django.utils.translation import pgettext_lazy

    require(actor, "workflows.change_workflow", doing=pgettext_lazy("permission", "retry workflow runs"))
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=getattr(run, "pk", run))
        if run.status != S.FAILED:
            return run
        _save(run, status=S.PENDING, next_attempt_at=None, attempts=0, error="")
        record(actor=actor, action=AuditAction.WORKFLOW_RUN_RETRY, target=f"workflow:{run.workflow_id}", run=run.pk)
        _enqueue(run.pk)
    return run
