"""Cancelling a subscription now or at the end of its period, optionally refunding the unused
part of its last paid invoice: the plan a confirmation shows in money terms, and the
cancellation itself, once per confirmation (a retry after a lost answer is recognised)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.db import transaction
from django.utils.translation import gettext as _, pgettext_lazy

from audit import selectors as audit_log
from audit.models import AuditAction

from .. import stripe_api
from ..errors import ActionError, ActionRefused, PartiallyCompleted
from ..mirror import upsert_fetched
from ..models import Subscription
from ..stripe_objects import plan_name, ref, refundable, subscription_period
from .refunds import (
    RefundPlan, build_refund_plan, create_refund, find_refund, list_refunds, read_charge, record_refund, refund_audited,
)
from .stripe_calls import (
    CONFIRMATION_MAX_AGE, audit, charge_lock, confirmation_key, customer_name, fetch, in_english, mark_sent, money,
    require, sentences, single_flight, span, stripe_call, text, was_sent, when,
)

CANCEL_FEEDBACK = (  # Stripe's enum for cancellation_details.feedback
    "customer_service", "low_quality", "missing_features", "other",
    "switched_service", "too_complex", "too_expensive", "unused",
)
ENDED_SUBSCRIPTION = ("canceled", "incomplete_expired")


def prorated_amount(amount_paid: int, period_start: int, period_end: int, as_of: int) -> tuple[int, int, int]:
    """(refund, unused seconds, period seconds) for the unused part of a paid period.

    Integer minor units, rounded down: the refund never exceeds the exact share.
    """
    period = int(period_end) - int(period_start)
    if period <= 0 or amount_paid <= 0:
        return 0, 0, max(period, 0)
    unused = min(max(int(period_end) - int(as_of), 0), period)
    return int(amount_paid) * unused // period, unused, period


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

    def _what(self) -> str:
        """"Misaki Sato's subscription sub_… (Pro plan)" / 「Misaki Sato 様のサブスクリプション sub_…(Pro plan)」."""
        facts = {"name": self.customer_name, "subscription": self.subscription_id}
        if self.customer_name:
            what = _("%(name)s's subscription %(subscription)s") % facts
        else:
            what = _("the customer's subscription %(subscription)s") % facts
        return _("%(subscription)s (%(plan)s)") % {"subscription": what, "plan": self.label} if self.label else what

    def describe(self) -> str:
        """The preview, in the reader's language and time zone."""
        what = self._what()
        if self.at_period_end:
            return _("Cancel %(what)s at the end of the current period, on %(end)s: it stays active until then and "
                     "does not renew. Nothing is refunded.") % {"what": what, "end": when(self.period_end)}
        if self.prorata is None:
            return _("Cancel %(what)s now. Nothing is refunded.") % {"what": what}
        p = self.prorata
        m = lambda amount: money(amount, p.refund.currency)  # noqa: E731
        if p.refund.amount == 0:
            return _("Cancel %(what)s now. Nothing is left to refund for the unused time, so nothing is refunded.") % {
                "what": what}
        facts = {
            "what": what, "amount": m(p.refund.amount), "paid": m(p.amount_paid), "kept": m(p.base),
            "invoice": p.invoice_id, "name": self.customer_name, "method": p.refund.payment_method,
            "charge": p.refund.charge_id, "unused": span(p.unused_seconds), "period": span(p.period_seconds),
            "end": when(self.period_end),
        }
        if p.base < p.amount_paid and self.customer_name:
            text_ = _("Cancel %(what)s now and refund %(amount)s of the %(kept)s still kept of the %(paid)s paid on "
                      "invoice %(invoice)s to %(name)s's %(method)s (charge %(charge)s): %(unused)s of the period's "
                      "%(period)s (to %(end)s) are unused.")
        elif p.base < p.amount_paid:
            text_ = _("Cancel %(what)s now and refund %(amount)s of the %(kept)s still kept of the %(paid)s paid on "
                      "invoice %(invoice)s to the customer's %(method)s (charge %(charge)s): %(unused)s of the "
                      "period's %(period)s (to %(end)s) are unused.")
        elif self.customer_name:
            text_ = _("Cancel %(what)s now and refund %(amount)s of the %(paid)s paid on invoice %(invoice)s to "
                      "%(name)s's %(method)s (charge %(charge)s): %(unused)s of the period's %(period)s (to %(end)s) "
                      "are unused.")
        else:
            text_ = _("Cancel %(what)s now and refund %(amount)s of the %(paid)s paid on invoice %(invoice)s to the "
                      "customer's %(method)s (charge %(charge)s): %(unused)s of the period's %(period)s (to %(end)s) "
                      "are unused.")
        return text_ % facts


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
        facts = {"subscription": sub_id}
        if self.replayed and self.at_period_end:
            text = _("This confirmation already set subscription %(subscription)s to cancel at the end of its period; "
                     "nothing was sent to Stripe again.") % facts
        elif self.replayed:
            text = _("This confirmation already canceled subscription %(subscription)s; nothing was sent to Stripe "
                     "again.") % facts
        elif self.at_period_end:
            text = _("Subscription %(subscription)s will cancel at the end of its period and not renew.") % facts
        else:
            text = _("Subscription %(subscription)s is canceled.") % facts
        recovered = (_("(Stripe had done it on this confirmation's earlier attempt, whose answer never came back.)")
                     if self.recovered else "")
        refunded = ""
        if self.refund:
            refund = {"amount": money(self.refund.get("amount") or 0, self.refund.get("currency") or ""),
                      "refund": self.refund["id"]}
            if self.refund_earlier:
                refunded = _("Its refund of %(amount)s for the unused time (%(refund)s) was made then.") % refund
            else:
                refunded = _("Refunded %(amount)s for the unused time (%(refund)s).") % refund
        return sentences(text, recovered, refunded)


def _read_subscription(subscription_id: str) -> str:
    return _("read subscription %(subscription)s") % {"subscription": subscription_id}


def _ended_at(subscription: dict) -> int | None:
    return subscription.get("ended_at") or subscription.get("canceled_at")


def _last_paid_invoice(subscription_id: str) -> dict | None:
    with stripe_call(_("list the invoices of %(subscription)s") % {"subscription": subscription_id}, writes=False):
        listed = [stripe_api.to_dict(i) for i in stripe_api.resource("invoices").list({"subscription": subscription_id, "limit": 10}).data]
    paid = [i for i in listed if i.get("status") == "paid" and (i.get("amount_paid") or 0) > 0]
    return max(paid, key=lambda i: (i.get("created") or 0, i["id"])) if paid else None


def _invoice_charge_id(invoice: dict) -> str:
    """The charge that paid an invoice; since API 2025-03-31 it is found through its payments."""
    charge_id = ref(invoice.get("charge"))
    if charge_id:
        return charge_id
    with stripe_call(_("read the payments of invoice %(invoice)s") % {"invoice": invoice["id"]}, writes=False):
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
    subscription_id: str, *, actor, at_period_end: bool, refund_last_invoice_prorated: bool = False,
    as_of: int | None = None,
) -> CancelPlan:
    """Check a cancellation against Stripe's current subscription; `describe()` it."""
    return _plan_cancel(
        subscription_id, actor=actor, at_period_end=at_period_end,
        refund_last_invoice_prorated=refund_last_invoice_prorated, as_of=as_of,
    )


def _plan_cancel(
    subscription_id: str, *, actor, at_period_end: bool, refund_last_invoice_prorated: bool, as_of: int | None,
    carried_out: dict | None = None,
) -> CancelPlan:
    """`carried_out`: the subscription as Stripe returned it, canceled (or canceling) by this
    confirmation's earlier attempt; the plan then says what that attempt did (and the refund it owes)."""
    require(actor, "payments.cancel_subscription", pgettext_lazy("permission", "cancel subscriptions"))
    if refund_last_invoice_prorated:
        require(actor, "payments.refund_charge", pgettext_lazy("permission", "refund charges"))
        if at_period_end:
            raise ActionRefused(
                _("A subscription canceled at the end of its period uses all of it: there is no unused time to refund."),
                code="refund_at_period_end",
            )
    now = stripe_api.now_seconds()
    if as_of is None:
        as_of = now
    elif not (now - CONFIRMATION_MAX_AGE <= int(as_of) <= now + 60):
        raise ActionRefused(_("This confirmation is too old; review the cancellation again."), code="stale")
    as_of = int(as_of)
    sub = carried_out or fetch("subscriptions", subscription_id, _read_subscription(subscription_id))
    status = sub.get("status") or ""
    if status in ENDED_SUBSCRIPTION and not carried_out:
        raise ActionRefused(
            _("Subscription %(subscription)s is already canceled (since %(since)s).")
            % {"subscription": subscription_id, "since": when(_ended_at(sub))}, code="already_canceled"
        )
    start, end = subscription_period(sub)
    if at_period_end and (sub.get("cancel_at_period_end") or sub.get("cancel_at")) and not carried_out:
        ends = sub.get("cancel_at") or end
        raise ActionRefused(
            _("Subscription %(subscription)s is already set to cancel on %(end)s.")
            % {"subscription": subscription_id, "end": when(ends)}, code="already_canceling"
        )
    currency = (sub.get("currency") or "").lower()
    prorata = None
    if refund_last_invoice_prorated:
        if not (start and end):
            raise ActionRefused(_("Stripe shows no current period for %(subscription)s, so there is nothing to prorate.")
                                % {"subscription": subscription_id})
        invoice = _last_paid_invoice(subscription_id)
        if invoice is None:
            raise ActionRefused(_("Subscription %(subscription)s has no paid invoice to refund.")
                                % {"subscription": subscription_id}, code="no_invoice")
        if not _covers(invoice, end):
            raise ActionRefused(
                _("The last paid invoice (%(invoice)s) is not for the current period; refund its charge from the "
                  "charge instead.") % {"invoice": invoice["id"]},
                code="invoice_period",
            )
        charge_id = _invoice_charge_id(invoice)
        if not charge_id:
            raise ActionRefused(_("Invoice %(invoice)s has no charge to refund (paid another way?).")
                                % {"invoice": invoice["id"]}, code="no_charge")
        charge = fetch("charges", charge_id, read_charge(charge_id))
        paid = int(invoice.get("amount_paid") or 0)
        # What was already refunded of that payment is not paid any more: prorate the rest.
        base = min(paid, refundable(charge))
        amount, unused, period = prorated_amount(base, start, end, as_of)
        charge_currency = (charge.get("currency") or "").lower()
        if amount > 0:
            refund_plan = build_refund_plan(charge, actor=actor, amount=amount, currency=charge_currency)
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
        customer_name=customer_name(ref(sub.get("customer"))),
        label=plan_name(sub),
        currency=currency,
        prorata=prorata,
        subscription=sub,
    )


def cancel_subscription(
    subscription_id: str,
    *,
    actor,
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
        raise ActionRefused(_("Unknown cancellation feedback %(feedback)r.") % {"feedback": feedback}, code="feedback")
    comment = text(comment, 5000, _("comment"))
    ticket_ref = text(ticket_ref, 100, _("ticket reference"))
    key = confirmation_key("cancel", subscription_id, idempotency_key)
    with single_flight(key):
        records = audit_log.details_of(AuditAction.SUBSCRIPTION_CANCEL, subscription_id)
        done = next((r for r in records if r.get("idempotency_key") == key), None)
        if done is not None:
            return _cancel_again(
                subscription_id, done, actor=actor, at_period_end=at_period_end,
                prorated=refund_last_invoice_prorated, token=idempotency_key, ticket_ref=ticket_ref,
            )
        recovered = False
        try:
            plan = plan_cancel(
                subscription_id, actor=actor, at_period_end=at_period_end,
                refund_last_invoice_prorated=refund_last_invoice_prorated, as_of=as_of,
            )
        except ActionRefused as exc:
            plan = _lost_answer(exc, records, subscription_id, key, actor=actor, at_period_end=at_period_end,
                                prorated=refund_last_invoice_prorated, as_of=as_of)
            if plan is None:
                raise
            recovered = True
        details = {k: v for k, v in (("feedback", feedback), ("comment", comment)) if v}
        params: dict = {"cancellation_details": details} if details else {}
        mark_sent(key)
        if at_period_end:
            # Recovering, this is the first request again with its key: Stripe answers it from
            # its idempotency record (24 hours) instead of updating the subscription twice.
            with stripe_call(_("set %(subscription)s to cancel at the end of its period")
                             % {"subscription": subscription_id}, writes=True):
                sub = stripe_api.resource("subscriptions").update(
                    subscription_id, {"cancel_at_period_end": True, **params}, {"idempotency_key": key}
                )
        elif recovered:
            # Stripe ignores idempotency keys on DELETE (and localstripe would end it again):
            # what it showed is the answer.
            sub = plan.subscription
        else:
            with stripe_call(_("cancel %(subscription)s") % {"subscription": subscription_id}, writes=True):
                sub = stripe_api.resource("subscriptions").cancel(subscription_id, params, {"idempotency_key": key})
        sub = stripe_api.to_dict(sub)
        prorata = plan.prorata
        with transaction.atomic():
            upsert_fetched([sub], stripe_api.now_seconds())
            audit(
                actor, AuditAction.SUBSCRIPTION_CANCEL, subscription_id,
                at_period_end=at_period_end, feedback=feedback, comment=comment, ticket=ticket_ref,
                refund_amount=prorata.refund.amount if prorata else 0,
                currency=plan.currency, idempotency_key=key, description=in_english(plan.describe),
                # What a retry of this confirmation needs to finish the refund it promised.
                as_of=plan.as_of, prorated=refund_last_invoice_prorated,
                refund_charge=prorata.refund.charge_id if prorata else "", invoice=prorata.invoice_id if prorata else "",
                **({"recovered": True} if recovered else {}),
            )
        result = CancelResult(sub, plan, at_period_end=at_period_end, recovered=recovered)
        if prorata is None or prorata.refund.amount <= 0:
            return result
        return _prorata_refund(
            result, prorata.refund.charge_id, actor=actor, token=idempotency_key, ticket_ref=ticket_ref,
            invoice_id=prorata.invoice_id, amount=prorata.refund.amount, currency=prorata.refund.currency,
        )


def _cancel_again(
    subscription_id: str, done: dict, *, actor, at_period_end: bool, prorated: bool, token: str, ticket_ref: str
) -> CancelResult:
    """The same confirmation again: what it did (from its audit row), and the refund it still owes."""
    require(actor, "payments.cancel_subscription", pgettext_lazy("permission", "cancel subscriptions"))
    did_period_end = bool(done.get("at_period_end"))
    did_prorate = done.get("prorated")
    if did_period_end != at_period_end or (did_prorate is not None and bool(did_prorate) != prorated):
        if did_period_end and did_prorate:
            said = _("This confirmation already set it to cancel at the end of its period with a refund; anything "
                     "else needs a new confirmation.")
        elif did_period_end:
            said = _("This confirmation already set it to cancel at the end of its period; anything else needs a new "
                     "confirmation.")
        elif did_prorate:
            said = _("This confirmation already canceled it with a refund; anything else needs a new confirmation.")
        else:
            said = _("This confirmation already canceled it; anything else needs a new confirmation.")
        raise ActionRefused(said, code="token_reused")
    sub = Subscription.objects.filter(pk=subscription_id).values_list("data", flat=True).first()
    if not sub:
        sub = fetch("subscriptions", subscription_id, _read_subscription(subscription_id))
    result = CancelResult(sub, None, at_period_end=did_period_end, replayed=True)
    amount, charge_id = int(done.get("refund_amount") or 0), done.get("refund_charge") or ""
    if amount <= 0 or not charge_id:
        return result
    require(actor, "payments.refund_charge", pgettext_lazy("permission", "refund charges"))
    return _prorata_refund(
        result, charge_id, actor=actor, token=token, ticket_ref=ticket_ref, invoice_id=done.get("invoice") or "",
        amount=amount, currency=done.get("currency") or "",
    )


def _lost_answer(
    refused: ActionRefused, records: list[dict], subscription_id: str, key: str, *, actor,
    at_period_end: bool, prorated: bool, as_of: int | None,
) -> CancelPlan | None:
    """Stripe shows the subscription canceled (or canceling), and this confirmation, already sent
    to Stripe once, left no audit row: was it its attempt whose answer never came back (a timeout)?
    Yes when nothing in Paydesk did it otherwise, and Stripe's state is what this confirmation asked
    for, reached after it was shown. Then the plan of what it did; else None (refused as before)."""
    if refused.code not in ("already_canceled", "already_canceling") or not was_sent(key):
        return None
    if any(bool(r.get("at_period_end")) == at_period_end for r in records):
        return None  # another confirmation in Paydesk did this: it is theirs
    sub = fetch("subscriptions", subscription_id, _read_subscription(subscription_id))
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
            subscription_id, actor=actor, at_period_end=at_period_end, refund_last_invoice_prorated=prorated,
            as_of=as_of, carried_out=sub,
        )
    except ActionRefused:
        return None


def _prorata_refund(
    result: CancelResult, charge_id: str, *, actor, token: str, ticket_ref: str, invoice_id: str, amount: int,
    currency: str,
) -> CancelResult:
    """The refund of the unused time, after the cancellation is recorded; its key is the
    confirmation's, so a retry makes it at most once. Under the charge's lock, the refund this
    confirmation made is looked for at Stripe first (an earlier attempt's answer may never have
    come back); if it never was made, it is checked again against the charge as it is now (its
    remainder, a dispute, the person's limit) and made."""
    subscription_id = result.subscription.get("id") or ""
    refund_key = confirmation_key("prorata", charge_id, token)
    note = f"Unused time of {subscription_id}, canceled"
    try:
        with charge_lock(charge_id):
            refunds = list_refunds(charge_id)
            existing, _mirrored = find_refund(charge_id, refund_key, refunds)
            if existing:
                if not refund_audited(charge_id, refund_key):  # made, its answer lost: record it now
                    record_refund(existing, None, None, actor=actor, action=AuditAction.CHARGE_REFUND,
                                  reason="requested_by_customer", note=note, ticket_ref=ticket_ref, key=refund_key,
                                  subscription=subscription_id, invoice=invoice_id, recovered=True)
                return replace(result, refund=existing, refund_earlier=True)
            charge = fetch("charges", charge_id, read_charge(charge_id))
            plan = build_refund_plan(charge, actor=actor, amount=amount, currency=currency, refunds=refunds)
            refund, _charge = create_refund(
                plan, actor=actor, key=refund_key, reason="requested_by_customer", note=note, ticket_ref=ticket_ref,
                subscription=subscription_id, invoice=invoice_id,
            )
    except ActionError as exc:
        facts = {"subscription": subscription_id, "amount": money(amount, currency), "error": exc.message,
                 "charge": charge_id}
        if result.replayed:
            said = _("Subscription %(subscription)s was already canceled by this confirmation, but the refund of "
                     "%(amount)s failed: %(error)s Confirm again to retry the refund (it is never made twice), or "
                     "refund it from charge %(charge)s.")
        else:
            said = _("Subscription %(subscription)s is canceled, but the refund of %(amount)s failed: %(error)s "
                     "Confirm again to retry the refund (it is never made twice), or refund it from charge "
                     "%(charge)s.")
        raise PartiallyCompleted(said % facts, done=result, cause=exc) from exc
    return replace(result, refund=refund)
