"""Ready-made workflows to copy and edit (issue 9 lists seed 001's three and seed 000's four
auto-ticket rules; so far the first, which the backtest bench and the engine tests use)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# Seed 001, third template: an early fraud warning on a charge under the 15 USD dispute fee is
# cheaper to refund than to fight; above it, the team decides.
FRAUD_WARNING_REFUND_OR_NOTIFY = {
    "trigger": {"stripe": "radar.early_fraud_warning.created"},
    "steps": [
        {"fetch": "charge"},
        {"branch": [
            {"if": {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}},
             "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
            {"else": [{"action": "notify", "params": {"team": "finance",
                                                      "text": "Fraud warning on {{ charge.id }} ({{ charge.amount }})"}}]},
        ]},
    ],
}

TEMPLATES = {
    "fraud-warning-refund-or-notify": (_("Early fraud warning: refund small charges, tell the team otherwise"),
                                       FRAUD_WARNING_REFUND_OR_NOTIFY),
}
