"""The login page when django-axes refuses a login (AXES_LOCKOUT_CALLABLE in settings)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """Too many failed logins for this username from this address: the login page again,
    saying so and for how long (429). Nobody's password is checked until the cool-off ends
    or an admin unlocks the login."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
    context = {
        "locked_out": ngettext(
            "Too many failed logins for this username from your address. Try again in %(minutes)d minute, "
            "or ask an admin to unlock it.",
            "Too many failed logins for this username from your address. Try again in %(minutes)d minutes, "
            "or ask an admin to unlock it.",
            minutes) % {"minutes": minutes},
        "next": target if safe else "",
        "username": request.POST.get("username", "")[:150],
    }
    return render(request, "registration/login.html", context, status=429)
