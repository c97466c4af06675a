"""The agent's own settings: for now the time zone every date in the console is shown in."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from .. import actions
from ..middleware import SESSION_KEY, user_time_zone

# Where most shops' support teams sit: offered first, the full list follows.
COMMON_ZONES = ("Asia/Tokyo", "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
                "Europe/Berlin", "Australia/Sydney", "UTC")


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                         require_https=request.is_secure())
    return target if ok and target.startswith("/") else ""


@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Every signed-in person may change their own preferences (no role needed)."""
    error = ""
    current = user_time_zone(request)
    if request.method == "POST":
        name = request.POST.get("time_zone", "")
        try:
            actions.set_time_zone(actor=request.user, user=request.user, name=name)
        except ValidationError as exc:
            error, current = exc.messages[0], name
        else:
            request.session[SESSION_KEY] = name.strip()
            messages.success(request, f"Dates are now shown in {name.strip() or settings.TIME_ZONE}.")
            return redirect(_next(request) or "account")
    context = {
        "current": current, "default": settings.TIME_ZONE, "error": error, "next": _next(request),
        "common": COMMON_ZONES, "zones": [z for z in actions.time_zone_names() if z not in COMMON_ZONES],
        "nav": "account",
    }
    return render(request, "console/account.html", context, status=400 if error else 200)
