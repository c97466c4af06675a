"""Deliveries that race: the same email delivered by three workers at once is stored and made
a message once, a LINE event claimed by two workers at once is processed once, and three first
messages from one new address end on one contact (real PostgreSQL, threads with their own
connections)."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from tests import factories
from tests.helpers import in_threads
from tickets import actions, email_in, line
from tickets.actions.intake import store_line_events
from tickets.models import Contact, Identity, InboundEmail, LineEvent, Message, Ticket

from .conftest import eml

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_message_delivered_at_once_is_stored_once():
    raw = eml("03-attachments.eml")

    arrivals = in_threads(3, lambda i: email_in.receive_bytes(raw, esp="postmark"))

    assert sorted(a.stored for a in arrivals) == [False, False, True]
    assert [a.email.status for a in arrivals] == ["processed"] * 3
    assert sum(a.received is not None for a in arrivals) == 1  # one of them made the message
    assert InboundEmail.objects.count() == 1 and Message.objects.filter(kind="inbound").count() == 1
    assert Ticket.objects.count() == 1 and Contact.objects.count() == 1


def test_a_line_event_two_workers_claim_at_once_is_processed_once():
    user = factories.line_user_id()
    (pk,) = store_line_events(line.split_events(factories.line_payload(factories.line_event("follow", user_id=user))))

    statuses = in_threads(2, lambda i: line.process_event(pk))

    assert statuses == ["processed", "processed"]
    event = LineEvent.objects.get()
    assert event.attempts == 1  # claimed once; the other worker found it done
    assert Identity.objects.filter(kind="line", value=user).count() == 1
    assert AuditEntry.objects.filter(action="identity.line_follow").count() == 1


def test_first_messages_from_one_new_sender_at_once_make_one_contact():
    results = in_threads(3, lambda i: actions.receive_message(
        channel="email", sender="Rin <rin@example.jp>", subject=f"question {i}", body_text="hi",
        channel_message_id=f"race-{i}@example.jp",
    ))

    assert Identity.objects.count() == 1 and Contact.objects.count() == 1
    assert {r.message.contact_id for r in results} == {Contact.objects.get().pk}
    assert Message.objects.count() == 3
