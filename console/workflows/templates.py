"""Ready-made workflows to copy and edit: Stripe Workflows' three examples and the four
auto-ticket rules support teams set up between Stripe and their helpdesk. Each is a definition
(definition.py) an admin copies, names and edits; teams, people and texts are starting points."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# Seed 001, third template: an early fraud warning on a charge under the 15 USD dispute fee is
# cheaper to refund than to fight; above it, the team decides. Amounts compare within one
# currency, so a shop that also sells in yen says what "small" is in yen (about the same fee).
FRAUD_WARNING_REFUND_OR_NOTIFY = {
    "trigger": {"stripe": "radar.early_fraud_warning.created"},
    "steps": [
        {"fetch": "charge"},
        {"branch": [
            {"if": {"all": [{"ref": "charge.currency", "op": "eq", "value": "usd"},
                            {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}]},
             "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
            {"if": {"all": [{"ref": "charge.currency", "op": "eq", "value": "jpy"},
                            {"ref": "charge.amount", "op": "lt", "value": {"amount": "2,000", "currency": "jpy"}}]},
             "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
            {"else": [{"action": "notify", "params": {"team": "finance",
                                                      "text": "Fraud warning on {{ charge.id }} ({{ charge.amount }})"}}]},
        ]},
    ],
}

BIG_ORDER = {"ref": "payment_intent.amount", "op": "gt", "value": {"amount": "1,000", "currency": "usd"}}

# Seed 001, first: a purchase over 1,000 USD gets a handwritten note; someone is told to write it.
PERSONALIZE_BIG_ORDERS = {
    "trigger": {"stripe": "payment_intent.succeeded"},
    "conditions": BIG_ORDER,
    "steps": [{"action": "notify", "params": {
        "team": "support",
        "text": "Order of {{ payment_intent.amount }} by {{ payment_intent.customer }} ({{ payment_intent.id }}): "
                "add a handwritten note to the parcel."}}],
}

# Seed 001, second: the same, and above 2,000 USD the customer is marked VIP for everyone who
# answers them.
TAG_VIP_CUSTOMERS = {
    "trigger": {"stripe": "payment_intent.succeeded"},
    "conditions": BIG_ORDER,
    "steps": [
        PERSONALIZE_BIG_ORDERS["steps"][0],
        {"branch": [{"if": {"ref": "payment_intent.amount", "op": "gt", "value": {"amount": "2,000", "currency": "usd"}},
                     "steps": [{"action": "update_customer_metadata", "params": {"key": "Tier", "value": "VIP"}}]}]},
    ],
}

# Seed 000: the four events that should become routed tickets.
CHARGEBACK_TICKET = {
    "trigger": {"stripe": "charge.dispute.created"},
    "steps": [
        {"action": "create_ticket", "params": {
            "subject": "Chargeback on {{ dispute.charge }}: {{ dispute.amount }} ({{ dispute.reason }})",
            "team": "finance", "priority": "high", "tags": ["dispute"],
            "note": "Evidence due {{ dispute.evidence_details.due_by }}. Status: {{ dispute.status }}."}},
        {"action": "notify", "params": {"team": "finance",
                                        "text": "New chargeback: {{ dispute.amount }} on {{ dispute.charge }}"}},
    ],
}
FAILED_SUBSCRIPTION_PAYMENT_TICKET = {
    "trigger": {"stripe": "invoice.payment_failed"},
    "conditions": {"ref": "invoice.billing_reason", "op": "starts_with", "value": "subscription"},
    "steps": [{"action": "create_ticket", "params": {
        "subject": "Subscription payment failed: invoice {{ invoice.number }} ({{ invoice.amount_due }})",
        "tags": ["billing", "failed-payment"],
        "note": "Attempt {{ invoice.attempt_count }}; next retry {{ invoice.next_payment_attempt }}."}}],
}
REFUND_PROCESSED_NOTE = {
    "trigger": {"stripe": "charge.refunded"},
    "steps": [{"action": "create_ticket", "params": {
        # On the customer's open ticket as a note when there is one; a new ticket otherwise.
        "if_open_ticket": "note",
        "subject": "Refund processed: {{ charge.amount_refunded }} of {{ charge.amount }} on {{ charge.id }}",
        "tags": ["refund"],
        "note": "Refunded {{ charge.amount_refunded }} of {{ charge.amount }} ({{ charge.id }})."}}],
}
SUBSCRIPTION_CANCELLED_TICKET = {
    "trigger": {"stripe": "customer.subscription.deleted"},
    "steps": [{"action": "create_ticket", "params": {
        "subject": "Subscription cancelled: {{ subscription.id }}",
        "tags": ["retention"],
        "note": "Reason: {{ subscription.cancellation_details.reason }}. "
                "Feedback: {{ subscription.cancellation_details.feedback }} {{ subscription.cancellation_details.comment }}"}}],
}

def _intent(*slugs: str) -> dict:
    """A condition: the message was understood as one of `slugs` (console/assist)."""
    one = [{"ref": "message.intent", "op": "eq", "value": slug} for slug in slugs]
    return one[0] if len(one) == 1 else {"any": one}


# Seed 000's AI layer: each customer message tagged and routed by what it is about.
TRIAGE_BY_INTENT = {
    "trigger": {"ticket": "message.received"},
    "steps": [{"branch": [
        {"if": _intent("dispute_threat"),
         "steps": [{"action": "tag_ticket", "params": {"tags": ["dispute-threat"]}},
                   {"action": "assign_ticket", "params": {"team": "finance"}},
                   {"action": "set_priority", "params": {"priority": "high"}}]},
        {"if": {"all": [{"ref": "ticket.channel", "op": "eq", "value": "line"},
                        {"ref": "message.language", "op": "eq", "value": "ja"}]},
         "steps": [{"action": "tag_ticket", "params": {"tags": ["line-ja"]}},
                   {"action": "assign_ticket", "params": {"team": "japan"}}]},
        {"if": _intent("refund_request", "refund_status", "double_charge", "charged_after_cancel"),
         "steps": [{"action": "tag_ticket", "params": {"tags": ["refund"]}},
                   {"action": "assign_ticket", "params": {"team": "billing"}}]},
        {"if": _intent("payment_failed", "update_payment_method", "cancel_subscription", "invoice_request"),
         "steps": [{"action": "tag_ticket", "params": {"tags": ["billing"]}},
                   {"action": "assign_ticket", "params": {"team": "billing"}}]},
    ]}],
}

_SMALL_CHARGE = {"any": [
    {"all": [{"ref": "charge.currency", "op": "eq", "value": "usd"},
             {"ref": "charge.amount", "op": "lt", "value": {"amount": "20", "currency": "usd"}}]},
    {"all": [{"ref": "charge.currency", "op": "eq", "value": "jpy"},
             {"ref": "charge.amount", "op": "lt", "value": {"amount": "2,000", "currency": "jpy"}}]},
]}

# Seed 000, "resolve simple cases under business rules": a small refund a first-time asker is
# owed is made and answered at once; anything else goes to billing. Inactive until an admin
# turns it on.
REFUND_SMALL_FIRST_REQUEST = {
    "trigger": {"ticket": "message.received"},
    "conditions": {"all": [_intent("refund_request"), {"ref": "message.linked_charge", "op": "is_set"}]},
    "steps": [
        {"fetch": "charge"},
        {"branch": [
            {"if": {"all": [_SMALL_CHARGE, {"ref": "message.customer_refunds", "op": "eq", "value": "0"},
                            {"ref": "charge.disputed", "op": "ne", "value": "true"},
                            {"ref": "charge.refunded", "op": "ne", "value": "true"}]},
             "steps": [{"action": "refund", "params": {"reason": "requested_by_customer"}},
                       {"action": "reply_with_draft", "params": {}},
                       {"action": "add_note", "params": {"text": "Refunded automatically: a refund request under "
                                                                 "20 USD / 2,000 JPY, the customer's first refund, "
                                                                 "no dispute on {{ charge.id }}."}}]},
            {"else": [{"action": "assign_ticket", "params": {"team": "billing"}},
                      {"action": "add_note", "params": {"text": "Not refunded automatically ({{ charge.id }}, "
                                                                "{{ charge.amount }}): over the limit, not the "
                                                                "customer's first refund, or disputed."}}]},
        ]},
    ],
}

TEMPLATES = {
    "personalize-big-orders": (_("Orders over 1,000 USD: ask for a handwritten note"), PERSONALIZE_BIG_ORDERS),
    "tag-vip-customers": (_("Orders over 2,000 USD: mark the customer VIP"), TAG_VIP_CUSTOMERS),
    "fraud-warning-refund-or-notify": (_("Early fraud warning: refund small charges, tell the team otherwise"),
                                       FRAUD_WARNING_REFUND_OR_NOTIFY),
    "chargeback-ticket": (_("Chargeback: a ticket for finance"), CHARGEBACK_TICKET),
    "failed-subscription-payment-ticket": (_("Failed subscription payment: a ticket with the next retry"),
                                           FAILED_SUBSCRIPTION_PAYMENT_TICKET),
    "refund-processed-note": (_("Refund processed: a note on the customer's open ticket"), REFUND_PROCESSED_NOTE),
    "subscription-cancelled-ticket": (_("Subscription cancelled: a retention ticket with the reason"),
                                      SUBSCRIPTION_CANCELLED_TICKET),
    "triage-by-intent": (_("Customer messages: tag and route by what they are about"), TRIAGE_BY_INTENT),
    "refund-small-first-request": (_("Refund requests: refund small first-time ones and reply, else to billing"),
                                   REFUND_SMALL_FIRST_REQUEST),
}
