"""This app's Celery tasks, queued by name once the transaction commits (docs/architecture.md)."""

from celery import signature
from django.db import transaction


def enqueue(task: str, *args, countdown: float | None = None) -> None:
    # By name: the actions never import the tasks that call them. Robust: a broker outage
    # must not fail committed work (the requeue jobs find what was left pending).
    transaction.on_commit(lambda: signature(task, args=args).apply_async(countdown=countdown), robust=True)
