"""The one place that builds a Stripe client, so every call shares the key, base URL and version."""

from __future__ import annotations

import functools
import time

import stripe
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

# Errors worth retrying: the network, Stripe's rate limit, Stripe's own 5xx.
TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.RateLimitError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500


def retry_after_seconds(exc: BaseException, default: float = 1.0) -> float:
    """Seconds Stripe asked us to wait (Retry-After), else `default`."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, min(float(value), 120.0)) if value is not None else default
    except (TypeError, ValueError):
        return default


def is_configured() -> bool:
    return bool(settings.STRIPE_API_KEY)


@functools.cache
@sensitive_variables("key")  # the API key, here and in the SDK's frames below
def _client(key: str, base: str, version: str, timeout: float = 80) -> stripe.StripeClient:
    # A Stripe-compatible server (localstripe in tests and the demo) answers uploads too:
    # Stripe takes them at files.stripe.com, the SDK's "files" base.
    base_addresses = {"api": base, "files": base} if base else None
    return stripe.StripeClient(
        key,
        base_addresses=base_addresses,
        stripe_version=version,
        max_network_retries=0,  # retries are ours: Celery backoff and Retry-After in backfill
        http_client=stripe.new_default_http_client(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    if not settings.STRIPE_API_KEY:
        raise stripe.AuthenticationError("STRIPE_API_KEY is not configured")
    timeout = getattr(settings, "STRIPE_API_TIMEOUT", 80)
    return _client(settings.STRIPE_API_KEY, settings.STRIPE_API_BASE, settings.STRIPE_API_VERSION, timeout)


def resource(name: str):
    """`client().v1.<name>`, where name may be dotted (radar.early_fraud_warnings)."""
    target = client().v1
    for part in name.split("."):
        target = getattr(target, part)
    return target


def to_dict(obj) -> dict:
    """A plain dict of an SDK object, nested objects included.

    for_json: the SDK turns decimal strings (a price's unit_amount_decimal) into Decimal,
    which the mirror's JSON column cannot store; this gives back Stripe's strings.
    """
    return obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)


def now_seconds() -> int:
    return int(time.time())
