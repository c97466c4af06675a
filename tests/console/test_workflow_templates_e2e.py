"""Each template, end to end: a signed webhook in, the effect out — a ticket in the team's view,
metadata at Stripe (localstripe), a refund at Stripe, an email in the outbox, a notification.
(The chargeback and fraud-warning templates are in test_workflow_runs.py.)"""

from __future__ import annotations

import time

import pytest
from django.core import mail

from audit.models import AuditAction, AuditEntry
from console.disputes.models import DisputeCase
from console.models import Notification, UserPreference
from console.workflows.actions import activate_workflow, install_template
from console.workflows.models import WorkflowRun
from tests import factories, helpers
from tests.payments.test_stripe_actions import gateway_server, gw, ls, make_customer  # noqa: F401
from tickets.models import Identity, Ticket
from tickets.selectors import resolve_view, view_filter

pytestmark = pytest.mark.django_db


def active(slug):
    version = install_template(actor=None, slug=slug)
    activate_workflow(actor=None, workflow=version.workflow_id)
    return version.workflow


def deliver(post_event, payload):
    with helpers.committed():
        assert post_event(payload).status_code == 200


def linked(post_event, customer):
    # A plain address: Faker's names ("Mr. Jon Doe") can make one Stripe would refuse, never linked.
    customer["email"] = f"{customer['id'].lower()}@example.com"
    deliver(post_event, factories.event("customer.created", customer))
    return Identity.objects.get(value=customer["id"]).contact


def test_big_orders_email_and_notify_the_support_team_with_the_amount(post_event):
    support = factories.TeamFactory(name="Support", slug="support")
    keiko = factories.UserFactory(username="keiko", role="agent", email="keiko@shop.example")
    ja = factories.UserFactory(username="haruto", role="agent", email="haruto@shop.example")
    UserPreference.objects.update_or_create(user=ja, defaults={"language": "ja"})
    support.members.add(keiko, ja)
    active("personalize-big-orders")
    intent = factories.PaymentIntentFactory(amount=125000, currency="usd")

    deliver(post_event, factories.event("payment_intent.succeeded", intent))

    english = Notification.objects.get(recipient=keiko)
    assert english.text.startswith(f"Order of $1,250.00 by {intent['customer']} ({intent['id']})")
    japanese = Notification.objects.get(recipient=ja)
    assert "US$1,250.00" in japanese.text or "$1,250.00" in japanese.text
    assert sorted(m.to[0] for m in mail.outbox) == ["haruto@shop.example", "keiko@shop.example"]


def test_orders_over_two_thousand_mark_the_customer_vip_at_stripe(post_event, gw, ls, settings):
    factories.TeamFactory(name="Support", slug="support")
    active("tag-vip-customers")
    customer = make_customer(ls)
    intent = factories.PaymentIntentFactory(amount=250000, currency="usd", customer=customer["id"])

    deliver(post_event, factories.event("payment_intent.succeeded", intent))

    run = WorkflowRun.objects.get()
    assert run.status == WorkflowRun.Status.SUCCEEDED, run.steps
    assert ls.v1.customers.retrieve(customer["id"]).metadata["Tier"] == "VIP"
    sent = gw.sent("POST", f"/v1/customers/{customer['id']}")
    assert len(sent) == 1 and sent[0]["idempotency_key"].endswith(f"workflow-run-{run.pk}-step-2_1_1")


def test_a_failed_subscription_payment_opens_a_billing_ticket_with_the_next_retry(post_event):
    active("failed-subscription-payment-ticket")
    customer = factories.CustomerFactory()
    contact = linked(post_event, customer)
    retry_at = int(time.time()) + 3 * 86400
    invoice = factories.InvoiceFactory(customer=customer["id"], status="open", amount_due=2900, amount_paid=0,
                                       billing_reason="subscription_cycle", attempt_count=1,
                                       next_payment_attempt=retry_at, number="PD-2042")

    deliver(post_event, factories.event("invoice.payment_failed", invoice))

    ticket = Ticket.objects.get(requester=contact)
    assert ticket.subject == "Subscription payment failed: invoice PD-2042 ($29.00)"
    assert {t.name for t in ticket.tags.all()} == {"billing", "failed-payment"}
    note = ticket.messages.get(kind="note").body_text
    assert note.startswith("Attempt 1; next retry ") and str(time.gmtime(retry_at).tm_year) in note


def test_a_processed_refund_notes_the_open_ticket_or_opens_one(post_event, agent):
    active("refund-processed-note")
    customer = factories.CustomerFactory()
    contact = linked(post_event, customer)
    charge = factories.ChargeFactory(customer=customer["id"], amount=5000, amount_refunded=2000, refunded=False)

    deliver(post_event, factories.event("charge.refunded", charge))  # no open ticket: one is opened
    opened = Ticket.objects.get(requester=contact)
    assert opened.subject == f"Refund processed: $20.00 of $50.00 on {charge['id']}"
    assert [t.name for t in opened.tags.all()] == ["refund"]

    again = {**charge, "amount_refunded": 5000, "refunded": True}
    deliver(post_event, factories.event("charge.refunded", again))  # now it is open: a note on it
    assert Ticket.objects.filter(requester=contact).count() == 1
    assert opened.messages.filter(kind="note", body_text__contains="Refunded $50.00 of $50.00").exists()


def test_a_cancelled_subscription_opens_a_retention_ticket_with_the_reason_and_feedback(post_event):
    active("subscription-cancelled-ticket")
    customer = factories.CustomerFactory()
    contact = linked(post_event, customer)
    subscription = factories.SubscriptionFactory(
        customer=customer["id"], status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()),
        cancellation_details={"reason": "cancellation_requested", "feedback": "too_expensive",
                              "comment": "Cheaper elsewhere"})

    deliver(post_event, factories.event("customer.subscription.deleted", subscription))

    ticket = Ticket.objects.get(requester=contact)
    assert ticket.subject == f"Subscription cancelled: {subscription['id']}"
    note = ticket.messages.get(kind="note").body_text
    assert note == "Reason: Cancellation requested. Feedback: Too expensive Cheaper elsewhere"  # Stripe's values in words


def test_a_chargeback_ticket_lands_in_the_finance_teams_view(post_event, finance):
    team = factories.TeamFactory(name="Finance", slug="finance")
    team.members.add(finance)
    active("chargeback-ticket")
    customer = factories.CustomerFactory()
    linked(post_event, customer)
    charge = factories.mirror(factories.ChargeFactory(customer=customer["id"]))[0]

    dispute = factories.DisputeFactory(charge=charge["id"])
    deliver(post_event, factories.event("charge.dispute.created", dispute))

    view = resolve_view("team-finance", [team])
    in_view = Ticket.objects.filter(view_filter(view, finance))
    assert [t.subject.split(":")[0] for t in in_view] == [f"Chargeback on {charge['id']}"]
    # The dispute is worked on that ticket: its page and the queue say so, and the deadline
    # reminder escalates it rather than open a second ticket.
    case = DisputeCase.objects.get(dispute_id=dispute["id"])
    assert case.ticket == in_view.get()
    assert AuditEntry.objects.filter(action=AuditAction.DISPUTE_LINK_TICKET, target=dispute["id"],
                                     actor__username="workflows").exists()
    deliver(post_event, factories.event("charge.dispute.updated", {**dispute, "status": "needs_response"}))
    assert DisputeCase.objects.get(dispute_id=dispute["id"]).ticket == case.ticket  # a linked ticket stays
