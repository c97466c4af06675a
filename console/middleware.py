"""Dates in the agent's own time zone: their console.UserPreference, else settings.TIME_ZONE.

The zone is cached in the session so a page costs no extra query; saving a preference
clears it (console.actions.set_time_zone)."""

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


FRAGMENT_HEADER = "X-Paydesk-Fragment"
# Refused input, and an outside service's failure (502) told in the fragment it answers with.
_REFUSALS = frozenset({400, 403, 404, 409, 413, 422, 502})


class FragmentRefusalMiddleware:
    """Marks an HTMX answer that refuses input with a fragment (the form again, with its
    message) so the page swaps it in place. With DEBUG on, django-htmx's script replaces the
    whole page with any 400/403/404 answer to show Django's error page; static/htmx-fragments.js
    lets marked fragments through to htmx. Error pages (whole documents) are left unmarked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (getattr(request, "htmx", False) and response.status_code in _REFUSALS
                and not response.streaming and response.get("Content-Type", "").startswith("text/html")
                and b"<html" not in response.content[:1024].lower()):
            response[FRAGMENT_HEADER] = "1"
        return response
