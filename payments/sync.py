"""Backfill (everything Stripe has, into the mirror) and reconciliation (events the webhook missed).

Backfill lists each mirrored resource with `limit=100` and the SDK's auto-pagination, upserts
every page of 100 in one statement per type, and checkpoints the last id listed in
SyncCursor("backfill:<object>") in the same transaction, so an interrupted run resumes with
`starting_after=<cursor>` and never counts a page twice. A 429 is waited out for as long as
Stripe's Retry-After says and the listing resumes from the checkpoint; other transient
errors back off. Both are bounded, so a broken account ends the run with an error instead
of spinning.

Reconciliation lists events from the API since the newest one it saw last time (the first
run looks back over Stripe's 30-day retention), stores each once (the webhook's
INSERT ... ON CONFLICT DO NOTHING) and queues the new ones for applying.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

import stripe
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.l10n import format_when

from . import queue, stripe_api
from .events import HANDLED_TYPES, InvalidEvent, store_event, validate_event
from .mirror import KINDS, Kind, upsert_fetched
from .models import SyncCursor, WebhookEvent

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Stripe's maximum
MAX_RATE_LIMIT_WAITS = 10  # consecutive 429s on one listing before it gives up
MAX_TRANSIENT_RETRIES = 5  # consecutive network/5xx errors before it gives up
MAX_BACKOFF_SECONDS = 30.0
RETENTION_SECONDS = 30 * 86400  # Stripe lists events of the last 30 days
# Events can show up in the list a little after their `created`; re-listing a few minutes
# costs nothing because storing is idempotent.
RECONCILE_OVERLAP_SECONDS = 300
RECONCILE_CURSOR = "reconcile"
LEASE_SECONDS = 300  # a backfill that wrote nothing for this long is taken as stopped

# Stripe leaves canceled subscriptions out of the list unless asked.
LIST_PARAMS: dict[str, dict] = {"subscription": {"status": "all"}}


def cursor_name(kind: Kind) -> str:
    return f"backfill:{kind.object}"


def resolve_kinds(names: Iterable[str] | None) -> list[Kind]:
    """Kinds by Stripe object name ("charge"), resource path ("charges") or short name
    ("early_fraud_warning"); all of them, in registry order, when `names` is empty."""
    if not names:
        return list(KINDS.values())
    aliases: dict[str, Kind] = {}
    for kind in KINDS.values():
        for alias in (kind.object, kind.resource, kind.object.rsplit(".", 1)[-1], kind.resource.rsplit(".", 1)[-1]):
            aliases[alias] = kind
    out: list[Kind] = []
    for name in names:
        kind = aliases.get(name.strip().lower())
        if kind is None:
            raise ValueError(f"unknown resource {name!r}; choose from {', '.join(KINDS)}")
        if kind not in out:
            out.append(kind)
    return out


class _Retry:
    """How long to wait after a failed list request, or re-raise when it is not worth retrying."""

    def __init__(self) -> None:
        self.rate_limited = 0  # totals, reported
        self.transient = 0
        self._rate_streak = 0
        self._transient_streak = 0

    def succeeded(self) -> None:
        self._rate_streak = self._transient_streak = 0

    def wait_after(self, exc: Exception) -> float:
        if isinstance(exc, stripe.RateLimitError):
            self._rate_streak += 1
            if self._rate_streak > MAX_RATE_LIMIT_WAITS:
                raise exc
            self.rate_limited += 1
            return stripe_api.retry_after_seconds(exc, default=1.0)
        if stripe_api.is_transient(exc):
            self._transient_streak += 1
            if self._transient_streak > MAX_TRANSIENT_RETRIES:
                raise exc
            self.transient += 1
            return min(2.0 ** (self._transient_streak - 1), MAX_BACKOFF_SECONDS)
        raise exc


def _pages(
    resource: str, params: dict, starting_after: str, retry: _Retry, on_wait: Callable[[], None] | None = None
) -> Iterator[list[dict]]:
    """Lists of up to PAGE_SIZE objects, in Stripe's order.

    The buffer fills from one API page at a time, so a page handed out is a page
    listed; after an error the listing starts again after the last page handed out.
    """
    after = starting_after
    while True:
        query = {**params, "limit": PAGE_SIZE}
        if after:
            query["starting_after"] = after
        buffer: list[dict] = []
        try:
            for obj in stripe_api.resource(resource).list(query).auto_paging_iter():
                buffer.append(stripe_api.to_dict(obj))
                if len(buffer) == PAGE_SIZE:
                    page, buffer = buffer, []
                    after = page[-1]["id"]
                    retry.succeeded()
                    yield page
            if buffer:
                retry.succeeded()
                yield buffer
            return
        except stripe.StripeError as exc:
            wait = retry.wait_after(exc)
            log.info("listing %s after %s: %s; again in %.1fs", resource, after or "start", exc.__class__.__name__, wait)
            if on_wait:
                on_wait()
            time.sleep(wait)


def _error_text(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:500]}"


# --- backfill ----------------------------------------------------------------------------


@dataclass
class BackfillResult:
    resource: str  # Stripe object name
    count: int = 0  # objects listed by this run
    total: int = 0  # objects listed since the run started, resumed parts included
    pages: int = 0
    seconds: float = 0.0
    rate_limited: int = 0  # 429s waited out
    retries: int = 0  # other transient errors retried
    resumed_from: str = ""  # the checkpoint this run started after
    skipped: str = ""  # why the resource was not listed (not available at this server)
    error: str = ""
    last_page: int = field(default=0, repr=False)  # size of the page just written, for progress

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "skipped" if self.skipped else "ok"

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("last_page")
        out["seconds"] = round(self.seconds, 3)
        out["rate"] = round(self.rate, 1)
        out["status"] = self.status
        return out


# progress(stage, result): stage is "start", "page" (result.last_page objects were just
# written) or "done".
Progress = Callable[[str, BackfillResult], None]


class BackfillRunning(Exception):
    """Another run is listing this resource right now."""


def _start_cursor(kind: Kind, since: int | None) -> SyncCursor:
    """The checkpoint to resume from, or a fresh one when the last run finished or listed a
    different time range.

    A run that is still writing pages holds the resource: a second run (the command
    beside the task, or the broker redelivering a long task after its visibility timeout)
    would list everything twice. A run that stopped left an error or went quiet, and is
    resumed.
    """
    now = timezone.now()
    with transaction.atomic():
        cursor, created = SyncCursor.objects.select_for_update().get_or_create(name=cursor_name(kind))
        live = (
            not created
            and cursor.finished_at is None
            and not cursor.last_error
            and cursor.updated_at > now - dt.timedelta(seconds=LEASE_SECONDS)
        )
        if live:
            raise BackfillRunning(f"another backfill of {kind.object} wrote a page at {cursor.updated_at:%H:%M:%S}")
        resumable = bool(cursor.cursor) and cursor.finished_at is None and cursor.since == since
        if not resumable:
            cursor.cursor, cursor.count, cursor.since, cursor.started_at = "", 0, since, now
        cursor.finished_at = None
        cursor.last_error = ""
        cursor.save()
    return cursor


def backfill_resource(kind: Kind, *, since: int | None = None, progress: Progress | None = None) -> BackfillResult:
    notify = progress or (lambda stage, result: None)
    try:
        cursor = _start_cursor(kind, since)
    except BackfillRunning as exc:
        result = BackfillResult(resource=kind.object, skipped=str(exc))
        notify("start", result)
        notify("done", result)
        return result
    result = BackfillResult(resource=kind.object, resumed_from=cursor.cursor, total=cursor.count)
    params = dict(LIST_PARAMS.get(kind.object, {}))
    if since is not None:
        # created[gt] since-1 is created[gte] since in whole seconds; localstripe knows only gt.
        params["created"] = {"gt": since - 1}
    retry = _Retry()
    started = time.monotonic()
    notify("start", result)
    try:
        def heartbeat() -> None:  # waiting out a 429 is still a live run
            SyncCursor.objects.filter(name=cursor.name).update(updated_at=timezone.now())

        for page in _pages(kind.resource, params, cursor.cursor, retry, heartbeat):
            with transaction.atomic():
                upsert_fetched(page, stripe_api.now_seconds())
                SyncCursor.objects.filter(name=cursor.name).update(
                    cursor=page[-1]["id"], count=F("count") + len(page), updated_at=timezone.now()
                )
            result.count += len(page)
            result.total += len(page)
            result.pages += 1
            result.last_page = len(page)
            result.seconds = time.monotonic() - started
            notify("page", result)
    except stripe.StripeError as exc:
        if getattr(exc, "http_status", None) == 404 and result.pages == 0:
            # localstripe has no disputes, prices or early fraud warnings; an account may
            # lack a product (Radar). The run goes on with the other resources.
            result.skipped = f"not available at this Stripe server (404 on {kind.resource} list)"
            SyncCursor.objects.filter(name=cursor.name).update(
                finished_at=timezone.now(), last_error=f"skipped: {result.skipped}"
            )
        else:
            result.error = _error_text(exc)
            log.warning("backfill of %s stopped: %s", kind.object, result.error)
            SyncCursor.objects.filter(name=cursor.name).update(last_error=result.error)
    except BaseException as exc:
        # Whatever stopped us (the database, Ctrl-C, a failing progress callback), the
        # checkpoint of the last written page stands; note why, then let it propagate.
        SyncCursor.objects.filter(name=cursor.name).update(last_error=_error_text(exc))
        raise
    else:
        SyncCursor.objects.filter(name=cursor.name).update(
            cursor="", count=result.total, finished_at=timezone.now(), last_error=""
        )
    finally:
        result.seconds = time.monotonic() - started
        result.rate_limited, result.retries = retry.rate_limited, retry.transient
    notify("done", result)
    return result


def backfill(
    resources: Iterable[str] | None = None, since: int | None = None, progress: Progress | None = None
) -> dict[str, BackfillResult]:
    """List every mirrored resource (or the named ones) into the mirror; one result each.

    A resource that fails is reported and the others still run.
    """
    kinds = resolve_kinds(resources)
    return {kind.object: backfill_resource(kind, since=since, progress=progress) for kind in kinds}


# --- reconciliation ------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    since: int  # created[gte] of the listing
    listed: int = 0
    new: int = 0  # stored now: the webhook never delivered them
    existing: int = 0  # already stored
    unhandled: int = 0  # types the mirror does not keep; not stored
    invalid: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


def reconcile() -> ReconcileResult:
    """Store and queue the events of the last 30 days that the webhook never delivered.

    The window starts a little before the newest event seen by the previous complete run;
    it moves forward only when a listing completes, so a failed run is simply repeated.
    """
    now = stripe_api.now_seconds()
    floor = now - RETENTION_SECONDS
    with transaction.atomic():
        cursor, _ = SyncCursor.objects.select_for_update().get_or_create(name=RECONCILE_CURSOR)
        since = max(floor, cursor.since - RECONCILE_OVERLAP_SECONDS) if cursor.since else floor
        SyncCursor.objects.filter(name=RECONCILE_CURSOR).update(started_at=timezone.now(), finished_at=None)
    result = ReconcileResult(since=since)
    newest = cursor.since or 0
    retry = _Retry()
    started = time.monotonic()
    try:
        for page in _pages("events", {"created": {"gte": since}}, "", retry):
            with transaction.atomic():
                for payload in page:
                    result.listed += 1
                    try:
                        validate_event(payload)
                    except InvalidEvent as exc:
                        result.invalid += 1
                        log.warning("reconcile skipped an invalid event %s: %s", payload.get("id"), exc)
                        continue
                    newest = max(newest, payload["created"])
                    if payload["type"] not in HANDLED_TYPES:
                        result.unhandled += 1
                        continue
                    inserted, status = store_event(payload, source=WebhookEvent.Source.RECONCILE)
                    if not inserted:
                        result.existing += 1
                        continue
                    result.new += 1
                    if status == WebhookEvent.Status.PENDING:
                        # A broker hiccup must not fail the run: the event is stored pending,
                        # and requeue_stale_events queues it again.
                        queue.enqueue("payments.tasks.apply_event_task", payload["id"])
    except Exception as exc:
        SyncCursor.objects.filter(name=RECONCILE_CURSOR).update(last_error=_error_text(exc))
        raise
    result.seconds = time.monotonic() - started
    SyncCursor.objects.filter(name=RECONCILE_CURSOR).update(
        since=newest or None, count=result.new, finished_at=timezone.now(), last_error=""
    )
    log.info("reconcile: %s", result.as_dict())
    return result


def parse_day(value: str) -> int:
    """YYYY-MM-DD (UTC midnight) or an ISO datetime, as epoch seconds."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO datetime") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


def format_ts(seconds: int) -> str:
    """A Stripe time stamp for the operator, in UTC and the active language (common.l10n): "Dec 3, 2026, 9:48 AM UTC"."""
    return f"{format_when(dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc), tz=dt.timezone.utc)} UTC"
