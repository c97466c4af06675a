"""Unauthenticated-by-login endpoints of the tickets channels: each authenticates itself
(LINE's signature, anymail's basic auth, the API's bearer token)."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import URLPattern, include, path

from anymail import urls as anymail_urls

from . import api, webhooks


def _inbound_only_with_secret(view):
    """anymail accepts unauthenticated posts (with a warning) when no secret is set; Paydesk
    refuses them instead: default deny."""

    def wrapped(request, *args, **kwargs):
        if not (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET"):
            return HttpResponse("inbound email is not configured", status=404, content_type="text/plain")
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = True
    return login_not_required(wrapped)


# anymail's own inbound routes (one per provider), each wrapped; tracking webhooks are not used.
anymail_inbound = [
    URLPattern(p.pattern, _inbound_only_with_secret(p.callback), name=p.name)
    for p in anymail_urls.urlpatterns
    if p.name and p.name.endswith("_inbound_webhook")
]

urlpatterns = [
    path("line/webhook/", webhooks.line_webhook, name="line_webhook"),
    path("api/contacts/link", api.link, name="api_contacts_link"),
    path("api/contacts/unlink", api.unlink, name="api_contacts_unlink"),
    path("anymail/", include((anymail_inbound, "anymail_inbound"))),
]
