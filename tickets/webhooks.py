"""POST /line/webhook/: verified, stored once per webhookEventId, queued, answered."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import line, queue

log = logging.getLogger(__name__)


@login_not_required  # LINE cannot log in: the signature is the authentication
@csrf_exempt
@require_POST
def line_webhook(request):
    length = int(request.headers.get("Content-Length") or 0)
    if length > settings.LINE_WEBHOOK_MAX_BYTES:
        return HttpResponse("body too large", status=413, content_type="text/plain")
    body = request.body
    if len(body) > settings.LINE_WEBHOOK_MAX_BYTES:
        return HttpResponse("body too large", status=413, content_type="text/plain")
    try:
        payload = line.parse_webhook(body, request.headers.get("X-Line-Signature", ""))
    except line.BadSignature:
        return HttpResponseBadRequest("bad signature", content_type="text/plain")
    except (ValueError, UnicodeDecodeError):
        return HttpResponseBadRequest("malformed payload", content_type="text/plain")
    try:
        with transaction.atomic():
            for pk in line.store_events(payload):
                queue.enqueue("tickets.tasks.process_line_event_task", pk)
    except ValueError as exc:
        return HttpResponseBadRequest(f"malformed event: {exc}", content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
