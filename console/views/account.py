"""The agent's own settings: the time zone every date is shown in and the console's language."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .. import actions
from ..middleware import remember_preferences, user_after_solve, user_language, user_time_zone
from ..models import UserPreference

# Where most shops' support teams sit: offered first, the full list follows.
COMMON_ZONES = ("Asia/Tokyo", "America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
                "Europe/Berlin", "Australia/Sydney", "UTC")


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                         require_https=request.is_secure())
    return target if ok and target.startswith("/") else ""


def _browser_language(request) -> str:
    """What the browser asks for, as one of the console's languages (ignoring the person's choice)."""
    return translation.get_language_from_request(request)


def _save_time_zone(request) -> str:
    name = request.POST.get("time_zone", "")
    actions.set_time_zone(actor=request.user, user=request.user, name=name)
    remember_preferences(request, time_zone=name.strip())
    return _("Dates are now shown in %(zone)s.") % {"zone": name.strip() or settings.TIME_ZONE}


def _save_language(request) -> str:
    language = request.POST.get("language", "")
    actions.set_language(actor=request.user, user=request.user, language=language)
    remember_preferences(request, language=language.strip())  # the confirmation below is in the new language
    if language.strip():
        return _("The console is now in %(language)s.") % {"language": dict(settings.LANGUAGES)[language.strip()]}
    return _("The console now follows your browser's language.")


def _save_after_solve(request) -> str:
    value = request.POST.get("after_solve", "")
    actions.set_after_solve(actor=request.user, user=request.user, value=value)
    remember_preferences(request, after_solve=value.strip())
    if value.strip() == UserPreference.AfterSolve.NEXT:
        return _("After solving a ticket you now go to the next one in the view.")
    return _("After solving a ticket you now stay on it.")


SAVERS = {"language": _save_language, "time_zone": _save_time_zone, "after_solve": _save_after_solve}


@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Every signed-in person may change their own preferences (no role needed). Each card
    posts on its own: `language`, `time_zone` or `after_solve` says which."""
    errors: dict[str, str] = {}
    current_zone, current_language = user_time_zone(request), user_language(request)
    current_after_solve = user_after_solve(request)
    if request.method == "POST":
        field = next((name for name in ("language", "after_solve") if name in request.POST), "time_zone")
        try:
            done = SAVERS[field](request)
        except ValidationError as exc:
            errors[field] = exc.messages[0]
            if field == "language":
                current_language = request.POST.get("language", "")
            elif field == "after_solve":
                current_after_solve = request.POST.get("after_solve", "")
            else:
                current_zone = request.POST.get("time_zone", "")
        else:
            messages.success(request, done)
            return redirect(_next(request) or "account")
    browser = _browser_language(request)
    context = {
        "current": current_zone, "default": settings.TIME_ZONE, "errors": errors, "next": _next(request),
        "common": COMMON_ZONES, "zones": [z for z in actions.time_zone_names() if z not in COMMON_ZONES],
        "languages": settings.LANGUAGES, "current_language": current_language,
        "browser_language": dict(settings.LANGUAGES).get(browser, browser),
        "after_solve_choices": UserPreference.AfterSolve.choices, "current_after_solve": current_after_solve,
        "nav": "account",
    }
    return render(request, "console/account.html", context, status=400 if errors else 200)
