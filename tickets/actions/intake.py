"""What the channels deliver, stored before anything reads it: LINE webhook events and
inbound email (raw MIME). A task then claims each pending row once (a compare-and-swap
inside the transaction that records what it became) and marks it processed, ignored (with
the reason it cannot be used) or failed (with the error).

The stored rows are the record of what arrived; the audit log hears what they became
(message.receive, identity.line_follow ...). Paydesk does all of this itself; a person only
asks for an email to be processed again (reprocess_inbound_email, from the admin).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from django.utils.translation import pgettext_lazy
from django.db import DataError, IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.actors import require
from audit.models import AuditAction

from .. import queue
from ..models import InboundEmail, LineEvent, Message
from ._common import audit, storable
from .errors import ActionError, TicketsError


@dataclass(frozen=True)
class LineDelivery:
    """One event of a signed LINE webhook body, as tickets.line.split_events read it."""

    key: str  # its webhookEventId, or a hash of the event when it has none (redeliveries match)
    type: str
    payload: dict
    reason: str = ""  # why it cannot be used, when that is clear before processing


def store_line_events(events: Sequence[LineDelivery], *, actor=None) -> list[int]:
    """Store each event once (by its key), the usable ones pending with their processing task
    queued, the others ignored with their reason. Returns the new pending rows' ids."""
    require(actor, "tickets.add_lineevent", doing=pgettext_lazy("permission", "store LINE events"), system=True)
    new = []
    with transaction.atomic():
        for event in events:
            row = _store_line_event(event)
            if row is not None and row.status == LineEvent.Status.PENDING:
                new.append(row.pk)
                queue.enqueue("tickets.tasks.process_line_event_task", row.pk)
    return new


def _store_line_event(event: LineDelivery) -> LineEvent | None:
    fields = {"webhook_event_id": event.key[:64], "type": event.type[:32], "last_error": event.reason}
    if event.reason:
        fields.update(status=LineEvent.Status.IGNORED, processed_at=timezone.now())
    try:
        with transaction.atomic():
            return LineEvent.objects.create(payload=event.payload, **fields)
    except IntegrityError:
        return None  # a redelivery: stored already
    except (DataError, UnicodeEncodeError):
        # Valid JSON that PostgreSQL's jsonb refuses (a \u0000, a lone surrogate in a string):
        # stored without those characters, so it can still be used.
        pass
    try:
        with transaction.atomic():
            return LineEvent.objects.create(payload=storable(event.payload), **fields)
    except IntegrityError:
        return None


def claim_line_event(event_id: int, *, actor=None) -> LineEvent | None:
    """The pending event, now this worker's; None if another has it or it is done."""
    require(actor, "tickets.change_lineevent", doing=pgettext_lazy("permission", "process LINE events"), system=True)
    return _claim(LineEvent, event_id)


def finish_line_event(event_id: int, status: str, *, actor=None, reason: str = "") -> None:
    """What the claimed event became: processed, or ignored with the reason."""
    require(actor, "tickets.change_lineevent", doing=pgettext_lazy("permission", "process LINE events"), system=True)
    _finish(LineEvent, event_id, status, reason)


def record_line_event_failure(event_id: int, error: str, *, actor=None, final: bool) -> None:
    """A failed attempt: still pending for the task's retry, or failed for good."""
    require(actor, "tickets.change_lineevent", doing=pgettext_lazy("permission", "process LINE events"), system=True)
    _record_failure(LineEvent, event_id, error, final)


# --- inbound email ----------------------------------------------------------------------------


def store_inbound_email(raw: bytes, *, actor=None, esp: str, envelope_recipient: str = "",
                        enqueue: bool = True) -> tuple[InboundEmail, bool]:
    """Store one raw email as it arrived, once per content (a redelivery finds the stored
    row), and queue its processing. Nothing is parsed here: whatever the bytes hold, they
    are kept. Returns (row, stored now). `enqueue=False` is for a caller that processes it
    at once itself (the import command)."""
    require(actor, "tickets.add_inboundemail", doing=pgettext_lazy("permission", "store inbound email"), system=True)
    digest = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        row, created = InboundEmail.objects.defer("raw").get_or_create(digest=digest, defaults={
            "raw": raw, "size": len(raw), "esp": esp[:32],
            "envelope_recipient": storable(envelope_recipient)[:998],
        })
        if created and enqueue:
            queue.enqueue("tickets.tasks.process_inbound_email_task", row.pk)
    return row, created


def claim_inbound_email(email_id: int, *, actor=None) -> InboundEmail | None:
    """The pending email (with its raw bytes), now this worker's; None if another has it or it
    is done."""
    require(actor, "tickets.change_inboundemail", doing=pgettext_lazy("permission", "process inbound email"), system=True)
    return _claim(InboundEmail, email_id)


def finish_inbound_email(email_id: int, status: str, *, actor=None, reason: str = "", message: Message | None = None,
                         mail_from: str = "", subject: str = "") -> None:
    """What the claimed email became: processed into `message`, or ignored with the reason
    (the message it duplicates, if that is why). From and Subject are kept for the admin."""
    require(actor, "tickets.change_inboundemail", doing=pgettext_lazy("permission", "process inbound email"), system=True)
    _finish(InboundEmail, email_id, status, reason, message=message, mail_from=mail_from[:998], subject=subject[:998])


def record_inbound_email_failure(email_id: int, error: str, *, actor=None, final: bool) -> None:
    """A failed attempt: still pending for the task's retry, or failed for good."""
    require(actor, "tickets.change_inboundemail", doing=pgettext_lazy("permission", "process inbound email"), system=True)
    _record_failure(InboundEmail, email_id, error, final)


def reprocess_inbound_email(*, actor, email) -> InboundEmail:
    """Process a failed or ignored email again (after a fix), or queue a pending one whose task
    was lost. One that became a message is not processed twice."""
    require(actor, "tickets.process_inboundemail", doing=pgettext_lazy("permission", "process inbound email again"))
    pk = email.pk if isinstance(email, InboundEmail) else email
    with transaction.atomic():
        row = InboundEmail.objects.select_for_update().defer("raw").filter(pk=pk).first()
        if row is None:
            raise ActionError(_("No inbound email %(id)s.") % {"id": pk}, code="not_found")
        if row.status == InboundEmail.Status.PROCESSED:
            raise ActionError(_("Inbound email %(id)s already became message %(message)s.")
                              % {"id": pk, "message": row.message_id}, code="processed")
        before = row.status
        InboundEmail.objects.filter(pk=pk).update(status=InboundEmail.Status.PENDING, processed_at=None)
        audit(actor, AuditAction.INBOUND_EMAIL_REPROCESS, f"inbound_email:{pk}", status=before,
              reason=row.last_error[:500])
        queue.enqueue("tickets.tasks.process_inbound_email_task", pk)
    row.refresh_from_db(fields=["status", "processed_at"])
    return row


# --- the claim and the marks, the same for every stored delivery ------------------------------


def _claim(model: type[models.Model], pk: int):
    if not transaction.get_connection().in_atomic_block:
        # The claim's row lock must last until what the row became is written, or a second
        # worker could claim it too.
        raise TicketsError(f"{model.__name__} {pk} can only be claimed inside a transaction")
    # A compare-and-swap: a second worker waits on the row lock, then finds it no longer pending.
    claimed = model.objects.filter(pk=pk, status=model.Status.PENDING).update(attempts=F("attempts") + 1)
    return model.objects.get(pk=pk) if claimed else None


def _finish(model: type[models.Model], pk: int, status: str, reason: str, **fields) -> None:
    # Reasons and summaries quote what arrived, which may hold what PostgreSQL refuses.
    fields = {name: storable(value) for name, value in fields.items()}
    model.objects.filter(pk=pk).update(status=status, last_error=storable(reason)[:2000],
                                       processed_at=timezone.now(), **fields)


def _record_failure(model: type[models.Model], pk: int, error: str, final: bool) -> None:
    model.objects.filter(pk=pk, status=model.Status.PENDING).update(
        status=model.Status.FAILED if final else model.Status.PENDING,
        last_error=storable(error)[:2000], attempts=F("attempts") + 1, processed_at=timezone.now(),
    )
