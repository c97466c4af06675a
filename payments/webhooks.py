"""POST /stripe/webhook/: verify, store once, queue, answer. Nothing else happens in the request."""

from __future__ import annotations

import json
import logging
import time

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from common import parsing

from . import queue
from .events import InvalidEvent, store_event, validate_event
from .models import WebhookEvent

log = logging.getLogger(__name__)


def _reply(status: int, reason: str, **extra) -> JsonResponse:
    return JsonResponse({"status": "ok" if status == 200 else "error", "reason": reason, **extra}, status=status)


@sensitive_variables()  # every local here and in the SDK's frames below: they hold the secrets
def verify_signature(body: bytes, header: str | None, secrets: list[str], tolerance: int) -> bool:
    """True if any configured secret signed the body: during rotation two are valid."""
    # A signature header is ASCII (hmac.compare_digest refuses other text with a TypeError).
    if not header or not secrets or not header.isascii():
        return False
    try:
        # Stripe signs UTF-8 JSON; the SDK decodes the body itself and raises on anything else.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # The SDK rejects only timestamps too far in the past; one too far ahead is as suspect.
    stamp = parsing.parse_int(next((part[2:] for part in header.split(",") if part.startswith("t=")), ""), minimum=0)
    if stamp is None or stamp > time.time() + tolerance:
        return False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
            return True
        except stripe.SignatureVerificationError:
            continue
    return False


@csrf_exempt
@login_not_required
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    limit = settings.STRIPE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _reply(400, "bad Content-Length")
    if declared > limit:
        return _reply(413, f"body over {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _reply(413, f"body over {limit} bytes")

    if not verify_signature(
        body, request.headers.get("Stripe-Signature"), settings.STRIPE_WEBHOOK_SECRETS, settings.STRIPE_WEBHOOK_TOLERANCE
    ):
        # One reason for a missing, wrong or stale signature: don't help a forger.
        return _reply(400, "signature verification failed")
    try:
        text = body.decode("utf-8")
        payload = validate_event(json.loads(text))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _reply(400, "body is not JSON")
    except InvalidEvent as exc:
        return _reply(400, str(exc))

    try:
        # One statement, autocommitted: no BEGIN and COMMIT round trips of an atomic block.
        # Outside a transaction, on_commit runs the enqueue as soon as the INSERT committed.
        inserted, status = store_event(payload, raw=text)
        if inserted and status == WebhookEvent.Status.PENDING:
            # If the broker is down the event stays pending; requeue_stale_events picks it up.
            queue.enqueue("payments.tasks.apply_event_task", payload["id"])
    except (DataError, IntegrityError):
        return _reply(400, "event cannot be stored")
    except DatabaseError:
        # Not stored: make Stripe deliver it again later.
        log.warning("webhook %s not stored: database unavailable", payload["id"])
        response = _reply(503, "temporarily unavailable")
        response["Retry-After"] = "30"
        return response
    return _reply(200, "stored" if inserted else "duplicate", event=payload["id"])
