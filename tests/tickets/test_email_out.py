"""Replies by email: headers that thread in the customer's client, one send per reply,
failures shown on the message; through Django's locmem email backend."""

from __future__ import annotations

import smtplib

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.mail.backends.base import BaseEmailBackend

from audit.models import AuditEntry
from tickets import actions, email_in
from tickets.models import Message, Ticket
from tickets.tasks import deliver_message_task

from .conftest import eml

pytestmark = pytest.mark.django_db


class RefusingBackend(BaseEmailBackend):
    """An SMTP server that answers the recipient with `code`."""

    code = 550

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({messages[0].to[0]: (self.code, b"mailbox unavailable")})


class BusyBackend(RefusingBackend):
    code = 451


@pytest.fixture
def thread():
    first = email_in.receive_bytes(eml("06-thread-1.eml"))
    email_in.receive_bytes(eml("06-thread-2.eml"))
    return first.email.message.ticket


def test_a_reply_goes_out_with_message_id_in_reply_to_and_references(agent, thread, committed):
    with committed():
        message = actions.reply(actor=agent, ticket=thread, body="We refunded the duplicate charge.",
                                html="<p>We refunded the <b>duplicate</b> charge.<script>x()</script></p>")

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["tom@example.com"]
    assert sent.from_email == "Paydesk Support <support@paydesk.test>"
    assert sent.subject == f"Re: Subscription charged twice [#{thread.number}]"
    assert sent.extra_headers["Message-ID"] == f"<{message.channel_message_id}>"
    assert message.channel_message_id.endswith("@paydesk.test")
    assert sent.extra_headers["In-Reply-To"] == "<thread-2@example.com>"
    assert sent.extra_headers["References"] == "<thread-1@example.com> <thread-2@example.com>"
    assert sent.body == "We refunded the duplicate charge."
    assert sent.alternatives[0][0] == "<p>We refunded the <b>duplicate</b> charge.</p>"
    raw = sent.message().as_string()
    assert f"Message-ID: <{message.channel_message_id}>" in raw
    message.refresh_from_db()
    assert message.delivery_status == "sent" and message.sent_at
    ticket = Ticket.objects.get(pk=thread.pk)
    assert ticket.first_responded_at is not None and ticket.sla_due == ticket.resolution_due
    assert AuditEntry.objects.filter(action="ticket.reply", actor=agent, target=f"ticket:{thread.number}").exists()


def test_the_next_reply_references_the_whole_conversation(agent, thread, committed):
    with committed():
        first = actions.reply(actor=agent, ticket=thread, body="Looking into it.")
        second = actions.reply(actor=agent, ticket=thread, body="Refunded.")

    assert len(mail.outbox) == 2
    headers = mail.outbox[1].extra_headers
    assert headers["In-Reply-To"] == f"<{first.channel_message_id}>"
    assert headers["References"] == f"<thread-1@example.com> <thread-2@example.com> <{first.channel_message_id}>"
    assert second.channel_message_id != first.channel_message_id


def test_a_reply_with_an_attachment(agent, thread, committed):
    with committed():
        actions.reply(actor=agent, ticket=thread, body="Your receipt is attached.", attachments=[
            actions.IncomingAttachment("receipt.txt", b"Total: $42.00\n", "text/plain"),
        ])

    assert mail.outbox[0].attachments[0][:2] == ("receipt.txt", "Total: $42.00\n")


def test_reply_to_a_closed_ticket_is_refused_and_writes_nothing(agent, admin_user, thread, committed):
    actions.set_status(actor=admin_user, ticket=thread, status="closed")
    before = (Message.objects.count(), AuditEntry.objects.count(), Ticket.objects.get(pk=thread.pk).version)

    with committed(), pytest.raises(actions.TicketClosed) as error:
        actions.reply(actor=agent, ticket=thread, body="Hello again")

    assert f"Ticket #{thread.number} is closed" in str(error.value.message)
    assert (Message.objects.count(), AuditEntry.objects.count(), Ticket.objects.get(pk=thread.pk).version) == before
    assert mail.outbox == []


def test_a_reply_to_a_ticket_that_changed_since_the_page_loaded_is_refused(agent, thread):
    version = Ticket.objects.get(pk=thread.pk).version
    actions.add_note(actor=agent, ticket=thread, body="Checking with finance")

    with pytest.raises(actions.StaleTicket):
        actions.reply(actor=agent, ticket=thread, body="Hi", expected_version=version)
    assert not Message.objects.filter(kind="outbound").exists()


def test_an_empty_reply_and_a_reply_without_permission_write_nothing(thread, db):
    from tests.factories import UserFactory

    nobody = UserFactory(username="norole")
    with pytest.raises(actions.ActionError):
        actions.reply(actor=UserFactory(username="agent2", role="agent"), ticket=thread, body="   ")
    with pytest.raises(PermissionDenied):
        actions.reply(actor=nobody, ticket=thread, body="Hi")
    assert not Message.objects.filter(kind="outbound").exists()


def test_a_permanent_smtp_refusal_marks_the_reply_failed(agent, thread, committed, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"

    with committed():
        message = actions.reply(actor=agent, ticket=thread, body="Hello")

    message.refresh_from_db()
    assert message.delivery_status == "failed" and message.delivery_attempts == 1
    assert "SMTPRecipientsRefused" in message.delivery_error


def test_a_temporary_smtp_refusal_is_retried_then_fails_and_an_agent_retries(agent, thread, committed, settings):
    settings.EMAIL_BACKEND = f"{__name__}.BusyBackend"
    with committed():
        message = actions.reply(actor=agent, ticket=thread, body="Hello")
    message.refresh_from_db()
    assert message.delivery_status == "failed"
    assert message.delivery_attempts == settings.TICKETS_DELIVERY_MAX_RETRIES + 1

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with committed():
        actions.retry_delivery(actor=agent, message=message)
    message.refresh_from_db()
    assert message.delivery_status == "sent"
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<{message.channel_message_id}>"
    with pytest.raises(actions.ActionError):
        actions.retry_delivery(actor=agent, message=message)  # sent: nothing to retry


def test_a_redelivered_task_does_not_send_twice(agent, thread, committed):
    with committed():
        message = actions.reply(actor=agent, ticket=thread, body="Hello")

    assert deliver_message_task.delay(message.pk).get() == "skipped"
    assert len(mail.outbox) == 1
