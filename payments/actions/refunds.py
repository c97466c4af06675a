"""Refunds: what a person may refund (limits per charge and per person, in Stripe's own refund
metadata), the plan a confirmation shows in money terms, and the refund itself — once per
confirmation, and one refund of a charge at a time, so a limit holds under concurrency."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.functional import lazy
from django.utils.translation import gettext as _, pgettext_lazy

from audit.models import AuditAction

from .. import stripe_api
from ..errors import ActionRefused, RefundLimitExceeded, StripeActionFailed
from ..mirror import upsert_fetched
from ..models import Charge, Dispute, Refund
from .. import stripe_words
from ..stripe_objects import payment_method_label, ref, refundable
from .stripe_calls import (
    audit, charge_lock, clauses, confirmation_key, customer_name, fetch, in_english, money, recorded, require,
    single_flight, stripe_call, text,
)

REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")  # Stripe's enum
METADATA_VALUE_MAX = 500  # Stripe's limit on a metadata value (the refund's note travels in one)
KEY_FIELD = "paydesk_idempotency_key"  # in the refund's Stripe metadata, to find it again
ACTOR_ID_FIELD = "paydesk_actor_id"  # and who asked for it, for the per-charge refund limit


def read_charge(charge_id: str) -> str:
    return _("read charge %(charge)s") % {"charge": charge_id}


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
    if metadata.get(ACTOR_ID_FIELD):
        return metadata[ACTOR_ID_FIELD] == str(actor.pk)
    # Refunds made before the id was written carry the username only.
    return bool(metadata.get(KEY_FIELD)) and metadata.get("paydesk_actor") == actor.get_username()[:500]


def list_refunds(charge_id: str) -> list[dict]:
    """Every refund of the charge, as Stripe has them now (the mirror may lag)."""
    with stripe_call(_("check earlier refunds of %(charge)s") % {"charge": charge_id}, writes=False):
        return [
            stripe_api.to_dict(refund)
            for refund in stripe_api.resource("refunds").list({"charge": charge_id, "limit": 100}).auto_paging_iter()
        ]


def refunded_by(actor, charge_id: str, refunds: list[dict] | None = None) -> int:
    """What `actor` already refunded of a charge through Paydesk (minor units): refunds that
    went through (pending or succeeded), the pro-rata refunds of cancellations included."""
    if refunds is None:
        refunds = list_refunds(charge_id)
    return sum(
        int(r.get("amount") or 0) for r in refunds
        if r.get("status") not in ("failed", "canceled") and _by_actor(r, actor)
    )


def check_limit(actor, amount: int, currency: str, charge_id: str, refunds: list[dict] | None = None) -> None:
    """The limit is per charge and per person: what `actor` already refunded of this charge
    counts, so three refunds of ¥10,000 can't pass a ¥10,000 limit. Another person has their own."""
    limit = refund_limit(actor, currency)
    if limit is None:
        return
    if limit == 0:
        raise RefundLimitExceeded(
            _("Refunds in %(currency)s need finance — ask in #finance or assign the ticket to Finance.")
            % {"currency": currency.upper()}, limit=0, currency=currency)
    if amount > limit:  # over on its own: no need to ask Stripe about earlier ones
        raise RefundLimitExceeded(
            _("Refunds above %(limit)s need finance — ask in #finance or assign the ticket to Finance.")
            % {"limit": money(limit, currency)}, limit=limit, currency=currency
        )
    already = refunded_by(actor, charge_id, refunds)
    if already + amount <= limit:
        return
    raise RefundLimitExceeded(
        _("You have already refunded %(already)s of this charge; refunds above %(limit)s per charge need finance — "
          "ask in #finance or assign the ticket to Finance.")
        % {"already": money(already, currency), "limit": money(limit, currency)},
        limit=limit, currency=currency, already=already,
    )


# --- refunds -------------------------------------------------------------------------------


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
        return refundable(self.charge) - self.amount

    def describe(self) -> str:
        """The preview, in the reader's language: "Refund ¥2,500 of ¥5,000 to Misaki Sato's … ;
        ¥2,500 stays captured." / 「Misaki Sato 様に ¥5,000 のうち ¥2,500 を返金します…」."""
        m = lambda amount: money(amount, self.currency)  # noqa: E731
        facts = {"amount": m(self.amount), "total": m(self.charge_amount), "name": self.customer_name,
                 "method": self.payment_method, "charge": self.charge_id}
        if self.customer_name:
            said = _("Refund %(amount)s of %(total)s to %(name)s's %(method)s (charge %(charge)s)") % facts
        else:
            said = _("Refund %(amount)s of %(total)s to the customer's %(method)s (charge %(charge)s)") % facts
        before = _("%(already)s was refunded before") % {"already": m(self.already_refunded)} if self.already_refunded else ""
        if self.remaining_after:
            after = _("%(rest)s stays captured.") % {"rest": m(self.remaining_after)}
        else:
            after = _("the charge is then fully refunded.")
        return clauses(said, before, after)


@dataclass(frozen=True)
class RefundResult:
    refund: dict
    charge: dict
    plan: RefundPlan | None
    replayed: bool  # True: this confirmation had already refunded; nothing new happened

    @property
    def message(self) -> str:
        amount = money(self.refund.get("amount") or 0, self.refund.get("currency") or "")
        if self.replayed:
            return _("Already refunded %(amount)s with this confirmation (%(refund)s); nothing was refunded again.") % {
                "amount": amount, "refund": self.refund["id"]}
        return _("Refunded %(amount)s (%(refund)s).") % {"amount": amount, "refund": self.refund["id"]}


def build_refund_plan(
    charge: dict, *, actor, amount: int | None, currency: str, refunds: list[dict] | None = None
) -> RefundPlan:
    """Validate a refund of `charge` (as Stripe just returned it) and say what it will do.
    `refunds`: the charge's refunds if already listed (for the per-charge limit)."""
    charge_id = charge["id"]
    charge_currency = (charge.get("currency") or "").lower()
    if currency != charge_currency:
        raise ActionRefused(
            _("Charge %(charge)s is in %(currency)s, not %(asked)s: refunds are in the charge's currency.")
            % {"charge": charge_id, "currency": charge_currency.upper(), "asked": currency.upper()},
            code="currency",
        )
    if charge.get("status") == "failed":
        raise ActionRefused(_("Charge %(charge)s failed: no money was taken, so there is nothing to refund.")
                            % {"charge": charge_id}, code="failed")
    if charge.get("captured") is False:
        raise ActionRefused(
            _("Charge %(charge)s is only authorized, not captured: release the authorization instead of refunding.")
            % {"charge": charge_id},
            code="uncaptured",
        )
    dispute = _dispute_status(charge)
    if dispute:
        raise ActionRefused(
            _("Charge %(charge)s is disputed (%(status)s). A refund now could pay the customer twice; "
              "the dispute is handled in finance's dispute queue.")
            % {"charge": charge_id, "status": stripe_words.label("dispute.status", dispute).lower()},
            code="disputed",
        )
    left = refundable(charge)
    if left <= 0:
        raise ActionRefused(_("Charge %(charge)s is already fully refunded.") % {"charge": charge_id},
                            code="fully_refunded")
    if amount is None:
        amount = left
    if amount > left:
        refunded = int(charge.get("amount_refunded") or 0)
        raise ActionRefused(
            _("Only %(left)s of %(total)s can still be refunded (%(refunded)s already refunded); "
              "%(asked)s is more than that.")
            % {"left": money(left, currency), "total": money(int(charge.get("amount") or 0), currency),
               "refunded": money(refunded, currency), "asked": money(amount, currency)},
            code="above_remainder",
        )
    check_limit(actor, amount, currency, charge_id, refunds)
    billing_name = (charge.get("billing_details") or {}).get("name") or ""
    return RefundPlan(
        charge_id=charge_id,
        amount=amount,
        currency=currency,
        charge_amount=int(charge.get("amount") or 0),
        already_refunded=int(charge.get("amount_refunded") or 0),
        customer_name=customer_name(ref(charge.get("customer")), billing_name),
        # Said when the plan is read, in the reader's language (an audit row reads it in English).
        payment_method=lazy(payment_method_label, str)(charge),
        charge=charge,
    )


def _check_amount(amount) -> None:
    if amount is None:
        return
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ActionRefused(_("The refund amount must be a whole number of minor units (cents, yen)."), code="amount")
    if amount <= 0:
        raise ActionRefused(_("The refund amount must be more than zero."), code="amount")


def _currency(currency: str | None) -> str:
    currency = (currency or "").strip().lower()
    if not currency:
        raise ActionRefused(_("Say which currency the refund is in."), code="currency")
    return currency


def plan_refund(charge_id: str, *, actor, amount: int | None = None, currency: str) -> RefundPlan:
    """Check a refund against Stripe's current charge; `describe()` it for the confirmation."""
    require(actor, "payments.refund_charge", pgettext_lazy("permission", "refund charges"))
    _check_amount(amount)
    currency = _currency(currency)
    charge = fetch("charges", charge_id, read_charge(charge_id))
    return build_refund_plan(charge, actor=actor, amount=amount, currency=currency)


def find_refund(charge_id: str, key: str, refunds: list[dict] | None = None) -> tuple[dict | None, bool]:
    """A refund this confirmation already made: (refund, already in the mirror).
    `refunds`: the charge's refunds at Stripe if already listed."""
    mirrored = Refund.objects.filter(charge=charge_id, **{f"data__metadata__{KEY_FIELD}": key}).values_list("data", flat=True).first()
    if mirrored:
        return mirrored, True
    # Stripe is the truth: a refund made by an attempt whose answer never reached us
    # (a timeout) is there even though nothing was mirrored or audited.
    for refund in list_refunds(charge_id) if refunds is None else refunds:
        if (refund.get("metadata") or {}).get(KEY_FIELD) == key and refund.get("status") not in ("failed", "canceled"):
            return refund, False
    return None, False


def refund_audited(charge_id: str, key: str) -> bool:
    """Whether this confirmation's refund is in the audit log. Being mirrored is not enough:
    the webhook may mirror a refund whose answer never reached us, before the retry comes."""
    return recorded(AuditAction.CHARGE_REFUND, charge_id, key) is not None


def record_refund(refund: dict, charge: dict | None, plan: RefundPlan | None, *, actor, action: AuditAction,
                  reason: str, note: str, ticket_ref: str, key: str, **extra) -> None:
    """Mirror the refund (and the charge as re-read) and audit it, in one transaction."""
    with transaction.atomic():
        upsert_fetched([refund] + ([charge] if charge else []), stripe_api.now_seconds())
        audit(
            actor, action, ref(refund.get("charge")) or (charge or {}).get("id", ""),
            refund=refund["id"], amount=refund.get("amount"), currency=refund.get("currency"),
            reason=reason, note=note, ticket=ticket_ref, idempotency_key=key,
            description=in_english(plan.describe) if plan else "", **extra,
        )


def create_refund(plan: RefundPlan, *, actor, key: str, reason: str, note: str, ticket_ref: str,
                   action: AuditAction = AuditAction.CHARGE_REFUND, **extra) -> tuple[dict, dict | None]:
    metadata = {KEY_FIELD: key, "paydesk_actor": actor.get_username()[:500], ACTOR_ID_FIELD: str(actor.pk)}
    if ticket_ref:
        metadata["paydesk_ticket"] = ticket_ref
    if note:
        metadata["paydesk_note"] = note
    params = {"charge": plan.charge_id, "amount": plan.amount, "reason": reason, "metadata": metadata}
    with stripe_call(_("refund %(amount)s of charge %(charge)s")
                     % {"amount": money(plan.amount, plan.currency), "charge": plan.charge_id}, writes=True):
        refund = stripe_api.to_dict(stripe_api.resource("refunds").create(params, {"idempotency_key": key}))
    try:
        charge = fetch("charges", plan.charge_id, read_charge(plan.charge_id))
    except StripeActionFailed:
        # The refund happened and must be recorded; the charge.refunded webhook brings the charge.
        charge = None
    record_refund(refund, charge, plan, actor=actor, action=action, reason=reason, note=note, ticket_ref=ticket_ref,
                  key=key, **extra)
    return refund, charge


def refund_charge(
    charge_id: str,
    *,
    actor,
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
    timeout, or another worker. The charge's limit is checked and the refund made under the
    charge's lock, so concurrent refunds of one charge can't pass a limit together.
    """
    require(actor, "payments.refund_charge", pgettext_lazy("permission", "refund charges"))
    _check_amount(amount)
    currency = _currency(currency)
    if reason not in REFUND_REASONS:
        raise ActionRefused(_("Pick a refund reason: %(reasons)s.") % {
            "reasons": ", ".join(stripe_words.label("refund.reason", r).lower() for r in REFUND_REASONS)}, code="reason")
    note = text(note, METADATA_VALUE_MAX, _("note"))
    ticket_ref = text(ticket_ref, 100, _("ticket reference"))
    key = confirmation_key("refund", charge_id, idempotency_key)
    with single_flight(key), charge_lock(charge_id):
        charge = fetch("charges", charge_id, read_charge(charge_id))
        # One list of the charge's refunds serves the replay check and the per-charge limit.
        refunds = list_refunds(charge_id) if refund_limit(actor, currency) is not None else None
        existing, mirrored = find_refund(charge_id, key, refunds)
        if existing:
            if amount is not None and existing.get("amount") != amount:
                raise ActionRefused(
                    _("This confirmation already refunded %(amount)s (%(refund)s); a different amount needs a new "
                      "confirmation.") % {"amount": money(existing["amount"], existing.get("currency") or ""),
                                          "refund": existing["id"]},
                    code="token_reused",
                )
            # Read again: the earlier attempt may have landed after the read above.
            charge = fetch("charges", charge_id, read_charge(charge_id))
            if refund_audited(charge_id, key):
                upsert_fetched([charge], stripe_api.now_seconds())
            else:
                # Made by an attempt that never heard back: mirror and audit it now.
                record_refund(existing, charge, None, actor=actor, action=AuditAction.CHARGE_REFUND, reason=reason,
                              note=note, ticket_ref=ticket_ref, key=key, recovered=True)
            return RefundResult(existing, charge, None, replayed=True)
        plan = build_refund_plan(charge, actor=actor, amount=amount, currency=currency, refunds=refunds)
        refund, charge = create_refund(plan, actor=actor, key=key, reason=reason, note=note, ticket_ref=ticket_ref)
    return RefundResult(refund, charge or plan.charge, plan, replayed=False)
