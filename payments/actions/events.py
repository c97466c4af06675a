"""Every write to the Stripe mirror from Stripe's events, one function per action: apply an
event, announce it once committed, replay, re-sync, fetch a referenced object.

Views, admin actions, management commands and Celery tasks call these; none of them
saves a model directly.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Iterable

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import pgettext_lazy

from audit import actors
from audit.log import record
from audit.models import AuditAction

from .. import queue, stripe_api
from ..errors import EventNotApplicable
from ..events import DELETING_TYPES, event_object, event_object_id, event_object_type, validate_event
from ..mirror import (
    API_SOURCE, KINDS, Candidate, Kind, Version, apply_object, check_shape, kind_of, upsert_fetched, version_for,
)
from ..models import PendingAnnouncement, WebhookEvent
from ..signals import stripe_event_applied
from ..stripe_objects import ref

log = logging.getLogger(__name__)

CLAIMABLE = (WebhookEvent.Status.PENDING, WebhookEvent.Status.FAILED)


def _require(actor, perm: str, doing: str) -> None:
    """A person needs the permission; None is Paydesk itself (a command run by an operator,
    a scheduled job), which may re-apply and re-sync the mirror."""
    actors.require(actor, perm, doing=doing, system=True)


def _api_date(version: str) -> str:
    return (version or "")[:10]


def needs_refetch(payload: dict) -> bool:
    """Thin or partial objects and older API versions are read fresh from the API."""
    obj = event_object(payload)
    if obj is None or not obj.get("id") or not obj.get("object"):
        return True
    event_version = payload.get("api_version") or ""
    return bool(event_version) and _api_date(event_version) < _api_date(settings.STRIPE_API_VERSION)


def retrieve_object(kind: Kind, object_id: str) -> dict:
    return stripe_api.to_dict(stripe_api.resource(kind.resource).retrieve(object_id))


def _tied_events(kind: Kind, current_event: str):
    """The applied events of an object whose version equals the one being applied.

    Only applied events take part: the mirror is then a function of the set of applied
    events, and whichever of a tie is applied last sees all the others (each committed
    its status under the row lock this apply now holds).
    """

    def tied(object_id: str, version: Version) -> list[Candidate]:
        start = dt.datetime.fromtimestamp(version.ts, tz=dt.timezone.utc)
        rows = (
            WebhookEvent.objects.filter(object_id=object_id, created=start, status=WebhookEvent.Status.APPLIED)
            .exclude(id=current_event)
            .values_list("id", "payload")
        )
        refetching = stripe_api.is_configured()
        out = []
        for event_id, payload in rows:
            obj = event_object(payload)
            if not obj or obj.get("object") != kind.object or obj.get("id") != object_id:
                continue
            if refetching and needs_refetch(payload):
                continue  # its state came from the API, under an "api" version
            deleted = payload.get("type") in DELETING_TYPES
            candidate_version = version_for(kind, obj, payload["created"], event_id, payload.get("type") or "", deleted)
            if candidate_version.key() == version.key():
                previous = (payload.get("data") or {}).get("previous_attributes")
                out.append(Candidate(event_id, obj, previous, bool(deleted or obj.get("deleted"))))
        return out

    return tied


def _missing_references(kind: Kind, obj: dict) -> list[tuple[str, str]]:
    """Referenced objects (a dispute's charge ...) that the mirror does not have yet."""
    wanted = [(target, ref(obj.get(field))) for field, target in kind.references]
    missing = []
    for target, object_id in wanted:
        if object_id and not KINDS[target].model.objects.filter(pk=object_id).exists():
            missing.append((target, object_id))
    return missing


def _claim(event_id: str, statuses: tuple[str, ...], *, pending: bool) -> bool:
    """Take the event for this transaction if its status is one of `statuses`, marking it applied
    at once (one write of its wide row: if anything after fails, the rollback undoes the claim
    with the rest); with `pending`, also note that its listeners have yet to hear of it (a narrow
    PendingAnnouncement row, so a lost announcement is found again). One statement."""
    qn = connection.ops.quote_name
    events, marks = qn(WebhookEvent._meta.db_table), qn(PendingAnnouncement._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    placeholders = ", ".join(["%s"] * len(statuses))
    update = (f"UPDATE {events} SET {qn('status')} = %s, {qn('last_error')} = '', {qn('processed_at')} = %s, "
              f"{qn('attempts')} = {qn('attempts')} + 1 WHERE {qn('id')} = %s AND {qn('status')} IN ({placeholders}) "
              f"RETURNING {qn('id')}")
    params = [WebhookEvent.Status.APPLIED, now, event_id, *statuses]
    with connection.cursor() as cursor:
        if pending and connection.vendor == "postgresql":
            cursor.execute(f"WITH claimed AS ({update}) INSERT INTO {marks} ({qn('event_id')}, {qn('created')}, "
                           f"{qn('attempts')}, {qn('last_error')}) SELECT {qn('id')}, %s, 0, '' FROM claimed "
                           f"RETURNING {qn('event_id')}", [*params, now])
            return cursor.fetchone() is not None
        cursor.execute(update, params)
        claimed = cursor.fetchone() is not None
    if claimed and pending:
        PendingAnnouncement.objects.bulk_create([PendingAnnouncement(event_id=event_id, created=timezone.now())],
                                                ignore_conflicts=True)
    return claimed


def apply_event(event_id: str, *, replay: bool = False) -> str:
    """Apply a stored event to the mirror. Returns the event's new status.

    The claim and the apply are one transaction: the claim is a compare-and-swap on the
    event's status, so two workers given the same event apply it once, and a worker that
    dies mid-way rolls back, leaving the event pending for its redelivery.

    Once the first application commits, the event is announced (`announce_event`), whether
    or not it changed the mirror (a late, older event still happened: a dispute was opened);
    a replay of an applied event re-writes the mirror but does not announce it again.
    """
    event = WebhookEvent.objects.filter(pk=event_id).values("payload", "status", "source").first()
    if event is None:
        raise EventNotApplicable(f"no stored event {event_id}")
    claimable = CLAIMABLE + ((WebhookEvent.Status.APPLIED,) if replay else ())
    if event["status"] not in claimable:
        return event["status"]
    payload = event["payload"]
    validate_event(payload)
    obj = event_object(payload)
    kind = KINDS.get(event_object_type(payload))
    if kind is None:
        raise EventNotApplicable(f"event object type {event_object_type(payload)!r} is not mirrored")

    # Network first, outside the transaction: a slow API never holds a row lock.
    version_ts, source_id = payload["created"], event_id
    if needs_refetch(payload):
        object_id = (obj or {}).get("id") or (payload.get("related_object") or {}).get("id")
        if not object_id:
            raise EventNotApplicable("event names no object")
        if stripe_api.is_configured():
            try:
                obj = retrieve_object(kind, object_id)
                version_ts, source_id = stripe_api.now_seconds(), API_SOURCE
            except Exception as exc:
                if stripe_api.is_transient(exc):
                    raise
                if getattr(exc, "http_status", None) == 404 and obj and obj.get("id"):
                    pass  # gone at Stripe (a deleted customer): apply what the event carried
                else:
                    raise EventNotApplicable(f"could not fetch {object_id}: {exc.__class__.__name__}") from exc
        elif obj is None or not obj.get("id"):
            raise EventNotApplicable("thin event and no STRIPE_API_KEY to fetch its object")

    deleted = payload["type"] in DELETING_TYPES
    check_shape(kind, obj)  # a payload that is not Stripe-shaped fails here, naming the field
    version = version_for(kind, obj, version_ts, source_id, payload["type"], deleted)
    previous = (payload.get("data") or {}).get("previous_attributes")
    missing: list[tuple[str, str]] = []
    with transaction.atomic():
        # The claim: a first application takes a pending or failed event; only a replay takes
        # an applied one again. It marks the event applied at once (one write of the event's
        # row): if anything below fails, the transaction rolls the claim back with the rest.
        # The row lock it takes serialises duplicates.
        first = _claim(event_id, CLAIMABLE, pending=True)
        claimed = first or (replay and _claim(event_id, (WebhookEvent.Status.APPLIED,), pending=False))
        if not claimed:
            return WebhookEvent.objects.filter(pk=event_id).values_list("status", flat=True).first() or ""
        written = apply_object(
            kind, obj, version, deleted=deleted, previous=previous, tied_events=_tied_events(kind, event_id))
        if first:
            # Listeners hear of it once this commits, never inside: their failure can't undo it.
            # What the listeners get, as this apply knows it (the mirror holds another event's
            # state when this one lost to a newer one: then it is read after the commit).
            mirrored = {**obj, "deleted": True} if deleted and not obj.get("deleted") else obj
            state = mirrored if written is obj else None
            source = event["source"]
            transaction.on_commit(
                lambda: announce_event(event_id, payload=payload, obj=state, kind=kind, source=source), robust=True)
        if stripe_api.is_configured():
            missing = _missing_references(kind, obj)
        for target, object_id in missing:
            queue.enqueue("payments.tasks.sync_object_task", target, object_id)
    return WebhookEvent.Status.APPLIED


ANNOUNCE_RETRY_SECONDS = (10, 60, 300, 900, 3600)  # then the periodic requeue, and /sync/


def announce_event(event_id: str, *, payload: dict | None = None, obj: dict | None = None, kind: Kind | None = None,
                   source: str = "") -> bool:
    """Send `stripe_event_applied` for a committed, applied event, outside any mirror write.

    The apply passes what it knows; a retry reads the event and the mirrored object again.
    Every listener is called (send_robust); when all took it, the event's PendingAnnouncement
    goes. One listener's error is kept there for a retry of the whole announcement (listeners
    are idempotent), shown on the sync page, and never touches the mirror. True when all took it."""
    if payload is None:
        row = (WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.APPLIED)
               .values("payload", "source").first())
        if row is None:
            return False
        payload, source = row["payload"], row["source"]
    kind = kind or KINDS.get(event_object_type(payload))
    if kind is None:
        return False
    if obj is None:
        mirrored = kind.model.objects.filter(pk=event_object_id(payload)).values_list("data", "deleted").first()
        obj, gone = mirrored if mirrored else (event_object(payload) or {}, payload.get("type") in DELETING_TYPES)
        if gone and not obj.get("deleted"):
            obj = {**obj, "deleted": True}  # Stripe's own mark, for listeners
    try:
        # One commit for the listeners' writes and the end of the pending mark. A listener that
        # writes more than one statement keeps them in its own atomic block (a savepoint here),
        # so a failing one undoes only its own work.
        with transaction.atomic():
            answers = stripe_event_applied.send_robust(sender=__name__, event=payload, obj=obj, kind=kind.object,
                                                       source=source)
            errors = [f"{getattr(receiver, '__qualname__', receiver)}: {exc.__class__.__name__}: {exc}"
                      for receiver, exc in answers if isinstance(exc, Exception)]
            if not errors:
                PendingAnnouncement.objects.filter(event_id=event_id).delete()
    except DatabaseError as exc:  # a listener broke the transaction outside a savepoint: none of it stays
        errors = [f"{exc.__class__.__name__}: {exc}"]
    if not errors:
        return True
    log.warning("listeners of %s failed: %s", event_id, "; ".join(errors)[:500])
    tried = (PendingAnnouncement.objects.filter(event_id=event_id).values_list("attempts", flat=True).first() or 0)
    PendingAnnouncement.objects.filter(event_id=event_id).update(attempts=F("attempts") + 1,
                                                                 last_error="\n".join(errors)[:2000])
    if tried < len(ANNOUNCE_RETRY_SECONDS):
        queue.enqueue("payments.tasks.announce_event_task", event_id, countdown=ANNOUNCE_RETRY_SECONDS[tried])
    return False


def retry_announcements(event_ids: Iterable[str], *, actor) -> int:
    """Announce applied events again whose listeners failed (the sync page's "Retry")."""
    _require(actor, "payments.replay_event", pgettext_lazy("permission", "retry follow-up of Stripe events"))
    ids = list(PendingAnnouncement.objects.filter(event_id__in=list(event_ids)).values_list("event_id", flat=True))
    with transaction.atomic():
        for event_id in ids:
            record(actor=actor, action=AuditAction.STRIPE_EVENT_REANNOUNCE, target=event_id)
            queue.enqueue("payments.tasks.announce_event_task", event_id)
    return len(ids)


def record_event_failure(event_id: str, error: str, *, final: bool) -> None:
    """Note a failed attempt; a final failure parks the event as failed until replayed."""
    WebhookEvent.objects.filter(pk=event_id).exclude(status=WebhookEvent.Status.APPLIED).update(
        status=WebhookEvent.Status.FAILED if final else WebhookEvent.Status.PENDING,
        last_error=error[:2000],
        attempts=F("attempts") + 1,
        processed_at=timezone.now(),
    )


def replay_events(event_ids: Iterable[str], *, actor, enqueue: bool = True) -> int:
    """Re-apply stored events (failed ones, or applied ones after a fix). Audited per event."""
    _require(actor, "payments.replay_event", pgettext_lazy("permission", "replay Stripe events"))
    ids = list(event_ids)
    with transaction.atomic():
        for event_id in ids:
            record(actor=actor, action=AuditAction.STRIPE_EVENT_REPLAY, target=event_id)
            if enqueue:
                queue.enqueue("payments.tasks.apply_event_task", event_id, True)
    if not enqueue:
        for event_id in ids:
            try:
                apply_event(event_id, replay=True)
            except Exception as exc:  # one bad event never stops the replay of the rest
                record_event_failure(event_id, f"{exc.__class__.__name__}: {exc}", final=True)
    return len(ids)


def resync_objects(kind_name: str, object_ids: Iterable[str], *, actor) -> int:
    """Fetch objects from Stripe and write them into the mirror (admin's "re-sync")."""
    _require(actor, "payments.resync_object", pgettext_lazy("permission", "re-sync objects from Stripe"))
    kind = KINDS[kind_name]
    fetched = [retrieve_object(kind, object_id) for object_id in object_ids]
    with transaction.atomic():
        upsert_fetched(fetched, stripe_api.now_seconds())
        for obj in fetched:
            record(actor=actor, action=AuditAction.STRIPE_OBJECT_RESYNC, target=obj["id"], object=kind_name)
    return len(fetched)


def sync_object(kind_name: str, object_id: str) -> bool:
    """Fetch one referenced object the mirror lacks (a dispute's charge). Idempotent."""
    kind = KINDS[kind_name]
    obj = retrieve_object(kind, object_id)
    written = upsert_fetched([obj], stripe_api.now_seconds())
    return bool(written.get(kind.object))


__all__ = [
    "EventNotApplicable",
    "announce_event",
    "apply_event",
    "kind_of",
    "record_event_failure",
    "replay_events",
    "resync_objects",
    "retry_announcements",
    "sync_object",
]
