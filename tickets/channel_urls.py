"""Unauthenticated-by-login endpoints of the tickets channels: each authenticates itself
(LINE's signature, anymail's basic auth, the API's bearer token)."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import URLPattern, include, path
from django.utils.crypto import constant_time_compare
from django.views.decorators.debug import sensitive_variables

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.utils import get_request_basic_auth

from . import api, line_media, webhooks

# A provider posting an email as one JSON body (Postmark: up to 35 MB of mail, base64'd in
# it) goes far over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which would refuse a
# customer's photos with a 400. For an authenticated post the body is read here, under this
# limit instead. (Providers posting multipart forms are still parsed under Django's limit.)
INBOUND_EMAIL_MAX_BYTES = 50 * 1024 * 1024


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain")


def _inbound_only_when_enabled(esp: str, view):
    """anymail accepts unauthenticated posts (with a warning) when no secret is set, and every
    provider's route exists; Paydesk answers only for the providers named in
    TICKETS_INBOUND_EMAIL_ESPS, and only with a webhook secret: default deny."""

    @sensitive_variables("secret")  # and in anymail's frames below, where the basic auth is checked
    def wrapped(request, *args, **kwargs):
        enabled = esp in settings.TICKETS_INBOUND_EMAIL_ESPS
        secret = (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET")
        if not (enabled and secret):
            return _plain(404, "inbound email from this provider is not enabled")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = -1
        if declared < 0:
            return _plain(400, "bad Content-Length")
        multipart = request.content_type.startswith("multipart/")
        if request.method == "POST" and not multipart and _authenticated(request, secret):
            if declared > INBOUND_EMAIL_MAX_BYTES:
                return _plain(413, "body too large")
            body = request.read(INBOUND_EMAIL_MAX_BYTES + 1)
            if len(body) > INBOUND_EMAIL_MAX_BYTES:
                return _plain(413, "body too large")
            request._body = body  # where request.body keeps what it read: anymail reads it there
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = True
    return login_not_required(wrapped)


def _authenticated(request, secret) -> bool:
    """anymail's own basic-auth check, made before a large body is read (anymail checks again)."""
    given = get_request_basic_auth(request) or ""
    return any(constant_time_compare(given, allowed) for allowed in ([secret] if isinstance(secret, str) else secret))


def _unreadable_is_refused(view):
    """anymail's parsers raise KeyError, ValueError ... on a post that isn't their provider's
    payload: a 500, which a provider retries. A payload that can't be read is refused (400)
    like one that fails validation. Errors of the handler that stores the message
    (tickets.email_in, after parsing) stay 500, so a real message is delivered again."""
    base = view.view_class

    class Readable(base):
        def parse_events(self, request):
            try:
                return list(super().parse_events(request))
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                raise AnymailWebhookValidationFailure(f"Unreadable {self.esp_name} inbound payload") from exc

    Readable.__name__ = Readable.__qualname__ = base.__name__
    return Readable.as_view(**view.view_initkwargs)


# anymail's own inbound routes (one per provider), each wrapped; tracking webhooks are not used.
anymail_inbound = [
    URLPattern(p.pattern, _inbound_only_when_enabled(p.name.removesuffix("_inbound_webhook"),
                                                     _unreadable_is_refused(p.callback)), name=p.name)
    for p in anymail_urls.urlpatterns
    if p.name and p.name.endswith("_inbound_webhook")
]

urlpatterns = [
    path("line/webhook/", webhooks.line_webhook, name="line_webhook"),
    # The images of LINE replies, fetched by LINE's servers through a signed, expiring token.
    path("line/images/<str:token>", line_media.line_image, name="line_image"),
    path("api/contacts/link", api.link, name="api_contacts_link"),
    path("api/contacts/unlink", api.unlink, name="api_contacts_unlink"),
    path("anymail/", include((anymail_inbound, "anymail_inbound"))),
]
