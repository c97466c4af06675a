"""tickets.tasks: thin tasks over the actions. What lost its task (broker down at commit, a
worker killed) is queued again; a stored delivery is processed once however often its task
runs; a database outage is retried, anything else parks the row as failed with the error."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from tests import factories
from tickets import actions, email_in, line
from tickets.actions.intake import store_inbound_email, store_line_events
from tickets.models import InboundEmail, LineEvent, Message
from tickets.tasks import process_inbound_email_task, process_line_event_task, requeue_stale

from .conftest import eml

pytestmark = pytest.mark.django_db


def test_requeue_sends_lost_replies_and_processes_lost_line_events_and_emails(agent, eager):
    ticket = email_in.receive_bytes(eml("01-plain.eml")).email.message.ticket
    # No on_commit here: as if the broker was down when these committed.
    lost = actions.reply(actor=agent, ticket=ticket, body="Your order shipped today.")
    fresh = actions.reply(actor=agent, ticket=ticket, body="Tracking number follows.")
    store_line_events(line.split_events(factories.line_payload(factories.line_event(text="届いていません"))))
    store_inbound_email(eml("09-no-to.eml"), esp="postmark")
    old = timezone.now() - dt.timedelta(minutes=5)
    Message.objects.filter(pk=lost.pk).update(created=old)
    LineEvent.objects.update(received_at=old)
    InboundEmail.objects.filter(esp="postmark").update(received_at=old)

    assert requeue_stale.delay().get() == {"messages": 1, "line_events": 1, "inbound_emails": 1}

    assert Message.objects.get(pk=lost.pk).delivery_status == "sent"
    assert Message.objects.get(pk=fresh.pk).delivery_status == "queued"  # its own task may still come
    assert [m.body for m in mail.outbox] == ["Your order shipped today."]
    assert LineEvent.objects.get().status == "processed"
    assert Message.objects.filter(channel="line", body_text="届いていません").exists()
    assert InboundEmail.objects.get(esp="postmark").status == "processed"
    assert Message.objects.filter(sender="t.nowak@example.pl").exists()
    assert requeue_stale.delay().get() == {"messages": 0, "line_events": 0, "inbound_emails": 0}


def test_a_stored_email_is_made_a_message_once_however_often_its_task_runs(eager):
    email, _ = store_inbound_email(eml("05-utf-8.eml"), esp="postmark")

    first = process_inbound_email_task.delay(email.pk).get()
    again = process_inbound_email_task.delay(email.pk).get()

    assert (first, again) == ("processed", "processed")
    email.refresh_from_db()
    assert email.attempts == 1 and Message.objects.filter(kind="inbound").count() == 1


def test_a_database_outage_is_retried_and_then_the_email_is_processed(eager, monkeypatch):
    email, _ = store_inbound_email(eml("13-no-message-id.eml"), esp="postmark")
    process, outages = email_in.process, []

    def flaky(pk):
        # The first two attempts meet the database going away, as during a failover.
        if len(outages) < 2:
            outages.append(pk)
            raise OperationalError("server closed the connection unexpectedly")
        return process(pk)

    monkeypatch.setattr(email_in, "process", flaky)
    assert process_inbound_email_task.delay(email.pk).get() == "processed"

    email.refresh_from_db()
    assert outages == [email.pk, email.pk]
    # Two failed attempts recorded while it stayed pending, then the claim of the third.
    assert email.status == "processed" and email.attempts == 3
    assert Message.objects.filter(sender="lucia.fernandez@example.es").count() == 1


def test_an_error_that_is_not_passing_parks_the_event_as_failed_with_it(eager, monkeypatch):
    (pk,) = store_line_events(line.split_events(factories.line_payload(factories.line_event(text="返品したい"))))

    def broken(event_pk):
        raise KeyError("message")  # a bug in processing, say

    monkeypatch.setattr(line, "process_event", broken)
    assert process_line_event_task.delay(pk).get() == "failed"

    event = LineEvent.objects.get()
    assert event.status == "failed" and event.last_error == "KeyError: 'message'" and event.attempts == 1
    assert not Message.objects.exists()
