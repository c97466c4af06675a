"""Stripe-shaped objects and signed events for what localstripe cannot send (the demo, tests).

`samples.json` holds Stripe's own example objects (from stripe/openapi's fixtures3.json,
MIT) for the resources we build; callers put realistic values on top. Signing is Stripe's
scheme, computed with the SDK's own WebhookSignature, so the webhook verifies it exactly
as it verifies Stripe.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from functools import cache
from pathlib import Path

import stripe

_ALPHABET = string.ascii_letters + string.digits


@cache
def _samples() -> dict[str, dict]:
    return json.loads((Path(__file__).with_name("samples.json")).read_text(encoding="utf-8"))["resources"]


def resources() -> dict[str, dict]:
    """Every sample, by Stripe resource name (`charge`, `radar.early_fraud_warning` ...)."""
    return _samples()


def sample(resource: str, **fields) -> dict:
    """A fresh copy of Stripe's example `resource` with `fields` put on top."""
    obj = copy.deepcopy(_samples()[resource])
    obj.update(fields)
    return obj


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's: prefix, underscore, 24 letters and digits."""
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(24))}"


def event(type_: str, obj: dict, *, created: int | None = None, previous_attributes: dict | None = None,
          event_id: str | None = None, api_version: str | None = None) -> dict:
    """A Stripe event around `obj`, in the shape of Stripe's example event.

    api_version defaults to the version the mirror is written for (settings), so the
    object is applied as sent; pass an older one to make the mirror fetch it instead.
    """
    if api_version is None:
        from django.conf import settings

        api_version = settings.STRIPE_API_VERSION
    payload = sample("event")
    data: dict = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    payload.update(
        id=event_id or new_id("evt"),
        type=type_,
        created=created if created is not None else int(time.time()),
        api_version=api_version,
        data=data,
        livemode=False,
        pending_webhooks=1,
        request={"id": None, "idempotency_key": None},
    )
    return payload


def sign(payload: dict | bytes | str, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and the Stripe-Signature header Stripe would send for `payload`."""
    if isinstance(payload, dict):
        body = json.dumps(payload, ensure_ascii=False).encode()
    elif isinstance(payload, str):
        body = payload.encode()
    else:
        body = payload
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode('utf-8', 'replace')}", secret)
    return body, f"t={timestamp},v1={signature}"
