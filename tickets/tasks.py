"""Celery tasks: thin wrappers that take ids, call an action, and retry transient errors."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import socket

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from . import email_in, email_out, line, line_profile
from .actions.contacts import set_contact_language
from .actions.delivery import claim_delivery, mark_delivered, mark_delivery_failed
from .actions.errors import ActionError, DeliveryFailed
from .actions.intake import record_inbound_email_failure, record_line_event_failure
from .models import Channel, InboundEmail, LineEvent, Message

log = logging.getLogger(__name__)

DB_TRANSIENT = (OperationalError, InterfaceError)
TRANSIENT = (*DB_TRANSIENT, line.Transient, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout,
             ConnectionError, TimeoutError)
# A stored delivery whose processing keeps meeting a database outage is parked as failed
# after this many retries (about an hour of backoff), where requeue_stale leaves it.
INTAKE_MAX_RETRIES = 12


def _backoff(retries: int) -> int:
    return min(2 ** retries * 5, 600)


def _smtp_transient(exc: Exception) -> bool:
    # 4xx SMTP replies are temporary by definition (RFC 5321); 5xx are permanent.
    code = getattr(exc, "smtp_code", None)
    if code is None and isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        code = min(codes) if codes else None
    return code is not None and 400 <= code < 500


def deliver(message_id: int) -> str:
    """Send one queued outbound message. Idempotent through actions.claim_delivery."""
    message = claim_delivery(message_id)
    if message is None:
        return "skipped"
    if message.channel == Channel.EMAIL:
        email_out.send(message)
        mark_delivered(message_id)
    elif message.channel == Channel.LINE:
        sent_id = line.push(message)
        mark_delivered(message_id, channel_message_id=sent_id)
    else:
        raise DeliveryFailed(f"no way to deliver on channel {message.channel}")
    return "sent"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver_message_task(self, message_id: int):
    try:
        return deliver(message_id)
    except DeliveryFailed as exc:
        mark_delivery_failed(message_id, str(exc), final=True)
        return "failed"
    except Exception as exc:
        transient = isinstance(exc, TRANSIENT) or _smtp_transient(exc)
        final = not transient or self.request.retries >= settings.TICKETS_DELIVERY_MAX_RETRIES
        error = f"{exc.__class__.__name__}: {str(exc)[:500]}"
        mark_delivery_failed(message_id, error, final=final)
        if final:
            log.warning("delivery of message %s failed: %s", message_id, error)
            return "failed"
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))


def _process_stored(task, process, record_failure, pk: int, what: str) -> str:
    """Run a stored delivery's processing; a transient error is retried with backoff, any
    other parks the row as failed with the error (the admin shows it)."""
    try:
        return process(pk)
    except Exception as exc:
        transient = isinstance(exc, DB_TRANSIENT)
        final = not transient or task.request.retries >= INTAKE_MAX_RETRIES
        error = f"{exc.__class__.__name__}: {str(exc)[:500]}"
        try:
            record_failure(pk, error, final=final)
        except DatabaseError:
            log.warning("could not record the failure of %s %s", what, pk)
        if final:
            log.warning("%s %s failed: %s", what, pk, error)
            return "failed"
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_line_event_task(self, event_pk: int):
    return _process_stored(self, line.process_event, record_line_event_failure, event_pk, "LINE event")


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_inbound_email_task(self, email_pk: int):
    return _process_stored(self, _process_email, record_inbound_email_failure, email_pk, "inbound email")


def _process_email(email_pk: int) -> str:
    status, _ = email_in.process(email_pk)
    return status


@shared_task(acks_late=True)
def line_profile_language_task(contact_pk: int, user_id: str) -> str:
    """The LINE user's profile language becomes their contact's (LINE's word on what they read
    beats a guess from their first message). Asked once: without an answer, the guess stays.
    Superseded by line_profile_task (which stores the language too); kept so tasks queued
    before it still run."""
    language = line.profile_language(user_id)
    if not language:
        return "unknown"
    try:
        set_contact_language(contact=contact_pk, language=language, source="line")
    except ActionError:  # the contact is gone (merged contacts stay, so rarely)
        return "no contact"
    return language


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def line_profile_task(self, user_id: str) -> str:
    """Store the LINE user's profile (name, picture, language) on their contact; LINE busy
    (429, 5xx) or unreachable is retried with backoff, then given up: the next message after
    the profile goes stale asks again."""
    try:
        return line_profile.refresh(user_id)
    except TRANSIENT as exc:
        if self.request.retries >= settings.TICKETS_LINE_PROFILE_MAX_RETRIES:
            log.info("LINE profile of %s not fetched: %s", user_id, str(exc)[:200])
            return "failed"
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))


@shared_task(acks_late=True)
def requeue_stale(older_than_seconds: int = 120) -> dict:
    """Queue again what lost its task (the broker was down at commit, a worker died):
    replies still queued, replies stuck sending past the claim timeout, and LINE events and
    inbound emails still pending. Each task is idempotent, so a duplicate is harmless."""
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    messages = list(
        Message.objects.filter(kind=Message.Kind.OUTBOUND)
        .filter(
            Q(delivery_status=Message.Delivery.QUEUED, created__lt=cutoff)
            | Q(delivery_status=Message.Delivery.SENDING, delivery_started_at__lt=now - dt.timedelta(minutes=10))
        )
        .order_by("created")
        .values_list("pk", flat=True)[:2000]
    )
    events = list(
        LineEvent.objects.filter(status=LineEvent.Status.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:2000]
    )
    emails = list(
        InboundEmail.objects.filter(status=InboundEmail.Status.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:2000]
    )
    for pk in messages:
        deliver_message_task.delay(pk)
    for pk in events:
        process_line_event_task.delay(pk)
    for pk in emails:
        process_inbound_email_task.delay(pk)
    return {"messages": len(messages), "line_events": len(events), "inbound_emails": len(emails)}
