"""The console's own writes (per-agent preferences), one function per action: validate,
check who may, do it atomically, audit it. Views call these; they never save models."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from . import audit
from .models import UserPreference


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted (the tz database ships with Python's tzdata or the OS)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def set_time_zone(actor, user, name: str) -> UserPreference:
    """The zone `user` reads dates in; blank means the console's default (settings.TIME_ZONE).
    People set their own; nobody sets another's."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied("You can only change your own time zone.")
    name = (name or "").strip()
    if name and name not in time_zone_names():
        raise ValidationError(f"“{name[:64]}” is not a time zone. Pick one from the list.", code="time_zone")
    with transaction.atomic():
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=user)
        previous = pref.time_zone
        if previous != name:
            pref.time_zone = name
            pref.save(update_fields=["time_zone"])
            audit.record(actor, "user.time_zone", f"user:{user.pk}", {"time_zone": name, "previous": previous})
    return pref
