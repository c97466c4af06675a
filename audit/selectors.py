"""Reads of the audit log that the actions need: what a confirmation already did."""

from __future__ import annotations

from .models import AuditAction, AuditEntry
from .log import TARGET_MAX


def details_of(action: AuditAction, target: str) -> list[dict]:
    """The details of every `action` on `target`, oldest first."""
    return list(
        AuditEntry.objects.filter(action=AuditAction(action), target=str(target)[:TARGET_MAX])
        .order_by("id").values_list("details", flat=True)
    )


def recorded(action: AuditAction, target: str, **details) -> dict | None:
    """The details of the row of `action` on `target` whose details include these values
    (e.g. idempotency_key=...), if one was written."""
    query = {f"details__{key}": value for key, value in details.items()}
    return (
        AuditEntry.objects.filter(action=AuditAction(action), target=str(target)[:TARGET_MAX], **query)
        .order_by("id").values_list("details", flat=True).first()
    )
