"""Celery tasks: thin wrappers that take ids, call an action, and retry transient errors."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from . import stripe_api
from .actions.events import announce_event, apply_event, record_event_failure, sync_object
from .errors import EventNotApplicable
from .sync import backfill, reconcile
from .models import PendingAnnouncement, WebhookEvent

log = logging.getLogger(__name__)

DB_TRANSIENT = (OperationalError, InterfaceError)


def _backoff(retries: int) -> int:
    return min(2 ** retries * 5, 600)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def apply_event_task(self, event_id: str, replay: bool = False, source: str | None = None):
    # `source` is no longer read (the stored event knows it); kept for tasks already queued.
    try:
        return apply_event(event_id, replay=replay)
    except EventNotApplicable as exc:
        record_event_failure(event_id, str(exc), final=True)
        return WebhookEvent.Status.FAILED
    except Exception as exc:
        transient = isinstance(exc, DB_TRANSIENT) or stripe_api.is_transient(exc)
        final = not transient or self.request.retries >= settings.STRIPE_APPLY_MAX_RETRIES
        error = f"{exc.__class__.__name__}: {exc}"
        try:
            record_event_failure(event_id, error, final=final)
        except DatabaseError:
            log.warning("could not record failure of %s", event_id)
        if final:
            # A poison event is parked as failed; the worker moves on to the next one.
            log.warning("event %s failed: %s", event_id, error)
            return WebhookEvent.Status.FAILED
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=5)
def sync_object_task(self, kind_name: str, object_id: str):
    try:
        return sync_object(kind_name, object_id)
    except Exception as exc:
        if stripe_api.is_transient(exc) or isinstance(exc, DB_TRANSIENT):
            raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
        log.warning("could not sync %s %s: %s", kind_name, object_id, exc.__class__.__name__)
        return False


@shared_task(acks_late=True)
def announce_event_task(event_id: str) -> bool:
    """Tell the listeners again of an applied event (announce_event keeps the error and queues
    the next try itself)."""
    return announce_event(event_id)


@shared_task(acks_late=True)
def requeue_stale_events(older_than_seconds: int = 120) -> int:
    """Pending events whose enqueue was lost (the broker was down at commit) get queued again,
    and so do applied events whose announcement was lost (a worker died after the commit)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:5000]
    )
    for event_id in ids:
        apply_event_task.delay(event_id)
    # Those with an error are on their own retry schedule (or given up on, shown on /sync/).
    unannounced = list(
        PendingAnnouncement.objects.filter(last_error="", created__lt=cutoff)
        .order_by("created").values_list("event_id", flat=True)[:5000]
    )
    for event_id in unannounced:
        announce_event_task.delay(event_id)
    return len(ids) + len(unannounced)


@shared_task(bind=True, acks_late=True, max_retries=3)
def reconcile_events(self) -> dict:
    if not stripe_api.is_configured():
        return {"skipped": "no STRIPE_API_KEY"}
    try:
        return reconcile().as_dict()
    except Exception as exc:
        if stripe_api.is_transient(exc):
            raise self.retry(exc=exc, countdown=stripe_api.retry_after_seconds(exc, 30))
        raise


@shared_task(acks_late=True)
def backfill_task(resources: list[str] | None = None, since: int | None = None) -> dict:
    return {name: r.as_dict() for name, r in backfill(resources, since=since).items()}
