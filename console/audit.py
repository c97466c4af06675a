"""The audit log's one writer."""

from .models import AuditEntry


def record(actor, action: str, target: str, details: dict | None = None) -> AuditEntry:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(actor=actor, action=action, target=target[:255], details=details or {})
