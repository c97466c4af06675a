"""Writing Stripe objects into the mirror, newest state wins.

Stripe delivers events late, twice and out of order. Every write into a mirrored table is a
guarded upsert: the row is replaced only when the incoming state's version is newer than
the stored one. A version is (seconds, rank):

- seconds: the event's `created` (or, for an object we fetched, the time we fetched it);
- rank: a lifecycle rank of the object's state, so that within one second a
  `payment_intent.succeeded` beats the `payment_intent.created` it followed.

Equal versions from different sources are the case that loses data in other mirrors
(stripe-sync-engine #268 keeps whichever same-second event came first). Here they are
resolved by `resolve_tie`, which orders the tied events by the chain their
`previous_attributes` describe, then by event id, so the result depends only on which
events exist, never on the order they arrived in.

The guard runs in the database (`ON CONFLICT ... DO UPDATE ... WHERE`), so concurrent
workers cannot lose an update or create a duplicate row, and a single-row statement cannot
deadlock with another.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from django.db import connection, models, transaction

from . import models as m
from .errors import EventNotApplicable
from .stripe_objects import ref, subscription_period, ts

API_SOURCE = "api"


class NotStripeShaped(EventNotApplicable):
    """An object whose fields are not what Stripe sends (an amount as a decimal string, an id
    too long to be one): the event is parked as failed with the field named."""


def _text(value: Any, limit: int) -> str:
    return (value or "")[:limit] if isinstance(value, str) else ""


# --- what each mirrored type extracts ------------------------------------------------


def _customer(o: dict) -> dict:
    return {
        "email": _text(o.get("email"), 512).strip().lower(),
        "name": _text(o.get("name"), 512),
        "phone": _text(o.get("phone"), 64),
        "currency": _text(o.get("currency"), 3),
        "delinquent": bool(o.get("delinquent")),
    }


def _product(o: dict) -> dict:
    return {"name": _text(o.get("name"), 512), "active": bool(o.get("active", True))}


def _price(o: dict) -> dict:
    return {
        "product": ref(o.get("product")),
        "nickname": _text(o.get("nickname"), 512),
        "unit_amount": o.get("unit_amount"),
        "currency": _text(o.get("currency"), 3),
        "recurring_interval": ((o.get("recurring") or {}).get("interval") or "")[:16],
        "active": bool(o.get("active", True)),
    }


def _payment_intent(o: dict) -> dict:
    latest = ref(o.get("latest_charge"))
    if not latest:
        # API versions before 2022-11-15 embed a `charges` list instead of latest_charge.
        charges = (o.get("charges") or {}).get("data") or []
        latest = ref(charges[0]) if charges else ""
    return {
        "customer": ref(o.get("customer")),
        "status": o.get("status") or "",
        "amount": o.get("amount") or 0,
        "amount_received": o.get("amount_received") or 0,
        "currency": _text(o.get("currency"), 3),
        "latest_charge": latest,
        "description": _text(o.get("description"), 1024),
    }


def _charge(o: dict) -> dict:
    billing = o.get("billing_details") or {}
    return {
        "customer": ref(o.get("customer")),
        "payment_intent": ref(o.get("payment_intent")),
        "invoice": ref(o.get("invoice")),
        "status": o.get("status") or "",
        "paid": bool(o.get("paid")),
        "amount": o.get("amount") or 0,
        # Old API versions have no amount_captured: a captured charge captured it all.
        "amount_captured": o.get("amount_captured", o.get("amount") if o.get("captured") else 0) or 0,
        "amount_refunded": o.get("amount_refunded") or 0,
        "refunded": bool(o.get("refunded")),
        "disputed": bool(o.get("disputed")),
        "currency": _text(o.get("currency"), 3),
        "billing_email": _text(billing.get("email") or o.get("receipt_email"), 512).strip().lower(),
        "failure_code": _text(o.get("failure_code"), 64),
        "description": _text(o.get("description"), 1024),
    }


def _refund(o: dict) -> dict:
    return {
        "charge": ref(o.get("charge")),
        "payment_intent": ref(o.get("payment_intent")),
        "amount": o.get("amount") or 0,
        "currency": _text(o.get("currency"), 3),
        "status": o.get("status") or "",
        "reason": _text(o.get("reason"), 64),
    }


def _dispute(o: dict) -> dict:
    return {
        "charge": ref(o.get("charge")),
        "payment_intent": ref(o.get("payment_intent")),
        "amount": o.get("amount") or 0,
        "currency": _text(o.get("currency"), 3),
        "status": o.get("status") or "",
        "reason": _text(o.get("reason"), 64),
        "due_by": ts((o.get("evidence_details") or {}).get("due_by")),
    }


def _subscription(o: dict) -> dict:
    _, period_end = subscription_period(o)
    return {
        "customer": ref(o.get("customer")),
        "status": o.get("status") or "",
        "currency": _text(o.get("currency"), 3),
        "current_period_end": ts(period_end),
        "cancel_at_period_end": bool(o.get("cancel_at_period_end")),
        "canceled_at": ts(o.get("canceled_at")),
    }


def _invoice(o: dict) -> dict:
    subscription = ref(o.get("subscription"))
    if not subscription:
        # Since 2025-03-31 the subscription is under parent.subscription_details.
        details = ((o.get("parent") or {}).get("subscription_details")) or {}
        subscription = ref(details.get("subscription"))
    return {
        "customer": ref(o.get("customer")),
        "subscription": subscription,
        "charge": ref(o.get("charge")),
        "number": _text(o.get("number"), 64),
        "status": o.get("status") or "",
        "amount_due": o.get("amount_due") or 0,
        "amount_paid": o.get("amount_paid") or 0,
        "currency": _text(o.get("currency"), 3),
        "due_date": ts(o.get("due_date")),
    }


def _early_fraud_warning(o: dict) -> dict:
    return {
        "charge": ref(o.get("charge")),
        "payment_intent": ref(o.get("payment_intent")),
        "fraud_type": _text(o.get("fraud_type"), 64),
        "actionable": bool(o.get("actionable", True)),
    }


def _status_rank(order: dict[str, int]) -> Callable[[dict], int]:
    return lambda o: order.get(o.get("status") or "", 0)


@dataclass(frozen=True)
class Kind:
    """One mirrored Stripe type: where it is stored and how it is read from the API."""

    object: str  # Stripe's `object` value
    model: type[m.StripeObject]
    columns: Callable[[dict], dict]
    rank: Callable[[dict], int]
    resource: str  # attribute of StripeClient.v1 that lists and retrieves it
    references: tuple[tuple[str, str], ...] = ()  # (field, object type) fetched if missing

    @property
    def table(self) -> str:
        return self.model._meta.db_table


KINDS: dict[str, Kind] = {
    k.object: k
    for k in [
        Kind("customer", m.Customer, _customer, lambda o: 0, "customers"),
        Kind("product", m.Product, _product, lambda o: 0, "products"),
        Kind("price", m.Price, _price, lambda o: 0, "prices", (("product", "product"),)),
        Kind(
            "payment_intent",
            m.PaymentIntent,
            _payment_intent,
            _status_rank(
                {
                    "requires_payment_method": 1,
                    "requires_confirmation": 2,
                    "requires_action": 3,
                    "processing": 4,
                    "requires_capture": 5,
                    "canceled": 6,
                    "succeeded": 6,
                }
            ),
            "payment_intents",
            (("customer", "customer"),),
        ),
        Kind(
            "charge",
            m.Charge,
            _charge,
            # Within a second, a charge only moves forward: captured, refunded more, disputed.
            # charge.captured carries no previous_attributes, so capture must be in the rank.
            lambda o: {"pending": 1, "failed": 2, "succeeded": 2}.get(o.get("status") or "", 0) * 10**13
            + min(int(o.get("amount_refunded") or 0), 10**12) * 4
            + (2 if o.get("captured") else 0)
            + (1 if o.get("disputed") else 0),
            "charges",
            (("customer", "customer"),),
        ),
        Kind(
            "refund",
            m.Refund,
            _refund,
            _status_rank({"pending": 1, "requires_action": 1, "succeeded": 2, "failed": 3, "canceled": 3}),
            "refunds",
            (("charge", "charge"),),
        ),
        Kind(
            "dispute",
            m.Dispute,
            _dispute,
            _status_rank(
                {
                    "warning_needs_response": 1,
                    "needs_response": 1,
                    "warning_under_review": 2,
                    "under_review": 2,
                    "warning_closed": 3,
                    "won": 3,
                    "lost": 3,
                    "prevented": 3,
                }
            ),
            "disputes",
            (("charge", "charge"),),
        ),
        Kind(
            "subscription",
            m.Subscription,
            _subscription,
            _status_rank(
                {
                    "incomplete": 1,
                    "trialing": 2,
                    "active": 3,
                    "past_due": 4,
                    "paused": 4,
                    "unpaid": 5,
                    "incomplete_expired": 6,
                    "canceled": 6,
                }
            ),
            "subscriptions",
            (("customer", "customer"),),
        ),
        Kind(
            "invoice",
            m.Invoice,
            _invoice,
            _status_rank({"draft": 1, "open": 2, "paid": 3, "uncollectible": 3, "void": 3}),
            "invoices",
            (("customer", "customer"),),
        ),
        Kind(
            "radar.early_fraud_warning",
            m.EarlyFraudWarning,
            _early_fraud_warning,
            lambda o: 1 if o.get("actionable", True) else 2,
            "radar.early_fraud_warnings",
            (("charge", "charge"),),
        ),
    ]
}

DELETED_RANK = 10**15  # a deleted object stays deleted against same-second updates
TYPE_RANK_CREATED, TYPE_RANK_OTHER = 0, 1


def kind_of(obj: dict) -> Kind | None:
    return KINDS.get(obj.get("object") or "")


@dataclass(frozen=True)
class Version:
    ts: int
    rank: int
    source: str  # event id, or "api"

    def key(self) -> tuple[int, int]:
        return (self.ts, self.rank)


def version_for(kind: Kind, obj: dict, ts_: int, source: str, event_type: str = "", deleted: bool = False) -> Version:
    if deleted or obj.get("deleted"):
        return Version(ts_, DELETED_RANK, source)
    type_rank = TYPE_RANK_CREATED if event_type.endswith(".created") else TYPE_RANK_OTHER
    return Version(ts_, kind.rank(obj) * 10 + type_rank, source)


def embedded_objects(obj: dict) -> Iterable[dict]:
    """Full objects that older API versions embed: a payment intent's charges, a charge's refunds."""
    for field in ("charges", "refunds"):
        lst = obj.get(field)
        if isinstance(lst, dict) and isinstance(lst.get("data"), list):
            for child in lst["data"]:
                if isinstance(child, dict) and child.get("id") and kind_of(child):
                    yield child


# --- the guarded upsert --------------------------------------------------------------

_BASE_COLUMNS = ("id", "livemode", "created", "data", "deleted", "version_ts", "version_rank", "version_source", "synced_at")


def _column_names(kind: Kind) -> list[str]:
    extra = [f.column for f in kind.model._meta.concrete_fields if f.column not in _BASE_COLUMNS]
    return list(_BASE_COLUMNS) + extra


_BIGINT = 2**63


def _shown(value: Any) -> str:
    kind = {str: "text", bool: "a boolean", float: "a decimal number", dict: "an object", list: "a list"}.get(
        type(value), type(value).__name__)
    return f"{kind} {json.dumps(value, default=str)[:40]}"


def _checked(kind: Kind, name: str, field: models.Field, value: Any) -> Any:
    """A column's value as Stripe must have sent it, or NotStripeShaped naming the field:
    amounts are whole numbers of minor units, ids and enums are text that fits."""
    where = f"{kind.object}.{name}"
    if isinstance(field, (models.BigIntegerField, models.IntegerField)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise NotStripeShaped(f"{where} is {_shown(value)}, not a whole number (Stripe sends amounts as "
                                  "integers in the currency's minor unit)")
        if not -_BIGINT <= value < _BIGINT:
            raise NotStripeShaped(f"{where} is {value}, out of range")
    elif isinstance(field, models.CharField):
        if not isinstance(value, str):
            raise NotStripeShaped(f"{where} is {_shown(value)}, not text")
        if field.max_length and len(value) > field.max_length:
            raise NotStripeShaped(f"{where} is {len(value)} characters long; the mirror keeps {field.max_length}")
    return value


_EXTRA: dict[str, list[tuple[str, models.Field, Any]]] = {}


def _extra_fields(kind: Kind) -> list[tuple[str, models.Field, Any]]:
    """(column, field, value when Stripe sent none) of a kind's own indexed columns."""
    if kind.object not in _EXTRA:
        fields = [kind.model._meta.get_field(n) for n in _column_names(kind)[len(_BASE_COLUMNS):]]
        _EXTRA[kind.object] = [(f.name, f, None if f.null else f.get_default()) for f in fields]
    return _EXTRA[kind.object]


def _columns(kind: Kind, obj: dict) -> list[tuple[models.Field, Any]]:
    """The kind's own columns for `obj`, each checked against what Stripe sends (NotStripeShaped
    names the field otherwise), so a malformed payload fails with a reason, never half-written."""
    object_id = obj.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise NotStripeShaped(f"{kind.object}.id is {_shown(object_id)}, not an id")
    if len(object_id) > 255:
        raise NotStripeShaped(f"{kind.object}.id is {len(object_id)} characters long; Stripe ids fit in 255")
    cols = kind.columns(obj)
    out = []
    for name, field, default in _extra_fields(kind):
        value = cols.get(name)
        out.append((field, default if value is None else _checked(kind, name, field, value)))
    return out


def check_shape(kind: Kind, obj: dict) -> None:
    """Raise NotStripeShaped, naming the field, if `obj` is not what Stripe sends."""
    _columns(kind, obj)


def _row(kind: Kind, obj: dict, version: Version, deleted: bool, now: dt.datetime) -> list:
    ops = connection.ops
    columns = _columns(kind, obj)
    values = [
        obj["id"],
        bool(obj.get("livemode")),
        ops.adapt_datetimefield_value(ts(obj.get("created"))),
        json.dumps(obj, separators=(",", ":")),
        bool(deleted or obj.get("deleted")),
        version.ts,
        version.rank,
        version.source,
        ops.adapt_datetimefield_value(now),
    ]
    for field, value in columns:
        values.append(ops.adapt_datetimefield_value(value) if isinstance(field, models.DateTimeField) else value)
    return values


def _guard(table: str) -> str:
    """When ON CONFLICT replaces the stored row: the incoming version is newer, or both are
    API reads of one version (the later read is at least as fresh: an agent's second edit
    within a second must not be lost)."""
    qn = connection.ops.quote_name
    stored = f"({table}.{qn('version_ts')}, {table}.{qn('version_rank')})"
    incoming = f"(EXCLUDED.{qn('version_ts')}, EXCLUDED.{qn('version_rank')})"
    return (
        f"{stored} < {incoming} OR ({stored} = {incoming} "
        f"AND {table}.{qn('version_source')} = '{API_SOURCE}' AND EXCLUDED.{qn('version_source')} = '{API_SOURCE}')"
    )


def upsert(kind: Kind, items: list[tuple[dict, Version, bool]]) -> set[str]:
    """Insert or replace rows whose version is newer than the stored one; return the ids written.

    An API read also replaces an API read of the same version (the later read is fresher).

    `items` are (object, version, deleted). Rows are written in id order so that two
    bulk upserts over overlapping ids take their row locks in the same order.
    """
    if not items:
        return set()
    # One row per id: the newest of duplicates inside the batch.
    best: dict[str, tuple[dict, Version, bool]] = {}
    for obj, version, deleted in items:
        cur = best.get(obj["id"])
        if cur is None or version.key() >= cur[1].key():
            best[obj["id"]] = (obj, version, deleted)
    now = dt.datetime.now(dt.timezone.utc)
    names = _column_names(kind)
    qn = connection.ops.quote_name
    table = qn(kind.table)
    json_ph = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    placeholders = ", ".join(json_ph if n == "data" else "%s" for n in names)
    updates = ", ".join(f"{qn(n)} = EXCLUDED.{qn(n)}" for n in names if n != "id")
    written: set[str] = set()
    ids = sorted(best)
    if connection.vendor == "postgresql":
        return _upsert_postgresql(kind, best, ids, now)
    # SQLite allows at most 32766 parameters per statement.
    chunk = max(1, min(500, 30000 // len(names)))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            params: list = []
            for obj_id in part:
                obj, version, deleted = best[obj_id]
                params.extend(_row(kind, obj, version, deleted, now))
            values = ", ".join(f"({placeholders})" for _ in part)
            sql = (
                f"INSERT INTO {table} ({', '.join(qn(n) for n in names)}) VALUES {values} "
                f"ON CONFLICT ({qn('id')}) DO UPDATE SET {updates} "
                f"WHERE {_guard(table)} "
                f"RETURNING {qn('id')}"
            )
            cursor.execute(sql, params)
            written.update(row[0] for row in cursor.fetchall())
    return written


_PG_SQL: dict[str, str] = {}


def _postgresql_statement(kind: Kind) -> str:
    """The guarded upsert with the rows in one JSON parameter."""
    if kind.object not in _PG_SQL:
        qn = connection.ops.quote_name
        table = qn(kind.table)
        names = _column_names(kind)
        fields = [kind.model._meta.get_field(n) for n in names]
        cols = ", ".join(qn(n) for n in names)
        defs = ", ".join(f"{qn(n)} {f.db_type(connection)}" for n, f in zip(names, fields))
        updates = ", ".join(f"{qn(n)} = EXCLUDED.{qn(n)}" for n in names if n != "id")
        sql = (
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM jsonb_to_recordset(%s::jsonb) AS r({defs}) "
            f"ON CONFLICT ({qn('id')}) DO UPDATE SET {updates} "
            f"WHERE {_guard(table)} "
            f"RETURNING {qn('id')}"
        )
        _PG_SQL[kind.object] = sql
    return _PG_SQL[kind.object]


def _upsert_postgresql(kind: Kind, best: dict[str, tuple[dict, Version, bool]], ids: list[str], now) -> set[str]:
    """PostgreSQL: the same guarded upsert, its rows sent as one JSON array (in id order).

    One short statement with one parameter instead of a VALUES list of ~20 parameters a
    row: the client neither builds nor parses a long query, and the server parses it once.
    """
    sql = _postgresql_statement(kind)
    synced = now.isoformat()
    written: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 500):
            records = []
            for obj_id in ids[start : start + 500]:
                obj, version, deleted = best[obj_id]
                created = ts(obj.get("created"))
                record = {
                    "id": obj_id,
                    "livemode": bool(obj.get("livemode")),
                    "created": created.isoformat() if created else None,
                    "data": obj,
                    "deleted": bool(deleted or obj.get("deleted")),
                    "version_ts": version.ts,
                    "version_rank": version.rank,
                    "version_source": version.source,
                    "synced_at": synced,
                }
                for field, value in _columns(kind, obj):
                    is_datetime = isinstance(field, models.DateTimeField)
                    record[field.column] = value.isoformat() if is_datetime and value is not None else value
                records.append(record)
            cursor.execute(sql, [json.dumps(records, separators=(",", ":"))])
            written.update(row[0] for row in cursor.fetchall())
    return written


# --- same-version ties -------------------------------------------------------------


def _matches(state: Any, previous: Any) -> bool:
    """Whether `previous` (a previous_attributes fragment) describes `state`."""
    if isinstance(previous, dict) and isinstance(state, dict):
        return all(_matches(state.get(k), v) for k, v in previous.items())
    return state == previous


@dataclass(frozen=True)
class Candidate:
    source: str
    obj: dict
    previous: dict | None
    deleted: bool = False


# Longest-chain search is exact for the handful of same-second events an object really has;
# past this many steps (dozens of toggling events) it falls back to counting predecessors.
_CHAIN_SEARCH_BUDGET = 20000


def resolve_tie(candidates: list[Candidate]) -> Candidate:
    """The newest of states with an equal version.

    A fetched object ("api") is the freshest truth Stripe gave us and wins. Otherwise an
    event whose previous_attributes describe another candidate's state came after it, so
    the winner is the end of the longest such chain (a longest simple path: a field that
    toggles back makes the relation cyclic); event id breaks what is left. Candidates are
    searched in id order, so the answer depends only on the set, never on arrival order.
    """
    api = [c for c in candidates if c.source == API_SOURCE]
    if api:
        return api[0]
    nodes = sorted({c.source: c for c in candidates}.values(), key=lambda c: c.source)
    # follows[i]: the candidates whose state node i's previous_attributes describe.
    follows = [
        [j for j, p in enumerate(nodes) if j != i and c.previous and _matches(p.obj, c.previous)]
        for i, c in enumerate(nodes)
    ]
    budget = [_CHAIN_SEARCH_BUDGET]

    def longest(i: int, seen: int) -> int:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Exhausted
        best = 0
        for j in follows[i]:
            if not seen & (1 << j):
                best = max(best, 1 + longest(j, seen | (1 << j)))
        return best

    try:
        if len(nodes) > 64:
            raise _Exhausted
        depth = [longest(i, 1 << i) for i in range(len(nodes))]
    except _Exhausted:
        depth = [len(_reachable(i, follows)) for i in range(len(nodes))]
    return max(zip(depth, (c.source for c in nodes), nodes))[2]


class _Exhausted(Exception):
    pass


def _reachable(start: int, follows: list[list[int]]) -> set[int]:
    seen, todo = set(), [start]
    while todo:
        for j in follows[todo.pop()]:
            if j not in seen and j != start:
                seen.add(j)
                todo.append(j)
    return seen


def apply_object(
    kind: Kind,
    obj: dict,
    version: Version,
    *,
    deleted: bool = False,
    previous: dict | None = None,
    tied_events: Callable[[str, Version], list[Candidate]] | None = None,
) -> dict | None:
    """Write one object if its state is newer than the mirror's. Must run inside a transaction.

    Returns the state written (which, after a same-version tie, may be another event's), or
    None if the mirror kept its state. `tied_events(object_id, version)` returns the other
    applied events of this object with exactly this version.

    Ties are settled over every applied event of that version, and the winner is written
    even when it is neither the incoming nor the stored state: so whichever event of a tie
    is applied last leaves the same row, in any arrival order.
    """
    if upsert(kind, [(obj, version, deleted)]):
        return obj
    # The upsert's ON CONFLICT already locked the row; this reads it under that lock.
    stored = (
        kind.model.objects.select_for_update()
        .filter(pk=obj["id"])
        .values("version_ts", "version_rank", "version_source", "data", "deleted")
        .first()
    )
    if stored is None or (stored["version_ts"], stored["version_rank"]) != version.key():
        return None  # the stored state is newer
    if stored["version_source"] == version.source:
        return None  # the same state again
    candidates = {version.source: Candidate(version.source, obj, previous, bool(deleted or obj.get("deleted")))}
    for c in tied_events(obj["id"], version) if tied_events else []:
        candidates.setdefault(c.source, c)
    candidates.setdefault(
        stored["version_source"], Candidate(stored["version_source"], stored["data"], None, stored["deleted"])
    )
    winner = resolve_tie(list(candidates.values()))
    if winner.source == stored["version_source"]:
        return None
    kind.model.objects.filter(pk=obj["id"]).update(
        data=winner.obj,
        livemode=bool(winner.obj.get("livemode")),
        created=ts(winner.obj.get("created")),
        deleted=bool(winner.deleted or winner.obj.get("deleted")),
        version_source=winner.source,
        synced_at=dt.datetime.now(dt.timezone.utc),
        **kind.columns(winner.obj),
    )
    return winner.obj


def upsert_fetched(objects: Iterable[dict], fetched_at: int) -> dict[str, set[str]]:
    """Upsert objects read from the API (retrieve, list, backfill) at `fetched_at` seconds."""
    grouped: dict[str, list[tuple[dict, Version, bool]]] = {}
    for obj in objects:
        kind = kind_of(obj)
        if kind is None or not obj.get("id"):
            continue
        grouped.setdefault(kind.object, []).append((obj, version_for(kind, obj, fetched_at, API_SOURCE), False))
        for child in embedded_objects(obj):
            child_kind = kind_of(child)
            grouped.setdefault(child_kind.object, []).append(
                (child, version_for(child_kind, child, fetched_at, API_SOURCE), False)
            )
    written: dict[str, set[str]] = {}
    with transaction.atomic():
        for name in sorted(grouped):
            written[name] = upsert(KINDS[name], grouped[name])
    return written
