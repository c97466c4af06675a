"""A draft reply for a ticket's latest customer message: in the customer's language, grounded
in the mirror. The words are templates per intent and language (templates/assist/drafts/<lang>/
<intent>.txt), written as a good agent would; every amount, date and status in them comes from
a fact this module took from the mirror, and each fact names its object so the agent can check
it. What it looked for and did not find is said to the agent (`missing`), and the draft asks
the customer for it rather than guess.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from common.l10n import babel_locale, format_date
from payments.money import format_money
from payments.stripe_words import label

from .selectors import History

LANGUAGES = ("en", "ja")
REFUND_DAYS = "5–10"  # how long a card refund takes to show, as Stripe tells shops


@dataclass
class Draft:
    intent: str
    language: str
    body: str
    facts: list[dict] = field(default_factory=list)  # {"key", "text", "object", "id"}
    missing: list[str] = field(default_factory=list)  # in the agent's language, when the draft was made
    suggestions: list[dict] = field(default_factory=list)  # {"action", "object", "id", ...}


class _Facts:
    """The facts a draft may state, formatted in the customer's language."""

    def __init__(self, locale: str):
        self.locale = locale
        self.items: list[dict] = []

    def add(self, key: str, text: str, obj: str, object_id: str) -> str:
        self.items.append({"key": key, "text": text, "object": obj, "id": object_id})
        return text

    def money(self, key: str, amount: int, currency: str, obj: str, object_id: str) -> str:
        return self.add(key, format_money(amount, currency, locale=self.locale), obj, object_id)

    def date(self, key: str, value: dt.datetime | None, obj: str, object_id: str) -> str:
        if value is None:
            return ""
        local = value.astimezone(zoneinfo.ZoneInfo(settings.SHOP_TIME_ZONE))  # the shop's day, as receipts say
        return self.add(key, format_date(local.date(), locale=self.locale), obj, object_id)


def _charge_context(f: _Facts, c: dict, h: History, prefix: str = "charge") -> dict:
    out = {"id": c["id"], "amount": f.money(f"{prefix}.amount", c["amount"], c["currency"], "charge", c["id"]),
           "date": f.date(f"{prefix}.date", c["created"], "charge", c["id"]),
           "description": f.add(f"{prefix}.description", c["description"], "charge", c["id"]) if c["description"] else "",
           "status": c["status"], "failed": c["status"] == "failed", "last4": "",
           "refunded": c["amount_refunded"] > 0, "fully_refunded": c["amount_refunded"] >= c["amount"] > 0,
           "receipt_url": ""}
    if c["last4"]:
        out["last4"] = f.add(f"{prefix}.last4", c["last4"], "charge", c["id"])
    if c["amount_refunded"]:
        out["refunded_amount"] = f.money(f"{prefix}.refunded", c["amount_refunded"], c["currency"], "charge", c["id"])
    if c["status"] == "failed":
        with translation.override(f.locale[:2]):
            # The decline in the customer's words (Stripe's failure_message is English only).
            reason = label("charge.failure_code", c["failure_code"]) if c["failure_code"] else (
                c["failure_message"] if f.locale.startswith("en") else "")
        out["failure"] = f.add(f"{prefix}.failure", reason, "charge", c["id"]) if reason else ""
    if c["receipt_url"]:
        out["receipt_url"] = f.add(f"{prefix}.receipt_url", c["receipt_url"], "charge", c["id"])
    refunds = h.refunds_of(c["id"])
    if refunds:
        r = refunds[0]
        out["refund"] = {"id": r["id"], "amount": f.money("refund.amount", r["amount"], r["currency"], "refund", r["id"]),
                         "date": f.date("refund.date", r["created"], "refund", r["id"]),
                         "pending": r["status"] in ("pending", "requires_action"), "failed": r["status"] == "failed",
                         "succeeded": r["status"] == "succeeded"}
    return out


def _subscription_context(f: _Facts, s: dict) -> dict:
    return {"id": s["id"], "status": s["status"],
            "canceled": bool(s["canceled_at"]) or s["status"] == "canceled",
            "canceled_at": f.date("subscription.canceled_at", s["canceled_at"], "subscription", s["id"]),
            "ending": s["cancel_at_period_end"] and not s["canceled_at"],
            "period_end": f.date("subscription.period_end", s["current_period_end"], "subscription", s["id"]),
            "active": s["status"] in ("active", "trialing", "past_due")}


def _invoice_context(f: _Facts, i: dict) -> dict:
    out = {"id": i["id"], "status": i["status"],
           "number": f.add("invoice.number", i["number"], "invoice", i["id"]) if i["number"] else "",
           "amount": f.money("invoice.amount", i["amount_paid"] or i["amount_due"], i["currency"], "invoice", i["id"]),
           "url": f.add("invoice.url", i["hosted_invoice_url"], "invoice", i["id"]) if i["hosted_invoice_url"] else "",
           "pdf": f.add("invoice.pdf", i["invoice_pdf"], "invoice", i["id"]) if i["invoice_pdf"] else "",
           "next_attempt": f.date("invoice.next_attempt", i["next_payment_attempt"], "invoice", i["id"])}
    return out


def write(*, intent: str, language: str, name: str, links: list[dict], h: History) -> Draft:
    """The draft for a message of `intent` whose links (linking.link) point into `h`."""
    language = language if language in LANGUAGES else "en"
    f = _Facts(babel_locale(language))
    linked = {}
    for item in links:
        linked.setdefault(item.get("object"), item.get("id"))
    context: dict = {"name": name.strip(), "intent": intent, "refund_days": REFUND_DAYS}
    missing: list[str] = []
    suggestions: list[dict] = []
    charge = h.charge(linked.get("charge", "")) if linked.get("charge") else None
    if charge is not None:
        context["charge"] = _charge_context(f, charge, h)
        twin = next((o for o in h.charges if o["id"] != charge["id"] and o["status"] == "succeeded"
                     and o["amount"] == charge["amount"] and o["currency"] == charge["currency"]
                     and abs(o["created"] - charge["created"]) <= dt.timedelta(days=3)), None)
        if twin is not None and intent == "double_charge":
            context["twin"] = _charge_context(f, twin, h, prefix="twin")
    subscription = next((s for s in h.subscriptions if s["id"] == linked.get("subscription")), None)
    if subscription is not None:
        context["subscription"] = _subscription_context(f, subscription)
    invoice = next((i for i in h.invoices if i["id"] == linked.get("invoice")), None)
    if invoice is not None:
        context["invoice"] = _invoice_context(f, invoice)
    refund = next((r for r in h.refunds if r["id"] == linked.get("refund")), None)
    if refund is not None and "refund" not in context.get("charge", {}):
        context["refund"] = {"id": refund["id"],
                             "amount": f.money("refund.amount", refund["amount"], refund["currency"], "refund", refund["id"]),
                             "date": f.date("refund.date", refund["created"], "refund", refund["id"]),
                             "pending": refund["status"] in ("pending", "requires_action"),
                             "succeeded": refund["status"] == "succeeded", "failed": refund["status"] == "failed"}
    elif charge is not None and "refund" in context["charge"]:
        context["refund"] = context["charge"]["refund"]
    context["has_stripe"] = bool(h.customer_ids)

    needs_charge = intent in ("refund_request", "double_charge", "charged_after_cancel", "payment_failed",
                              "dispute_threat", "refund_status", "invoice_request")
    if not h.customer_ids and intent != "other":
        missing.append(_("No Stripe customer is linked to this contact: the draft asks for the order details."))
    elif needs_charge and charge is None and not (intent == "refund_status" and "refund" in context):
        missing.append(_("No payment in the mirror matches this message: the draft asks which one it is."))
    if intent in ("cancel_subscription", "update_payment_method", "charged_after_cancel") and subscription is None \
            and h.customer_ids:
        missing.append(_("The customer has no subscription in the mirror."))
    if intent == "refund_status" and "refund" not in context and charge is not None:
        missing.append(_("No refund of this payment is in the mirror."))
    if intent == "invoice_request" and invoice is None and charge is not None and not charge["receipt_url"]:
        missing.append(_("Neither an invoice nor a receipt link for this payment is in the mirror."))

    suggestions = _suggest(intent, charge, subscription, context)
    with translation.override(language):
        body = render_to_string(f"assist/drafts/{language}/{intent}.txt", context).strip()
    body = "\n".join(line.rstrip() for line in body.splitlines())
    while "\n\n\n" in body:
        body = body.replace("\n\n\n", "\n\n")
    return Draft(intent=intent, language=language, body=body, facts=f.items, missing=missing, suggestions=suggestions)


def _suggest(intent: str, charge: dict | None, subscription: dict | None, context: dict) -> list[dict]:
    """The actions beside the draft, each opening the usual confirmed action with its fields."""
    out: list[dict] = []
    refundable = (charge is not None and charge["status"] == "succeeded" and not charge["disputed"]
                  and charge["amount_refunded"] < charge["amount"])
    if intent in ("refund_request", "double_charge", "charged_after_cancel", "dispute_threat") and refundable:
        out.append({"action": "refund", "object": "charge", "id": charge["id"],
                    "amount": charge["amount"] - charge["amount_refunded"], "currency": charge["currency"],
                    "reason": "duplicate" if intent == "double_charge" else "requested_by_customer"})
    live = subscription is not None and subscription["status"] in ("active", "trialing", "past_due", "unpaid")
    if intent in ("update_payment_method", "payment_failed"):
        out.append({"action": "portal", "flow": "payment_method_update"})
    if intent in ("cancel_subscription",) and live and not subscription["cancel_at_period_end"]:
        out.append({"action": "cancel_subscription", "object": "subscription", "id": subscription["id"],
                    "at_period_end": True})
    if intent in ("dispute_threat", "charged_after_cancel", "double_charge") or (charge is not None and charge["disputed"]):
        out.append({"action": "ask_finance"})
    return out
