"""Test against history (console/workflows/backtest.py): a draft run over the stored events of
the last N days through the same plan_run as a live run, with no side effects, and totals."""

import time

import pytest

from audit.models import AuditEntry
from console.workflows.backtest import BacktestError, backtest
from payments.models import Refund
from tests import factories
from console.workflows.templates import FRAUD_WARNING_REFUND_OR_NOTIFY as FRAUD_WARNING
from tests.helpers import deliver

pytestmark = pytest.mark.django_db
NOW = int(time.time())


def _warning(amount: int, currency: str = "usd", *, days_ago: float = 1) -> dict:
    charge = factories.ChargeFactory(amount=amount, currency=currency, created=int(NOW - days_ago * 86400) - 60)
    deliver("charge.succeeded", charge, created=int(NOW - days_ago * 86400) - 60)
    warning = factories.EarlyFraudWarningFactory(charge=charge["id"])
    deliver("radar.early_fraud_warning.created", warning, created=int(NOW - days_ago * 86400))
    return charge


def test_what_the_fraud_warning_template_would_have_done_last_month():
    small, large = _warning(1200, days_ago=2), _warning(2200, days_ago=5)
    _warning(900, days_ago=45)  # before the window
    yen = _warning(1500, "jpy", days_ago=3)  # under the template's 2,000 JPY: refunded too
    report = backtest(FRAUD_WARNING, days=30)
    assert (report.events, report.matched, report.failed) == (3, 3, 0)
    assert report.totals == {"refund": 2, "notify": 1}
    assert report.refunds == {"usd": 1200, "jpy": 1500} and report.notifications == 1 and report.tickets == 0
    by_event = {o.steps[0].detail["id"]: o for o in report.outcomes}
    assert by_event[small["id"]].steps[-1].detail == {"action": "refund", "params": {"reason": "fraudulent"}}
    assert by_event[yen["id"]].steps[1].detail == {"path": 2}
    assert by_event[large["id"]].steps[-1].detail["params"]["text"] == f"Fraud warning on {large['id']} ($22.00)"
    # Nothing happened: no refund mirrored, nothing audited.
    assert not Refund.objects.exists() and not AuditEntry.objects.filter(action__startswith="charge.").exists()


def test_a_dollar_threshold_cannot_judge_a_yen_charge_and_says_so():
    yen = _warning(1500, "jpy", days_ago=3)
    dollars_only = {**FRAUD_WARNING, "steps": [{"fetch": "charge"}, {"branch": [
        {"if": {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}},
         "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
        {"else": [{"action": "notify", "params": {"team": "finance", "text": "Fraud warning"}}]}]}]}
    report = backtest(dollars_only, days=30)
    assert (report.events, report.matched, report.failed) == (1, 1, 1)
    assert report.outcomes[0].error == "charge.amount is in JPY; it can't be compared with an amount in USD."
    assert report.outcomes[0].steps[0].detail["id"] == yen["id"]


def test_a_named_part_refund_is_summed_in_its_currency():
    _warning(5000, days_ago=1)
    part = {**FRAUD_WARNING, "steps": [{"fetch": "charge"}, {"action": "refund", "params": {
        "reason": "fraudulent", "amount": {"amount": "7.50", "currency": "usd"}}}]}
    assert backtest(part, days=7).refunds == {"usd": 750}


def test_drafts_that_cannot_be_tested_say_why():
    with pytest.raises(BacktestError, match="Step 1"):
        backtest({**FRAUD_WARNING, "steps": [{"action": "launch_rockets"}]})
    with pytest.raises(BacktestError, match="no past events"):
        backtest({"trigger": {"schedule": "09:00"}, "steps": [{"action": "notify", "params": {"user": "a", "text": "x"}}]})


def test_a_ticket_workflow_replays_the_messages_kept():
    from tests import factories
    from tickets.actions import receive_message

    receive_message(channel="email", sender="kenji@example.jp", subject="Order", body_text="Please refund my order")
    receive_message(channel="email", sender="yui@example.jp", subject="Hello", body_text="Where is my parcel?")
    factories.TicketFactory(subject="Opened by an agent")  # not a customer's message
    report = backtest({"trigger": {"ticket": "message.received"},
                       "conditions": {"ref": "message.text", "op": "contains", "value": "refund"},
                       "steps": [{"action": "tag_ticket", "params": {"tags": ["refund"]}}]}, days=1)
    assert (report.events, report.matched, report.totals["tag_ticket"]) == (2, 1, 1)
    assert report.outcomes[0].event_id.startswith("message.received:")
