"""Celery tasks of workflows: thin, by id, idempotent (a run is claimed before it is performed;
a claimed or finished run is left alone), acks_late so a killed worker's task comes back."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from .models import Workflow, WorkflowRun
from .runs import perform_run, schedule_trigger, start_runs

RETRY = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 5, "retry_backoff_max": 600,
         "max_retries": 8, "acks_late": True}
SCHEDULE_GRACE = dt.timedelta(minutes=15)  # a beat that missed a minute still starts the day's run


@shared_task(**RETRY)
def perform_run_task(run_id: int) -> str:
    run = perform_run(run_id)
    return run.status if run is not None else "not claimed"


@shared_task(acks_late=True)
def requeue_stale_runs(older_than_seconds: int = 120) -> int:
    """Runs whose task was lost (the broker down at commit, a worker killed mid-run, a retry
    whose countdown was lost) are queued again; the claim decides who performs them."""
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    ids = list(WorkflowRun.objects.filter(
        Q(status=WorkflowRun.Status.PENDING, created__lt=cutoff)
        | Q(status=WorkflowRun.Status.FAILED, next_attempt_at__lt=cutoff)
        | Q(status=WorkflowRun.Status.RUNNING, claimed_until__lt=now)
    ).order_by("created").values_list("pk", flat=True)[:2000])
    for run_id in ids:
        perform_run_task.delay(run_id)
    return len(ids)


@shared_task(acks_late=True)
def run_schedules(now: str | None = None) -> int:
    """Start today's run of each scheduled workflow whose time (in the shop's time zone) has
    come within the last minutes; the run's event key (the day and time) makes it once a day."""
    at = dt.datetime.fromisoformat(now) if now else timezone.now()
    local = at.astimezone(zoneinfo.ZoneInfo(settings.SHOP_TIME_ZONE))
    started = 0
    for trigger in Workflow.objects.filter(status=Workflow.Status.ACTIVE, trigger__startswith="schedule:") \
            .values_list("trigger", flat=True).distinct():
        hhmm = trigger.partition(":")[2]
        hour, minute = (int(x) for x in hhmm.split(":"))
        due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if due <= local < due + SCHEDULE_GRACE:
            started += len(start_runs(schedule_trigger(due, hhmm)))
    return started
