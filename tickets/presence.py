"""Who else has a ticket open: a short-lived record per ticket in the cache.

Each open ticket page refreshes its agent's entry every ~10 s (an HTMX poll); an entry not
refreshed for PRESENCE_TTL seconds has gone. The cache must be shared by all web processes
(Redis via CACHE_URL in production); the record is a small dict read and written whole, so
two agents refreshing at the same instant may drop each other until their next poll, which
is harmless for a "who is here" hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

PRESENCE_TTL = 30


@dataclass(frozen=True)
class Present:
    user_id: int
    name: str
    composing: bool


def _key(ticket_id: int) -> str:
    return f"tickets:presence:{ticket_id}"


def _live(entries: dict, now: float) -> dict:
    return {uid: e for uid, e in (entries or {}).items() if e.get("until", 0) > now}


def touch(ticket_id: int, user, *, composing: bool = False) -> list[Present]:
    """Record that `user` has the ticket open; returns the others who do."""
    now = time.time()
    entries = _live(cache.get(_key(ticket_id)), now)
    entries[str(user.pk)] = {
        "name": user.get_full_name() or user.get_username(),
        "until": now + PRESENCE_TTL,
        "composing": bool(composing),
    }
    cache.set(_key(ticket_id), entries, PRESENCE_TTL)
    return others(ticket_id, user, entries=entries)


def others(ticket_id: int, user, *, entries: dict | None = None) -> list[Present]:
    now = time.time()
    live = _live(entries if entries is not None else cache.get(_key(ticket_id)), now)
    return sorted(
        (Present(int(uid), e["name"], e.get("composing", False)) for uid, e in live.items() if uid != str(user.pk)),
        key=lambda p: p.name,
    )


def leave(ticket_id: int, user) -> None:
    entries = _live(cache.get(_key(ticket_id)), time.time())
    if entries.pop(str(user.pk), None) is not None:
        cache.set(_key(ticket_id), entries, PRESENCE_TTL)
