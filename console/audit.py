"""The audit log's one writer."""

from .models import AuditEntry


def record(actor, action: str, target: str, details: dict | None = None) -> AuditEntry:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditEntry.objects.create(actor=actor, action=action, target=target[:255], details=details or {})
    # Same transaction: the customer timeline shows the action (or the reply) with the change.
    from . import timeline

    timeline.on_audit(entry)
    return entry
