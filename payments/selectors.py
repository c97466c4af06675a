"""Reads of the mirror that are more than one line."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from .mirror import KINDS
from .models import SyncCursor, WebhookEvent

PAGE_SIZE = 50


def search_filter(kind_name: str, q: str) -> Q:
    """Search a mirrored list by Stripe id prefix, email or name."""
    q = q.strip()
    if not q:
        return Q()
    cond = Q(pk=q) | Q(pk__startswith=q) if "_" in q else Q(pk=q)
    model = KINDS[kind_name].model
    names = {f.name for f in model._meta.fields}
    for field in ("email", "billing_email"):
        if field in names:
            cond |= Q(**{f"{field}__startswith": q.lower()})
    for field in ("name", "number", "description"):
        if field in names:
            cond |= Q(**{f"{field}__icontains": q})
    for field in ("customer", "charge", "payment_intent", "subscription"):
        if field in names and "_" in q:
            cond |= Q(**{field: q})
    return cond


def mirror_page(kind_name: str, *, q: str = "", status: str = "", after: str = "") -> tuple[list, str]:
    """One page of a mirrored list, newest first, by keyset (created, id): no OFFSET.

    `after` is the cursor of the previous page's last row ("<created-iso>|<id>").
    Returns (rows, next cursor or "").
    """
    model = KINDS[kind_name].model
    qs: QuerySet = model.objects.filter(search_filter(kind_name, q)).defer("data")
    if status and "status" in {f.name for f in model._meta.fields}:
        qs = qs.filter(status=status)
    if after:
        created_s, _, last_id = after.partition("|")
        try:
            created = dt.datetime.fromisoformat(created_s)
            qs = qs.filter(Q(created__lt=created) | Q(created=created, id__lt=last_id))
        except ValueError:
            pass
    rows = list(qs.order_by("-created", "-id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    cursor = f"{rows[-1].created.isoformat()}|{rows[-1].id}" if more and rows[-1].created else ""
    return rows, cursor


def statuses(kind_name: str) -> list[str]:
    model = KINDS[kind_name].model
    if "status" not in {f.name for f in model._meta.fields}:
        return []
    return list(model.objects.order_by().values_list("status", flat=True).distinct()[:20])


@dataclass
class SyncHealth:
    counts_by_status: dict[str, int]
    lag_seconds: float | None  # newest applied event: time from Stripe's created to applied
    oldest_pending: dt.datetime | None
    newest_received: dt.datetime | None
    failed: list[WebhookEvent]
    cursors: list[SyncCursor]
    object_counts: dict[str, int]


def sync_health() -> SyncHealth:
    counts = dict(WebhookEvent.objects.order_by().values_list("status").annotate(n=Count("id")))
    latest = (
        WebhookEvent.objects.filter(status=WebhookEvent.Status.APPLIED, processed_at__isnull=False)
        .order_by("-processed_at")
        .values("created", "received_at", "processed_at")
        .first()
    )
    lag = (latest["processed_at"] - latest["received_at"]).total_seconds() if latest else None
    agg = WebhookEvent.objects.aggregate(
        oldest_pending=Min("received_at", filter=Q(status=WebhookEvent.Status.PENDING)),
        newest_received=Max("received_at"),
    )
    failed = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
        .defer("payload")
        .order_by("-received_at")[:50]
    )
    cursors = list(SyncCursor.objects.order_by("name"))
    object_counts = {name: kind.model.objects.count() for name, kind in KINDS.items()}
    return SyncHealth(counts, lag, agg["oldest_pending"], agg["newest_received"], failed, cursors, object_counts)


def pending_age_seconds(health: SyncHealth) -> float | None:
    if health.oldest_pending is None:
        return None
    return (timezone.now() - health.oldest_pending).total_seconds()
