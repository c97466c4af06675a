"""The LINE Messaging API: what a webhook delivery says, and pushes out.

In: the webhook verifies the signature over the body's bytes and stores every event of a
signed body (split_events never refuses one: what cannot be read is kept with the reason);
the task turns a stored event into tickets actions (process_event). The body is read as plain
JSON, not through line-bot-sdk's models, so an event shape newer or older than the SDK's (no
webhookEventId, no deliveryContext, a type or message kind it does not know) is still stored
and used where it can be. Out: pushes, through line-bot-sdk. The user's profile (name, picture,
language) is asked by tickets.line_profile, queued from here when it is missing or stale.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import line_media, queue
from .actions.contacts import set_line_following
from .actions.errors import DeliveryFailed, TicketsError, Unusable
from .actions.intake import LineDelivery, claim_line_event, finish_line_event
from .actions.messages import receive_message
from .models import Channel, Contact, LineEvent, Message

log = logging.getLogger(__name__)

# The events Paydesk makes something of; any other type is stored as ignored.
HANDLED_TYPES = ("message", "follow", "unfollow")
# What a non-text message becomes in the conversation (its content stays on LINE's servers).
PLACEHOLDERS = {
    "image": "[image]", "video": "[video]", "audio": "[audio]", "file": "[file: {fileName}]",
    "location": "[location: {address}]", "sticker": "[sticker]",
}


# --- in -----------------------------------------------------------------------------------


@sensitive_variables("secret", "expected")
def signature_ok(body: bytes, signature: str) -> bool:
    """X-Line-Signature is base64(HMAC-SHA256(channel secret, body)): what line-bot-sdk's
    SignatureValidator computes, but over the bytes as received (the SDK takes the body as
    text, which a body that is not UTF-8 is not). False without a configured secret."""
    secret = settings.LINE_CHANNEL_SECRET
    if not secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def split_events(body: bytes) -> list[LineDelivery]:
    """The events of a signed body, each to be stored once. Never raises: a body that is not
    UTF-8 JSON with a list of events is one delivery kept with the reason, keyed by a hash of
    the body, as is an event that is not an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [_unreadable(body, {"body_base64": base64.b64encode(body).decode()}, "the body is not UTF-8")]
    try:
        payload = json.loads(text)
    except ValueError:
        return [_unreadable(body, {"body": text}, "the body is not JSON")]
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return [_unreadable(body, {"body": payload}, "the body has no list of events")]
    return [_delivery(event) for event in events]


def _unreadable(body: bytes, payload: dict, reason: str) -> LineDelivery:
    return LineDelivery(key=f"body:{hashlib.sha256(body).hexdigest()[:59]}", type="", payload=payload,
                        reason=reason)


def _delivery(event) -> LineDelivery:
    if not isinstance(event, dict):
        return LineDelivery(key=_hash_key(event), type="", payload={"event": event},
                            reason="the event is not a JSON object")
    event_id, kind = event.get("webhookEventId"), event.get("type")
    usable_id = isinstance(event_id, str) and 0 < len(event_id) <= 64 and event_id.isprintable()
    kind = kind if isinstance(kind, str) and kind.isprintable() else ""
    if not kind:
        reason = "the event has no type"
    elif kind not in HANDLED_TYPES:
        reason = f"Paydesk does not handle LINE {kind[:32]!r} events"
    else:
        reason = ""
    return LineDelivery(key=event_id if usable_id else _hash_key(event), type=kind, payload=event, reason=reason)


def _hash_key(event) -> str:
    """A key for an event without a webhookEventId (older shapes): the same event delivered
    again hashes the same. deliveryContext is left out: it is what a redelivery changes."""
    if isinstance(event, dict):
        event = {k: v for k, v in event.items() if k != "deliveryContext"}
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()[:57]}"


@dataclass(frozen=True)
class LineInput:
    """What a usable event says."""

    type: str  # message, follow or unfollow
    user_id: str
    text: str = ""
    message_id: str = ""


def interpret(event: dict, key: str) -> LineInput:
    """Read a stored event; Unusable (with the reason) if there is nothing to attach it to."""
    source = event.get("source")
    user_id = source.get("userId") if isinstance(source, dict) else None
    if not isinstance(user_id, str) or not user_id:
        # Group and room events without a user, and users who did not consent to share it.
        raise Unusable("the event has no source.userId")
    kind = event.get("type")
    if kind == "message":
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        message_id = message.get("id")
        # LINE's message id threads and dedupes; the event's own key stands in without one.
        return LineInput("message", user_id, _text(message),
                         str(message_id) if message_id not in (None, "") else f"event:{key}")
    if kind in ("follow", "unfollow"):
        return LineInput(kind, user_id)
    raise Unusable(f"Paydesk does not handle LINE {str(kind)[:32]!r} events")


def _text(message: dict) -> str:
    kind = message.get("type")
    if kind == "text":
        text = message.get("text")
        return text if isinstance(text, str) else ""
    template = PLACEHOLDERS.get(kind, "[{type} message]" if isinstance(kind, str) and kind else "[message]")
    try:
        return template.format(**{"fileName": "", "address": "", **message})
    except (KeyError, IndexError, ValueError):
        return f"[{kind} message]"


def process_event(event_pk: int) -> str:
    """Turn one stored event into tickets actions, once: the claim and what the event became
    are one transaction. Returns the event's status."""
    with transaction.atomic():
        event = claim_line_event(event_pk)
        if event is None:
            return LineEvent.objects.filter(pk=event_pk).values_list("status", flat=True).first() or ""
        try:
            what = interpret(event.payload, event.webhook_event_id)
            with transaction.atomic():
                if what.type == "message":
                    received = receive_message(channel=Channel.LINE, sender=what.user_id, body_text=what.text,
                                               channel_message_id=what.message_id)
                    _ask_profile(received.message.contact_id, what.user_id)
                else:
                    received = None
                    contact = set_line_following(user_id=what.user_id, following=what.type == "follow",
                                                 event_id=event.webhook_event_id)
                    if what.type == "follow":
                        _ask_profile(contact.pk, what.user_id)
        except Unusable as exc:
            return _ignored(event, str(exc))
        except ValidationError as exc:
            # Bad data in the event (a malformed user id): it cannot be used.
            return _ignored(event, "; ".join(exc.messages))
        if received is not None and not received.created:
            return _ignored(event, f"the same LINE message was stored before (message {received.message.pk})")
        finish_line_event(event.pk, LineEvent.Status.PROCESSED)
    return LineEvent.Status.PROCESSED


def _ask_profile(contact_id: int | None, user_id: str) -> None:
    """Ask LINE for the user's profile (name, picture, language) once the event is stored (a
    task: LINE's answer never holds up the conversation), when the contact's profile was never
    fetched or is older than TICKETS_LINE_PROFILE_MAX_AGE_DAYS (tickets.line_profile)."""
    if not contact_id or not settings.LINE_CHANNEL_ACCESS_TOKEN:
        return
    fetched = Contact.objects.filter(pk=contact_id).values_list("line_profile_at", flat=True).first()
    if fetched is None or fetched < timezone.now() - dt.timedelta(days=settings.TICKETS_LINE_PROFILE_MAX_AGE_DAYS):
        queue.enqueue("tickets.tasks.line_profile_task", user_id)


def _ignored(event: LineEvent, reason: str) -> str:
    finish_line_event(event.pk, LineEvent.Status.IGNORED, reason=reason)
    return LineEvent.Status.IGNORED


# --- out ------------------------------------------------------------------------------


class Transient(TicketsError):
    """Worth retrying: LINE or the network had a moment."""


def push(message: Message) -> str:
    """Push one outbound message. The message's uuid is LINE's retry key, so a retried push
    is delivered once. Returns LINE's sent message id. Raises Transient or DeliveryFailed."""
    # Here, not at the top: line-bot-sdk's messaging client takes over a second to import
    # (hundreds of models), which only a worker that pushes should pay.
    from linebot.v3.messaging import (
        ApiClient, ApiException, Configuration, ImageMessage, MessagingApi, PushMessageRequest, TextMessage,
    )

    if not settings.LINE_CHANNEL_ACCESS_TOKEN:
        raise DeliveryFailed("LINE_CHANNEL_ACCESS_TOKEN is not configured")
    config = Configuration(host=settings.LINE_API_BASE.rstrip("/"), access_token=settings.LINE_CHANNEL_ACCESS_TOKEN)
    config.retries = 0  # the task retries with backoff, not urllib3 in a tight loop
    # LINE caps one text message at 5000 characters and one push at 5 messages: the text, then
    # each image (at most 4, checked when the reply was made) by its signed public URL.
    images = [ImageMessage(original_content_url=line_media.signed_url(a),
                           preview_image_url=line_media.signed_url(a, preview=True))
              for a in message.attachments.filter(refused=False).exclude(file="")]
    texts = [message.body_text[i:i + 5000] for i in range(0, len(message.body_text), 5000)][:5 - len(images)] or [""]
    request = PushMessageRequest(to=message.recipient, messages=[TextMessage(text=t) for t in texts] + images)
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


def profile_language(user_id: str) -> str:
    """The language of the user's LINE profile, a BCP 47 tag ("ja", "en", "zh-TW"), or "" when
    LINE does not say (the user has not agreed to LINE's privacy policy yet) or cannot be asked
    (no access token, LINE or the network unavailable: the conversation goes on without it)."""
    from linebot.v3.messaging import ApiClient, Configuration, MessagingApi

    if not settings.LINE_CHANNEL_ACCESS_TOKEN:
        return ""
    config = Configuration(host=settings.LINE_API_BASE.rstrip("/"), access_token=settings.LINE_CHANNEL_ACCESS_TOKEN)
    config.retries = 0
    try:
        with ApiClient(config) as client:
            profile = MessagingApi(client).get_profile(user_id, _request_timeout=5)
    except Exception as exc:  # noqa: BLE001  (a missing language is not an error worth retrying)
        log.info("LINE profile of %s not read: %s: %s", user_id, exc.__class__.__name__, str(exc)[:200])
        return ""
    language = getattr(profile, "language", None)
    return language if isinstance(language, str) else ""


def _error_detail(exc) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason or "")[:500]
    except (TypeError, ValueError):
        return str(exc.reason or "")[:500]
