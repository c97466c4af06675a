"""What a person does to Stripe from the console: refund a charge, cancel a subscription,
change a customer's metadata, open a billing-portal session.

Each action comes in two halves:

- `plan_*` checks the permission and the input against a fresh read from Stripe (the mirror
  may lag) and returns a plan whose `describe()` says in money terms exactly what will happen:
  the confirmation step shows it;
- the action itself plans again (Stripe may have moved since the confirmation was shown), calls
  Stripe with an idempotency key derived from the confirmation's token, applies Stripe's answer
  to the mirror and writes the audit row (audit.log.record) in one transaction.

A Stripe error or timeout raises `StripeActionFailed` with a message for the person, and leaves
the mirror and the audit log as they were. Nothing here imports console or tickets.

The same confirmation sent again (a double click, a retry after a timeout) returns what the first
did and does nothing twice: a refund is found by its key in its Stripe metadata; a cancellation,
a metadata change or a portal link by the audit log's row for its key (audit.selectors).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlparse

import stripe
from babel import Locale, UnknownLocaleError
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import connection, transaction

from audit import selectors as audit_log
from audit.log import record
from audit.models import AuditAction

from . import stripe_api
from .mirror import ref, upsert_fetched
from .models import Charge, Customer, Dispute, Product, Refund, Subscription
from .money import format_money

# Stripe's own enums and limits.
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
CANCEL_FEEDBACK = (
    "customer_service", "low_quality", "missing_features", "other",
    "switched_service", "too_complex", "too_expensive", "unused",
)
PORTAL_FLOWS = ("payment_method_update", "subscription_cancel", "subscription_update")
PORTAL_LOCALES = frozenset(
    "auto bg cs da de el en en-AU en-CA en-GB en-IE en-IN en-NZ en-SG es es-419 et fi fil fr fr-CA "
    "hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500
ENDED_SUBSCRIPTION = ("canceled", "incomplete_expired")

# How long a confirmation's time stamp (`as_of` of a pro-rata refund) stays good: the refund
# executed is the one the person was shown, computed at that moment.
CONFIRMATION_MAX_AGE = 15 * 60
ESCALATION = "ask in #finance or assign the ticket to Finance"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_KEY_FIELD = "paydesk_idempotency_key"  # in the refund's Stripe metadata, to find it again
_ACTOR_ID_FIELD = "paydesk_actor_id"  # and who asked for it, for the per-charge refund limit


# --- errors ----------------------------------------------------------------------------


class ActionError(Exception):
    """An action did not happen; `message` is written for the person who asked."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


class ActionRefused(ActionError):
    """Bad input, or the object's state does not allow it. Nothing was sent to Stripe."""


class RefundLimitExceeded(ActionRefused):
    def __init__(self, message: str, *, limit: int, currency: str, already: int = 0):
        super().__init__(message, code="refund_limit")
        self.limit, self.currency, self.already = limit, currency, already


class ActionInProgress(ActionError):
    """The same confirmation is being sent right now (a double click)."""


class StripeActionFailed(ActionError):
    """Stripe answered with an error, or could not be reached."""

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None, transient: bool = False):
        super().__init__(message, code=code)
        self.http_status, self.transient = http_status, transient


class PartiallyCompleted(ActionError):
    """The first step happened (and is mirrored and audited); a later one failed."""

    def __init__(self, message: str, *, done, cause: ActionError):
        super().__init__(message, code="partial")
        self.done, self.cause = done, cause


# --- shared helpers ----------------------------------------------------------------------


def _require(actor, perm: str, doing: str) -> None:
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise PermissionDenied(f"Sign in to {doing}.")
    if not actor.has_perm(perm):
        raise PermissionDenied(f"Your role can't {doing}.")


def _idempotency_key(action: str, target: str, token: str) -> str:
    """Stripe's idempotency key for one confirmation: the form's token, scoped to what it confirms."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ActionRefused("This confirmation has no valid token; reload the page and confirm again.", code="token")
    return f"paydesk:{action}:{target}:{token}"


def _audit(actor, action: AuditAction, target: str, **details) -> None:
    record(actor=actor, action=action, target=target, **details)


def _recorded(action: AuditAction, target: str, key: str) -> dict | None:
    """The audit row this confirmation (its idempotency key) left on `target`, if any: the row
    is written in the same transaction as the mirror change, so it says exactly which
    confirmations were carried out."""
    return audit_log.recorded(action, target, idempotency_key=key)


# A confirmation sent to Stripe leaves a mark in the cache for as long as Stripe keeps its key's
# answer, so a retry can tell "my request may have been carried out" from "I never got that far".
# Best effort: without the mark (another process without a shared cache, Redis down, evicted)
# the retry is refused as before, never repeated.
_SENT_FOR = 24 * 3600


def _mark_sent(key: str) -> None:
    try:
        cache.set(f"stripe_actions:sent:{key}", 1, _SENT_FOR)
    except Exception:  # noqa: BLE001  (a cache outage must not stop the action)
        pass


def _was_sent(key: str) -> bool:
    try:
        return bool(cache.get(f"stripe_actions:sent:{key}"))
    except Exception:  # noqa: BLE001
        return False


def _text(value, limit: int, what: str) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ActionRefused(f"The {what} is too long ({len(value)} characters; at most {limit}).")
    return value


@contextlib.contextmanager
def _stripe_call(what: str, *, writes: bool):
    """Turn the SDK's errors into a message a person can act on (never a key or a body)."""
    maybe = (
        " It may or may not have reached Stripe: trying again with the same confirmation is safe — it is never done twice."
        if writes
        else " Nothing was changed."
    )
    try:
        yield
    except stripe.CardError as exc:
        raise StripeActionFailed(
            f"The card network declined to {what}: {exc.user_message or 'no reason given'}.",
            code=exc.code or "card_error", http_status=exc.http_status,
        ) from exc
    except stripe.IdempotencyError as exc:
        raise StripeActionFailed(
            "This confirmation was already used for a different request. Review the action again and confirm it once more.",
            code="idempotency", http_status=exc.http_status,
        ) from exc
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            message = f"Stripe couldn't {what}: {exc.user_message or 'no such object'}."
        else:
            message = f"Stripe refused to {what}: {exc.user_message or 'invalid request'}."
        raise StripeActionFailed(message, code=exc.code or "invalid_request", http_status=exc.http_status) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        problem = "rejected Paydesk's API key" if stripe_api.is_configured() else "is not configured here (no API key)"
        raise StripeActionFailed(
            f"Stripe {problem}, so Paydesk couldn't {what}. Tell an admin.",
            code="authentication", http_status=exc.http_status,
        ) from exc
    except stripe.RateLimitError as exc:
        raise StripeActionFailed(
            f"Stripe is limiting requests right now and did not {what}. Try again in a few seconds.",
            code="rate_limit", http_status=exc.http_status, transient=True,
        ) from exc
    except stripe.APIConnectionError as exc:
        raise StripeActionFailed(
            f"Couldn't reach Stripe to {what} (network error or timeout).{maybe}",
            code="connection", transient=True,
        ) from exc
    except stripe.APIError as exc:
        raise StripeActionFailed(
            f"Stripe had an internal error (HTTP {exc.http_status or 500}) while trying to {what}.{maybe}",
            code="api_error", http_status=exc.http_status, transient=True,
        ) from exc
    except stripe.StripeError as exc:
        raise StripeActionFailed(
            f"Stripe answered with an error while trying to {what}: {exc.user_message or exc.__class__.__name__}.",
            code=exc.code or "stripe_error", http_status=exc.http_status,
        ) from exc


def _fetch(resource: str, object_id: str, what: str) -> dict:
    with _stripe_call(what, writes=False):
        return stripe_api.to_dict(stripe_api.resource(resource).retrieve(object_id))


@contextlib.contextmanager
def _single_flight(key: str):
    """One attempt per confirmation at a time, across processes (PostgreSQL advisory lock).

    Stripe's idempotency key already makes a concurrent duplicate harmless at Stripe; this
    keeps the local check-then-create from racing too. SQLite (the demo) has one writer anyway.
    """
    if connection.vendor != "postgresql":
        yield
        return
    lock = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock])
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise ActionInProgress("This is already being sent to Stripe (a double click?). Wait a moment and reload.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def _when(seconds: int | None) -> str:
    if not seconds:
        return "an unknown date"
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: int) -> str:
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours = rest // 3600
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours or not days:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts)


def _customer_name(customer_id: str, fallback: str = "") -> str:
    if fallback:
        return fallback
    if customer_id:
        name = Customer.objects.filter(pk=customer_id).values_list("name", flat=True).first()
        if name:
            return name
    return ""


def _possessive(name: str) -> str:
    return f"{name}'s" if name else "the customer's"


# --- refund limits -------------------------------------------------------------------------


def refund_limit(actor, currency: str) -> int | None:
    """The largest refund `actor` may issue in `currency` (minor units); None: no limit."""
    if getattr(actor, "is_superuser", False):
        return None
    limits = getattr(settings, "PAYMENTS_REFUND_LIMITS", {}) or {}
    if not isinstance(limits, dict):
        raise ImproperlyConfigured("PAYMENTS_REFUND_LIMITS must map role names to limits")
    currency = currency.lower()
    best = 0
    for role in actor.groups.values_list("name", flat=True):
        if role not in limits:
            continue
        per_currency = limits[role]
        if per_currency is None:
            return None
        if not isinstance(per_currency, dict):
            raise ImproperlyConfigured(f"PAYMENTS_REFUND_LIMITS[{role!r}] must be null or a currency map")
        value = per_currency.get(currency, per_currency.get("*", 0))
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ImproperlyConfigured(f"PAYMENTS_REFUND_LIMITS[{role!r}][{currency!r}] must be a whole number ≥ 0")
        best = max(best, value)
    return best


def _by_actor(refund: dict, actor) -> bool:
    """Whether Paydesk made `refund` for `actor` (its Stripe metadata names them)."""
    metadata = refund.get("metadata") or {}
    if metadata.get(_ACTOR_ID_FIELD):
        return metadata[_ACTOR_ID_FIELD] == str(actor.pk)
    # Refunds made before the id was written carry the username only.
    return bool(metadata.get(_KEY_FIELD)) and metadata.get("paydesk_actor") == actor.get_username()[:500]


def _list_refunds(charge_id: str) -> list[dict]:
    """Every refund of the charge, as Stripe has them now (the mirror may lag)."""
    with _stripe_call(f"check earlier refunds of {charge_id}", writes=False):
        return [
            stripe_api.to_dict(refund)
            for refund in stripe_api.resource("refunds").list({"charge": charge_id, "limit": 100}).auto_paging_iter()
        ]


def refunded_by(actor, charge_id: str, refunds: list[dict] | None = None) -> int:
    """What `actor` already refunded of a charge through Paydesk (minor units): refunds that
    went through (pending or succeeded), the pro-rata refunds of cancellations included."""
    if refunds is None:
        refunds = _list_refunds(charge_id)
    return sum(
        int(r.get("amount") or 0) for r in refunds
        if r.get("status") not in ("failed", "canceled") and _by_actor(r, actor)
    )


def _check_limit(actor, amount: int, currency: str, charge_id: str, refunds: list[dict] | None = None) -> None:
    """The limit is per charge and per person: what `actor` already refunded of this charge
    counts, so three refunds of ¥10,000 can't pass a ¥10,000 limit. Another person has their own."""
    limit = refund_limit(actor, currency)
    if limit is None:
        return
    if limit == 0:
        raise RefundLimitExceeded(f"Refunds in {currency.upper()} need finance — {ESCALATION}.", limit=0, currency=currency)
    if amount > limit:  # over on its own: no need to ask Stripe about earlier ones
        raise RefundLimitExceeded(
            f"Refunds above {_money(limit, currency)} need finance — {ESCALATION}.", limit=limit, currency=currency
        )
    already = refunded_by(actor, charge_id, refunds)
    if already + amount <= limit:
        return
    raise RefundLimitExceeded(
        f"You have already refunded {_money(already, currency)} of this charge; refunds above "
        f"{_money(limit, currency)} per charge need finance — {ESCALATION}.",
        limit=limit, currency=currency, already=already,
    )


# --- refunds -------------------------------------------------------------------------------


def _payment_method_label(charge: dict) -> str:
    details = charge.get("payment_method_details") or {}
    if details.get("type") == "card":
        card = details.get("card") or {}
        brand = (card.get("brand") or "").replace("_", " ").title()
        if brand and card.get("last4"):
            return f"{brand} card ending {card['last4']}"
        return "card"
    if details.get("type"):
        return details["type"].replace("_", " ") + " account"
    source = charge.get("source") or {}
    if isinstance(source, dict) and source.get("object") == "card":
        return "card"
    return "payment method"


def _refundable(charge: dict) -> int:
    """What can still be refunded: the amount less what was refunded (Stripe counts a
    released, uncaptured part of a charge as refunded), never above what was captured."""
    remainder = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    if charge.get("amount_captured") is not None:
        remainder = min(remainder, int(charge["amount_captured"]))
    return max(0, remainder)


def _dispute_status(charge: dict) -> str | None:
    """The status of a dispute on the charge, from Stripe's answer or the mirror (None: none)."""
    charge_id = charge["id"]
    status = Dispute.objects.filter(charge=charge_id).order_by("-created").values_list("status", flat=True).first()
    if status:
        return status
    if charge.get("disputed") or Charge.objects.filter(pk=charge_id, disputed=True).exists():
        return "open"
    return None


@dataclass(frozen=True)
class RefundPlan:
    charge_id: str
    amount: int
    currency: str
    charge_amount: int
    already_refunded: int
    customer_name: str
    payment_method: str
    charge: dict = field(repr=False, compare=False)

    @property
    def remaining_after(self) -> int:
        return _refundable(self.charge) - self.amount

    def describe(self) -> str:
        m = lambda amount: _money(amount, self.currency)  # noqa: E731
        text = (
            f"Refund {m(self.amount)} of {m(self.charge_amount)} to {_possessive(self.customer_name)} "
            f"{self.payment_method} (charge {self.charge_id})"
        )
        if self.already_refunded:
            text += f"; {m(self.already_refunded)} was refunded before"
        if self.remaining_after:
            return text + f"; {m(self.remaining_after)} stays captured."
        return text + "; the charge is then fully refunded."


@dataclass(frozen=True)
class RefundResult:
    refund: dict
    charge: dict
    plan: RefundPlan | None
    replayed: bool  # True: this confirmation had already refunded; nothing new happened

    @property
    def message(self) -> str:
        amount = _money(self.refund.get("amount") or 0, self.refund.get("currency") or "")
        if self.replayed:
            return f"Already refunded {amount} with this confirmation ({self.refund['id']}); nothing was refunded again."
        return f"Refunded {amount} ({self.refund['id']})."


def build_refund_plan(
    actor, charge: dict, *, amount: int | None, currency: str, refunds: list[dict] | None = None
) -> RefundPlan:
    """Validate a refund of `charge` (as Stripe just returned it) and say what it will do.
    `refunds`: the charge's refunds if already listed (for the per-charge limit)."""
    charge_id = charge["id"]
    charge_currency = (charge.get("currency") or "").lower()
    if currency != charge_currency:
        raise ActionRefused(
            f"Charge {charge_id} is in {charge_currency.upper()}, not {currency.upper()}: refunds are in the charge's currency.",
            code="currency",
        )
    if charge.get("status") == "failed":
        raise ActionRefused(f"Charge {charge_id} failed: no money was taken, so there is nothing to refund.", code="failed")
    if charge.get("captured") is False:
        raise ActionRefused(
            f"Charge {charge_id} is only authorized, not captured: release the authorization instead of refunding.",
            code="uncaptured",
        )
    dispute = _dispute_status(charge)
    if dispute:
        raise ActionRefused(
            f"Charge {charge_id} is disputed ({dispute.replace('_', ' ')}). A refund now could pay the customer twice; "
            "the dispute is handled in finance's dispute queue.",
            code="disputed",
        )
    refundable = _refundable(charge)
    if refundable <= 0:
        raise ActionRefused(f"Charge {charge_id} is already fully refunded.", code="fully_refunded")
    if amount is None:
        amount = refundable
    if amount > refundable:
        refunded = int(charge.get("amount_refunded") or 0)
        raise ActionRefused(
            f"Only {_money(refundable, currency)} of {_money(int(charge.get('amount') or 0), currency)} can still be "
            f"refunded ({_money(refunded, currency)} already refunded); {_money(amount, currency)} is more than that.",
            code="above_remainder",
        )
    _check_limit(actor, amount, currency, charge_id, refunds)
    billing_name = (charge.get("billing_details") or {}).get("name") or ""
    return RefundPlan(
        charge_id=charge_id,
        amount=amount,
        currency=currency,
        charge_amount=int(charge.get("amount") or 0),
        already_refunded=int(charge.get("amount_refunded") or 0),
        customer_name=_customer_name(ref(charge.get("customer")), billing_name),
        payment_method=_payment_method_label(charge),
        charge=charge,
    )


def _check_amount(amount) -> None:
    if amount is None:
        return
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ActionRefused("The refund amount must be a whole number of minor units (cents, yen).", code="amount")
    if amount <= 0:
        raise ActionRefused("The refund amount must be more than zero.", code="amount")


def _currency(currency: str | None) -> str:
    currency = (currency or "").strip().lower()
    if not currency:
        raise ActionRefused("Say which currency the refund is in.", code="currency")
    return currency


def plan_refund(actor, charge_id: str, *, amount: int | None = None, currency: str) -> RefundPlan:
    """Check a refund against Stripe's current charge; `describe()` it for the confirmation."""
    _require(actor, "payments.refund_charge", "refund charges")
    _check_amount(amount)
    currency = _currency(currency)
    charge = _fetch("charges", charge_id, f"read charge {charge_id}")
    return build_refund_plan(actor, charge, amount=amount, currency=currency)


def _find_refund(charge_id: str, key: str, refunds: list[dict] | None = None) -> tuple[dict | None, bool]:
    """A refund this confirmation already made: (refund, already in the mirror).
    `refunds`: the charge's refunds at Stripe if already listed."""
    mirrored = Refund.objects.filter(charge=charge_id, **{f"data__metadata__{_KEY_FIELD}": key}).values_list("data", flat=True).first()
    if mirrored:
        return mirrored, True
    # Stripe is the truth: a refund made by an attempt whose answer never reached us
    # (a timeout) is there even though nothing was mirrored or audited.
    for refund in _list_refunds(charge_id) if refunds is None else refunds:
        if (refund.get("metadata") or {}).get(_KEY_FIELD) == key and refund.get("status") not in ("failed", "canceled"):
            return refund, False
    return None, False


def _refund_audited(charge_id: str, key: str) -> bool:
    """Whether this confirmation's refund is in the audit log. Being mirrored is not enough:
    the webhook may mirror a refund whose answer never reached us, before the retry comes."""
    return _recorded(AuditAction.CHARGE_REFUND, charge_id, key) is not None


def _apply_refund(actor, refund: dict, charge: dict | None, plan: RefundPlan | None, *, action: AuditAction, reason: str,
                  note: str, ticket_ref: str, key: str, **extra) -> None:
    """Mirror the refund (and the charge as re-read) and audit it, in one transaction."""
    with transaction.atomic():
        upsert_fetched([refund] + ([charge] if charge else []), stripe_api.now_seconds())
        _audit(
            actor, action, ref(refund.get("charge")) or (charge or {}).get("id", ""),
            refund=refund["id"], amount=refund.get("amount"), currency=refund.get("currency"),
            reason=reason, note=note, ticket=ticket_ref, idempotency_key=key,
            description=plan.describe() if plan else "", **extra,
        )


def _create_refund(actor, plan: RefundPlan, *, key: str, reason: str, note: str, ticket_ref: str,
                   action: AuditAction = AuditAction.CHARGE_REFUND, **extra) -> tuple[dict, dict | None]:
    metadata = {_KEY_FIELD: key, "paydesk_actor": actor.get_username()[:500], _ACTOR_ID_FIELD: str(actor.pk)}
    if ticket_ref:
        metadata["paydesk_ticket"] = ticket_ref
    if note:
        metadata["paydesk_note"] = note
    params = {"charge": plan.charge_id, "amount": plan.amount, "reason": reason, "metadata": metadata}
    with _stripe_call(f"refund {_money(plan.amount, plan.currency)} of charge {plan.charge_id}", writes=True):
        refund = stripe_api.to_dict(stripe_api.resource("refunds").create(params, {"idempotency_key": key}))
    try:
        charge = _fetch("charges", plan.charge_id, f"read charge {plan.charge_id}")
    except StripeActionFailed:
        # The refund happened and must be recorded; the charge.refunded webhook brings the charge.
        charge = None
    _apply_refund(actor, refund, charge, plan, action=action, reason=reason, note=note, ticket_ref=ticket_ref, key=key, **extra)
    return refund, charge


def refund_charge(
    actor,
    charge_id: str,
    *,
    amount: int | None = None,
    currency: str,
    reason: str = "requested_by_customer",
    note: str = "",
    ticket_ref: str | None = None,
    idempotency_key: str,
) -> RefundResult:
    """Refund `amount` (minor units; None: all that remains) of a charge.

    `idempotency_key` is the confirmation form's token (a UUID): the same token never
    refunds twice, whether the second submit comes from a double click, a retry after a
    timeout, or another worker.
    """
    _require(actor, "payments.refund_charge", "refund charges")
    _check_amount(amount)
    currency = _currency(currency)
    if reason not in REFUND_REASONS:
        raise ActionRefused(f"Pick a refund reason: {', '.join(r.replace('_', ' ') for r in REFUND_REASONS)}.", code="reason")
    note = _text(note, METADATA_VALUE_MAX, "note")
    ticket_ref = _text(ticket_ref, 100, "ticket reference")
    key = _idempotency_key("refund", charge_id, idempotency_key)
    with _single_flight(key):
        charge = _fetch("charges", charge_id, f"read charge {charge_id}")
        # One list of the charge's refunds serves the replay check and the per-charge limit.
        refunds = _list_refunds(charge_id) if refund_limit(actor, currency) is not None else None
        existing, mirrored = _find_refund(charge_id, key, refunds)
        if existing:
            if amount is not None and existing.get("amount") != amount:
                raise ActionRefused(
                    f"This confirmation already refunded {_money(existing['amount'], existing.get('currency') or '')} "
                    f"({existing['id']}); a different amount needs a new confirmation.",
                    code="token_reused",
                )
            # Read again: the earlier attempt may have landed after the read above.
            charge = _fetch("charges", charge_id, f"read charge {charge_id}")
            if _refund_audited(charge_id, key):
                upsert_fetched([charge], stripe_api.now_seconds())
            else:
                # Made by an attempt that never heard back: mirror and audit it now.
                _apply_refund(actor, existing, charge, None, action=AuditAction.CHARGE_REFUND, reason=reason, note=note,
                              ticket_ref=ticket_ref, key=key, recovered=True)
            return RefundResult(existing, charge, None, replayed=True)
        plan = build_refund_plan(actor, charge, amount=amount, currency=currency, refunds=refunds)
        refund, charge = _create_refund(actor, plan, key=key, reason=reason, note=note, ticket_ref=ticket_ref)
    return RefundResult(refund, charge or plan.charge, plan, replayed=False)


# --- subscriptions -------------------------------------------------------------------------


def subscription_period(subscription: dict) -> tuple[int | None, int | None]:
    """(start, end) of the current period; since API 2025-03-31 it lives on the items."""
    start, end = subscription.get("current_period_start"), subscription.get("current_period_end")
    if start is None or end is None:
        items = (subscription.get("items") or {}).get("data") or []
        starts = [i["current_period_start"] for i in items if i.get("current_period_start")]
        ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
        start = start if start is not None else (min(starts) if starts else None)
        end = end if end is not None else (max(ends) if ends else None)
    return (int(start) if start else None, int(end) if end else None)


def prorated_amount(amount_paid: int, period_start: int, period_end: int, as_of: int) -> tuple[int, int, int]:
    """(refund, unused seconds, period seconds) for the unused part of a paid period.

    Integer minor units, rounded down: the refund never exceeds the exact share.
    """
    period = int(period_end) - int(period_start)
    if period <= 0 or amount_paid <= 0:
        return 0, 0, max(period, 0)
    unused = min(max(int(period_end) - int(as_of), 0), period)
    return int(amount_paid) * unused // period, unused, period


def _subscription_label(subscription: dict) -> str:
    items = (subscription.get("items") or {}).get("data") or []
    if not items:
        return ""
    item = items[0]
    price = item.get("price") or item.get("plan") or {}
    if isinstance(price, dict):
        if price.get("nickname"):
            return price["nickname"]
        if price.get("name"):  # old plans carry a name
            return price["name"]
        product = price.get("product")
        if isinstance(product, dict) and product.get("name"):
            return product["name"]
        name = Product.objects.filter(pk=ref(product)).values_list("name", flat=True).first() if product else None
        if name:
            return name
    return ""


@dataclass(frozen=True)
class ProrataRefund:
    invoice_id: str
    amount_paid: int
    base: int  # what is prorated: the amount paid less what was refunded of it since
    unused_seconds: int
    period_seconds: int
    refund: RefundPlan


@dataclass(frozen=True)
class CancelPlan:
    subscription_id: str
    at_period_end: bool
    period_start: int | None
    period_end: int | None
    as_of: int
    customer_name: str
    label: str
    currency: str
    prorata: ProrataRefund | None
    subscription: dict = field(repr=False, compare=False)

    def describe(self) -> str:
        what = f"{_possessive(self.customer_name)} subscription {self.subscription_id}"
        if self.label:
            what += f" ({self.label})"
        if self.at_period_end:
            return (
                f"Cancel {what} at the end of the current period, on {_when(self.period_end)}: it stays active "
                "until then and does not renew. Nothing is refunded."
            )
        if self.prorata is None:
            return f"Cancel {what} now. Nothing is refunded."
        p = self.prorata
        m = lambda amount: _money(amount, p.refund.currency)  # noqa: E731
        if p.refund.amount == 0:
            return f"Cancel {what} now. Nothing is left to refund for the unused time, so nothing is refunded."
        paid = f"the {m(p.amount_paid)} paid"
        if p.base < p.amount_paid:
            paid = f"the {m(p.base)} still kept of the {m(p.amount_paid)} paid"
        return (
            f"Cancel {what} now and refund {m(p.refund.amount)} of {paid} on invoice "
            f"{p.invoice_id} to {_possessive(self.customer_name)} {p.refund.payment_method} (charge {p.refund.charge_id}): "
            f"{_span(p.unused_seconds)} of the period's {_span(p.period_seconds)} (to {_when(self.period_end)}) are unused."
        )


@dataclass(frozen=True)
class CancelResult:
    subscription: dict
    plan: CancelPlan | None  # None when this confirmation had already done it (replayed)
    refund: dict | None = None
    at_period_end: bool = False
    replayed: bool = False  # this confirmation had already canceled it: nothing was sent to cancel it again
    recovered: bool = False  # Stripe had canceled it, but the answer to this confirmation never came back
    refund_earlier: bool = False  # the refund was made by this confirmation before, not by this call

    @property
    def message(self) -> str:
        sub_id = self.subscription.get("id") or (self.plan.subscription_id if self.plan else "")
        if self.replayed:
            done = "set subscription {} to cancel at the end of its period" if self.at_period_end else "canceled subscription {}"
            text = f"This confirmation already {done.format(sub_id)}; nothing was sent to Stripe again."
        elif self.at_period_end:
            text = f"Subscription {sub_id} will cancel at the end of its period and not renew."
        else:
            text = f"Subscription {sub_id} is canceled."
        if self.recovered:
            text += " (Stripe had done it on this confirmation's earlier attempt, whose answer never came back.)"
        if self.refund:
            amount = _money(self.refund.get("amount") or 0, self.refund.get("currency") or "")
            if self.refund_earlier:
                text += f" Its refund of {amount} for the unused time ({self.refund['id']}) was made then."
            else:
                text += f" Refunded {amount} for the unused time ({self.refund['id']})."
        return text


def _ended_at(subscription: dict) -> int | None:
    return subscription.get("ended_at") or subscription.get("canceled_at")


def _last_paid_invoice(subscription_id: str) -> dict | None:
    with _stripe_call(f"list the invoices of {subscription_id}", writes=False):
        listed = [stripe_api.to_dict(i) for i in stripe_api.resource("invoices").list({"subscription": subscription_id, "limit": 10}).data]
    paid = [i for i in listed if i.get("status") == "paid" and (i.get("amount_paid") or 0) > 0]
    return max(paid, key=lambda i: (i.get("created") or 0, i["id"])) if paid else None


def _invoice_charge_id(invoice: dict) -> str:
    """The charge that paid an invoice; since API 2025-03-31 it is found through its payments."""
    charge_id = ref(invoice.get("charge"))
    if charge_id:
        return charge_id
    with _stripe_call(f"read the payments of invoice {invoice['id']}", writes=False):
        for payment in stripe_api.resource("invoice_payments").list({"invoice": invoice["id"], "limit": 10}).data:
            payment = stripe_api.to_dict(payment)
            if payment.get("status") != "paid":
                continue
            detail = payment.get("payment") or {}
            if ref(detail.get("charge")):
                return ref(detail["charge"])
            if ref(detail.get("payment_intent")):
                intent = stripe_api.to_dict(stripe_api.resource("payment_intents").retrieve(ref(detail["payment_intent"])))
                if ref(intent.get("latest_charge")):
                    return ref(intent["latest_charge"])
    return ""


def _covers(invoice: dict, period_end: int) -> bool:
    lines = (invoice.get("lines") or {}).get("data") or []
    if lines:
        return any(int((line.get("period") or {}).get("end") or 0) == period_end for line in lines)
    return int(invoice.get("period_end") or 0) == period_end


def plan_cancel(
    actor, subscription_id: str, *, at_period_end: bool, refund_last_invoice_prorated: bool = False, as_of: int | None = None
) -> CancelPlan:
    """Check a cancellation against Stripe's current subscription; `describe()` it."""
    return _plan_cancel(
        actor, subscription_id, at_period_end=at_period_end,
        refund_last_invoice_prorated=refund_last_invoice_prorated, as_of=as_of,
    )


def _plan_cancel(
    actor, subscription_id: str, *, at_period_end: bool, refund_last_invoice_prorated: bool, as_of: int | None,
    carried_out: dict | None = None,
) -> CancelPlan:
    """`carried_out`: the subscription as Stripe returned it, canceled (or canceling) by this
    confirmation's earlier attempt; the plan then says what that attempt did (and the refund it owes)."""
    _require(actor, "payments.cancel_subscription", "cancel subscriptions")
    if refund_last_invoice_prorated:
        _require(actor, "payments.refund_charge", "refund charges")
        if at_period_end:
            raise ActionRefused(
                "A subscription canceled at the end of its period uses all of it: there is no unused time to refund.",
                code="refund_at_period_end",
            )
    now = stripe_api.now_seconds()
    if as_of is None:
        as_of = now
    elif not (now - CONFIRMATION_MAX_AGE <= int(as_of) <= now + 60):
        raise ActionRefused("This confirmation is too old; review the cancellation again.", code="stale")
    as_of = int(as_of)
    sub = carried_out or _fetch("subscriptions", subscription_id, f"read subscription {subscription_id}")
    status = sub.get("status") or ""
    if status in ENDED_SUBSCRIPTION and not carried_out:
        raise ActionRefused(
            f"Subscription {subscription_id} is already canceled (since {_when(_ended_at(sub))}).", code="already_canceled"
        )
    start, end = subscription_period(sub)
    if at_period_end and (sub.get("cancel_at_period_end") or sub.get("cancel_at")) and not carried_out:
        when = sub.get("cancel_at") or end
        raise ActionRefused(
            f"Subscription {subscription_id} is already set to cancel on {_when(when)}.", code="already_canceling"
        )
    currency = (sub.get("currency") or "").lower()
    prorata = None
    if refund_last_invoice_prorated:
        if not (start and end):
            raise ActionRefused(f"Stripe shows no current period for {subscription_id}, so there is nothing to prorate.")
        invoice = _last_paid_invoice(subscription_id)
        if invoice is None:
            raise ActionRefused(f"Subscription {subscription_id} has no paid invoice to refund.", code="no_invoice")
        if not _covers(invoice, end):
            raise ActionRefused(
                f"The last paid invoice ({invoice['id']}) is not for the current period; refund its charge from the charge instead.",
                code="invoice_period",
            )
        charge_id = _invoice_charge_id(invoice)
        if not charge_id:
            raise ActionRefused(f"Invoice {invoice['id']} has no charge to refund (paid another way?).", code="no_charge")
        charge = _fetch("charges", charge_id, f"read charge {charge_id}")
        paid = int(invoice.get("amount_paid") or 0)
        # What was already refunded of that payment is not paid any more: prorate the rest.
        base = min(paid, _refundable(charge))
        amount, unused, period = prorated_amount(base, start, end, as_of)
        charge_currency = (charge.get("currency") or "").lower()
        if amount > 0:
            refund_plan = build_refund_plan(actor, charge, amount=amount, currency=charge_currency)
        else:
            refund_plan = RefundPlan(
                charge_id=charge_id, amount=0, currency=charge_currency, charge_amount=int(charge.get("amount") or 0),
                already_refunded=int(charge.get("amount_refunded") or 0), customer_name="", payment_method="", charge=charge,
            )
        prorata = ProrataRefund(invoice["id"], paid, base, unused, period, refund_plan)
        currency = charge_currency
    return CancelPlan(
        subscription_id=subscription_id,
        at_period_end=at_period_end,
        period_start=start,
        period_end=end,
        as_of=as_of,
        customer_name=_customer_name(ref(sub.get("customer"))),
        label=_subscription_label(sub),
        currency=currency,
        prorata=prorata,
        subscription=sub,
    )


def cancel_subscription(
    actor,
    subscription_id: str,
    *,
    at_period_end: bool,
    refund_last_invoice_prorated: bool = False,
    feedback: str = "",
    comment: str = "",
    ticket_ref: str | None = None,
    idempotency_key: str,
    as_of: int | None = None,
) -> CancelResult:
    """Cancel now or at the period's end; when canceling now, optionally refund the unused
    part of the last paid invoice (computed at `as_of`, the time the confirmation was shown).

    The cancellation is mirrored and audited before the refund is sent: if the refund then
    fails, `PartiallyCompleted` says so and carries the cancellation.

    `idempotency_key` is the confirmation form's token. The same confirmation sent again (a
    double click, a retry after a timeout) returns what the first did, with `replayed`: the
    audit log's row for its key says it was done, so nothing is sent to Stripe again and nothing
    is audited twice; a pro-rata refund that failed the first time is made then (its own key:
    never twice). If Stripe canceled but its answer never came back (no row), the retry of a
    confirmation that did reach the sending step finds the subscription canceled after it was
    shown and records it (`recovered`). Another confirmation on a canceled subscription is refused.
    """
    feedback = (feedback or "").strip()
    if feedback and feedback not in CANCEL_FEEDBACK:
        raise ActionRefused(f"Unknown cancellation feedback {feedback!r}.", code="feedback")
    comment = _text(comment, 5000, "comment")
    ticket_ref = _text(ticket_ref, 100, "ticket reference")
    key = _idempotency_key("cancel", subscription_id, idempotency_key)
    with _single_flight(key):
        records = audit_log.details_of(AuditAction.SUBSCRIPTION_CANCEL, subscription_id)
        done = next((r for r in records if r.get("idempotency_key") == key), None)
        if done is not None:
            return _cancel_again(
                actor, subscription_id, done, at_period_end=at_period_end, prorated=refund_last_invoice_prorated,
                token=idempotency_key, ticket_ref=ticket_ref,
            )
        recovered = False
        try:
            plan = plan_cancel(
                actor, subscription_id, at_period_end=at_period_end,
                refund_last_invoice_prorated=refund_last_invoice_prorated, as_of=as_of,
            )
        except ActionRefused as exc:
            plan = _lost_answer(actor, exc, records, subscription_id, key, at_period_end=at_period_end,
                                prorated=refund_last_invoice_prorated, as_of=as_of)
            if plan is None:
                raise
            recovered = True
        details = {k: v for k, v in (("feedback", feedback), ("comment", comment)) if v}
        params: dict = {"cancellation_details": details} if details else {}
        _mark_sent(key)
        if at_period_end:
            # Recovering, this is the first request again with its key: Stripe answers it from
            # its idempotency record (24 hours) instead of updating the subscription twice.
            with _stripe_call(f"set {subscription_id} to cancel at the end of its period", writes=True):
                sub = stripe_api.resource("subscriptions").update(
                    subscription_id, {"cancel_at_period_end": True, **params}, {"idempotency_key": key}
                )
        elif recovered:
            # Stripe ignores idempotency keys on DELETE (and localstripe would end it again):
            # what it showed is the answer.
            sub = plan.subscription
        else:
            with _stripe_call(f"cancel {subscription_id}", writes=True):
                sub = stripe_api.resource("subscriptions").cancel(subscription_id, params, {"idempotency_key": key})
        sub = stripe_api.to_dict(sub)
        prorata = plan.prorata
        with transaction.atomic():
            upsert_fetched([sub], stripe_api.now_seconds())
            _audit(
                actor, AuditAction.SUBSCRIPTION_CANCEL, subscription_id,
                at_period_end=at_period_end, feedback=feedback, comment=comment, ticket=ticket_ref,
                refund_amount=prorata.refund.amount if prorata else 0,
                currency=plan.currency, idempotency_key=key, description=plan.describe(),
                # What a retry of this confirmation needs to finish the refund it promised.
                as_of=plan.as_of, prorated=refund_last_invoice_prorated,
                refund_charge=prorata.refund.charge_id if prorata else "", invoice=prorata.invoice_id if prorata else "",
                **({"recovered": True} if recovered else {}),
            )
        result = CancelResult(sub, plan, at_period_end=at_period_end, recovered=recovered)
        if prorata is None or prorata.refund.amount <= 0:
            return result
        return _prorata_refund(
            actor, result, prorata.refund.charge_id, token=idempotency_key, ticket_ref=ticket_ref,
            invoice_id=prorata.invoice_id, plan=prorata.refund,
        )


def _cancel_again(
    actor, subscription_id: str, done: dict, *, at_period_end: bool, prorated: bool, token: str, ticket_ref: str
) -> CancelResult:
    """The same confirmation again: what it did (from its audit row), and the refund it still owes."""
    _require(actor, "payments.cancel_subscription", "cancel subscriptions")
    did_period_end = bool(done.get("at_period_end"))
    did_prorate = done.get("prorated")
    if did_period_end != at_period_end or (did_prorate is not None and bool(did_prorate) != prorated):
        what = "set it to cancel at the end of its period" if did_period_end else "canceled it"
        raise ActionRefused(
            f"This confirmation already {what}{' with a refund' if did_prorate else ''}; "
            "anything else needs a new confirmation.",
            code="token_reused",
        )
    sub = Subscription.objects.filter(pk=subscription_id).values_list("data", flat=True).first()
    if not sub:
        sub = _fetch("subscriptions", subscription_id, f"read subscription {subscription_id}")
    result = CancelResult(sub, None, at_period_end=did_period_end, replayed=True)
    amount, charge_id = int(done.get("refund_amount") or 0), done.get("refund_charge") or ""
    if amount <= 0 or not charge_id:
        return result
    _require(actor, "payments.refund_charge", "refund charges")
    return _prorata_refund(
        actor, result, charge_id, token=token, ticket_ref=ticket_ref, invoice_id=done.get("invoice") or "",
        amount=amount, currency=done.get("currency") or "",
    )


def _lost_answer(
    actor, refused: ActionRefused, records: list[dict], subscription_id: str, key: str, *,
    at_period_end: bool, prorated: bool, as_of: int | None,
) -> CancelPlan | None:
    """Stripe shows the subscription canceled (or canceling), and this confirmation, already sent
    to Stripe once, left no audit row: was it its attempt whose answer never came back (a timeout)?
    Yes when nothing in Paydesk did it otherwise, and Stripe's state is what this confirmation asked
    for, reached after it was shown. Then the plan of what it did; else None (refused as before)."""
    if refused.code not in ("already_canceled", "already_canceling") or not _was_sent(key):
        return None
    if any(bool(r.get("at_period_end")) == at_period_end for r in records):
        return None  # another confirmation in Paydesk did this: it is theirs
    sub = _fetch("subscriptions", subscription_id, f"read subscription {subscription_id}")
    reason = (sub.get("cancellation_details") or {}).get("reason")
    if reason in ("payment_failed", "payment_disputed"):
        return None  # Stripe ended it on its own
    ended = (sub.get("status") or "") in ENDED_SUBSCRIPTION
    if at_period_end:
        if ended or not sub.get("cancel_at_period_end"):
            return None
    elif not ended or as_of is None or int(_ended_at(sub) or 0) < int(as_of) - 60:
        return None  # not after this confirmation was shown: not its doing
    try:
        return _plan_cancel(
            actor, subscription_id, at_period_end=at_period_end, refund_last_invoice_prorated=prorated,
            as_of=as_of, carried_out=sub,
        )
    except ActionRefused:
        return None


def _prorata_refund(
    actor, result: CancelResult, charge_id: str, *, token: str, ticket_ref: str, invoice_id: str,
    plan: RefundPlan | None = None, amount: int = 0, currency: str = "",
) -> CancelResult:
    """The refund of the unused time, after the cancellation is recorded; its key is the
    confirmation's, so a retry makes it at most once. Without `plan` (a retry), the refund
    recorded with the cancellation is looked for, and made if it never was."""
    subscription_id = result.subscription.get("id") or ""
    refund_key = _idempotency_key("prorata", charge_id, token)
    note = f"Unused time of {subscription_id}, canceled"
    try:
        if plan is None:
            refunds = _list_refunds(charge_id)  # Stripe's: the earlier attempt's answer may never have come back
            existing, mirrored = _find_refund(charge_id, refund_key, refunds)
            if existing:
                if not _refund_audited(charge_id, refund_key):  # made, its answer lost: record it now
                    _apply_refund(actor, existing, None, None, action=AuditAction.CHARGE_REFUND, reason="requested_by_customer",
                                  note=note, ticket_ref=ticket_ref, key=refund_key, subscription=subscription_id,
                                  invoice=invoice_id, recovered=True)
                return replace(result, refund=existing, refund_earlier=True)
            charge = _fetch("charges", charge_id, f"read charge {charge_id}")
            plan = build_refund_plan(actor, charge, amount=amount, currency=currency, refunds=refunds)
        refund, _ = _create_refund(
            actor, plan, key=refund_key, reason="requested_by_customer", note=note, ticket_ref=ticket_ref,
            subscription=subscription_id, invoice=invoice_id,
        )
    except ActionError as exc:
        amount = plan.amount if plan else amount
        currency = plan.currency if plan else currency
        done = "was already canceled by this confirmation" if result.replayed else "is canceled"
        raise PartiallyCompleted(
            f"Subscription {subscription_id} {done}, but the refund of {_money(amount, currency)} failed: "
            f"{exc.message} Confirm again to retry the refund (it is never made twice), or refund it from charge {charge_id}.",
            done=result, cause=exc,
        ) from exc
    return replace(result, refund=refund)


# --- customer metadata ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataPlan:
    customer_id: str
    customer_name: str
    set: dict[str, tuple[str | None, str]]  # key: (old value or None, new value)
    removed: dict[str, str]  # key: old value
    params: dict[str, str] = field(repr=False)

    def describe(self) -> str:
        parts = []
        for key, (old, new) in self.set.items():
            parts.append(f"set {key} to “{new}”" + (f" (was “{old}”)" if old is not None else ""))
        for key, old in self.removed.items():
            parts.append(f"remove {key} (was “{old}”)")
        whose = f"{_possessive(self.customer_name)} Stripe customer" if self.customer_name else "Stripe customer"
        return f"Change the metadata of {whose} {self.customer_id}: {'; '.join(parts)}."


def build_metadata_plan(customer: dict, changes: dict) -> MetadataPlan:
    if not isinstance(changes, dict) or not changes:
        raise ActionRefused("Say which metadata keys to set or remove.", code="empty")
    current = {k: str(v) for k, v in (customer.get("metadata") or {}).items()}
    to_set: dict[str, tuple[str | None, str]] = {}
    removed: dict[str, str] = {}
    for raw_key, value in changes.items():
        key = raw_key.strip() if isinstance(raw_key, str) else raw_key
        if not isinstance(key, str) or not key:
            raise ActionRefused("A metadata key can't be empty.", code="key")
        if len(key) > METADATA_KEY_MAX:
            raise ActionRefused(f"Metadata key {key[:20]}… is too long ({len(key)} characters; Stripe allows {METADATA_KEY_MAX}).", code="key")
        if "[" in key or "]" in key:
            raise ActionRefused(f"Metadata key {key!r} can't contain square brackets.", code="key")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ActionRefused(f"The value of {key} must be text.", code="value")
        value = value.strip()
        if len(value) > METADATA_VALUE_MAX:
            raise ActionRefused(f"The value of {key} is too long ({len(value)} characters; Stripe allows {METADATA_VALUE_MAX}).", code="value")
        if value == "":
            if current.get(key, "") != "":
                removed[key] = current[key]
        elif current.get(key) != value:
            to_set[key] = (current.get(key), value)
    remaining = {k for k, v in current.items() if v != ""} - set(removed) | set(to_set)
    if len(remaining) > METADATA_MAX_KEYS:
        raise ActionRefused(f"Stripe allows at most {METADATA_MAX_KEYS} metadata keys; this would make {len(remaining)}.", code="too_many")
    if not to_set and not removed:
        raise ActionRefused("Nothing to change: the customer's metadata already says that.", code="no_change")
    params = {k: v for k, (_, v) in to_set.items()} | {k: "" for k in removed}  # "" deletes a key at Stripe
    return MetadataPlan(customer["id"], customer.get("name") or "", to_set, removed, params)


def plan_metadata_update(actor, customer_id: str, changes: dict) -> MetadataPlan:
    _require(actor, "payments.update_customer_metadata", "change customer metadata")
    customer = _fetch("customers", customer_id, f"read customer {customer_id}")
    if customer.get("deleted"):
        raise ActionRefused(f"Customer {customer_id} was deleted at Stripe.", code="deleted")
    return build_metadata_plan(customer, changes)


@dataclass(frozen=True)
class MetadataResult:
    customer: dict
    plan: MetadataPlan | None  # None when this confirmation had already made the change (replayed)
    replayed: bool = False
    changed: dict[str, str] = field(default_factory=dict)  # key: new value ("" removed)

    @property
    def message(self) -> str:
        what = ", ".join(f"{k}={v}" if v else f"{k} removed" for k, v in sorted(self.changed.items()))
        if self.replayed:
            return f"This confirmation already updated the metadata of {self.customer['id']} ({what}); nothing was sent again."
        return f"Metadata of {self.customer['id']} updated: {what}."


def _requested(changes: dict) -> dict[str, str]:
    """The change asked for, as build_metadata_plan reads it: key → value ("" removes)."""
    if not isinstance(changes, dict):
        return {}
    return {(k.strip() if isinstance(k, str) else k): (v.strip() if isinstance(v, str) else v or "") for k, v in changes.items()}


def update_customer_metadata(
    actor, customer_id: str, changes: dict, *, ticket_ref: str | None = None, idempotency_key: str | None = None
) -> MetadataResult:
    """Set keys (e.g. {"Tier": "VIP"}) and remove keys (an empty value) on a Stripe customer.

    With `idempotency_key` (the confirmation's token), the same confirmation sent again returns
    what the first did (`replayed`) and sends nothing: the audit log's row for its key says so."""
    ticket_ref = _text(ticket_ref, 100, "ticket reference")
    key = _idempotency_key("metadata", customer_id, idempotency_key) if idempotency_key else ""
    with _single_flight(key) if key else contextlib.nullcontext():
        done = _recorded(AuditAction.CUSTOMER_UPDATE_METADATA, customer_id, key) if key else None
        if done is not None:
            _require(actor, "payments.update_customer_metadata", "change customer metadata")
            made = dict(done.get("set") or {}) | {k: "" for k in done.get("removed") or ()}
            if any(k in made and made[k] != v for k, v in _requested(changes).items()):
                raise ActionRefused("This confirmation already made another change; this one needs a new confirmation.",
                                    code="token_reused")
            customer = Customer.objects.filter(pk=customer_id).values_list("data", flat=True).first()
            if not customer:
                customer = _fetch("customers", customer_id, f"read customer {customer_id}")
            return MetadataResult(customer, None, replayed=True, changed=made)
        plan = plan_metadata_update(actor, customer_id, changes)
        with _stripe_call(f"update the metadata of {customer_id}", writes=True):
            customer = stripe_api.to_dict(
                stripe_api.resource("customers").update(
                    customer_id, {"metadata": plan.params}, {"idempotency_key": key} if key else None
                )
            )
        with transaction.atomic():
            upsert_fetched([customer], stripe_api.now_seconds())
            _audit(
                actor, AuditAction.CUSTOMER_UPDATE_METADATA, customer_id,
                set={k: new for k, (_, new) in plan.set.items()},
                previous={k: old for k, (old, _) in plan.set.items() if old is not None} | plan.removed,
                removed=sorted(plan.removed), ticket=ticket_ref, description=plan.describe(),
                **({"idempotency_key": key} if key else {}),
            )
    return MetadataResult(customer, plan, changed=dict(plan.params))


# --- billing portal ------------------------------------------------------------------------


def portal_locale(value: str | None) -> str:
    """The portal locale Stripe supports closest to a contact's (ja_JP → ja, pt_BR → pt-BR)."""
    if not value:
        return "auto"
    tag = value.strip().replace("_", "-")
    if not tag:
        return "auto"
    parts = tag.split("-")
    candidates = [tag, f"{parts[0].lower()}-{parts[1].upper()}" if len(parts) > 1 else "", parts[0].lower()]
    if parts[0].lower() == "zh" and len(parts) > 1:
        region = parts[-1].upper()
        candidates.insert(0, "zh-TW" if region in ("TW", "HANT") else "zh-HK" if region in ("HK", "MO") else "zh")
    if parts[0].lower() == "es" and len(parts) > 1 and parts[1].upper() != "ES":
        candidates.insert(1, "es-419")  # Latin American Spanish
    for candidate in candidates:
        if candidate in PORTAL_LOCALES:
            return candidate
    return "auto"


def _locale_name(tag: str) -> str:
    if tag == "auto":
        return "the customer's own language"
    try:
        return Locale.parse(tag, sep="-").get_display_name("en") or tag
    except (ValueError, UnknownLocaleError):
        return tag


@dataclass(frozen=True)
class PortalPlan:
    customer_id: str
    customer_name: str
    flow: str | None
    subscription_id: str
    coupon: str
    locale: str
    params: dict = field(repr=False)

    def describe(self) -> str:
        who = f"{self.customer_name} ({self.customer_id})" if self.customer_name else self.customer_id
        opens = {
            None: "on the portal's home page",
            "payment_method_update": "straight on updating their payment method",
            "subscription_cancel": f"straight on canceling subscription {self.subscription_id}",
            "subscription_update": f"straight on changing the plan of subscription {self.subscription_id}",
        }[self.flow]
        text = f"Create a billing-portal link for {who} that opens {opens}, in {_locale_name(self.locale)}"
        if self.coupon:
            text += f", offering coupon {self.coupon} before they cancel"
        return text + ". Unopened, the link expires after 5 minutes; once opened it lasts an hour of activity."


@dataclass(frozen=True)
class PortalResult:
    session: dict
    plan: PortalPlan
    replayed: bool = False  # this confirmation had already created it: Stripe answered with the same session

    @property
    def url(self) -> str:
        return self.session.get("url") or ""


def plan_portal_session(
    actor,
    customer_id: str,
    *,
    flow: str | None = None,
    subscription_id: str | None = None,
    retention_coupon: str | None = None,
    locale: str | None = None,
    return_url: str | None = None,
) -> PortalPlan:
    _require(actor, "payments.create_portal_session", "create billing-portal links")
    if not customer_id:
        raise ActionRefused("Say which Stripe customer the link is for.", code="customer")
    flow = flow or None
    if flow is not None and flow not in PORTAL_FLOWS:
        raise ActionRefused(f"Unknown portal flow {flow!r}.", code="flow")
    subscription_id = (subscription_id or "").strip()
    coupon = (retention_coupon or "").strip()
    if flow in ("subscription_cancel", "subscription_update") and not subscription_id:
        raise ActionRefused("Pick the subscription the link is about.", code="subscription")
    if flow not in ("subscription_cancel", "subscription_update") and subscription_id:
        raise ActionRefused("Only the cancel and update links are about one subscription.", code="subscription")
    if coupon and flow != "subscription_cancel":
        raise ActionRefused("A retention coupon can only be offered on the cancel link.", code="coupon")
    if subscription_id:
        mirrored = Subscription.objects.filter(pk=subscription_id).values("customer", "status").first()
        if mirrored and mirrored["customer"] and mirrored["customer"] != customer_id:
            raise ActionRefused(f"Subscription {subscription_id} belongs to another customer.", code="subscription")
        if mirrored and mirrored["status"] in ENDED_SUBSCRIPTION:
            raise ActionRefused(f"Subscription {subscription_id} is already canceled.", code="already_canceled")
    if return_url:
        parsed = urlparse(return_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ActionRefused("The return address must be an http(s) URL.", code="return_url")
    tag = portal_locale(locale)
    params: dict = {"customer": customer_id, "locale": tag}
    if return_url:
        params["return_url"] = return_url
    if flow:
        flow_data: dict = {"type": flow}
        if flow == "subscription_cancel":
            flow_data["subscription_cancel"] = {"subscription": subscription_id}
            if coupon:
                flow_data["subscription_cancel"]["retention"] = {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}}
        elif flow == "subscription_update":
            flow_data["subscription_update"] = {"subscription": subscription_id}
        # After the one task, back to the shop if we know where; else Stripe's confirmation page.
        if return_url:
            flow_data["after_completion"] = {"type": "redirect", "redirect": {"return_url": return_url}}
        else:
            flow_data["after_completion"] = {"type": "hosted_confirmation"}
        params["flow_data"] = flow_data
    return PortalPlan(customer_id, _customer_name(customer_id), flow, subscription_id, coupon, tag, params)


def create_portal_session(
    actor,
    customer_id: str,
    *,
    flow: str | None = None,
    subscription_id: str | None = None,
    retention_coupon: str | None = None,
    locale: str | None = None,
    return_url: str | None = None,
    ticket_ref: str | None = None,
    idempotency_key: str | None = None,
) -> PortalResult:
    """A billing-portal session, optionally deep-linked to one flow. The URL is a credential
    for the customer's billing: it is returned to the caller and never audited or logged.

    With `idempotency_key` (the confirmation's token), the same confirmation sent again is
    audited once (`replayed`). The URL is kept nowhere, so the request is sent again with the
    same key: Stripe answers it with the same session for 24 hours instead of creating one."""
    ticket_ref = _text(ticket_ref, 100, "ticket reference")
    key = _idempotency_key("portal", customer_id, idempotency_key) if idempotency_key else ""
    with _single_flight(key) if key else contextlib.nullcontext():
        done = _recorded(AuditAction.PORTAL_SESSION_CREATE, customer_id, key) if key else None
        plan = plan_portal_session(
            actor, customer_id, flow=flow, subscription_id=subscription_id,
            retention_coupon=retention_coupon, locale=locale, return_url=return_url,
        )
        with _stripe_call(f"create a billing-portal session for {customer_id}", writes=True):
            session = stripe_api.to_dict(stripe_api.client().v1.billing_portal.sessions.create(
                plan.params, {"idempotency_key": key} if key else None))
        if done is not None:
            return PortalResult(session, plan, replayed=True)
        with transaction.atomic():
            _audit(
                actor, AuditAction.PORTAL_SESSION_CREATE, customer_id,
                session=session.get("id"), flow=plan.flow or "", subscription=plan.subscription_id,
                coupon=plan.coupon, locale=plan.locale, ticket=ticket_ref, description=plan.describe(),
                **({"idempotency_key": key} if key else {}),
            )
    return PortalResult(session, plan)


__all__ = [
    "ActionError", "ActionInProgress", "ActionRefused", "PartiallyCompleted", "RefundLimitExceeded",
    "StripeActionFailed", "cancel_subscription", "create_portal_session", "plan_cancel", "plan_metadata_update",
    "plan_portal_session", "plan_refund", "portal_locale", "prorated_amount", "refund_charge",
    "refund_limit", "refunded_by", "update_customer_metadata",
]
