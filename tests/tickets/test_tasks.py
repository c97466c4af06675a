"""tickets.tasks: what lost its task (broker down at commit, a worker killed) is queued again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from tests import factories
from tickets import actions, email_in, line
from tickets.actions.intake import store_line_events
from tickets.models import LineEvent, Message
from tickets.tasks import requeue_stale

from .conftest import eml

pytestmark = pytest.mark.django_db


def test_requeue_sends_lost_replies_and_processes_lost_line_events(agent, eager):
    ticket = email_in.receive_bytes(eml("01-plain.eml")).message.ticket
    # No on_commit here: as if the broker was down when the reply committed.
    lost = actions.reply(actor=agent, ticket=ticket, body="Your order shipped today.")
    fresh = actions.reply(actor=agent, ticket=ticket, body="Tracking number follows.")
    store_line_events(line.split_events(factories.line_payload(factories.line_event(text="届いていません"))))
    old = timezone.now() - dt.timedelta(minutes=5)
    Message.objects.filter(pk=lost.pk).update(created=old)
    LineEvent.objects.update(received_at=old)

    assert requeue_stale.delay().get() == {"messages": 1, "line_events": 1}

    assert Message.objects.get(pk=lost.pk).delivery_status == "sent"
    assert Message.objects.get(pk=fresh.pk).delivery_status == "queued"  # its own task may still come
    assert [m.body for m in mail.outbox] == ["Your order shipped today."]
    assert LineEvent.objects.get().status == "processed"
    assert Message.objects.filter(channel="line", body_text="届いていません").exists()
    assert requeue_stale.delay().get() == {"messages": 0, "line_events": 0}
