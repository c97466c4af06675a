"""A workflow's definition (console/workflows/definition.py): what the editor shows inline and
what an import must pass before anything is saved."""

import pytest

from console.workflows.definition import trigger_key, validate_definition
from console.workflows.templates import FRAUD_WARNING_REFUND_OR_NOTIFY

FRAUD_WARNING = FRAUD_WARNING_REFUND_OR_NOTIFY  # seed 001's third template


def test_the_seed_template_is_valid_and_indexed_by_its_trigger():
    assert validate_definition(FRAUD_WARNING) == []
    assert trigger_key(FRAUD_WARNING) == "stripe:radar.early_fraud_warning.created"
    assert trigger_key({"trigger": {"schedule": "09:00"}}) == "schedule:09:00"


def test_a_ticket_trigger_offers_the_ticket_the_contact_and_the_message():
    assert validate_definition({
        "trigger": {"ticket": "message.received"},
        "conditions": {"all": [{"ref": "message.text", "op": "contains", "value": "返金"},
                               {"ref": "ticket.channel", "op": "eq", "value": "line"}]},
        "steps": [{"action": "tag_ticket", "params": {"tags": ["refund"]}},
                  {"action": "add_note", "params": {"text": "{{ contact.name }} asked for a refund"}}],
    }) == []


def test_references_must_be_known_where_they_are_used():
    before_fetch = {**FRAUD_WARNING, "steps": [
        {"action": "notify", "params": {"team": "finance", "text": "{{ charge.amount }}"}}, {"fetch": "charge"}]}
    assert validate_definition(before_fetch) == ["Step 1: {{ charge.amount }} is not available here."]
    # A fetch inside a branch is known only inside it.
    inside = {**FRAUD_WARNING, "steps": [
        {"branch": [{"else": [{"fetch": "charge"}]}]},
        {"action": "notify", "params": {"team": "finance", "text": "{{ charge.id }}"}}]}
    assert validate_definition(inside) == ["Step 2: {{ charge.id }} is not available here."]


def test_what_the_editor_says_about_mistakes():
    errors = validate_definition({
        "trigger": {"stripe": "radar.early_fraud_warning.created"},
        "conditions": {"ref": "early_fraud_warning.charge", "op": "resembles", "value": 1},
        "steps": [
            {"fetch": "invoice"},
            {"branch": [{"else": [{"action": "add_note", "params": {"text": "x"}}]},
                        {"if": {"ref": "early_fraud_warning.fraud_type", "op": "eq", "value": "x"},
                         "steps": [{"action": "add_note", "params": {"text": "y"}}]}]},
            {"action": "launch_rockets"},
            {"action": "notify", "params": {"text": "hello"}},
            {"action": "set_priority", "params": {}},
            {},
        ],
    })
    assert errors == [
        "Unknown operator “resembles”.",
        "Step 1: there is no invoice to fetch from here.",
        "Step 2: “all other cases” must come last; the paths after it would never run.",
        "Step 3: “launch_rockets” is not an action a workflow can take.",
        "Step 4: say who is notified (a person or a team).",
        "Step 5: set_priority needs “priority”.",
        "Step 6 is empty.",
    ]


@pytest.mark.parametrize("definition, error", [
    (None, "A workflow is an object with a trigger and steps."),
    ({"trigger": {"stripe": "charge.exploded"}, "steps": []}, "“charge.exploded” is not a trigger Paydesk knows."),
    ({"trigger": {"schedule": "25:99"}, "steps": []}, "“25:99” is not a trigger Paydesk knows."),
    ({"trigger": {"stripe": "charge.refunded", "ticket": "ticket.created"}, "steps": []},
     "Choose one trigger: a Stripe event, a ticket event or a schedule."),
    ({"trigger": {"schedule": "09:00"}, "steps": []}, "Add at least one step."),
    ({"trigger": {"schedule": "09:00"}, "steps": [{"action": "add_note", "params": {"text": "x" * 6000}}]},
     "Step 1: “text” is too long."),
    ({"trigger": {"schedule": "09:00"}, "steps": [{"action": "notify", "params": {"team": "t", "text": "x" * 4000}}] * 60},
     "This workflow is too large to save."),
])
def test_hostile_or_broken_definitions_are_refused_with_a_message(definition, error):
    assert error in validate_definition(definition)


def test_nesting_and_size_are_bounded():
    deep = [{"action": "add_note", "params": {"text": "x"}}]
    for _ in range(10):
        deep = [{"branch": [{"else": deep}]}]
    assert "Branches may be nested at most 5 deep." in validate_definition({"trigger": {"schedule": "09:00"}, "steps": deep})
    many = [{"action": "add_note", "params": {"text": "x"}}] * 150
    assert validate_definition({"trigger": {"schedule": "09:00"}, "steps": many}) == [
        "A workflow may have at most 100 steps."]
