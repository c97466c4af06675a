"""The channels' own endpoints: each stores what arrived, queues it, and answers at once.

POST /line/webhook/: a bad signature is 400 (a Content-Length that is not a number too), a
body over the limit 413, a database outage 503 (LINE delivers again); a correctly signed body
is always 200 and stored, whatever it holds: what cannot be used is kept as ignored with the
reason (tickets.line.split_events).

Inbound email: django-anymail's inbound webhooks (basic auth checked by anymail, enabled per
provider in channel_urls) send its `inbound` signal; the receiver stores the raw message and
queues it, nothing more. Whatever the message holds, that succeeds; only a database outage
fails the request (a 500, and the provider delivers again).
"""

from __future__ import annotations

import io
import logging
from email.generator import BytesGenerator

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import line
from .actions.intake import store_inbound_email, store_line_events

log = logging.getLogger(__name__)


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain")


@login_not_required  # LINE cannot log in: the signature is the authentication
@csrf_exempt
@require_POST
def line_webhook(request):
    limit = settings.LINE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _plain(400, "bad Content-Length")
    if declared < 0:
        return _plain(400, "bad Content-Length")
    if declared > limit:
        return _plain(413, "body too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _plain(413, "body too large")
    if not line.signature_ok(body, request.headers.get("X-Line-Signature", "")):
        return _plain(400, "bad signature")
    try:
        # The action queues each new event's processing once the rows are committed.
        store_line_events(line.split_events(body))
    except DatabaseError:
        log.warning("LINE webhook not stored: database unavailable")
        response = _plain(503, "temporarily unavailable")
        response["Retry-After"] = "30"
        return response
    return _plain(200, "ok")


def on_anymail_inbound(sender, event, esp_name, **kwargs):
    """anymail.signals.inbound receiver (connected in TicketsConfig.ready)."""
    message = event.message
    store_inbound_email(_raw_mime(message), esp=(esp_name or "").lower(),
                        envelope_recipient=getattr(message, "envelope_recipient", None) or "")


def _raw_mime(message) -> bytes:
    """The message's bytes, as anymail parsed them from what the provider posted: headers as
    they came (refold_source none keeps their source lines), 8-bit bytes as they were."""
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=message.policy.clone(refold_source="none")).flatten(message)
    return out.getvalue()
