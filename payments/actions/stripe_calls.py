"""What every action that changes Stripe shares: who may, the confirmation's idempotency key,
one attempt at a time (on every database), turning the SDK's errors into sentences for the
person, and the words money and time are said in.

A confirmation sent again (a double click, a retry after a timeout) is recognised from the
audit log's row for its key (audit.selectors), or, for refunds, from Stripe's own metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import uuid

import stripe
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _, pgettext

from audit import actors
from audit import selectors as audit_log
from audit.log import record
from audit.models import AuditAction
from common.l10n import format_when

from .. import stripe_api
from ..durations import days_and_hours
from ..errors import ActionInProgress, ActionRefused, StripeActionFailed
from ..models import ActionLock, Customer
from ..money import format_money

# How long a confirmation's time stamp (`as_of` of a pro-rata refund) stays good: the refund
# executed is the one the person was shown, computed at that moment.
CONFIRMATION_MAX_AGE = 15 * 60
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def require(actor, perm: str, doing: str) -> None:
    """Changes at Stripe always have someone accountable: a person or a workflow's user."""
    actors.require(actor, perm, doing=doing)


def confirmation_key(action: str, target: str, token: str) -> str:
    """Stripe's idempotency key for one confirmation: the form's token, scoped to what it confirms."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ActionRefused(_("This confirmation has no valid token; reload the page and confirm again."), code="token")
    return f"paydesk:{action}:{target}:{token}"


def audit(actor, action: AuditAction, target: str, **details) -> None:
    record(actor=actor, action=action, target=target, **details)


def recorded(action: AuditAction, target: str, key: str) -> dict | None:
    """The audit row this confirmation (its idempotency key) left on `target`, if any: the row
    is written in the same transaction as the mirror change, so it says exactly which
    confirmations were carried out."""
    return audit_log.recorded(action, target, idempotency_key=key)


# A confirmation sent to Stripe leaves a mark in the cache for as long as Stripe keeps its key's
# answer, so a retry can tell "my request may have been carried out" from "I never got that far".
# Best effort: without the mark (Redis down, evicted) the retry is refused, never repeated.
_SENT_FOR = 24 * 3600


def mark_sent(key: str) -> None:
    try:
        cache.set(f"stripe_actions:sent:{key}", 1, _SENT_FOR)
    except Exception:  # noqa: BLE001  (a cache outage must not stop the action)
        pass


def was_sent(key: str) -> bool:
    try:
        return bool(cache.get(f"stripe_actions:sent:{key}"))
    except Exception:  # noqa: BLE001
        return False


def text(value, limit: int, what: str) -> str:
    """`value` stripped, refused when longer than `limit`; `what` names it in the reader's language."""
    value = (value or "").strip()
    if len(value) > limit:
        raise ActionRefused(_("The %(what)s is too long (%(length)s characters; at most %(limit)s).")
                            % {"what": what, "length": len(value), "limit": limit})
    return value


@contextlib.contextmanager
def stripe_call(what: str, *, writes: bool, missing: str = ""):
    """Turn the SDK's errors into a message a person can act on (never a key or a body).

    `what` is said in the reader's language, as the callers' phrases are ("refund ¥2,500 of
    charge ch_…" / 「支払い ch_… の ¥2,500 の返金」): English fits it after a verb ("couldn't …"),
    Japanese uses it as a noun; each sentence below is one message with the phrase in it.
    `missing` names the object the call is about ("dispute dp_…"), for a 404's sentence."""
    try:
        try:
            yield
        except stripe.StripeError as exc:
            if exc.http_status == 404:
                raise _not_found(exc, what, missing) from exc
            raise
    except stripe.CardError as exc:
        raise StripeActionFailed(
            _("The card network declined to %(what)s: %(reason)s.")
            % {"what": what, "reason": exc.user_message or _("no reason given")},
            code=exc.code or "card_error", http_status=exc.http_status,
        ) from exc
    except stripe.IdempotencyError as exc:
        raise StripeActionFailed(
            _("This confirmation was already used for a different request. Review the action again and confirm it once more."),
            code="idempotency", http_status=exc.http_status,
        ) from exc
    except stripe.InvalidRequestError as exc:
        message = _("Stripe refused to %(what)s: %(reason)s.") % {
            "what": what, "reason": exc.user_message or _("invalid request")}
        raise StripeActionFailed(message, code=exc.code or "invalid_request", http_status=exc.http_status) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        if stripe_api.is_configured():
            message = _("Stripe rejected Paydesk's API key, so Paydesk couldn't %(what)s. Tell an admin.")
        else:
            message = _("Stripe is not configured here (no API key), so Paydesk couldn't %(what)s. Tell an admin.")
        raise StripeActionFailed(
            message % {"what": what}, code="authentication", http_status=exc.http_status,
        ) from exc
    except stripe.RateLimitError as exc:
        raise StripeActionFailed(
            _("Stripe is limiting requests right now and did not %(what)s. Try again in a few seconds.") % {"what": what},
            code="rate_limit", http_status=exc.http_status, transient=True,
        ) from exc
    except stripe.APIConnectionError as exc:
        raise StripeActionFailed(
            sentences(_("Couldn't reach Stripe to %(what)s (network error or timeout).") % {"what": what},
                      _maybe(writes)),
            code="connection", transient=True,
        ) from exc
    except stripe.APIError as exc:
        raise StripeActionFailed(
            sentences(_("Stripe had an internal error (HTTP %(status)s) while trying to %(what)s.")
                      % {"status": exc.http_status or 500, "what": what}, _maybe(writes)),
            code="api_error", http_status=exc.http_status, transient=True,
        ) from exc
    except stripe.StripeError as exc:
        raise StripeActionFailed(
            _("Stripe answered with an error while trying to %(what)s: %(reason)s.")
            % {"what": what, "reason": exc.user_message or exc.__class__.__name__},
            code=exc.code or "stripe_error", http_status=exc.http_status,
        ) from exc


def _not_found(exc: stripe.StripeError, what: str, missing: str) -> StripeActionFailed:
    """A 404 is "not found", whatever the body: Stripe's resource_missing (an unknown id), or a
    path the server doesn't know (a Stripe-compatible stand-in lacking a route), which the SDK
    reports as an API error. Nothing was changed; trying again won't help."""
    if missing:
        message = _("Stripe has no %(missing)s (not found).") % {"missing": missing}
    elif isinstance(exc, stripe.InvalidRequestError) and exc.user_message:
        message = _("Stripe couldn't %(what)s: not found (%(reason)s).") % {"what": what, "reason": exc.user_message}
    else:
        message = _("Stripe couldn't %(what)s: not found.") % {"what": what}
    return StripeActionFailed(message, code="resource_missing", http_status=404)


def _maybe(writes: bool) -> str:
    """What a person may assume after Stripe could not be reached, or answered with an error."""
    if writes:
        return _("It may or may not have reached Stripe: trying again with the same confirmation is safe — "
                 "it is never done twice.")
    return _("Nothing was changed.")


def fetch(resource: str, object_id: str, what: str, missing: str = "") -> dict:
    """Stripe's current `object_id`; `what` says the read in the reader's language (for errors),
    `missing` the object, for "Stripe has no … (not found)"."""
    with stripe_call(what, writes=False, missing=missing):
        return stripe_api.to_dict(stripe_api.resource(resource).retrieve(object_id))


# --- one at a time ---------------------------------------------------------------------------


def _lease() -> dt.timedelta:
    """Longer than any holder works: a few Stripe calls, each bounded by the API timeout."""
    return dt.timedelta(seconds=4 * float(getattr(settings, "STRIPE_API_TIMEOUT", 30)) + 30)


@contextlib.contextmanager
def hold(name: str, *, wait: float = 0.0, busy: str):
    """Hold the lock `name` for the block: a unique ActionLock row, inserted before the block
    and deleted after it, so it works alike on PostgreSQL and on the demo's SQLite and across
    processes. Waits up to `wait` seconds for another holder, then raises ActionInProgress
    with `busy`. A row older than the lease belongs to a holder that died: it is taken over."""
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while True:
        try:
            with transaction.atomic():
                ActionLock.objects.create(name=name[:255], holder=holder, acquired_at=timezone.now())
            break
        except IntegrityError:
            stale, _kinds = ActionLock.objects.filter(name=name[:255], acquired_at__lt=timezone.now() - _lease()).delete()
            if stale:
                continue  # its holder died: try again at once
            if time.monotonic() >= deadline:
                raise ActionInProgress(busy) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        ActionLock.objects.filter(name=name[:255], holder=holder).delete()


def charge_lock(charge_id: str):
    """One refund of a charge at a time, whoever sends it: the per-charge limit is checked and
    spent under it, so two people (or two tabs) can't both pass a limit the pair exceeds.
    A second one waits for the first, then sees its refund."""
    return hold(f"refund-charge:{charge_id}", wait=10,
                busy=_("Another refund of this charge is being sent right now; review it again in a moment."))


def single_flight(key: str):
    """One attempt per confirmation at a time (a double click gets ActionInProgress). Stripe's
    idempotency key already makes a concurrent duplicate harmless at Stripe; this keeps the
    local check-then-create from racing, and covers servers that ignore keys (localstripe)."""
    return hold(f"confirmation:{key}",
                busy=_("This is already being sent to Stripe (a double click?). Wait a moment and reload."))


# --- words ---------------------------------------------------------------------------------------


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def when(seconds: int | None) -> str:
    """A Stripe time stamp in the reader's language and time zone: "Dec 3, 2026, 9:48 AM" / 「2026年12月3日 9:48」."""
    if not seconds:
        return _("an unknown date")
    return format_when(dt.datetime.fromtimestamp(int(seconds), tz=dt.timezone.utc))


def span(seconds: int) -> str:
    """Days and hours, rounded down: "20 days 4 hours", "3 hours" / 「20日4時間」「3時間」."""
    return days_and_hours(seconds)


def _joined(parts, join) -> str:
    out = ""
    for part in filter(None, parts):
        out = join % {"first": out, "second": part} if out else part
    return out


def sentences(*parts: str) -> str:
    """Whole sentences, each its own message, one after the other (a space in English, none in Japanese)."""
    return _joined(parts, pgettext("two sentences", "%(first)s %(second)s"))


def clauses(*parts: str) -> str:
    """Clauses of one English sentence, joined by semicolons; Japanese writes each as its own sentence."""
    return _joined(parts, pgettext("two clauses", "%(first)s; %(second)s"))


def in_english(describe) -> str:
    """What an audit row keeps of a preview: in English and UTC, whoever read it (an audit
    row is data, read later by anyone; it is never translated when written)."""
    with translation.override("en"), timezone.override(dt.timezone.utc):
        return describe()


def customer_name(customer_id: str, fallback: str = "") -> str:
    if fallback:
        return fallback
    if customer_id:
        name = Customer.objects.filter(pk=customer_id).values_list("name", flat=True).first()
        if name:
            return name
    return ""

