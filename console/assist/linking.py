"""Which of the customer's mirrored objects a message is most likely about, and why.

Each candidate is scored from what the message says (a Stripe id, an amount, a date, an order
number, a card's last four) and what its intent implies (a failed payment for "card
declined", a charge after the cancellation for "charged after cancel", two charges of the same
amount for "double charge"), and from how recent it is. A link keeps its reasons as codes with
values (`reason`), said in the reader's language by `reason_text`.
"""

from __future__ import annotations

import datetime as dt
import math

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.money import format_money
from payments.stripe_words import label

from .selectors import History

MIN_SCORE = 0.25  # under this, a candidate is a guess nobody should act on
DUPLICATE_WINDOW = dt.timedelta(days=3)


def _entities(entities, kind: str) -> list[dict]:
    return [e.get("value") or {} for e in entities if isinstance(e, dict) and e.get("kind") == kind]


def _day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _on_date(moment: dt.datetime, dates: list[dict]) -> bool:
    day = moment.date()
    for d in dates:
        if "date" in d and _day(d["date"]) is not None and abs((_day(d["date"]) - day).days) <= 1:
            return True  # a customer's "yesterday" is often the shop's day before or after
        start, end = _day(d.get("from")), _day(d.get("to"))
        if start and end and start - dt.timedelta(days=1) <= day <= end + dt.timedelta(days=1):
            return True
    return False


def _recency(moment: dt.datetime, at: dt.datetime) -> float:
    days = max(0.0, (at - moment).total_seconds() / 86400)
    return 0.25 * math.exp(-days / 21)


def _days_before(moment: dt.datetime, at: dt.datetime) -> int:
    return max(0, int((at - moment).total_seconds() // 86400))


def _score_charge(c: dict, h: History, intent: str, entities: list, at: dt.datetime) -> tuple[float, list[dict]]:
    score, why = _recency(c["created"], at), []
    ids = {v.get("id") for v in _entities(entities, "stripe_id")}
    if c["id"] in ids or (c["invoice"] and c["invoice"] in ids):
        score += 2.0
        why.append({"code": "named"})
    amounts = _entities(entities, "money")
    if any(v.get("amount") == c["amount"] and (v.get("currency") in (None, c["currency"])) for v in amounts):
        score += 0.6
        why.append({"code": "same_amount", "amount": c["amount"], "currency": c["currency"]})
    if any(v.get("amount") == c["amount_refunded"] and c["amount_refunded"] for v in amounts) and "same_amount" \
            not in {w["code"] for w in why}:
        score += 0.3
        why.append({"code": "refunded_amount", "amount": c["amount_refunded"], "currency": c["currency"]})
    if _on_date(c["created"], _entities(entities, "date")):
        score += 0.4
        why.append({"code": "on_date"})
    orders = {str(v.get("number") or "").upper().replace("#", "") for v in _entities(entities, "order")} - {""}
    said = " ".join([c["description"], *c["metadata"].values()]).upper()
    if any(o in said or o.replace("-", "") in said.replace("-", "") for o in orders):
        score += 1.2
        why.append({"code": "order"})
    if c["last4"] and c["last4"] in {v.get("last4") for v in _entities(entities, "card_last4")}:
        score += 0.3
        why.append({"code": "card", "last4": c["last4"]})
    succeeded = c["status"] == "succeeded"
    if intent == "payment_failed":
        score += 0.5 if c["status"] == "failed" else -0.3
        if c["status"] == "failed":
            why.append({"code": "failed"})
    elif intent in ("refund_request", "dispute_threat", "double_charge", "charged_after_cancel", "invoice_request"):
        score += 0.1 if succeeded else -0.4
    if intent == "double_charge" and succeeded:
        twin = next((o for o in h.charges if o["id"] != c["id"] and o["status"] == "succeeded"
                     and o["amount"] == c["amount"] and o["currency"] == c["currency"]
                     and abs(o["created"] - c["created"]) <= DUPLICATE_WINDOW), None)
        if twin is not None:
            # The later of the two is the one a refund would undo.
            score += 0.7 if c["created"] >= twin["created"] else 0.4
            why.append({"code": "twin", "other": twin["id"]})
    if intent == "charged_after_cancel" and succeeded:
        cancelled = [s for s in h.subscriptions if s["canceled_at"] or s["cancel_at_period_end"]]
        after = [s for s in cancelled if s["canceled_at"] and c["created"] >= s["canceled_at"]
                 or s["cancel_at_period_end"] and not s["canceled_at"]]
        if after:
            # A renewal (paid through an invoice) rather than an order the customer placed.
            score += 0.8 + (0.3 if c["invoice"] else 0.0)
            why.append({"code": "after_cancel"})
    if intent == "refund_status" and c["amount_refunded"]:
        score += 0.6
        why.append({"code": "has_refund"})
    why.append({"code": "days_before", "days": _days_before(c["created"], at)})
    return score, why


def link(intent: str, entities: list, h: History, *, at: dt.datetime) -> list[dict]:
    """The likeliest objects, best first: at most one charge (the best), and the subscription,
    refund or invoice the intent is about. Each: {"object", "id", "score", "reason": [...]}."""
    out: list[dict] = []
    scored = sorted(((*_score_charge(c, h, intent, entities, at), c) for c in h.charges),
                    key=lambda t: (-t[0], -t[2]["created"].timestamp()))
    if scored and scored[0][0] >= MIN_SCORE:
        score, why, charge = scored[0]
        out.append({"object": "charge", "id": charge["id"], "score": round(score, 3), "reason": why})
        runner = scored[1] if len(scored) > 1 else None
        if runner and runner[0] >= MIN_SCORE and score - runner[0] < 0.15:
            out[0]["close_second"] = runner[2]["id"]  # the agent should look at both
    charge_id = out[0]["id"] if out else ""
    if intent in ("cancel_subscription", "update_payment_method", "charged_after_cancel", "payment_failed"):
        subscription = _subscription(h, intent)
        if subscription is not None:
            reason = [{"code": "subscription_" + ("canceled" if subscription["canceled_at"] else subscription["status"]
                                                  or "active")}]
            out.append({"object": "subscription", "id": subscription["id"], "score": 0.5, "reason": reason})
    if intent in ("refund_status", "refund_request", "dispute_threat"):
        refunds = h.refunds_of(charge_id) if charge_id else []
        if intent == "refund_status" and not refunds:
            refunds = h.refunds[:1]
        if refunds:
            out.append({"object": "refund", "id": refunds[0]["id"], "score": 0.5,
                        "reason": [{"code": "refund_of", "charge": refunds[0]["charge"]}]})
    if intent in ("invoice_request", "payment_failed", "charged_after_cancel"):
        invoice = next((i for i in h.invoices if charge_id and i["charge"] == charge_id), None)
        if invoice is None and intent == "invoice_request":
            invoice = next((i for i in h.invoices if i["status"] == "paid"), None)
        if invoice is None and intent == "payment_failed":
            invoice = next((i for i in h.invoices if i["status"] == "open"), None)
        if invoice is not None:
            out.append({"object": "invoice", "id": invoice["id"], "score": 0.5,
                        "reason": [{"code": "invoice_" + (invoice["status"] or "open")}]})
    return out


def _subscription(h: History, intent: str) -> dict | None:
    live = [s for s in h.subscriptions if s["status"] in ("active", "trialing", "past_due", "unpaid", "incomplete")]
    if intent == "charged_after_cancel":
        cancelled = [s for s in h.subscriptions if s["canceled_at"] or s["cancel_at_period_end"]]
        return (cancelled or live or [None])[0]
    if intent == "payment_failed":
        return next((s for s in live if s["status"] in ("past_due", "unpaid", "incomplete")), None)
    return (live or [None])[0]


def reason_text(link_row: dict) -> str:
    """Why an object was linked, in the reader's language: "same amount, 2 days before the message"."""
    parts = []
    for r in link_row.get("reason") or []:
        code = r.get("code") if isinstance(r, dict) else None
        if code == "named":
            parts.append(_("named in the message"))
        elif code == "same_amount":
            parts.append(_("same amount (%(amount)s)") % {"amount": format_money(r.get("amount") or 0,
                                                                                 r.get("currency") or "")})
        elif code == "refunded_amount":
            parts.append(_("the amount refunded"))
        elif code == "on_date":
            parts.append(_("on the date the message gives"))
        elif code == "order":
            parts.append(_("the order the message names"))
        elif code == "card":
            parts.append(_("card ending %(last4)s") % {"last4": r.get("last4", "")})
        elif code == "failed":
            parts.append(_("a failed payment"))
        elif code == "twin":
            parts.append(_("another charge of the same amount: %(other)s") % {"other": r.get("other", "")})
        elif code == "after_cancel":
            parts.append(_("made after the subscription was cancelled"))
        elif code == "has_refund":
            parts.append(_("has a refund"))
        elif code == "days_before":
            days = int(r.get("days") or 0)
            parts.append(_("the same day as the message") if days == 0 else ngettext(
                "%(days)s day before the message", "%(days)s days before the message", days) % {"days": days})
        elif code == "refund_of":
            parts.append(_("the refund of %(charge)s") % {"charge": r.get("charge", "")})
        elif code and code.startswith("subscription_"):
            status = code.removeprefix("subscription_")
            parts.append(_("the customer's subscription (%(status)s)") % {
                "status": _("cancelled") if status == "canceled" else label("subscription.status", status)})
        elif code and code.startswith("invoice_"):
            parts.append(_("the invoice (%(status)s)") % {"status": label("invoice.status", code.removeprefix("invoice_"))})
    return ", ".join(parts)
