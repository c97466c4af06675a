"""Reads of the mirror that are more than one line."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import CharField, Count, Min, Q, QuerySet, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from common import parsing

from .mirror import KINDS
from .models import PendingAnnouncement, SyncCursor, WebhookEvent
from .stripe_objects import Plans, item_prices

PAGE_SIZE = 50
RELATED_LIMIT = 10

# Stripe's documented status values, so a filter menu costs no DISTINCT over a big table.
STATUSES: dict[str, tuple[str, ...]] = {
    "charge": ("succeeded", "pending", "failed"),
    "refund": ("succeeded", "pending", "requires_action", "failed", "canceled"),
    "dispute": (
        "needs_response", "under_review", "won", "lost", "warning_needs_response",
        "warning_under_review", "warning_closed", "prevented",
    ),
    "subscription": (
        "active", "trialing", "past_due", "unpaid", "paused", "canceled", "incomplete", "incomplete_expired",
    ),
    "invoice": ("draft", "open", "paid", "uncollectible", "void"),
    "payment_intent": (
        "succeeded", "processing", "requires_payment_method", "requires_confirmation", "requires_action",
        "requires_capture", "canceled",
    ),
}


def _field_names(model) -> set[str]:
    return {f.name for f in model._meta.fields}


def looks_like_id(q: str) -> bool:
    """`cus_Nq3...`: a Stripe id is one token with an underscore, no @ and no spaces."""
    return "_" in q and "@" not in q and " " not in q


def search_filter(kind_name: str, q: str) -> Q:
    """Search a mirrored list by Stripe id (or id prefix), a referenced id, email or name."""
    q = q.strip()
    if not q:
        return Q()
    names = _field_names(KINDS[kind_name].model)
    cond = Q(pk=q)
    if looks_like_id(q):
        cond |= Q(pk__startswith=q)
        # The customer's payments, the charge's refunds: a referenced id lists what points at it.
        for field in ("customer", "charge", "payment_intent", "subscription", "product"):
            if field in names:
                cond |= Q(**{field: q})
        return cond
    for field in ("email", "billing_email"):
        if field in names:
            # Emails are stored lower-cased; a prefix keeps the index usable.
            cond |= Q(**{f"{field}__startswith": q.lower()})
    for field in ("name", "number", "description", "nickname"):
        if field in names:
            cond |= Q(**{f"{field}__icontains": q})
    return cond


def _keyset(qs: QuerySet, after: str, field: str) -> QuerySet:
    """Rows after the previous page's cursor, newest first; a cursor that isn't one: none."""
    if not after:
        return qs
    position = parsing.decode_cursor(after, key_type=str)
    if position is None:
        return qs.none()
    when, last_id = position
    return qs.filter(Q(**{f"{field}__lt": when}) | Q(**{field: when, "id__lt": last_id}))


def _page(qs: QuerySet, field: str) -> tuple[list, str]:
    rows = list(qs.order_by(f"-{field}", "-id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1] if rows else None
    stamp = getattr(last, field, None) if last else None
    cursor = parsing.encode_cursor(stamp, last.id) if more and stamp else ""
    return rows, cursor


def mirror_page(kind_name: str, *, q: str = "", status: str = "", after: str = "") -> tuple[list, str]:
    """One page of a mirrored list, newest first, by keyset (created, id): no OFFSET.

    `after` is the cursor of the previous page's last row (its created and id).
    Returns (rows, next cursor or "").
    """
    model = KINDS[kind_name].model
    qs: QuerySet = model.objects.filter(search_filter(kind_name, q)).defer("data")
    if status and "status" in _field_names(model):
        qs = qs.filter(status=status)
    if kind_name == "subscription":
        qs = with_first_price(qs)
    rows, cursor = _page(_keyset(qs, after, "created"), "created")
    if kind_name == "subscription":
        attach_plans(rows)
    return rows, cursor


def with_first_price(qs: QuerySet) -> QuerySet:
    """The first item's price id, read inside the database so the list never loads the JSON."""
    return qs.annotate(
        first_price=Coalesce(
            KT("data__items__data__0__price__id"), KT("data__items__data__0__plan__id"), Value(""),
            output_field=CharField(),
        )
    )


def attach_plans(rows: list) -> None:
    """`row.plan`: what each subscription's first item is called (two small queries a page)."""
    plans = Plans({"id": r.first_price} for r in rows if getattr(r, "first_price", ""))
    for r in rows:
        r.plan = plans.name({"id": r.first_price}) if getattr(r, "first_price", "") else ""


def statuses(kind_name: str) -> tuple[str, ...]:
    return STATUSES.get(kind_name, ())


def event_page(*, q: str = "", status: str = "", after: str = "") -> tuple[list[WebhookEvent], str]:
    """The event log, newest received first, by keyset (received_at, id)."""
    qs = WebhookEvent.objects.defer("payload")
    if status in WebhookEvent.Status.values:
        qs = qs.filter(status=status)
    q = q.strip()
    if q:
        qs = qs.filter(Q(id=q) | Q(object_id=q) | Q(type__startswith=q))
    return _page(_keyset(qs, after, "received_at"), "received_at")


def object_events(object_id: str, limit: int = 50) -> list[WebhookEvent]:
    return list(WebhookEvent.objects.filter(object_id=object_id).defer("payload").order_by("-created", "-id")[:limit])


def related(kind_name: str, obj) -> list[tuple[str, list, str]]:
    """What points at this object, a few rows each: [(kind, rows, query for the full list)].

    A customer's payments, subscriptions and invoices; a charge's refunds, disputes and
    fraud warnings; a payment intent's charges; a subscription's invoices.
    """
    wanted = {
        "customer": [("charge", "customer"), ("subscription", "customer"), ("invoice", "customer"),
                     ("payment_intent", "customer")],
        "charge": [("refund", "charge"), ("dispute", "charge"), ("radar.early_fraud_warning", "charge")],
        "payment_intent": [("charge", "payment_intent"), ("refund", "payment_intent")],
        "subscription": [("invoice", "subscription")],
        "product": [("price", "product")],
    }.get(kind_name, [])
    out = []
    for other, field in wanted:
        qs = KINDS[other].model.objects.filter(**{field: obj.pk}).defer("data")
        if other == "subscription":
            qs = with_first_price(qs)
        rows = list(qs.order_by("-created", "-id")[:RELATED_LIMIT])
        if other == "subscription":
            attach_plans(rows)
        if rows:
            out.append((other, rows, obj.pk))
    return out


@dataclass
class SubscriptionItem:
    price_id: str
    product_name: str
    unit_amount: int | None
    currency: str
    interval: str
    quantity: int


def subscription_items(obj) -> list[SubscriptionItem]:
    """Plan lines of a subscription, named from the mirrored products where we have them."""
    items = ((obj.data or {}).get("items") or {}).get("data") or []
    prices = [item_prices({"items": {"data": [item]}})[:1] or [{}] for item in items]
    plans = Plans(p[0] for p in prices)
    out = []
    for item, (price,) in zip(items, prices):
        name, amount, currency, interval = plans.facts(price) if price else ("", None, "", "")
        out.append(SubscriptionItem(price_id=price.get("id") or "", product_name=name, unit_amount=amount,
                                    currency=currency, interval=interval, quantity=item.get("quantity") or 1))
    return out


@dataclass
class SyncHealth:
    counts_by_status: dict[str, int]
    apply_lag_seconds: float | None  # newest applied event: received → applied
    delivery_lag_seconds: float | None  # newest received event: Stripe's created → received
    oldest_pending: dt.datetime | None
    newest_received: dt.datetime | None
    failed: list[WebhookEvent]
    failed_total: int
    last_backfill: SyncCursor | None
    last_reconcile: SyncCursor | None
    cursors: list[SyncCursor]
    object_counts: dict[str, int]
    # Applied events whose listeners (timeline, contact linking) failed: the newest 50, and all.
    unannounced: list[PendingAnnouncement]
    unannounced_total: int

    @property
    def total_events(self) -> int:
        return sum(self.counts_by_status.values())


def _latest_cursor(cursors: list[SyncCursor], prefix: str) -> SyncCursor | None:
    runs = [c for c in cursors if c.name.startswith(prefix)]
    return max(runs, key=lambda c: c.finished_at or c.started_at or c.updated_at, default=None)


def sync_health() -> SyncHealth:
    order = {s: i for i, s in enumerate(("pending", "applied", "ignored", "failed"))}
    counts = dict(
        sorted(
            WebhookEvent.objects.order_by().values_list("status").annotate(n=Count("id")),
            key=lambda kv: order.get(kv[0], 99),
        )
    )
    latest_applied = (
        WebhookEvent.objects.filter(status=WebhookEvent.Status.APPLIED, processed_at__isnull=False)
        .order_by("-processed_at")
        .values("received_at", "processed_at")
        .first()
    )
    latest_received = WebhookEvent.objects.order_by("-received_at").values("created", "received_at").first()
    pending = WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).aggregate(oldest=Min("received_at"))
    failed = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).defer("payload").order_by("-received_at")[:50]
    )
    cursors = list(SyncCursor.objects.order_by("name"))
    unannounced = PendingAnnouncement.objects.exclude(last_error="")
    # The planner's estimate would be cheaper on huge tables; exact counts are fine at our sizes.
    object_counts = {name: kind.model.objects.count() for name, kind in KINDS.items()}
    return SyncHealth(
        counts_by_status=counts,
        apply_lag_seconds=(
            (latest_applied["processed_at"] - latest_applied["received_at"]).total_seconds() if latest_applied else None
        ),
        delivery_lag_seconds=(
            max(0.0, (latest_received["received_at"] - latest_received["created"]).total_seconds())
            if latest_received
            else None
        ),
        oldest_pending=pending["oldest"],
        newest_received=latest_received["received_at"] if latest_received else None,
        failed=failed,
        failed_total=counts.get(WebhookEvent.Status.FAILED, 0),
        last_backfill=_latest_cursor(cursors, "backfill"),
        last_reconcile=_latest_cursor(cursors, "reconcile"),
        cursors=cursors,
        object_counts=object_counts,
        unannounced=list(unannounced.select_related("event").defer("event__payload").order_by("-created")[:50]),
        unannounced_total=unannounced.count(),
    )


def pending_age_seconds(health: SyncHealth) -> float | None:
    if health.oldest_pending is None:
        return None
    return (timezone.now() - health.oldest_pending).total_seconds()


def failed_event_ids(ids: list[str] | None = None, limit: int = 1000) -> list[str]:
    """Failed events to replay: the given ones that are failed, or all failed (oldest first)."""
    qs = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
    if ids:
        qs = qs.filter(id__in=ids)
    return list(qs.order_by("received_at").values_list("id", flat=True)[:limit])


def unannounced_event_ids(ids: list[str] | None = None, limit: int = 1000) -> list[str]:
    """Applied events whose listeners failed: the given ones, or all (oldest first)."""
    qs = PendingAnnouncement.objects.exclude(last_error="")
    if ids:
        qs = qs.filter(event_id__in=ids)
    return list(qs.order_by("created").values_list("event_id", flat=True)[:limit])


def replay_event_ids(
    *, failed: bool = False, ids: list[str] | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[str]:
    """Stored events for `manage.py stripe_replay`, oldest first; every given filter applies.

    Ignored events (types the mirror does not keep) are never replayed.
    """
    qs = WebhookEvent.objects.exclude(status=WebhookEvent.Status.IGNORED)
    if failed:
        qs = qs.filter(status=WebhookEvent.Status.FAILED)
    if ids:
        qs = qs.filter(id__in=ids)
    if since:
        qs = qs.filter(created__gte=since)
    if until:
        qs = qs.filter(created__lt=until)
    return list(qs.order_by("created", "id").values_list("id", flat=True))


def mirrored(object_type: str, object_id: str) -> dict | None:
    """The mirror's copy of one Stripe object (`charge`, `radar.early_fraud_warning` ...), or None."""
    from .mirror import KINDS

    kind = KINDS.get(object_type)
    if kind is None or not isinstance(object_id, str) or not object_id:
        return None
    return kind.model.objects.filter(pk=object_id).values_list("data", flat=True).first()


def stored_events(event_type: str, *, since, until=None, chunk: int = 2000):
    """The stored events of one type created in [since, until), oldest first, as Stripe sent
    them (payload), read in chunks: a backtest walks a hundred thousand of them."""
    rows = WebhookEvent.objects.filter(type=event_type, created__gte=since)
    if until is not None:
        rows = rows.filter(created__lt=until)
    return rows.order_by("created", "id").values_list("payload", flat=True).iterator(chunk_size=chunk)
