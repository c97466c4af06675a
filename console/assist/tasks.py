"""Assist's Celery task: thin and idempotent (triage is kept per message and replaced, a draft
is made once per message), retried on database errors."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import triage
from .selectors import message_for_triage

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)


@shared_task(name="console.assist.tasks.understand_message_task", autoretry_for=TRANSIENT, retry_backoff=5,
             retry_backoff_max=600, max_retries=8, acks_late=True)
def understand_message_task(message_id: int) -> str:
    """Triage a customer's message, then start the workflows its arrival triggers (so they can
    read message.intent), then draft the ticket's reply. A reading that fails for any other
    reason than the database is logged, and the workflows still start, without an intent."""
    from console.workflows import runs

    message = message_for_triage(message_id)
    if message is None:
        return "gone"
    history, outcome = None, "triaged"
    try:
        _triage, history = triage.understand(message)
    except TRANSIENT:
        raise
    except Exception:  # noqa: BLE001  (a message must not stop its workflows because it could not be read)
        log.exception("assist: message %s could not be triaged", message_id)
        outcome = "unread"
    runs.start_runs(runs.ticket_trigger("message.received", message.ticket, message))
    if outcome == "triaged":
        try:
            triage.draft_reply(message.ticket_id, h=history)
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001  (a draft is a help; the triage and the runs stand without it)
            log.exception("assist: no draft for ticket %s", message.ticket_id)
    return outcome
