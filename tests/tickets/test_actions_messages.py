"""tickets.actions.messages: what a customer sends (threaded, announced once committed), an
agent's notes (internal, allowed on closed tickets) and replies (by email when the ticket came
from no channel)."""

from __future__ import annotations

import pytest
from django.core import mail

from audit.models import AuditEntry
from tests.helpers import committed
from tickets import actions
from tickets.models import Ticket
from tickets.signals import message_received

pytestmark = pytest.mark.django_db


def test_receiving_announces_the_message(customer):
    seen = []
    message_received.connect(lambda sender, message, ticket, contact, created_ticket, **kw:
                             seen.append((message.pk, ticket.pk, contact.pk, created_ticket)),
                             weak=False, dispatch_uid="test.received")
    try:
        with committed():
            first = actions.receive_message(channel="email", sender="mika@example.jp", subject="Hi", body_text="a",
                                            channel_message_id="sig-1@x")
        with committed():
            second = actions.receive_message(channel="email", sender="mika@example.jp", subject="Re: Hi",
                                             body_text="b", channel_message_id="sig-2@x", in_reply_to="sig-1@x")
    finally:
        message_received.disconnect(dispatch_uid="test.received")

    ticket = first.message.ticket
    assert seen == [(first.message.pk, ticket.pk, customer.pk, True), (second.message.pk, ticket.pk, customer.pk, False)]


def test_notes_are_internal_and_allowed_on_closed_tickets(agent, ticket):
    actions.set_status(actor=agent, ticket=ticket, status="closed")

    note = actions.add_note(actor=agent, ticket=ticket, body="Customer called; no action needed",
                            html='<p>Customer <b>called</b><img src="https://t.example/p.gif"></p>')

    assert note.kind == "note" and note.delivery_status == "" and note.author == agent
    assert note.body_html == "<p>Customer <b>called</b></p>"
    assert mail.outbox == []
    assert AuditEntry.objects.get(action="ticket.note").actor == agent


def test_an_agent_created_ticket_is_answered_by_email(agent, customer, committed):
    ticket = actions.create_ticket(actor=agent, requester=customer, subject="Your refund", channel="web")

    with committed():
        reply = actions.reply(actor=agent, ticket=ticket, body="Your refund is on its way.")

    assert reply.channel == "email" and reply.recipient == "mika@example.jp"
    assert mail.outbox[0].to == ["mika@example.jp"]
    assert "In-Reply-To" not in mail.outbox[0].extra_headers


def test_a_customer_writing_again_reopens_a_pending_ticket(agent, ticket):
    actions.set_status(actor=agent, ticket=ticket, status="pending")

    actions.receive_message(channel="email", sender="mika@example.jp", subject="Re: Charged twice",
                            body_text="Here it is", channel_message_id="act-2@example.jp", in_reply_to="act-1@example.jp")

    assert Ticket.objects.get(pk=ticket.pk).status == "open"
