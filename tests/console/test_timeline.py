"""The materialised timeline: entries from applied Stripe events, tickets, messages and the
audit log; idempotent on replay and rebuild; re-pointed by merges; agent purchases."""

import time

import pytest
from django.core.management import call_command

from audit.log import record
from audit.models import AuditAction
from console import timeline
from console.models import SharedPaymentToken, TimelineEntry
from payments.actions.events import apply_event
from tests import factories
from tests.helpers import committed, deliver
from tickets import actions as ticket_actions

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def customer():
    cus = factories.CustomerFactory(name="Mika Tanaka", email="mika@example.jp")
    deliver("customer.created", cus, created=NOW - 5000)
    return cus


def contact_of(cus):
    from tickets.models import Identity

    return Identity.objects.get(kind="stripe_customer", value=cus["id"]).contact


def kinds(contact):
    return list(TimelineEntry.objects.filter(contact=contact).order_by("occurred_at", "id").values_list("kind", flat=True))


def test_stripe_events_become_entries_on_the_customers_contact(customer):
    ch = factories.ChargeFactory(customer=customer["id"], amount=1000, currency="jpy", created=NOW - 4000)
    deliver("charge.succeeded", ch, created=NOW - 4000)
    failed = factories.ChargeFactory(customer=customer["id"], status="failed", paid=False, created=NOW - 3900,
                                     failure_message="Your card was declined.")
    deliver("charge.failed", failed, created=NOW - 3900)
    refund = factories.RefundFactory(charge=ch["id"], amount=400, currency="jpy", created=NOW - 3000)
    deliver("refund.created", refund, created=NOW - 3000)
    dp = factories.DisputeFactory(charge=ch["id"], amount=600, currency="jpy", created=NOW - 2000)
    deliver("charge.dispute.created", dp, created=NOW - 2000)
    deliver("charge.dispute.updated", {**dp, "status": "under_review"}, created=NOW - 1900,
          previous_attributes={"status": "needs_response"})
    deliver("charge.dispute.closed", {**dp, "status": "lost"}, created=NOW - 1800)
    efw = factories.EarlyFraudWarningFactory(charge=ch["id"], created=NOW - 1700)
    deliver("radar.early_fraud_warning.created", efw, created=NOW - 1700)

    contact = contact_of(customer)
    assert kinds(contact) == ["payment_succeeded", "payment_failed", "refund", "dispute_opened", "dispute_updated",
                              "dispute_closed", "fraud_warning"]
    pay = TimelineEntry.objects.get(kind="payment_succeeded")
    assert (pay.amount, pay.currency, pay.object_id) == (1000, "jpy", ch["id"])
    assert TimelineEntry.objects.get(kind="payment_failed").summary == "Your card was declined."
    # A refund's customer comes from its charge in the mirror.
    assert TimelineEntry.objects.get(kind="refund").customer == customer["id"]
    assert TimelineEntry.objects.get(kind="dispute_closed").title.lower() == "dispute closed — lost"


def test_subscription_lifecycle_and_invoices(customer):
    sub = factories.SubscriptionFactory(customer=customer["id"], created=NOW - 9000)
    deliver("customer.subscription.created", sub, created=NOW - 9000)
    deliver("customer.subscription.updated", {**sub, "cancel_at_period_end": True}, created=NOW - 8000,
          previous_attributes={"cancel_at_period_end": False})
    # A renewal that only moves the period is not something a person needs to see.
    deliver("customer.subscription.updated", {**sub, "cancel_at_period_end": True, "current_period_end": NOW + 99},
          created=NOW - 7900, previous_attributes={"current_period_end": NOW})
    inv = factories.InvoiceFactory(customer=customer["id"], subscription=sub["id"], created=NOW - 7000)
    deliver("invoice.paid", inv, created=NOW - 7000)
    deliver("invoice.payment_failed", {**inv, "status": "open", "attempt_count": 2}, created=NOW - 6000)
    ended = {**sub, "status": "canceled", "canceled_at": NOW - 5000, "ended_at": NOW - 5000,
             "cancellation_details": {"reason": "cancellation_requested", "feedback": "too_expensive", "comment": "高い"}}
    deliver("customer.subscription.deleted", ended, created=NOW - 5000)

    contact = contact_of(customer)
    assert kinds(contact) == ["subscription_started", "subscription_changed", "invoice_paid", "invoice_failed",
                              "subscription_cancelled"]
    assert "cancel at period end" in TimelineEntry.objects.get(kind="subscription_changed").summary
    cancelled = TimelineEntry.objects.get(kind="subscription_cancelled").summary
    assert "too expensive" in cancelled.lower() and "高い" in cancelled


def test_replay_and_rebuild_do_not_duplicate(customer):
    ch = factories.ChargeFactory(customer=customer["id"], created=NOW - 100)
    payload = deliver("charge.succeeded", ch, created=NOW - 100)
    deliver("charge.updated", {**ch, "description": "Order 12"}, created=NOW - 50)
    apply_event(payload["id"], replay=True)
    before = TimelineEntry.objects.count()
    call_command("timeline_rebuild")
    call_command("timeline_rebuild")
    assert TimelineEntry.objects.count() == before
    assert TimelineEntry.objects.filter(kind="payment_succeeded").count() == 1


def test_rebuild_restores_entries_from_mirror_tickets_and_audit(customer, agent):
    contact = contact_of(customer)
    ch = factories.ChargeFactory(customer=customer["id"], created=NOW - 100)
    factories.mirror(ch)  # a backfilled charge: no event, only the mirror
    ticket = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Double charge?")
    ticket_actions.add_note(actor=agent, ticket=ticket, body="Checked Stripe")
    ticket_actions.set_status(actor=agent, ticket=ticket, status="pending")
    TimelineEntry.objects.all().delete()
    call_command("timeline_rebuild", "--clear")
    assert set(kinds(contact)) == {"payment_succeeded", "ticket", "message", "action"}


def test_charge_before_the_customer_link_is_attached_when_the_link_comes():
    cus = factories.CustomerFactory(email="late@example.com")
    ch = factories.ChargeFactory(customer=cus["id"], created=NOW - 100)
    deliver("charge.succeeded", ch, created=NOW - 100)
    entry = TimelineEntry.objects.get(kind="payment_succeeded")
    assert entry.contact_id is None
    deliver("customer.created", cus, created=NOW - 50)
    entry.refresh_from_db()
    assert entry.contact_id == contact_of(cus).pk


def test_ticket_and_messages_and_merge_repoints_then_undo(customer, agent):
    contact = contact_of(customer)
    ch = factories.ChargeFactory(customer=customer["id"], created=NOW - 100)
    deliver("charge.succeeded", ch, created=NOW - 100)
    with committed():
        other = ticket_actions.create_contact(actor=agent, name="LINE user",
                                              identities=[("line", factories.line_user_id())])
        ticket = ticket_actions.create_ticket(actor=agent, requester=other, subject="Where is my refund", channel="line")
        ticket_actions.reply(actor=agent, ticket=ticket, body="Looking into it")
    assert set(kinds(other)) >= {"ticket", "message"}

    with committed():
        merge = ticket_actions.contact_merge(actor=agent, survivor=other, merged=contact)
    assert set(kinds(other)) >= {"ticket", "message", "payment_succeeded"}
    assert not TimelineEntry.objects.filter(contact=contact, kind="payment_succeeded").exists()
    with committed():
        ticket_actions.undo_merge(actor=agent, merge=merge)
    assert TimelineEntry.objects.get(kind="payment_succeeded").contact_id == contact.pk


def test_agent_purchase_from_the_granted_token_on_the_payment_intent(customer):
    token = {
        "id": "spt_1Agent", "object": "shared_payment.granted_token", "created": NOW - 500,
        "usage_limits": {"currency": "jpy", "max_amount": 5000, "expires_at": NOW + 3600},
        "agent_details": {"network_business_profile": None}, "deactivated_at": None,
    }
    pi = factories.PaymentIntentFactory(customer=customer["id"], amount=3000, currency="jpy",
                                        shared_payment_granted_token=token)
    ch = factories.ChargeFactory(customer=customer["id"], amount=3000, currency="jpy", payment_intent=pi["id"])
    pi["latest_charge"] = ch["id"]
    deliver("payment_intent.succeeded", pi, created=NOW - 60)
    deliver("charge.succeeded", ch, created=NOW - 59)
    plain = factories.ChargeFactory(customer=customer["id"])
    deliver("charge.succeeded", plain, created=NOW - 58)

    entry = TimelineEntry.objects.get(object_id=ch["id"], kind="payment_succeeded")
    assert entry.agent_purchase is True
    assert entry.data["agent"] == {"token": "spt_1Agent", "max_amount": 5000, "currency": "jpy",
                                   "expires_at": NOW + 3600, "agent": "", "deactivated_at": None}
    assert SharedPaymentToken.objects.filter(pk="spt_1Agent").exists()
    assert not TimelineEntry.objects.get(object_id=plain["id"]).agent_purchase


def test_agent_purchase_marked_when_the_payment_intent_comes_after_the_charge(customer):
    SharedPaymentToken.objects.create(pk="spt_recorded", data={
        "id": "spt_recorded", "usage_limits": {"currency": "usd", "max_amount": 2000, "expires_at": None}})
    ch = factories.ChargeFactory(customer=customer["id"])
    deliver("charge.succeeded", ch, created=NOW - 60)
    pi = factories.PaymentIntentFactory(id=ch["payment_intent"], customer=customer["id"], latest_charge=ch["id"],
                                        payment_method_data={"shared_payment_granted_token": "spt_recorded"})
    deliver("payment_intent.succeeded", pi, created=NOW - 50)
    entry = TimelineEntry.objects.get(object_id=ch["id"])
    assert entry.agent_purchase and entry.data["agent"]["max_amount"] == 2000


def test_agent_actions_from_the_audit_log(customer, agent):
    ch = factories.ChargeFactory(customer=customer["id"], created=NOW - 100)
    deliver("charge.succeeded", ch, created=NOW - 100)
    with committed():
        record(actor=agent, action=AuditAction.CHARGE_REFUND, target=ch["id"], amount=500, currency="usd",
               description="Refund $5.00")
    entry = TimelineEntry.objects.get(kind="action")
    assert entry.contact_id == contact_of(customer).pk
    assert (entry.amount, entry.summary, entry.data["actor"]) == (500, "Refund $5.00", agent.username)


def test_invoice_fields_stripe_sends_as_null_do_not_break_the_entry(customer):
    # Stripe sends absent optional fields as null, not missing (seen in the demo: billing_reason).
    invoice = factories.InvoiceFactory(customer=customer["id"], billing_reason=None, created=NOW - 100)
    deliver("invoice.payment_succeeded", invoice, created=NOW - 100)
    assert "invoice_paid" in kinds(contact_of(customer))


def test_ticket_housekeeping_stays_off_the_timeline_but_status_changes_show(customer, agent):
    contact = contact_of(customer)
    with committed():
        ticket = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Refund please", channel="email")
        ticket_actions.assign(actor=agent, ticket=ticket, assignee=agent)
        ticket_actions.set_tags(actor=agent, ticket=ticket, add=["refund"])
        ticket_actions.set_priority(actor=agent, ticket=ticket, priority="urgent")
        ticket_actions.set_status(actor=agent, ticket=ticket, status="solved")
    actions = TimelineEntry.objects.filter(contact=contact, kind="action")
    assert [e.title for e in actions] == [f"Ticket #{ticket.number} solved"]
    from audit.models import AuditEntry

    # Still in the audit log, where the ticket's history is read.
    assert {"ticket.assign", "ticket.tags", "ticket.priority"} <= set(AuditEntry.objects.values_list("action", flat=True))


def test_refund_action_is_titled_for_people(customer, agent):
    ch = factories.ChargeFactory(customer=customer["id"], created=NOW - 100)
    deliver("charge.succeeded", ch, created=NOW - 100)
    with committed():
        record(actor=agent, action=AuditAction.CHARGE_REFUND, target=ch["id"], amount=700, currency="jpy", ticket="#12")
        record(actor=agent, action=AuditAction.SUBSCRIPTION_CANCEL, target=ch["id"], at_period_end=True)
    titles = set(TimelineEntry.objects.filter(kind="action").values_list("title", flat=True))
    assert titles == {"Refund issued", "Cancellation at period end"}


def test_a_ticket_merge_is_one_entry_and_the_moved_messages_follow_the_ticket(agent):
    with committed():
        contact = ticket_actions.create_contact(actor=agent, name="Mika Ito", identities=[("email", "mika@example.jp")])
        survivor = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Double charge", channel="email")
        merged = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Refund please", channel="email")
        message = ticket_actions.add_note(actor=agent, ticket=merged, body="Asked for the receipt")
    entry = TimelineEntry.objects.get(source=f"message:{message.pk}")
    assert entry.ticket_id == merged.pk
    with committed():
        merge = ticket_actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    assert TimelineEntry.objects.filter(contact=contact, data__action="ticket.merge").count() == 1
    entry.refresh_from_db()
    assert entry.ticket_id == survivor.pk
    with committed():
        ticket_actions.undo_ticket_merge(actor=agent, merge=merge)
    assert TimelineEntry.objects.filter(contact=contact, data__action="ticket.merge_undo").count() == 1
    entry.refresh_from_db()
    assert entry.ticket_id == merged.pk
