"""Resolution under rules, end to end (workflows template "refund-small-first-request"): a
customer's first refund request about a small charge is refunded at Stripe (localstripe) and
answered with the draft; anything else goes to billing with a note saying why. From a signed
webhook (the charge is mirrored) and an inbound email (the request)."""

from __future__ import annotations

import pytest

from console.workflows.actions import activate_workflow, install_template
from console.workflows.models import WorkflowRun
from tests import factories, helpers
from tests.console.test_workflow_runs import WORKFLOW_LIMITS
from tests.payments.test_stripe_actions import gateway_server, gw, ls, make_charge, make_customer  # noqa: F401
from tickets.actions import receive_message
from tickets.models import Message, MessageTriage, ReplyDraft, Ticket

pytestmark = pytest.mark.django_db
EMAIL = "misaki.sato@example.jp"


@pytest.fixture
def shop(post_event, gw, ls, settings):
    settings.PAYMENTS_REFUND_LIMITS = WORKFLOW_LIMITS
    factories.TeamFactory(name="Billing", slug="billing")
    version = install_template(actor=None, slug="refund-small-first-request")
    activate_workflow(actor=None, workflow=version.workflow_id)
    customer = make_customer(ls, mirror=False)

    def deliver(payload):
        with helpers.committed():
            assert post_event(payload).status_code == 200

    deliver(factories.event("customer.created", customer))  # links the customer to the contact by email
    return {"customer": customer, "deliver": deliver}


def paid(shop, ls, amount):
    charge = make_charge(ls, shop["customer"], amount=amount, currency="usd")
    shop["deliver"](factories.event("charge.succeeded", charge))
    return charge


def ask(body):
    with helpers.committed():
        return receive_message(channel="email", sender=EMAIL, subject="Refund please", body_text=body).message


def test_a_first_small_refund_request_is_refunded_and_answered_with_the_draft(shop, ls, gw):
    charge = paid(shop, ls, 900)

    message = ask("Hi, the beans I paid $9.00 for arrived stale. Could I get a refund please?")

    triage = MessageTriage.objects.get(message=message)
    assert triage.intent == "refund_request" and triage.linked["charge"] == charge["id"]
    run = WorkflowRun.objects.get()
    assert run.status == WorkflowRun.Status.SUCCEEDED, run.steps
    assert [r.amount for r in ls.v1.refunds.list({"charge": charge["id"]}).data] == [900], run.steps
    assert len(gw.sent("POST", "/v1/refunds")) == 1
    draft = ReplyDraft.objects.get(message=message)
    assert draft.status == "sent"
    reply = Message.objects.get(ticket=message.ticket, kind=Message.Kind.OUTBOUND)
    assert reply.body_text == draft.body and "$9.00" in reply.body_text
    note = Message.objects.get(ticket=message.ticket, kind=Message.Kind.NOTE)
    assert "Refunded automatically" in note.body_text and charge["id"] in note.body_text  # why it acted


def test_a_second_refund_or_a_big_charge_goes_to_billing_untouched(shop, ls, gw):
    earlier = paid(shop, ls, 500)
    ls.v1.refunds.create({"charge": earlier["id"]})
    shop["deliver"](factories.event("charge.refunded", ls.v1.charges.retrieve(earlier["id"]).to_dict()))
    refund = ls.v1.refunds.list({"charge": earlier["id"]}).data[0].to_dict()
    shop["deliver"](factories.event("charge.refund.updated", refund))
    paid(shop, ls, 800)

    message = ask("Hello, I'd like a refund for my order of $8.00 please.")

    run = WorkflowRun.objects.get()
    assert run.status == WorkflowRun.Status.SUCCEEDED, run.steps
    assert not gw.sent("POST", "/v1/refunds")  # nothing refunded by the rule
    ticket = Ticket.objects.get(pk=message.ticket_id)
    assert ticket.team.slug == "billing"
    assert ReplyDraft.objects.get(message=message).status == "open"  # the agent answers it
    assert "Not refunded automatically" in Message.objects.get(ticket=ticket, kind=Message.Kind.NOTE).body_text
