"""Deliveries that race: the same email delivered by three workers at once is stored once,
and three first messages from one new address end on one contact (real PostgreSQL, threads
with their own connections)."""

from __future__ import annotations

import pytest

from tickets import actions, email_in
from tickets.models import Contact, Identity, Message, Ticket

from tests.helpers import in_threads

from .conftest import eml

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_message_delivered_at_once_is_stored_once():
    raw = eml("03-attachments.eml")

    results = in_threads(3, lambda i: email_in.receive_bytes(raw))

    assert sorted(r.created for r in results) == [False, False, True]
    assert len({r.message.pk for r in results}) == 1
    assert Message.objects.filter(kind="inbound").count() == 1
    assert Ticket.objects.count() == 1 and Contact.objects.count() == 1


def test_first_messages_from_one_new_sender_at_once_make_one_contact():
    results = in_threads(3, lambda i: actions.receive_message(
        channel="email", sender="Rin <rin@example.jp>", subject=f"question {i}", body_text="hi",
        channel_message_id=f"race-{i}@example.jp",
    ))

    assert Identity.objects.count() == 1 and Contact.objects.count() == 1
    assert {r.message.contact_id for r in results} == {Contact.objects.get().pk}
    assert Message.objects.count() == 3
