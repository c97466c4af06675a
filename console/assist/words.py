"""Assist's words for people, in the reader's language: intents, entity kinds, suggestions."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

INTENT_LABELS = {
    "refund_request": _("Refund request"),
    "charged_after_cancel": _("Charged after cancelling"),
    "double_charge": _("Double charge"),
    "payment_failed": _("Payment failed"),
    "cancel_subscription": _("Cancel subscription"),
    "update_payment_method": _("Update payment method"),
    "refund_status": _("Where is my refund"),
    "dispute_threat": _("Dispute threat"),
    "invoice_request": _("Receipt or invoice"),
    "other": pgettext_lazy("intent", "Other"),
}

ENTITY_LABELS = {
    "money": pgettext_lazy("entity", "Amount"),
    "date": pgettext_lazy("entity", "Date"),
    "order": pgettext_lazy("entity", "Order"),
    "stripe_id": pgettext_lazy("entity", "Stripe id"),
    "card_last4": pgettext_lazy("entity", "Card"),
}

SUGGESTION_LABELS = {
    "refund": _("Refund this charge…"),
    "portal": _("Send a link to update the card…"),
    "cancel_subscription": _("Cancel at period end…"),
    "ask_finance": _("Ask finance"),
}


def intent_label(slug: str) -> str:
    return str(INTENT_LABELS.get(slug, slug or ""))


def entity_label(kind: str | None) -> str:
    return str(ENTITY_LABELS.get(kind or "", kind or ""))


def suggestion_label(suggestion: dict) -> str:
    return str(SUGGESTION_LABELS.get(suggestion.get("action", ""), suggestion.get("action", "")))
