"""Queue this app's Celery tasks by name once the current transaction commits.

By name, so that the actions the tasks call never import the tasks (no import loop); the
app's ready() imports its tasks module, so a name resolves to the task itself (and runs
in-process where tasks are eager: the demo)."""

from celery import signature
from django.db import transaction


def enqueue(task: str, *args, countdown: float | None = None) -> None:
    """Robust: a broker outage must not fail the committed work; the requeue jobs find what
    was left pending."""
    transaction.on_commit(lambda: signature(task, args=args).apply_async(countdown=countdown), robust=True)
