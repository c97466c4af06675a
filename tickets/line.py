"""LINE Messaging API: webhook events in, pushes out, through line-bot-sdk."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .actions.contacts import set_line_following
from .actions.errors import DeliveryFailed, TicketsError
from .actions.messages import receive_message
from .models import Channel, LineEvent, Message

log = logging.getLogger(__name__)

HANDLED_TYPES = ("message", "follow", "unfollow")
# What a non-text message becomes in the conversation (its content stays on LINE's servers).
PLACEHOLDERS = {
    "image": "[image]", "video": "[video]", "audio": "[audio]", "file": "[file: {fileName}]",
    "location": "[location: {address}]", "sticker": "[sticker]",
}


class BadSignature(TicketsError):
    """The body was not signed with the channel secret (or no secret is configured)."""


def parse_webhook(body: bytes, signature: str) -> dict:
    """Verify X-Line-Signature (HMAC-SHA256 of the body with the channel secret, base64)
    with line-bot-sdk, then return the payload. Raises BadSignature or ValueError."""
    from linebot.v3 import WebhookParser
    from linebot.v3.exceptions import InvalidSignatureError

    secret = settings.LINE_CHANNEL_SECRET
    if not secret:
        raise BadSignature("LINE_CHANNEL_SECRET is not configured")
    text = body.decode("utf-8")
    try:
        # as_payload keeps the SDK's validation of the envelope; the stored dict is the raw JSON.
        WebhookParser(secret).parse(text, signature or "", as_payload=True)
    except InvalidSignatureError:
        raise BadSignature("signature does not match") from None
    payload = json.loads(text)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ValueError("not a LINE webhook payload")
    return payload


def store_events(payload: dict) -> list[int]:
    """Store each handled event once (unique webhookEventId); return the new rows' ids."""
    new = []
    for event in payload["events"]:
        if not isinstance(event, dict):
            raise ValueError("an event is not an object")
        event_id = event.get("webhookEventId")
        kind = event.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
            raise ValueError("an event lacks webhookEventId or type")
        status = LineEvent.Status.PENDING if kind in HANDLED_TYPES else LineEvent.Status.IGNORED
        try:
            with transaction.atomic():
                row = LineEvent.objects.create(webhook_event_id=event_id[:64], type=kind[:32], payload=event,
                                               status=status)
        except IntegrityError:
            continue  # a redelivery: stored already
        if status == LineEvent.Status.PENDING:
            new.append(row.pk)
    return new


def _text(message: dict) -> str:
    if message.get("type") == "text":
        return message.get("text") or ""
    template = PLACEHOLDERS.get(message.get("type"), "[{type} message]")
    try:
        return template.format(**{"fileName": "", "address": "", **message})
    except (KeyError, IndexError):
        return f"[{message.get('type')} message]"


def process_event(event_pk: int) -> str:
    """Turn one stored LINE event into tickets actions. Idempotent: a processed event is skipped."""
    event = LineEvent.objects.filter(pk=event_pk).first()
    if event is None or event.status in (LineEvent.Status.PROCESSED, LineEvent.Status.IGNORED):
        return event.status if event else ""
    payload = event.payload
    user_id = ((payload.get("source") or {}).get("userId")) or ""
    try:
        with transaction.atomic():
            if not user_id:
                # Group/room events without a user, or users who did not consent: nothing to attach.
                _finish(event, LineEvent.Status.IGNORED, "no source.userId")
                return LineEvent.Status.IGNORED
            if event.type == "message":
                message = payload.get("message") or {}
                receive_message(
                    channel=Channel.LINE,
                    sender=user_id,
                    body_text=_text(message),
                    # LINE's message id threads and dedupes; the webhook event id is the fallback.
                    channel_message_id=str(message.get("id") or f"event:{event.webhook_event_id}"),
                )
            elif event.type in ("follow", "unfollow"):
                set_line_following(user_id=user_id, following=event.type == "follow",
                                   event_id=event.webhook_event_id)
            _finish(event, LineEvent.Status.PROCESSED, "")
    except ValidationError as exc:
        # Bad data in the event (a malformed user id): permanent, parked as failed.
        LineEvent.objects.filter(pk=event.pk).update(
            status=LineEvent.Status.FAILED, last_error="; ".join(exc.messages)[:2000], processed_at=timezone.now()
        )
        return LineEvent.Status.FAILED
    return LineEvent.Status.PROCESSED


def _finish(event: LineEvent, status: str, error: str) -> None:
    LineEvent.objects.filter(pk=event.pk).update(status=status, last_error=error, processed_at=timezone.now(),
                                                 attempts=event.attempts + 1)


# --- out ------------------------------------------------------------------------------


class Transient(TicketsError):
    """Worth retrying: LINE or the network had a moment."""


def push(message: Message) -> str:
    """Push one outbound message. The message's uuid is LINE's retry key, so a retried push
    is delivered once. Returns LINE's sent message id. Raises Transient or DeliveryFailed."""
    from linebot.v3.messaging import (
        ApiClient, ApiException, Configuration, MessagingApi, PushMessageRequest, TextMessage,
    )

    if not settings.LINE_CHANNEL_ACCESS_TOKEN:
        raise DeliveryFailed("LINE_CHANNEL_ACCESS_TOKEN is not configured")
    config = Configuration(host=settings.LINE_API_BASE.rstrip("/"), access_token=settings.LINE_CHANNEL_ACCESS_TOKEN)
    config.retries = 0  # the task retries with backoff, not urllib3 in a tight loop
    # LINE caps one text message at 5000 characters.
    texts = [message.body_text[i:i + 5000] for i in range(0, len(message.body_text), 5000)][:5] or [""]
    request = PushMessageRequest(to=message.recipient, messages=[TextMessage(text=t) for t in texts])
    try:
        with ApiClient(config) as client:
            response = MessagingApi(client).push_message(
                request, x_line_retry_key=str(message.uuid), _request_timeout=15
            )
    except ApiException as exc:
        status = exc.status or 0
        if status == 409:
            # Accepted before under this retry key: it was delivered.
            return ""
        detail = _error_detail(exc)
        if status == 429 or status >= 500:
            raise Transient(f"LINE {status}: {detail}") from None
        raise DeliveryFailed(f"LINE refused the push ({status}): {detail}") from None
    except Exception as exc:  # connection refused, timeouts, TLS: the network, not the message
        raise Transient(f"{exc.__class__.__name__}: {str(exc)[:200]}") from None
    sent = getattr(response, "sent_messages", None) or []
    return str(getattr(sent[0], "id", "") or "") if sent else ""


def _error_detail(exc) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason or "")[:500]
    except (TypeError, ValueError):
        return str(exc.reason or "")[:500]
