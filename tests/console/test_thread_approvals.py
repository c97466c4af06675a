"""Finance's answers to a refund request are in the ticket's thread (tickets.selectors.thread,
read from the audit rows console.actions writes): asked, then declined with the reason, or
approved with what was refunded."""

from __future__ import annotations

import pytest
from django.utils import translation

from console import actions as console_actions
from console.models import RefundApproval
from tests import factories
from tickets import selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(agent, finance):
    agent.first_name, agent.last_name, finance.first_name, finance.last_name = "Aiko", "", "Ken", ""
    agent.save()
    finance.save()
    return agent, finance


def ask(agent, ticket, amount=2500):
    console_actions.request_refund_approval(actor=agent, ticket=ticket, charge_id="ch_9", amount=amount,
                                            currency="jpy", reason="requested_by_customer", note="",
                                            refusal="over the limit", token="tok")
    return RefundApproval.objects.get(token="tok")


def events(ticket):
    with translation.override("en"):
        return [e.text for e in selectors.thread_events(ticket)]


def test_asking_and_a_decline_are_two_lines_of_the_thread(named):
    agent, finance = named
    ticket = factories.TicketFactory()
    approval = ask(agent, ticket)
    console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="Outside the window")
    assert events(ticket) == ["Asked finance to refund ¥2,500 of ch_9 — Aiko",
                              "Finance declined: Outside the window — Ken"]


def test_an_approval_says_what_was_refunded_once(named):
    agent, finance = named
    ticket = factories.TicketFactory()
    approval = ask(agent, ticket)
    console_actions.close_refund_approval(actor=finance, approval=approval,
                                          refund={"id": "re_1", "amount": 2000, "currency": "jpy"})
    assert events(ticket) == ["Asked finance to refund ¥2,500 of ch_9 — Aiko",
                              "Finance approved: refunded ¥2,000 — Ken"]


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_the_ticket_page_shows_finances_answer(client, named, role, request):
    agent, finance = named
    ticket = factories.TicketFactory()
    approval = ask(agent, ticket)
    console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="Outside the window")
    client.force_login(request.getfixturevalue(role))
    html = client.get(f"/tickets/{ticket.number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Finance declined: Outside the window — Ken" in html


def test_others_see_no_thread(client, named, no_role):
    agent, finance = named
    ticket = factories.TicketFactory()
    ask(agent, ticket)
    assert client.get(f"/tickets/{ticket.number}/").status_code == 302
    client.force_login(no_role)
    assert client.get(f"/tickets/{ticket.number}/").status_code == 403
