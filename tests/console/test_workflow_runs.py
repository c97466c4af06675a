"""Live workflow runs (console/workflows/runs.py, performers.py, tasks.py): from a signed Stripe
webhook or a ticket event to the effect, exactly once — redelivery, replay, a retried task and a
worker killed mid-run never act twice; refusals are skipped with the reason; loops stop."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEntry
from console.models import Notification, TimelineEntry
from console.workflows import runs
from console.workflows.actions import activate_workflow, import_workflow, install_template, save_workflow
from console.workflows.models import WorkflowRun
from console.workflows.tasks import perform_run_task, requeue_stale_runs, run_schedules
from payments.actions.events import announce_event
from payments.models import WebhookEvent
from tests import factories, helpers
from tests.payments.test_stripe_actions import gateway_server, gw, ls, make_charge, make_customer  # noqa: F401
from tickets.actions import receive_message, set_status
from tickets.models import Identity, Ticket

pytestmark = pytest.mark.django_db

S = WorkflowRun.Status
WORKFLOW_LIMITS = {"agent": {"usd": 10000, "*": 0}, "finance": None, "admin": None,
                   "workflow": {"usd": 2000, "jpy": 3000, "*": 0}}


def active(slug_or_definition, name="wf"):
    if isinstance(slug_or_definition, str):
        version = install_template(actor=None, slug=slug_or_definition)
    else:
        version = import_workflow(actor=None, data={"paydesk_workflow": 1, "name": name,
                                                    "definition": slug_or_definition})
    activate_workflow(actor=None, workflow=version.workflow_id)
    return version.workflow


@pytest.fixture
def finance_team(finance):
    team = factories.TeamFactory(name="Finance", slug="finance")
    team.members.add(finance)
    return team


def deliver(post_event, payload):
    with helpers.committed():
        assert post_event(payload).status_code == 200


def linked_customer(post_event, **kw):
    # A plain address unless given: Faker's names ("Mr. Jon Doe") can make one that is never linked.
    customer = factories.CustomerFactory(**kw)
    if "email" not in kw:
        customer["email"] = f"{customer['id'].lower()}@example.com"
    deliver(post_event, factories.event("customer.created", customer))
    return customer


# --- seed 000: a chargeback becomes a routed ticket ------------------------------------------------


def test_a_chargeback_webhook_opens_a_finance_ticket_notifies_finance_and_shows_on_the_timeline(
        post_event, finance, finance_team):
    workflow = active("chargeback-ticket")
    customer = linked_customer(post_event, email="aiko@example.jp")
    charge = factories.mirror(factories.ChargeFactory(customer=customer["id"], amount=4200))[0]
    dispute = factories.DisputeFactory(charge=charge["id"], amount=4200, reason="fraudulent")

    deliver(post_event, factories.event("charge.dispute.created", dispute))

    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.status == S.SUCCEEDED, run.steps
    ticket = Ticket.objects.get(pk=run.ticket_id or run.steps[0]["output"]["ticket"])
    assert ticket.subject == f"Chargeback on {charge['id']}: $42.00 (Fraudulent)"  # Stripe's reason in words
    assert ticket.team == finance_team and ticket.priority == "high"
    assert [t.name for t in ticket.tags.all()] == ["dispute"]
    assert ticket.requester == Identity.objects.get(value=customer["id"]).contact
    note = ticket.messages.get(kind="note")
    assert note.body_text.startswith("Evidence due ")
    assert Notification.objects.filter(recipient=finance, text=f"New chargeback: $42.00 on {charge['id']}").exists()
    assert [m.to for m in mail.outbox] == [[finance.email]]
    entry = TimelineEntry.objects.get(kind=TimelineEntry.Kind.WORKFLOW_RUN, source=f"workflow_run:{run.pk}")
    assert entry.contact_id == ticket.requester_id and entry.ticket_id == ticket.pk
    assert entry.title == "Workflow “Chargeback: a ticket for finance” ran"
    assert "Opened a ticket" in entry.summary and "Notified finance" in entry.summary
    assert "because of charge.dispute.created on " + dispute["id"] in entry.summary
    # The workflow acted as its service user, with the audit trail saying so.
    create = AuditEntry.objects.get(action="ticket.create", target=f"ticket:{ticket.pk}")
    assert create.actor.username == "workflows"


def test_a_redelivered_or_replayed_event_and_a_retried_task_run_a_workflow_once(post_event, finance, finance_team):
    workflow = active("chargeback-ticket")
    customer = linked_customer(post_event)
    charge = factories.mirror(factories.ChargeFactory(customer=customer["id"]))[0]
    payload = factories.event("charge.dispute.created", factories.DisputeFactory(charge=charge["id"]))

    deliver(post_event, payload)
    deliver(post_event, payload)  # Stripe delivers again
    with helpers.committed():
        announce_event(payload["id"])  # replayed from /sync/
        perform_run_task.delay(WorkflowRun.objects.get().pk)  # a task delivered twice

    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1
    assert Ticket.objects.filter(subject__startswith="Chargeback").count() == 1
    assert Notification.objects.filter(recipient=finance).count() == 1


def test_conditions_that_do_not_hold_start_no_run(post_event):
    active("personalize-big-orders")
    deliver(post_event, factories.event("payment_intent.succeeded", factories.PaymentIntentFactory(amount=99999)))
    assert not WorkflowRun.objects.exists()  # $999.99 is not over $1,000


# --- refunds against localstripe through the recording gateway -----------------------------------


@pytest.fixture
def fraud_charge(gw, ls, settings, post_event, finance_team):
    settings.PAYMENTS_REFUND_LIMITS = WORKFLOW_LIMITS
    customer = make_customer(ls)

    def make(amount):
        charge = make_charge(ls, customer, amount=amount, currency="usd")
        factories.mirror(charge)
        return charge

    return make


def fraud_warning(post_event, charge):
    deliver(post_event, factories.event("radar.early_fraud_warning.created",
                                        factories.EarlyFraudWarningFactory(charge=charge["id"])))


def test_a_fraud_warning_on_a_small_charge_refunds_it_once_with_the_runs_key(post_event, fraud_charge, gw, ls):
    active("fraud-warning-refund-or-notify")
    charge = fraud_charge(1000)

    fraud_warning(post_event, charge)

    run = WorkflowRun.objects.get()
    assert run.status == S.SUCCEEDED, run.steps
    refund_step = next(s for s in run.steps if s["kind"] == "action")
    assert refund_step["status"] == "done" and refund_step["output"]["amount"] == 1000
    assert refund_step["duration_ms"] >= 0
    sent = gw.sent("POST", "/v1/refunds")
    assert len(sent) == 1 and sent[0]["idempotency_key"].endswith(f"workflow-run-{run.pk}-step-2_1_1")
    assert [r.amount for r in ls.v1.refunds.list({"charge": charge["id"]}).data] == [1000]


def test_a_worker_killed_after_stripe_refunded_leaves_one_refund(post_event, fraud_charge, gw, ls, monkeypatch):
    active("fraud-warning-refund-or-notify")
    charge = fraud_charge(1200)
    real = runs._record_step

    class Killed(BaseException):
        pass

    def die_once(run, index, step, started):
        if step.get("status") == "done":
            monkeypatch.setattr(runs, "_record_step", real)
            raise Killed  # the worker dies: Stripe refunded, nothing here committed
        real(run, index, step, started)

    monkeypatch.setattr(runs, "_record_step", die_once)
    with pytest.raises(Killed):
        fraud_warning(post_event, charge)
    run = WorkflowRun.objects.get()
    assert run.status == S.RUNNING

    with helpers.committed():
        assert perform_run_task.delay(run.pk).get() == "not claimed"  # its lease still holds
        WorkflowRun.objects.filter(pk=run.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
        assert requeue_stale_runs.delay().get() == 1  # the lease ran out: queued and performed again

    run.refresh_from_db()
    assert run.status == S.SUCCEEDED
    assert next(s for s in run.steps if s["kind"] == "action")["output"]["replayed"] is True
    assert [r.amount for r in ls.v1.refunds.list({"charge": charge["id"]}).data] == [1200]
    assert len(gw.sent("POST", "/v1/refunds")) == 1  # found by its key, never sent again


def test_a_refund_stripe_or_the_limit_refuses_is_skipped_with_the_reason(post_event, fraud_charge, ls, settings):
    workflow = active({"trigger": {"stripe": "radar.early_fraud_warning.created"},
                       "steps": [{"fetch": "charge"}, {"action": "refund", "params": {"reason": "fraudulent"}},
                                 {"action": "notify", "params": {"team": "finance", "text": "EFW {{ charge.id }}"}}]})
    refunded = fraud_charge(1500)
    ls.v1.refunds.create({"charge": refunded["id"]})  # refunded already, at Stripe
    too_big = fraud_charge(9900)  # over the workflow's 20 USD

    fraud_warning(post_event, refunded)
    fraud_warning(post_event, too_big)

    first, second = WorkflowRun.objects.filter(workflow=workflow).order_by("pk")
    for run in (first, second):
        assert run.status == S.SUCCEEDED
        refund, notify = [s for s in run.steps if s["kind"] == "action"]
        assert refund["status"] == "skipped" and refund["error"]
        assert notify["status"] == "done"  # the run goes on after a refusal
    assert "refund" in first.steps[1]["error"].lower()
    assert "$20.00" in second.steps[1]["error"]
    assert [r.amount for r in ls.v1.refunds.list({"charge": too_big["id"]}).data] == []


def test_stripe_unreachable_retries_with_backoff_then_refunds_once(post_event, fraud_charge, gw, ls):
    active("fraud-warning-refund-or-notify")
    charge = fraud_charge(800)
    gw.fault("POST", "/v1/refunds", status=500)  # Stripe had an internal error

    fraud_warning(post_event, charge)
    run = WorkflowRun.objects.get()
    assert run.status == S.FAILED and "internal error" in run.error
    assert run.next_attempt_at > timezone.now()  # backing off; its task is queued with that countdown
    refund_step = next(s for s in run.steps if s["kind"] == "action")
    assert refund_step["status"] == "failed"
    assert perform_run_task.apply((run.pk,)).get() == "not claimed"  # not before its time
    WorkflowRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    with helpers.committed():
        perform_run_task.delay(run.pk)
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED, run.steps
    assert [r.amount for r in ls.v1.refunds.list({"charge": charge["id"]}).data] == [800]


# --- ticket triggers, loops, versions, schedules ------------------------------------------------


def test_a_customer_message_with_a_word_tags_its_ticket(db):
    active({"trigger": {"ticket": "message.received"},
            "conditions": {"ref": "message.text", "op": "contains", "value": "refund"},
            "steps": [{"action": "tag_ticket", "params": {"tags": ["refund-request"]}},
                      {"action": "set_priority", "params": {"priority": "high"}}]})
    with helpers.committed():
        received = receive_message(channel="email", sender="kenji@example.jp", subject="Order 1182",
                                   body_text="Please refund my order")
        receive_message(channel="email", sender="yui@example.jp", subject="Hello", body_text="Where is my parcel?")
    ticket = received.message.ticket
    ticket.refresh_from_db()
    assert [t.name for t in ticket.tags.all()] == ["refund-request"] and ticket.priority == "high"
    assert WorkflowRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # each step commits as in a worker: what it starts starts inside the run
def test_a_workflow_that_triggers_itself_is_stopped_after_a_bounded_depth(eager_tasks):
    contact = factories.ContactFactory()
    active({"trigger": {"ticket": "ticket.created"},
            "steps": [{"action": "create_ticket", "params": {"subject": "again: {{ ticket.subject }}"}}]})
    factories.TicketFactory(requester=contact, subject="first")
    runs_made = list(WorkflowRun.objects.order_by("depth"))
    assert [r.depth for r in runs_made] == list(range(runs.MAX_DEPTH + 2))
    assert runs_made[-1].status == S.STOPPED and "loop" in runs_made[-1].error
    assert Ticket.objects.count() == runs.MAX_DEPTH + 2  # the first and one per run that went


def test_editing_an_active_workflow_changes_no_run_until_activated_again(db):
    definition = {"trigger": {"ticket": "ticket.created"},
                  "steps": [{"action": "tag_ticket", "params": {"tags": ["v1"]}}]}
    workflow = active(definition)
    save_workflow(actor=factories.UserFactory(role="admin"), name="wf", workflow=workflow,
                  definition={**definition, "steps": [{"action": "tag_ticket", "params": {"tags": ["v2"]}}]})
    with helpers.committed():
        ticket = factories.TicketFactory()
    assert [t.name for t in ticket.tags.all()] == ["v1"]
    assert WorkflowRun.objects.get().version.number == 1


def test_solving_a_ticket_starts_ticket_solved_workflows(agent):
    active({"trigger": {"ticket": "ticket.solved"},
            "steps": [{"action": "add_note", "params": {"text": "Solved: {{ ticket.subject }}"}}]})
    ticket = factories.TicketFactory(subject="Where is my parcel")
    with helpers.committed():
        set_status(actor=agent, ticket=ticket, status="solved")
    assert ticket.messages.get(kind="note").body_text == "Solved: Where is my parcel"


def test_a_daily_schedule_runs_once_a_day_at_the_shops_time(settings):
    settings.SHOP_TIME_ZONE = "Asia/Tokyo"
    workflow = active({"trigger": {"schedule": "09:00"},
                       "steps": [{"action": "notify", "params": {"user": "agent", "text": "Morning"}}]})
    factories.UserFactory(username="agent", role="agent")
    with helpers.committed():
        assert run_schedules.delay("2026-12-04T00:05:00+00:00").get() == 1  # 09:05 in Tokyo
        assert run_schedules.delay("2026-12-04T00:06:00+00:00").get() == 0
        assert run_schedules.delay("2026-12-04T03:00:00+00:00").get() == 0  # 12:00: not its time
    assert WorkflowRun.objects.get(workflow=workflow).event_key == "schedule:2026-12-04T09:00"


def test_a_failed_run_is_retried_from_the_step_that_failed(db, monkeypatch, admin_user):
    active({"trigger": {"ticket": "ticket.created"},
            "steps": [{"action": "add_note", "params": {"text": "one"}},
                      {"action": "assign_ticket", "params": {"team": "nobody-yet"}}]})
    with helpers.committed():
        ticket = factories.TicketFactory()
    run = WorkflowRun.objects.get()
    assert run.status == S.SUCCEEDED and run.steps[1]["status"] == "skipped"  # no such team: refused

    # A step that broke (not a refusal): the run fails and is retried from there.
    def broken(*args, **kwargs):
        raise RuntimeError("the mail server is misconfigured")

    monkeypatch.setitem(runs.performers.PERFORMERS, "add_note", broken)
    with helpers.committed():
        other = factories.TicketFactory()
    failed = WorkflowRun.objects.get(ticket_id=other.pk)
    assert failed.status == S.FAILED and "misconfigured" in failed.error
    monkeypatch.undo()
    with helpers.committed():
        runs.retry_run(actor=admin_user, run=failed)
    failed.refresh_from_db()
    assert failed.status == S.SUCCEEDED
    assert other.messages.filter(kind="note", body_text="one").count() == 1
    assert ticket.messages.filter(kind="note", body_text="one").count() == 1
    assert AuditEntry.objects.filter(action="workflow.run_retry", actor=admin_user).count() == 1


def test_a_run_of_a_workflow_whose_reference_is_gone_fails_with_a_message_not_a_crash(post_event):
    workflow = active({"trigger": {"stripe": "charge.refunded"},
                       "steps": [{"fetch": "customer"},
                                 {"action": "add_note", "params": {"text": "{{ customer.email }}"}}]})
    deliver(post_event, factories.event("charge.refunded", factories.ChargeFactory(refunded=True)))
    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.status == S.FAILED and "not in the mirror" in run.error
    # The run is recorded; the mirror write it followed stands.
    assert WebhookEvent.objects.get(id=run.event_key.partition(":")[2]).status == "applied"


def test_a_workflows_refund_on_its_ticket_shows_in_the_thread_with_the_workflows_name(post_event, fraud_charge):
    from django.utils import translation

    from audit.models import AuditAction, AuditEntry
    from tickets.selectors import thread_events

    active({"trigger": {"stripe": "radar.early_fraud_warning.created"},
            "steps": [{"fetch": "charge"}, {"action": "create_ticket", "params": {"subject": "Fraud warning"}},
                      {"action": "refund", "params": {"reason": "fraudulent"}}]}, name="Refund fraud warnings")
    charge = fraud_charge(1000)
    fraud_warning(post_event, charge)
    run = WorkflowRun.objects.get()
    assert run.status == S.SUCCEEDED, run.steps
    ticket = Ticket.objects.get(subject="Fraud warning")
    entry = AuditEntry.objects.get(action=AuditAction.CHARGE_REFUND, target=charge["id"])
    assert entry.details["ticket"] == f"#{ticket.number}"  # not "workflow run N": the thread finds it
    assert entry.details["workflow"] == {"run": run.pk, "name": "Refund fraud warnings"}
    with translation.override("en"):
        (event,) = [e for e in thread_events(ticket) if e.action == AuditAction.CHARGE_REFUND]
    assert event.text.startswith("Refunded $10.00 of ch_") and event.text.endswith(
        "— by workflow “Refund fraud warnings”")
    assert event.url == f"/workflows/runs/{run.pk}/"
