"""Stripe events: what a valid one looks like, which types the mirror handles, storing them once."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection

from .errors import InvalidEvent
from .mirror import KINDS
from .models import WebhookEvent

# The event types whose data.object the mirror keeps. Anything else is stored and ignored.
HANDLED_TYPES = frozenset(
    """
    customer.created customer.updated customer.deleted
    product.created product.updated product.deleted
    price.created price.updated price.deleted
    payment_intent.created payment_intent.succeeded payment_intent.payment_failed
    payment_intent.canceled payment_intent.processing payment_intent.requires_action
    payment_intent.amount_capturable_updated payment_intent.partially_funded
    charge.captured charge.expired charge.failed charge.pending charge.refunded
    charge.succeeded charge.updated
    charge.refund.updated refund.created refund.updated refund.failed
    charge.dispute.created charge.dispute.updated charge.dispute.closed
    charge.dispute.funds_reinstated charge.dispute.funds_withdrawn
    customer.subscription.created customer.subscription.updated customer.subscription.deleted
    customer.subscription.paused customer.subscription.resumed
    customer.subscription.pending_update_applied customer.subscription.pending_update_expired
    customer.subscription.trial_will_end
    invoice.created invoice.deleted invoice.finalized invoice.finalization_failed
    invoice.marked_uncollectible invoice.overdue invoice.overpaid invoice.paid
    invoice.payment_action_required invoice.payment_failed invoice.payment_succeeded
    invoice.sent invoice.updated invoice.voided invoice.will_be_due
    radar.early_fraud_warning.created radar.early_fraud_warning.updated
    """.split()
)

# Types after which the object no longer exists at Stripe; the row is kept, marked deleted.
DELETING_TYPES = frozenset({"customer.deleted", "product.deleted", "price.deleted", "invoice.deleted"})


def validate_event(payload: object) -> dict:
    """Check the shape every Stripe event has; return it or raise InvalidEvent with a short reason."""
    if not isinstance(payload, dict):
        raise InvalidEvent("payload is not a JSON object")
    if payload.get("object") != "event":
        raise InvalidEvent("payload is not an event (object != 'event')")
    event_id = payload.get("id")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise InvalidEvent("event id is missing or malformed")
    if not isinstance(payload.get("type"), str) or not payload["type"] or len(payload["type"]) > 128:
        raise InvalidEvent("event type is missing")
    created = payload.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        raise InvalidEvent("event created is missing or not a timestamp")
    data = payload.get("data")
    # v2 "thin" events carry related_object instead of data.object; both are accepted.
    if not isinstance(data, dict) and not isinstance(payload.get("related_object"), dict):
        raise InvalidEvent("event has no data")
    return payload


def event_object(payload: dict) -> dict | None:
    obj = (payload.get("data") or {}).get("object")
    return obj if isinstance(obj, dict) else None


def event_object_id(payload: dict) -> str:
    obj = event_object(payload)
    if obj and isinstance(obj.get("id"), str):
        return obj["id"][:255]
    related = payload.get("related_object")
    if isinstance(related, dict) and isinstance(related.get("id"), str):
        return related["id"][:255]
    return ""


def event_object_type(payload: dict) -> str:
    obj = event_object(payload)
    if obj and obj.get("object"):
        return obj["object"]
    related = payload.get("related_object") or {}
    return related.get("type") or ""


def is_handled(payload: dict) -> bool:
    return payload["type"] in HANDLED_TYPES


_INSERT_SQL: dict[str, str] = {}


def _insert_sql() -> str:
    vendor = connection.vendor
    if vendor not in _INSERT_SQL:
        qn = connection.ops.quote_name
        cols = [
            "id", "type", "created", "api_version", "livemode", "object_id", "payload",
            "source", "status", "attempts", "last_error", "received_at",
        ]
        placeholders = ["%s::jsonb" if (c == "payload" and vendor == "postgresql") else "%s" for c in cols]
        _INSERT_SQL[vendor] = (
            f"INSERT INTO {qn(WebhookEvent._meta.db_table)} ({', '.join(qn(c) for c in cols)}) "
            f"VALUES ({', '.join(placeholders)}) ON CONFLICT ({qn('id')}) DO NOTHING RETURNING {qn('id')}"
        )
    return _INSERT_SQL[vendor]


def store_event(payload: dict, raw: str | None = None, source: str = WebhookEvent.Source.WEBHOOK) -> tuple[bool, str]:
    """Store an event once. Returns (inserted, status); a repeat returns (False, "").

    One INSERT ... ON CONFLICT DO NOTHING: concurrent deliveries of the same event cannot
    both insert, and the webhook request stays a single statement.
    """
    status = WebhookEvent.Status.PENDING if is_handled(payload) else WebhookEvent.Status.IGNORED
    ops = connection.ops
    now = dt.datetime.now(dt.timezone.utc)
    created = dt.datetime.fromtimestamp(payload["created"], tz=dt.timezone.utc)
    api_version = payload.get("api_version")
    params = [
        payload["id"],
        payload["type"],
        ops.adapt_datetimefield_value(created),
        api_version[:64] if isinstance(api_version, str) else "",
        bool(payload.get("livemode")),
        event_object_id(payload),
        raw if raw is not None else json.dumps(payload, separators=(",", ":")),
        source,
        status,
        0,
        "" if status == WebhookEvent.Status.PENDING else "event type not mirrored",
        ops.adapt_datetimefield_value(now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(), params)
        inserted = cursor.fetchone() is not None
    return inserted, (status if inserted else "")


def mirrored_kind_names() -> list[str]:
    return list(KINDS)
