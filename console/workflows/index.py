"""Which active workflows an event starts: the workflows whose trigger is the event's and whose
conditions hold for it.

    for candidate in index.matching("stripe:charge.dispute.created", stripe_context(event)):
        candidate.workflow_id, candidate.version, candidate.error   # error: why its conditions failed

The active workflows of a trigger are read through the `Workflow.trigger` index and kept in
this process, their conditions compiled once per version (conditions.compile_condition), so an
event costs one cache read and the conditions, not a query. What was loaded is dropped when
the generation changes: a number in the shared cache (Redis in production) that
`bump_generation()` moves on after each activation or deactivation commits. Every call reads
it, so the first event after the commit sees the change, in every process. That read is one
Redis GET on a kept client (Django's cache.get makes a client per call and costs three times
as much), and more than half of what matching costs (bench/workflows.py prints both). Reading
it only every N ms would be cheaper, and wrong for N ms after each change. If the cache
can't be read, the database is asked on every call: a slower answer, never a stale one. Loaded
lists are also dropped after MAX_AGE seconds, should a bump ever be lost (a process killed
between its commit and the bump).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.translation import gettext as _

from .conditions import ConditionError, compile_condition, evaluate
from .models import Workflow

log = logging.getLogger(__name__)

GENERATION_KEY = "workflows:index:generation"
MAX_AGE = 300.0  # seconds a loaded list is trusted without a bump (a safety net, not the mechanism)


@dataclass(frozen=True)
class Candidate:
    """An active workflow for the event. `error` is set when its conditions could not be
    evaluated (a comparison across currencies): the run records why instead of running.
    `definition` is shared with the index: read it, don't change it."""

    workflow_id: int
    version_id: int
    version: int
    definition: dict
    error: str = ""


@dataclass(frozen=True)
class _Entry:
    workflow_id: int
    version_id: int
    version: int
    definition: dict
    test: Callable[[dict], bool] | None  # None: no conditions, every event of the trigger
    matched: Candidate  # the answer when its conditions hold (frozen: one for every event)

    def failed(self, error: str) -> Candidate:
        return Candidate(self.workflow_id, self.version_id, self.version, self.definition, error)


@dataclass(frozen=True)
class _Loaded:
    generation: int
    at: float  # time.monotonic() when loaded
    entries: tuple[_Entry, ...]


# trigger key → what was loaded for it. Replaced whole, never changed in place, so threads
# reading it need no lock (two may load the same trigger at once; either answer is current).
_loaded: dict[str, _Loaded] = {}


# --- the generation -----------------------------------------------------------------------------


def _fresh() -> int:
    # A starting value no earlier generation had (nanoseconds since 1970, far above any count
    # of bumps), so a cache that was flushed or evicted the key never repeats an old number.
    return time.time_ns()


_redis: list = []  # [the client that reads the generation] once made; [None]: not Redis
_warned = [-math.inf]  # when the last "can't be read" was logged


def _read_shared() -> int | None:
    """The generation as stored, or None when missing. Straight from Redis when the cache is
    Redis, with one client kept for the process (thread-safe; it reconnects after a fork),
    reading what Django's RedisCache wrote under the same key (an int is stored as its digits)."""
    if not _redis:
        backend = getattr(cache, "_cache", None)
        _redis.append(backend.get_client(None, write=False) if isinstance(backend, RedisCacheClient) else None)
    client = _redis[0]
    if client is None:
        return cache.get(GENERATION_KEY)
    raw = client.get(cache.make_key(GENERATION_KEY))
    return None if raw is None else int(raw)


def current_generation() -> int | None:
    """The shared generation, started if missing; None when the cache can't be read."""
    try:
        generation = _read_shared()
        if generation is None:
            cache.add(GENERATION_KEY, _fresh(), timeout=None)
            generation = _read_shared()
        return generation
    except Exception:
        now = time.monotonic()
        if now - _warned[0] > 60:  # once a minute, not once an event
            _warned[0] = now
            log.warning("workflows: the index generation can't be read; asking the database", exc_info=True)
        return None


def bump_generation() -> None:
    """Every process reloads the active workflows at its next event. Call it once the change
    committed (transaction.on_commit), never inside the transaction: a process that reloads
    before the commit would keep the old list."""
    _loaded.clear()  # this process knows already
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # not started, or evicted: a fresh start differs from every number before
            if not cache.add(GENERATION_KEY, _fresh(), timeout=None):
                cache.incr(GENERATION_KEY)  # another process started it meanwhile
    except Exception:  # the change is committed; other processes see it within MAX_AGE
        log.exception("workflows: the index generation can't be moved on")


def clear() -> None:
    """Forget what this process loaded (tests; the generation does it in production)."""
    _loaded.clear()


# --- loading and matching -------------------------------------------------------------------------


def _compiled(conditions) -> Callable[[dict], bool]:
    try:
        return compile_condition(conditions)
    except Exception:  # a tree no editor would save (too deep): the interpreter, and its error, per event
        log.exception("workflows: conditions that can't be compiled")
        return lambda context: evaluate(conditions, context)


def _load(trigger_key: str, previous: tuple[_Entry, ...] = ()) -> tuple[_Entry, ...]:
    """The active workflows of `trigger_key` by id, their conditions compiled (reused from
    `previous` for a version already compiled: versions don't change)."""
    known = {entry.version_id: entry for entry in previous}
    entries = []
    rows = (Workflow.objects.filter(status=Workflow.Status.ACTIVE, trigger=trigger_key)
            .select_related("active_version").order_by("pk"))
    for workflow in rows:
        version = workflow.active_version
        if version is None:
            continue
        entry = known.get(version.pk)
        if entry is None or entry.workflow_id != workflow.pk:
            definition = version.definition
            conditions = definition.get("conditions") if isinstance(definition, dict) else None
            entry = _Entry(workflow.pk, version.pk, version.number, definition,
                           _compiled(conditions) if conditions else None,
                           Candidate(workflow.pk, version.pk, version.number, definition))
        entries.append(entry)
    return tuple(entries)


def _entries(trigger_key: str) -> tuple[_Entry, ...]:
    generation = current_generation()  # read before the query: a bump after it reloads again
    loaded = _loaded.get(trigger_key)
    now = time.monotonic()
    if generation is not None and loaded is not None and loaded.generation == generation \
            and now - loaded.at < MAX_AGE:
        return loaded.entries
    entries = _load(trigger_key, loaded.entries if loaded else ())
    if generation is not None:
        _loaded[trigger_key] = _Loaded(generation, now, entries)
    return entries


def matching(trigger_key: str, context: dict) -> list[Candidate]:
    """The active workflows of `trigger_key` whose conditions hold for `context` (in the order
    they were created), and those whose conditions could not be evaluated, with the reason."""
    found = []
    for entry in _entries(trigger_key):
        if entry.test is None:
            found.append(entry.matched)
            continue
        try:
            if entry.test(context):
                found.append(entry.matched)
        except (ConditionError, ValueError) as exc:  # a comparison across currencies; an amount that isn't one
            found.append(entry.failed(str(exc)))
        except Exception as exc:  # one workflow's bug must not stop the others
            log.exception("workflows: the conditions of workflow %s v%s failed", entry.workflow_id, entry.version)
            found.append(entry.failed(_("Its conditions could not be evaluated (%(error)s).")
                                      % {"error": type(exc).__name__}))
    return found
