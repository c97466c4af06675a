"""Each person's own settings, applied to every request they make: the time zone dates are
shown in (their console.UserPreference, else settings.TIME_ZONE), the console's language
(their preference, else what LocaleMiddleware took from the browser), and what "Solve" does
next on a ticket (`request.after_solve`, "next" or "stay", which the tickets views read).

Both are cached in the session so a page costs no extra query; saving a preference updates
the cache (console.views.account)."""

import zoneinfo

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

SESSION_KEY = "console_tz"
LANGUAGE_SESSION_KEY = "console_language"


AFTER_SOLVE_SESSION_KEY = "console_after_solve"


def _preferences(request) -> tuple[str, str, str]:
    session = getattr(request, "session", None)
    keys = (SESSION_KEY, LANGUAGE_SESSION_KEY, AFTER_SOLVE_SESSION_KEY)
    if session is not None and all(key in session for key in keys):
        return tuple(session[key] for key in keys)
    from .models import UserPreference

    row = (UserPreference.objects.filter(user=request.user)
           .values_list("time_zone", "language", "after_solve").first())
    values = row or ("", "", UserPreference.AfterSolve.NEXT.value)
    if session is not None:
        for key, value in zip(keys, values):
            session[key] = value
    return values


def user_time_zone(request) -> str:
    return _preferences(request)[0]


def user_language(request) -> str:
    """The person's chosen language, or "" when they follow the browser's."""
    return _preferences(request)[1]


def user_after_solve(request) -> str:
    """"next" (go to the next ticket in the view after solving) or "stay"."""
    return _preferences(request)[2]


def remember_preferences(request, *, time_zone: str | None = None, language: str | None = None,
                         after_solve: str | None = None) -> None:
    """After a preference is saved: the session cache and this request follow it at once."""
    if after_solve is not None:
        request.session[AFTER_SOLVE_SESSION_KEY] = after_solve
        request.after_solve = after_solve
    if time_zone is not None:
        request.session[SESSION_KEY] = time_zone
    if language is not None:
        request.session[LANGUAGE_SESSION_KEY] = language
        chosen = language or translation.get_language_from_request(request)
        translation.activate(chosen)
        request.LANGUAGE_CODE = translation.get_language()


class PreferencesMiddleware:
    """After AuthenticationMiddleware and LocaleMiddleware: a signed-in person's own zone and
    language win over the console's default zone and the browser's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = language = ""
        # tickets may not import console: the ticket page reads what "Solve" does next here.
        request.after_solve = "stay"
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            name, language, request.after_solve = _preferences(request)
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        if language and language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


FRAGMENT_HEADER = "X-Paydesk-Fragment"


class FragmentRefusalMiddleware:
    """Marks an HTMX answer that refuses input with a fragment (the form again, with its
    message; or what failed, as a Stripe error's 502) so the page swaps it in place:
    static/htmx-fragments.js has htmx swap marked fragments (htmx swaps no 4xx/5xx by itself),
    and keeps django-htmx's DEBUG script from replacing the whole page with them. Error pages
    (whole documents) are left unmarked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (getattr(request, "htmx", False) and response.status_code >= 400
                and not response.streaming and response.get("Content-Type", "").startswith("text/html")
                and b"<html" not in response.content[:1024].lower()):
            response[FRAGMENT_HEADER] = "1"
        return response


class ContentSecurityPolicyMiddleware:
    """Every answer carries settings.CONTENT_SECURITY_POLICY, unless the view set a stricter
    one itself (an attachment download: default-src 'none'; sandbox)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class RejectNulMiddleware:
    """A NUL character in the path, the query string, a cookie or a form field is refused with
    400 before any view runs: PostgreSQL text can neither hold nor compare one (the query
    raises), and no form, id or search legitimately has one (Django's form fields refuse them
    too). Forms are read only for the views that take them (not the CSRF-exempt endpoints that
    authenticate themselves and read their raw body); JSON bodies are left to the endpoints."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request.path_info) or any(_has_nul(d) for d in (request.GET, request.COOKIES)):
            return _nul_refused()
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False) and _has_nul(request.POST):
            return _nul_refused()
        return None


def _nul_refused():
    return HttpResponseBadRequest(_("A request may not contain NUL characters."), content_type="text/plain")


def _has_nul(source) -> bool:
    if isinstance(source, str):
        return "\x00" in source
    items = source.lists() if hasattr(source, "lists") else ((k, [v]) for k, v in source.items())
    return any("\x00" in key or any(isinstance(v, str) and "\x00" in v for v in values) for key, values in items)
