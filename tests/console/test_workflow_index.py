"""Which active workflows an event starts (console/workflows/index.py): by trigger through the
index, filtered by their compiled conditions, kept per process until the shared generation
moves on after an activation or deactivation commits."""

import pytest
from django.core.cache import cache

from console.workflows import actions, index
from console.workflows.engine import stripe_context
from console.workflows.models import Workflow, WorkflowVersion
from tests import factories

pytestmark = pytest.mark.django_db

NOTIFY = [{"action": "notify", "params": {"team": "finance", "text": "Have a look"}}]


def dispute_workflow(conditions=None, trigger="charge.dispute.created") -> dict:
    definition = {"trigger": {"stripe": trigger}, "steps": NOTIFY}
    if conditions is not None:
        definition["conditions"] = conditions
    return definition


def usd(amount: str) -> dict:
    return {"amount": amount, "currency": "usd"}


@pytest.fixture(autouse=True)
def fresh_index():
    index.clear()  # what an earlier test loaded in this process
    yield
    index.clear()


@pytest.fixture
def make(admin_user, django_capture_on_commit_callbacks):
    """A saved workflow, activated (and committed: the generation moves on) unless said not."""

    def make(name, definition, *, active=True):
        version = actions.save_workflow(actor=admin_user, name=name, definition=definition)
        if active:
            with django_capture_on_commit_callbacks(execute=True):
                actions.activate_workflow(actor=admin_user, workflow=version.workflow)
        return version

    return make


def dispute_event(amount=4200, currency="usd", reason="fraudulent", **fields):
    dispute = factories.DisputeFactory(amount=amount, currency=currency, reason=reason, **fields)
    return stripe_context(factories.event("charge.dispute.created", dispute))


def ids(candidates):
    return [c.workflow_id for c in candidates]


def test_the_active_workflows_of_the_events_trigger_are_found_with_their_version(make):
    first = make("Chargebacks to finance", dispute_workflow())
    second = make("Chargebacks, second opinion", dispute_workflow())
    make("Refunds", dispute_workflow(trigger="charge.refunded"))
    found = index.matching("stripe:charge.dispute.created", dispute_event())
    assert ids(found) == [first.workflow_id, second.workflow_id]
    assert (found[0].version_id, found[0].version, found[0].definition, found[0].error) == (
        first.pk, 1, first.definition, "")
    assert index.matching("stripe:invoice.paid", dispute_event()) == []


def test_conditions_choose_among_them(make):
    big = make("Big disputes", dispute_workflow({"all": [
        {"ref": "dispute.currency", "op": "eq", "value": "usd"},
        {"ref": "dispute.amount", "op": "gt", "value": usd("1,000")}]}))
    fraud = make("Fraud", dispute_workflow({"ref": "dispute.reason", "op": "in",
                                            "value": ["fraudulent", "unrecognized"]}))
    vip = make("VIP", dispute_workflow({"any": [{"ref": "dispute.metadata.tier", "op": "eq", "value": "vip"},
                                                {"ref": "dispute.amount", "op": "gte", "value": usd("5,000")}]}))
    trigger = "stripe:charge.dispute.created"
    assert ids(index.matching(trigger, dispute_event(4200))) == [fraud.workflow_id]
    assert ids(index.matching(trigger, dispute_event(150000))) == [big.workflow_id, fraud.workflow_id]
    assert ids(index.matching(trigger, dispute_event(4200, reason="duplicate", metadata={"tier": "vip"}))) == [
        vip.workflow_id]
    # Not in dollars: the guarded comparison isn't made; the unguarded one can't be.
    found = index.matching(trigger, dispute_event(150000, currency="jpy", reason="general"))
    assert [(c.workflow_id, c.error) for c in found] == [
        (vip.workflow_id, "dispute.amount is in JPY; it can't be compared with an amount in USD.")]


def test_one_workflows_condition_error_is_its_own_and_hides_no_other(make):
    dollars = make("Over 1,000 USD", dispute_workflow({"ref": "dispute.amount", "op": "gt", "value": usd("1,000")}))
    every = make("Every dispute", dispute_workflow())
    found = index.matching("stripe:charge.dispute.created", dispute_event(500000, currency="jpy"))
    assert ids(found) == [dollars.workflow_id, every.workflow_id]
    assert found[0].error == "dispute.amount is in JPY; it can't be compared with an amount in USD."
    assert found[1].error == ""


def test_conditions_no_editor_would_save_are_an_error_of_their_own(make):
    # Saved before a rule existed, or written to the database by hand: an unknown operator.
    odd = make("Odd", dispute_workflow({"ref": "dispute.reason", "op": "eq", "value": "fraudulent"}))
    every = make("Every dispute", dispute_workflow())
    WorkflowVersion.objects.filter(pk=odd.pk).update(
        definition=dispute_workflow({"any": [{"ref": "dispute.reason", "op": "resembles", "value": "fraud"}]}))
    index.clear()
    found = index.matching("stripe:charge.dispute.created", dispute_event())
    assert [(c.workflow_id, c.error) for c in found] == [(odd.workflow_id, "Unknown operator “resembles”."),
                                                         (every.workflow_id, "")]


def test_a_workflow_activated_is_seen_by_the_next_event_once_committed(make, admin_user,
                                                                        django_capture_on_commit_callbacks,
                                                                        django_assert_num_queries):
    trigger, event = "stripe:charge.dispute.created", dispute_event()
    first = make("First", dispute_workflow())
    assert ids(index.matching(trigger, event)) == [first.workflow_id]
    with django_assert_num_queries(0):  # kept in the process: no query per event
        assert ids(index.matching(trigger, event)) == [first.workflow_id]
    later = make("Later", dispute_workflow(), active=False)
    with django_capture_on_commit_callbacks(execute=False) as on_commit:
        actions.activate_workflow(actor=admin_user, workflow=later.workflow)
    assert ids(index.matching(trigger, event)) == [first.workflow_id]  # not committed yet
    for callback in on_commit:
        callback()  # the commit
    assert ids(index.matching(trigger, event)) == [first.workflow_id, later.workflow_id]


def test_a_workflow_deactivated_is_gone_and_an_inactive_one_never_matches(make, admin_user,
                                                                          django_capture_on_commit_callbacks):
    trigger, event = "stripe:charge.dispute.created", dispute_event()
    first = make("First", dispute_workflow())
    second = make("Second", dispute_workflow())
    make("Never activated", dispute_workflow(), active=False)
    assert ids(index.matching(trigger, event)) == [first.workflow_id, second.workflow_id]
    with django_capture_on_commit_callbacks(execute=True):
        actions.deactivate_workflow(actor=admin_user, workflow=first.workflow)
    assert ids(index.matching(trigger, event)) == [second.workflow_id]


def test_another_process_sees_the_change_through_the_shared_generation(make):
    trigger, event = "stripe:charge.dispute.created", dispute_event()
    first = make("First", dispute_workflow())
    assert ids(index.matching(trigger, event)) == [first.workflow_id]
    # Another process deactivates it: the row changes and the shared generation moves on; this
    # process's own list is untouched until it reads the generation at its next event.
    Workflow.objects.filter(pk=first.workflow_id).update(status=Workflow.Status.INACTIVE, trigger="")
    assert ids(index.matching(trigger, event)) == [first.workflow_id]
    cache.incr(index.GENERATION_KEY)
    assert index.matching(trigger, event) == []


def test_a_lost_generation_starts_afresh_and_never_repeats_an_old_number(make):
    trigger, event = "stripe:charge.dispute.created", dispute_event()
    first = make("First", dispute_workflow())
    assert ids(index.matching(trigger, event)) == [first.workflow_id]
    old = cache.get(index.GENERATION_KEY)
    Workflow.objects.filter(pk=first.workflow_id).update(status=Workflow.Status.INACTIVE, trigger="")
    cache.delete(index.GENERATION_KEY)  # flushed or evicted
    assert index.matching(trigger, event) == []
    assert cache.get(index.GENERATION_KEY) not in (None, old)


def test_without_the_cache_every_event_asks_the_database(make, monkeypatch, django_assert_num_queries):
    trigger, event = "stripe:charge.dispute.created", dispute_event()
    first = make("First", dispute_workflow())

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(index, "_read_shared", down)
    for _ in range(2):
        with django_assert_num_queries(1):  # never a list the cache can't vouch for
            assert ids(index.matching(trigger, event)) == [first.workflow_id]


def test_ticket_triggers_are_matched_on_the_tickets_fields(make):
    line = make("LINE tickets to the Tokyo team", {
        "trigger": {"ticket": "ticket.created"},
        "conditions": {"ref": "ticket.channel", "op": "eq", "value": "line"},
        "steps": [{"action": "assign_ticket", "params": {"team": "tokyo"}}]})
    assert ids(index.matching("ticket:ticket.created", {"ticket": {"channel": "line"}})) == [line.workflow_id]
    assert index.matching("ticket:ticket.created", {"ticket": {"channel": "email"}}) == []
