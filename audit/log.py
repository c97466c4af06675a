"""The audit log's one writer."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

from .models import AuditAction, AuditEntry
from .signals import audit_recorded

TARGET_MAX = 255

# Details every row written inside `acting_as` carries besides its own.
_acting_as: ContextVar[dict | None] = ContextVar("audit_acting_as", default=None)


@contextmanager
def acting_as(**details):
    """Every audit row written inside also carries `details`: a workflow run's steps say which
    run did them (workflow={"run": 12, "name": "…"}), whichever action wrote the row."""
    token = _acting_as.set({**(_acting_as.get() or {}), **details})
    try:
        yield
    finally:
        _acting_as.reset(token)


def record(*, actor, action: AuditAction | str, target: str, **details) -> AuditEntry:
    """One audit row, written inside the calling action's transaction (Zulip's RealmAuditLog):
    the row exists exactly when the change does. `actor` None (or not signed in) is Paydesk
    itself. An action name outside `AuditAction` is a programming error (ValueError).
    Listeners hear of the row once the transaction commits."""
    action = AuditAction(action)
    if _acting_as.get():
        details = {**_acting_as.get(), **details}
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditEntry.objects.create(actor=actor, action=action, target=str(target)[:TARGET_MAX], details=details)
    transaction.on_commit(
        lambda: audit_recorded.send(sender=AuditEntry, entry_id=entry.pk, action=entry.action,
                                    actor_id=entry.actor_id), robust=True
    )
    return entry
