"""Stripe's enum values (a dispute's reason, a refund's status, a decline code) as the
reader's language says them. Stripe sends `fraudulent`; an English reader sees "Fraudulent",
a Japanese reader 「不正利用」. A value this module does not know is shown as Stripe wrote it,
with underscores as spaces: new values from newer API versions still read.

    label("dispute.reason", "fraudulent")

Fields are "<object>.<attribute>" as Stripe names them; `label(field, value)` is the only way
in. The words are lazy: they are said in the language active when the label is read.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _, pgettext_lazy

# Charge failure codes and card decline codes share their values (Stripe documents both lists);
# the common ones, as a support person reads them beside a failed payment.
_DECLINES = {
    "card_declined": _("Card declined"),
    "generic_decline": _("Declined (no reason given)"),
    "insufficient_funds": _("Insufficient funds"),
    "expired_card": _("Expired card"),
    "incorrect_cvc": _("Incorrect security code"),
    "invalid_cvc": _("Invalid security code"),
    "incorrect_number": _("Incorrect card number"),
    "invalid_number": _("Invalid card number"),
    "invalid_expiry_month": _("Invalid expiry month"),
    "invalid_expiry_year": _("Invalid expiry year"),
    "incorrect_zip": _("Incorrect postal code"),
    "processing_error": _("Processing error"),
    "lost_card": _("Lost card"),
    "stolen_card": _("Stolen card"),
    "pickup_card": _("Card to be retained"),
    "do_not_honor": _("Declined by the card issuer"),
    "fraudulent": _("Suspected fraud"),
    "card_velocity_exceeded": _("Card limit exceeded"),
    "withdrawal_count_limit_exceeded": _("Card limit exceeded"),
    "authentication_required": _("Authentication required"),
    "call_issuer": _("Contact the card issuer"),
    "try_again_later": _("Temporary error, try again"),
    "card_not_supported": _("Card not supported"),
    "currency_not_supported": _("Currency not supported"),
    "not_permitted": _("Not permitted"),
    "restricted_card": _("Restricted card"),
    "security_violation": _("Security violation"),
    "transaction_not_allowed": _("Transaction not allowed"),
    "invalid_account": _("Invalid card account"),
    "approve_with_id": _("Issuer approval needed"),
}

WORDS: dict[str, dict[str, object]] = {
    "dispute.reason": {
        "fraudulent": _("Fraudulent"),
        "product_not_received": _("Product not received"),
        "product_unacceptable": _("Product unacceptable"),
        "duplicate": pgettext_lazy("dispute reason", "Duplicate"),
        "subscription_canceled": _("Subscription canceled"),
        "credit_not_processed": _("Credit not processed"),
        "unrecognized": _("Unrecognized"),
        "general": _("General"),
        "bank_cannot_process": _("Bank cannot process"),
        "check_returned": _("Check returned"),
        "customer_initiated": _("Customer initiated"),
        "debit_not_authorized": _("Debit not authorized"),
        "incorrect_account_details": _("Incorrect account details"),
        "insufficient_funds": _("Insufficient funds"),
        "noncompliant": _("Noncompliant"),
    },
    "dispute.status": {
        "needs_response": _("Needs response"),
        "under_review": _("Under review"),
        "won": pgettext_lazy("dispute status", "Won"),
        "lost": pgettext_lazy("dispute status", "Lost"),
        "warning_needs_response": _("Inquiry: needs response"),
        "warning_under_review": _("Inquiry: under review"),
        "warning_closed": _("Inquiry closed"),
        "prevented": _("Prevented"),
        "open": pgettext_lazy("dispute status", "Open"),
    },
    "refund.reason": {
        "requested_by_customer": _("Requested by customer"),
        "duplicate": pgettext_lazy("refund reason", "Duplicate"),
        "fraudulent": pgettext_lazy("refund reason", "Fraudulent"),
        "expired_uncaptured_charge": _("Uncaptured payment expired"),
    },
    "refund.status": {
        "succeeded": pgettext_lazy("refund status", "Succeeded"),
        "pending": pgettext_lazy("payment status", "Pending"),
        "requires_action": _("Requires action"),
        "failed": pgettext_lazy("payment status", "Failed"),
        "canceled": pgettext_lazy("payment status", "Canceled"),
    },
    "refund.failure_reason": {
        "lost_or_stolen_card": _("Lost or stolen card"),
        "expired_or_canceled_card": _("Expired or canceled card"),
        "charge_for_pending_refund_disputed": _("Payment disputed while the refund was pending"),
        "insufficient_funds": _("Insufficient funds"),
        "declined": _("Declined"),
        "merchant_request": _("Canceled at the merchant's request"),
        "unknown": _("Unknown"),
    },
    "charge.failure_code": _DECLINES,
    "charge.decline_code": _DECLINES,
    "charge.status": {
        "succeeded": pgettext_lazy("payment status", "Succeeded"),
        "pending": pgettext_lazy("payment status", "Pending"),
        "failed": pgettext_lazy("payment status", "Failed"),
        # Not Stripe's statuses: what the mirror shows of a succeeded charge (payments.templatetags.mirror_ui).
        "refunded": pgettext_lazy("payment status", "Refunded"),
        "partially_refunded": pgettext_lazy("payment status", "Partially refunded"),
        "disputed": pgettext_lazy("payment status", "Disputed"),
    },
    "charge.outcome_type": {
        "authorized": _("Authorized"),
        "manual_review": _("Manual review"),
        "issuer_declined": _("Declined by the issuer"),
        "blocked": _("Blocked"),
        "invalid": _("Invalid"),
    },
    "payment_intent.status": {
        "succeeded": pgettext_lazy("payment status", "Succeeded"),
        "processing": _("Processing"),
        "requires_payment_method": _("Needs a payment method"),
        "requires_confirmation": _("Needs confirmation"),
        "requires_action": _("Requires action"),
        "requires_capture": _("Needs capture"),
        "canceled": pgettext_lazy("payment status", "Canceled"),
    },
    "subscription.status": {
        "active": pgettext_lazy("subscription status", "Active"),
        "trialing": _("Trialing"),
        "past_due": _("Past due"),
        "unpaid": pgettext_lazy("subscription status", "Unpaid"),
        "paused": _("Paused"),
        "canceled": pgettext_lazy("subscription status", "Canceled"),
        "incomplete": _("Incomplete"),
        "incomplete_expired": _("Incomplete, expired"),
    },
    "subscription.cancellation_reason": {
        "cancellation_requested": _("Cancellation requested"),
        "payment_failed": _("Payment failed"),
        "payment_disputed": _("Payment disputed"),
    },
    "subscription.cancellation_feedback": {
        "customer_service": _("Customer service"),
        "low_quality": _("Low quality"),
        "missing_features": _("Missing features"),
        "other": pgettext_lazy("cancellation feedback", "Other"),
        "switched_service": _("Switched service"),
        "too_complex": _("Too complex"),
        "too_expensive": _("Too expensive"),
        "unused": _("Not used"),
    },
    "invoice.status": {
        "draft": _("Draft"),
        "open": pgettext_lazy("invoice status", "Open"),
        "paid": pgettext_lazy("invoice status", "Paid"),
        "uncollectible": _("Uncollectible"),
        "void": _("Void"),
    },
    "invoice.billing_reason": {
        "subscription_create": _("New subscription"),
        "subscription_cycle": _("Renewal"),
        "subscription_update": _("Subscription change"),
        "subscription_threshold": _("Usage threshold reached"),
        "subscription": pgettext_lazy("billing reason", "Subscription"),
        "manual": _("Manual invoice"),
        "upcoming": _("Upcoming invoice"),
        "automatic_pending_invoice_item_invoice": _("Pending invoice items"),
        "quote_accept": _("Quote accepted"),
    },
    "early_fraud_warning.fraud_type": {
        "card_never_received": _("Card never received"),
        "fraudulent_card_application": _("Fraudulent card application"),
        "made_with_counterfeit_card": _("Counterfeit card"),
        "made_with_lost_card": _("Lost card used"),
        "made_with_stolen_card": _("Stolen card used"),
        "misc": _("Other fraud"),
        "unauthorized_use_of_card": _("Unauthorized use of card"),
    },
    "payment_method.type": {
        "card": pgettext_lazy("payment method", "Card"),
        "konbini": _("Konbini"),
        "customer_balance": _("Bank transfer"),
        "bank_transfer": _("Bank transfer"),
        "paypay": "PayPay",
        "link": "Link",
        "paypal": "PayPal",
        "alipay": "Alipay",
        "wechat_pay": "WeChat Pay",
        "amazon_pay": "Amazon Pay",
        "cashapp": "Cash App Pay",
        "us_bank_account": _("US bank account"),
        "sepa_debit": _("SEPA Direct Debit"),
        "acss_debit": _("Canadian pre-authorized debit"),
        "au_becs_debit": _("BECS Direct Debit"),
    },
    # The payment page: how a card was presented, what Radar thought, what 3-D Secure said.
    "card.wallet": {
        "apple_pay": "Apple Pay",
        "google_pay": "Google Pay",
        "samsung_pay": "Samsung Pay",
        "amex_express_checkout": "Amex Express Checkout",
        "masterpass": "Masterpass",
        "visa_checkout": "Visa Checkout",
        "link": "Link",
    },
    "charge.risk_level": {
        "normal": pgettext_lazy("risk level", "Normal"),
        "elevated": pgettext_lazy("risk level", "Elevated"),
        "highest": pgettext_lazy("risk level", "Highest"),
        "not_assessed": _("Not assessed"),
        "unknown": pgettext_lazy("risk level", "Unknown"),
    },
    "charge.network_status": {
        "approved_by_network": _("Approved by the network"),
        "declined_by_network": _("Declined by the network"),
        "not_sent_to_network": _("Not sent to the network"),
        "reversed_after_approval": _("Reversed after approval"),
    },
    "three_d_secure.result": {
        "authenticated": _("Authenticated"),
        "attempt_acknowledged": _("Attempt acknowledged"),
        "exempted": _("Exempted"),
        "not_supported": _("Not supported"),
        "failed": pgettext_lazy("3-D Secure result", "Failed"),
        "processing_error": _("Processing error"),
    },
    "price.interval": {
        "day": pgettext_lazy("billing interval", "day"),
        "week": pgettext_lazy("billing interval", "week"),
        "month": pgettext_lazy("billing interval", "month"),
        "year": pgettext_lazy("billing interval", "year"),
    },
}


def label(field: str, value: str | None) -> str:
    """The reader's word for Stripe's `value` of `field` ("dispute.reason", "refund.status" ...)."""
    if not value:
        return ""
    known = WORDS.get(field, {}).get(value)
    return str(known) if known is not None else str(value).replace("_", " ")


def knows(field: str, value: str | None) -> bool:
    """Whether `value` of `field` has a word here (else `label` shows Stripe's own value)."""
    return bool(value) and value in WORDS.get(field, {})
