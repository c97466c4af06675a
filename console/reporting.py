"""What Django's error reports may show (the DEBUG page, error emails): never a secret.

settings.DEFAULT_EXCEPTION_REPORTER_FILTER names SecretsFilter. On top of Django's own filter
(settings whose names look secret, @sensitive_variables, @sensitive_post_parameters), it

- filters with DEBUG on too: Django's filter only works with DEBUG off, and the debug page
  is what gets screenshotted and pasted into tickets;
- hides any frame variable whose value contains a configured secret, or is a POST value
  marked sensitive (a password at login), whatever the variable is called and whichever
  library's frame it is in (the Stripe SDK's, line-bot-sdk's, anymail's, a login backend's);
- hides the password in URL-shaped settings (CELERY_BROKER_URL, CACHES' LOCATION).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

# Settings that are a secret, or a list of them; a new one goes here too.
SECRET_SETTINGS = ("SECRET_KEY", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS", "LINE_CHANNEL_SECRET",
                   "LINE_CHANNEL_ACCESS_TOKEN", "TICKETS_API_TOKEN", "OIDC_RP_CLIENT_SECRET")
# Shorter values can't be told from ordinary words (tests run with SECRET_KEY=x); real ones are long.
MIN_SECRET_LENGTH = 8
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)([^@/\s]+)@")
_SECRET_NAME = re.compile(r"SECRET|TOKEN|KEY|PASS", re.I)


def configured_secrets() -> set[str]:
    """Every credential in the settings: the secret settings, anymail's webhook secret (and
    its password half), database passwords, and passwords inside broker and cache URLs."""
    values = []
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, None)
        values += value if isinstance(value, (list, tuple)) else [value]
    for key, value in (getattr(settings, "ANYMAIL", None) or {}).items():
        if _SECRET_NAME.search(key) and isinstance(value, str):
            values += [value, value.partition(":")[2]]
    values += [db.get("PASSWORD") for db in settings.DATABASES.values()]
    urls = [getattr(settings, "CELERY_BROKER_URL", ""), getattr(settings, "CACHE_URL", ""),
            *(cache.get("LOCATION") for cache in settings.CACHES.values())]
    values += [m.group(2) for url in urls if isinstance(url, str) for m in _URL_PASSWORD.finditer(url)]
    return {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}


def _mentions(value, secrets: set[str], posted: set[str], depth: int = 0) -> bool:
    """Whether value holds a secret: contains a configured one, or equals a posted one."""
    if isinstance(value, str):
        return value in posted or any(secret in value for secret in secrets)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return any(secret.encode() in raw for secret in secrets | posted if len(secret) >= MIN_SECRET_LENGTH)
    if depth >= 4:
        return False
    try:
        if isinstance(value, dict):
            return any(_mentions(k, secrets, posted, depth + 1) or _mentions(v, secrets, posted, depth + 1)
                       for k, v in list(value.items())[:1000])
        if isinstance(value, (list, tuple, set, frozenset)):
            return any(_mentions(v, secrets, posted, depth + 1) for v in list(value)[:1000])
    except Exception:  # a mapping that fails to iterate: hide it rather than guess
        return True
    return False


def _posted_secrets(request) -> set[str]:
    """The POST values @sensitive_post_parameters marked (every one, for the login views)."""
    names = getattr(request, "sensitive_post_parameters", None)
    if not names or request.method != "POST":
        return set()
    try:
        items = request.POST.lists()
        return {v for k, values in items if names == "__ALL__" or k in names for v in values if v}
    except Exception:  # an unreadable body holds nothing we could match
        return set()


class SecretsFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True  # with DEBUG on too (see the module's docstring)

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # str() too: a lazy object passes for a str (axes has one)
            cleansed = _URL_PASSWORD.sub(lambda m: m.group(1) + self.cleansed_substitute + "@", str(cleansed))
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        secrets, posted = configured_secrets(), _posted_secrets(request)
        return [
            (name, self.cleansed_substitute if _mentions(value, secrets, posted) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
