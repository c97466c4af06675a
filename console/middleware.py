"""Dates in the agent's own time zone: their console.UserPreference, else settings.TIME_ZONE.

The zone is cached in the session so a page costs no extra query; saving a preference
clears it (console.customers.set_time_zone)."""

import zoneinfo

from django.utils import timezone

SESSION_KEY = "console_tz"


def user_time_zone(request) -> str:
    cached = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if cached is not None:
        return cached
    from .models import UserPreference

    name = UserPreference.objects.filter(user=request.user).values_list("time_zone", flat=True).first() or ""
    if hasattr(request, "session"):
        request.session[SESSION_KEY] = name
    return name


class TimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = ""
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            name = user_time_zone(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)
