"""The audit log's one writer."""

from __future__ import annotations

from django.db import transaction

from .models import AuditAction, AuditEntry
from .signals import audit_recorded

TARGET_MAX = 255


def record(*, actor, action: AuditAction | str, target: str, **details) -> AuditEntry:
    """One audit row, written inside the calling action's transaction (Zulip's RealmAuditLog):
    the row exists exactly when the change does. `actor` None (or not signed in) is Paydesk
    itself. An action name outside `AuditAction` is a programming error (ValueError).
    Listeners hear of the row once the transaction commits."""
    action = AuditAction(action)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditEntry.objects.create(actor=actor, action=action, target=str(target)[:TARGET_MAX], details=details)
    transaction.on_commit(
        lambda: audit_recorded.send(sender=AuditEntry, entry_id=entry.pk, action=entry.action,
                                    actor_id=entry.actor_id), robust=True
    )
    return entry
