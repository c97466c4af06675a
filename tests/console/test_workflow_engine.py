"""Planning a run (console/workflows/engine.py): conditions, fetches from the mirror, branches
and the actions they would take, rendered — the code both live runs and backtests use."""

import pytest

from console.workflows.engine import plan_run, render, stripe_context
from console.workflows.templates import FRAUD_WARNING_REFUND_OR_NOTIFY
from tests import factories
from tests.helpers import deliver

pytestmark = pytest.mark.django_db

FRAUD_WARNING = FRAUD_WARNING_REFUND_OR_NOTIFY  # seed 001: refund when under the 15 USD dispute fee, otherwise tell the team


def _warning_on(amount: int, currency: str = "usd") -> dict:
    charge = factories.ChargeFactory(amount=amount, currency=currency)
    deliver("charge.succeeded", charge)
    warning = factories.EarlyFraudWarningFactory(charge=charge["id"])
    return factories.event("radar.early_fraud_warning.created", warning), charge


def test_a_small_charge_is_refunded():
    event, charge = _warning_on(1200)
    plan = plan_run(FRAUD_WARNING, stripe_context(event))
    assert plan.matched and not plan.error
    assert [(s.path, s.kind, s.status) for s in plan.steps] == [
        ("1", "fetch", "done"), ("2", "branch", "done"), ("2.1.1", "action", "planned")]
    assert plan.steps[0].detail == {"object": "charge", "id": charge["id"]}
    assert plan.actions[0].detail == {"action": "refund", "params": {"reason": "fraudulent"}}


def test_a_larger_charge_notifies_the_team_with_the_facts_rendered():
    event, charge = _warning_on(2200)
    plan = plan_run(FRAUD_WARNING, stripe_context(event))
    assert plan.steps[1].detail == {"path": "else"}
    assert plan.actions[0].detail["params"] == {"team": "finance", "text": f"Fraud warning on {charge['id']} ($22.00)"}


def test_a_yen_charge_takes_the_templates_yen_path():
    event, _charge = _warning_on(1200, "jpy")
    plan = plan_run(FRAUD_WARNING, stripe_context(event))
    assert [(s.kind, s.status, s.detail.get("path")) for s in plan.steps[:2]] == [
        ("fetch", "done", None), ("branch", "done", 2)]
    assert [a.detail["action"] for a in plan.actions] == ["refund"]


def test_a_yen_charge_against_a_dollar_threshold_is_an_error_not_a_guess():
    event, _charge = _warning_on(1200, "jpy")
    dollars_only = {**FRAUD_WARNING, "steps": [FRAUD_WARNING["steps"][0], {"branch": [
        {"if": {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}},
         "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
        {"else": [{"action": "notify", "params": {"team": "finance", "text": "Fraud warning"}}]}]}]}
    plan = plan_run(dollars_only, stripe_context(event))
    assert [(s.kind, s.status) for s in plan.steps] == [("fetch", "done"), ("branch", "error")]
    assert plan.steps[1].error == "charge.amount is in JPY; it can't be compared with an amount in USD."
    assert plan.actions == []


def test_a_charge_the_mirror_lacks_stops_the_run_before_any_action():
    warning = factories.EarlyFraudWarningFactory(charge="ch_not_mirrored")
    plan = plan_run(FRAUD_WARNING, stripe_context(factories.event("radar.early_fraud_warning.created", warning)))
    assert [(s.kind, s.status, s.error) for s in plan.steps] == [
        ("fetch", "error", "ch_not_mirrored is not in the mirror yet.")]


def test_conditions_decide_whether_the_run_happens_at_all():
    definition = {**FRAUD_WARNING, "conditions": {"ref": "early_fraud_warning.fraud_type", "op": "eq",
                                                   "value": "made_with_stolen_card"}}
    event, _charge = _warning_on(1200)
    event["data"]["object"]["fraud_type"] = "misc"
    assert not plan_run(definition, stripe_context(event)).matched
    event["data"]["object"]["fraud_type"] = "made_with_stolen_card"
    assert plan_run(definition, stripe_context(event)).matched


def test_previous_attributes_reach_changed_conditions():
    sub = factories.SubscriptionFactory(status="past_due")
    event = factories.event("customer.subscription.updated", sub, previous_attributes={"status": "active"})
    definition = {"trigger": {"stripe": "customer.subscription.updated"},
                  "conditions": {"ref": "subscription.status", "op": "changed_to", "value": "past_due"},
                  "steps": [{"action": "add_note", "params": {"text": "{{ subscription.id }} is past due"}}]}
    plan = plan_run(definition, stripe_context(event))
    assert plan.matched and plan.actions[0].detail["params"]["text"] == f"{sub['id']} is past due"


def test_render_leaves_nothing_unknown_behind():
    assert render("{{ charge.amount }} / {{ charge.nothing }} / {{charge.id}}",
                  {"charge": {"id": "ch_1", "amount": 1500, "currency": "jpy"}}) == "¥1,500 /  / ch_1"


def test_render_says_stripe_timestamps_as_dates():
    context = {"invoice": {"next_payment_attempt": 1796258880}}  # 2026-12-03 00:48 UTC
    assert render("next retry {{ invoice.next_payment_attempt }}", context) == "next retry Dec 3, 2026, 12:48\u202fAM"


def test_stripe_values_with_words_render_as_words_in_the_readers_language():
    from django.utils import translation

    from console.workflows.engine import render

    context = {"dispute": {"reason": "product_not_received", "amount": 4200, "currency": "usd"},
               "subscription": {"cancellation_details": {"feedback": "too_expensive", "comment": "left_as_typed"}}}
    text = "{{ dispute.reason }}, {{ dispute.amount }}, {{ subscription.cancellation_details.feedback }}, " \
           "{{ subscription.cancellation_details.comment }}"
    assert render(text, context) == "Product not received, $42.00, Too expensive, left_as_typed"
    with translation.override("ja"):
        assert render(text, context) == "商品未着, US$42.00, 料金が高い, left_as_typed"
