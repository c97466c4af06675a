"""Reads for the dispute queue and the early-fraud-warning tab.

The queue is three segments, each in its own order: disputes needing a response (inquiries
too) by evidence deadline, soonest first; then those under review; then the closed ones,
newest first. A page is cut from the segments by their counts (which the header shows anyway),
so each segment is read with its own indexed ORDER BY and LIMIT, never one sort of every
dispute. The rows of a page are completed in a fixed number of queries: their charges, cases
(assignee, ticket), customers' contacts and names, and which charges an AI agent paid with a
shared payment token (the timeline's `agent_purchase` mark).

Everything the query string says goes through parse_filters (common.parsing): what can't be
read is ignored, never an error.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.fields.json import KT, KeyTransform
from django.utils import timezone

from common.parsing import parse_int
from console.models import TimelineEntry
from payments.models import Charge, Customer, Dispute, EarlyFraudWarning
from payments.money import format_money
from payments.stripe_objects import refundable
from payments.stripe_words import WORDS, label
from tickets.models import Identity

from .models import DisputeCase

RESPOND = ("needs_response", "warning_needs_response")
REVIEW = ("under_review", "warning_under_review")
CLOSED = ("won", "lost", "prevented", "warning_closed")
GROUPS = {"respond": RESPOND, "review": REVIEW, "closed": CLOSED}
GROUP_OF = {status: group for group, statuses in GROUPS.items() for status in statuses}
AT_RISK = RESPOND + REVIEW
PAGE_SIZE = 50
MAX_PAGE = 200  # pages past this are not offered (10,000 disputes; filter to find older ones)
# The closed tab counts up to this ("1,000+"), or as far as the page shown needs: counting a
# shop's years of closed disputes would be most of the first page's time.
CLOSED_COUNT_CAP = 1000
MAX_DUE_DAYS = 365
REASONS = tuple(WORDS["dispute.reason"])
# The charge metadata keys that name the order, in the order they are looked for.
ORDER_KEYS = ("order_id", "order", "order_number", "order_no", "orderId", "注文番号")


# --- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    group: str = ""  # "", respond, review, closed
    reason: str = ""
    assignee: str = ""  # "", me, nobody, or a username
    due_days: int | None = None
    agentic: bool = False

    @property
    def any(self) -> bool:
        return bool(self.group or self.reason or self.assignee or self.due_days is not None or self.agentic)

    def query(self, **extra) -> dict:
        """The filters as query-string values (for links that keep them)."""
        out = {"group": self.group, "reason": self.reason, "assignee": self.assignee,
               "due": "" if self.due_days is None else str(self.due_days), "agentic": "1" if self.agentic else ""}
        out.update(extra)
        return {k: v for k, v in out.items() if v not in ("", None)}


def parse_filters(data) -> Filters:
    """Filters from a query string; anything unreadable is left out."""

    def text(name: str, limit: int = 150) -> str:
        value = data.get(name, "")
        return value.strip()[:limit] if isinstance(value, str) else ""

    group = text("group")
    reason = text("reason")
    assignee = text("assignee")
    return Filters(
        group=group if group in GROUPS else "",
        reason=reason if reason in REASONS else "",
        assignee=assignee if assignee.isprintable() else "",
        due_days=parse_int(data.get("due", ""), minimum=0, maximum=MAX_DUE_DAYS),
        agentic=text("agentic") in ("1", "true", "on", "yes"),
    )


def parse_page(value) -> int:
    return parse_int(value, 1, minimum=1, maximum=MAX_PAGE)


def _agentic_charges():
    """Charge ids an AI agent paid with a shared payment token, as the timeline marked them
    (console.timeline.agent_purchase); read through its partial index on agent_purchase."""
    return (TimelineEntry.objects.filter(agent_purchase=True, kind__in=("payment_succeeded", "payment_failed"))
            .values("object_id"))


def _filtered(filters: Filters, user, *, now: dt.datetime):
    qs = Dispute.objects.all()
    if filters.reason:
        qs = qs.filter(reason=filters.reason)
    # EXISTS rather than IN: "nobody" becomes an anti-join (NOT IN over a subquery cannot be one).
    cases = DisputeCase.objects.filter(dispute_id=OuterRef("pk"))
    if filters.assignee == "me":
        qs = qs.filter(Exists(cases.filter(assignee_id=getattr(user, "pk", None))))
    elif filters.assignee == "nobody":
        qs = qs.exclude(Exists(cases.filter(assignee__isnull=False)))
    elif filters.assignee:
        qs = qs.filter(Exists(cases.filter(assignee__username=filters.assignee)))
    if filters.due_days is not None:
        qs = qs.filter(status__in=RESPOND, due_by__lte=now + dt.timedelta(days=filters.due_days))
    if filters.agentic:
        qs = qs.filter(charge__in=_agentic_charges())
    return qs


# --- the queue ---------------------------------------------------------------------------------


@dataclass
class Queue:
    rows: list[dict]
    counts: dict[str, int]  # per group, under the filters other than the group
    closed_capped: bool  # the closed count stopped at CLOSED_COUNT_CAP
    at_risk: list[dict]  # per currency: {"currency", "amount", "money", "count"}
    page: int
    has_more: bool
    filters: Filters
    total: int = 0
    groups: list[str] = field(default_factory=lambda: list(GROUPS))


def _counts(qs, closed_cap: int = CLOSED_COUNT_CAP) -> tuple[dict[str, int], bool, list[dict]]:
    """Disputes per group (closed ones up to `closed_cap`) and the amount at risk (needing
    response or under review) per currency."""
    counts = {group: 0 for group in GROUPS}
    risk: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in (qs.filter(status__in=AT_RISK).order_by().values("status", "currency")
                .annotate(n=Count("*"), total=Sum("amount"))):
        counts[GROUP_OF[row["status"]]] += row["n"]
        money = risk[(row["currency"] or "").lower()]
        money[0] += row["total"] or 0
        money[1] += row["n"]
    closed = qs.filter(status__in=CLOSED).order_by().values("id")[: closed_cap + 1].count()
    counts["closed"] = min(closed, closed_cap)
    at_risk = [{"currency": c, "amount": a, "count": n, "money": format_money(a, c) if c else str(a)}
               for c, (a, n) in sorted(risk.items(), key=lambda kv: (-kv[1][1], kv[0]))]
    return counts, closed > closed_cap, at_risk


def _segment(qs, group: str):
    qs = qs.filter(status__in=GROUPS[group])
    if group == "respond":
        return qs.order_by(F("due_by").asc(nulls_last=True), "id")
    return qs.order_by("-created", "-id")


def dispute_queue(filters: Filters, page: int = 1, *, user=None, now: dt.datetime | None = None,
                  page_size: int = PAGE_SIZE) -> Queue:
    """One page of the queue under `filters` (page 1 is the first), with the header's figures."""
    now = now or timezone.now()
    base = _filtered(filters, user, now=now)
    offset = (page - 1) * page_size
    # Capped, the count still reaches past this page, so "Next" is offered when there is more.
    counts, capped, at_risk = _counts(base, closed_cap=max(CLOSED_COUNT_CAP, offset + page_size + 1))
    groups = [filters.group] if filters.group else list(GROUPS)
    found: list[Dispute] = []
    start = 0
    for group in groups:
        size = counts[group]
        if len(found) < page_size and offset + len(found) < start + size:
            skip = max(0, offset - start)
            want = page_size - len(found)
            found += list(_segment(base, group).defer("data").annotate(**_DETAILS)[skip: skip + want])
        start += size
    total = start
    return Queue(rows=queue_rows(found, now=now), counts=counts, closed_capped=capped, at_risk=at_risk, page=page,
                 has_more=offset + page_size < total and page < MAX_PAGE, filters=filters, total=total)


def _evidence_state(details: dict) -> str:
    details = details if isinstance(details, dict) else {}
    count = details.get("submission_count")
    if isinstance(count, int) and count > 0:
        return "submitted"
    if details.get("has_evidence"):
        return "draft"
    return "none"


def order_text(charge: dict) -> str:
    """What the charge says was bought: its description, else the order named in its metadata."""
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), dict) else {}
    key = next((key for key in ORDER_KEYS if metadata.get(key)), "")
    order = f"{key}: {metadata[key]}" if key else ""
    description = charge.get("description") or ""
    if description and order and str(metadata[key]) in description:  # "Order KR-10760: …" says it already
        return description
    if description and order:
        return f"{description} · {order}"
    return description or order or ", ".join(f"{k}: {v}" for k, v in list(metadata.items())[:2])


def _contacts(customers) -> dict[str, dict]:
    """Each Stripe customer's contact (id and name) and name in the mirror, in two queries."""
    customers = [c for c in set(customers) if c]
    if not customers:
        return {}
    out: dict[str, dict] = {c: {"contact_id": None, "name": ""} for c in customers}
    for row in (Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value__in=customers)
                .values("value", "contact_id", "contact__name")):
        out[row["value"]].update(contact_id=row["contact_id"], name=row["contact__name"] or "")
    for row in Customer.objects.filter(pk__in=customers).values("id", "name", "email"):
        out[row["id"]]["name"] = row["name"] or out[row["id"]]["name"] or row["email"] or ""
    return out


def _charges(ids) -> dict[str, Charge]:
    ids = [i for i in set(ids) if i]
    return {c.pk: c for c in Charge.objects.filter(pk__in=ids)} if ids else {}


def _charge_rows(ids) -> dict[str, dict]:
    """The queue page's charges: their columns and the few JSON fields the row shows, extracted by
    the database (decoding every charge's whole JSON was most of the page's time)."""
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    rows = Charge.objects.filter(pk__in=ids).values(
        "id", "customer", "created", "description", metadata=KeyTransform("metadata", "data"),
        brand=KT("data__payment_method_details__card__brand"))
    return {row["id"]: row for row in rows}


def _json_text(value) -> str:
    """A JSON field the database extracted as text: SQLite says "null" for JSON null where
    PostgreSQL gives NULL."""
    return "" if value is None or value == "null" else str(value)


def _truthy(value) -> bool:
    return value in (True, 1, "1", "true", "True")


# The few JSON fields a row shows, extracted by the database with the page's disputes.
_DETAILS = {"q_brand": KT("data__payment_method_details__card__brand"),
            "q_network_reason_code": KT("data__payment_method_details__card__network_reason_code"),
            "q_case_type": KT("data__payment_method_details__card__case_type"),
            "q_submissions": KT("data__evidence_details__submission_count"),
            "q_has_evidence": KT("data__evidence_details__has_evidence")}


def queue_rows(disputes: list[Dispute], *, now: dt.datetime | None = None) -> list[dict]:
    """The page's rows (disputes annotated with _DETAILS), completed in a fixed number of
    queries whatever the page size."""
    if not disputes:
        return []
    ids = [d.pk for d in disputes]
    charges = _charge_rows(d.charge for d in disputes)
    cases = {c.dispute_id: c for c in DisputeCase.objects.filter(dispute_id__in=ids)
             .select_related("assignee", "ticket").only("dispute_id", "assignee__username", "assignee__first_name",
                                                        "assignee__last_name", "ticket__number", "ticket__subject",
                                                        "ticket__status")}
    contacts = _contacts(c["customer"] for c in charges.values())
    agentic = set(_agentic_charges().filter(object_id__in=list(charges)).values_list("object_id", flat=True)) \
        if charges else set()
    rows = []
    for d in disputes:
        data = {name[2:]: getattr(d, name, None) for name in _DETAILS}
        charge = charges.get(d.charge)
        customer = charge["customer"] if charge is not None else ""
        who = contacts.get(customer) or {}
        case = cases.get(d.pk)
        submissions = parse_int(data.get("submissions")) if _json_text(data.get("submissions")) else None
        rows.append({
            "id": d.pk, "status": d.status, "status_label": label("dispute.status", d.status),
            "group": GROUP_OF.get(d.status, ""), "inquiry": d.status.startswith("warning_"),
            "amount": d.amount, "currency": d.currency, "money": format_money(d.amount, d.currency),
            "reason": d.reason, "reason_label": label("dispute.reason", d.reason) if d.reason else "",
            "brand": _json_text(data.get("brand")) or _json_text((charge or {}).get("brand")),
            "network_reason_code": _json_text(data.get("network_reason_code")),
            "case_type": _json_text(data.get("case_type")),
            "charge_id": d.charge, "charge_created": charge["created"] if charge is not None else None,
            "order": order_text({"description": charge["description"], "metadata": charge["metadata"]})
            if charge is not None else "",
            "customer": customer, "contact_id": who.get("contact_id"), "customer_name": who.get("name") or "",
            "due_by": d.due_by, "created": d.created,
            "evidence": _evidence_state({"submission_count": submissions,
                                         "has_evidence": _truthy(data.get("has_evidence"))}),
            "assignee": case.assignee if case is not None else None,
            "ticket": case.ticket if case is not None else None,
            "agentic": d.charge in agentic,
        })
    return rows


def assignable_users():
    """Who a dispute can be given to: active people who see the queue (by their role or as superusers)."""
    User = get_user_model()
    perm = Q(groups__permissions__codename="view_disputecase", groups__permissions__content_type__app_label="disputes")
    return (User.objects.filter(is_active=True).filter(perm | Q(is_superuser=True))
            .distinct().order_by("username").only("id", "username", "first_name", "last_name"))


# --- early fraud warnings ----------------------------------------------------------------------


@dataclass
class Warnings:
    rows: list[dict]
    page: int
    has_more: bool


def fraud_warnings(page: int = 1, *, page_size: int = PAGE_SIZE) -> Warnings:
    """Early fraud warnings, newest first: the charge's amount, its customer, whether a dispute
    followed on the same charge, and what can still be refunded (nothing once disputed)."""
    offset = (page - 1) * page_size
    found = list(EarlyFraudWarning.objects.order_by("-created", "-id")
                 .only("id", "charge", "fraud_type", "actionable", "created")[offset: offset + page_size + 1])
    has_more = len(found) > page_size and page < MAX_PAGE
    found = found[:page_size]
    charges = _charges(w.charge for w in found)
    disputes: dict[str, str] = {}
    if charges:
        for charge_id, dispute_id in (Dispute.objects.filter(charge__in=list(charges)).order_by("created")
                                      .values_list("charge", "id")):
            disputes.setdefault(charge_id, dispute_id)
    contacts = _contacts(c.customer for c in charges.values())
    rows = []
    for w in found:
        charge = charges.get(w.charge)
        who = contacts.get(charge.customer if charge is not None else "") or {}
        dispute = disputes.get(w.charge, "")
        left = refundable(charge.data) if charge is not None else 0
        can_refund = bool(charge is not None and left > 0 and not dispute and not charge.disputed)
        rows.append({
            "id": w.pk, "fraud_type": w.fraud_type, "fraud_type_label": label("early_fraud_warning.fraud_type",
                                                                              w.fraud_type) if w.fraud_type else "",
            "actionable": w.actionable, "created": w.created, "charge_id": w.charge,
            "amount": charge.amount if charge is not None else None,
            "currency": charge.currency if charge is not None else "",
            "money": format_money(charge.amount, charge.currency) if charge is not None and charge.currency else "",
            "charge_created": charge.created if charge is not None else None,
            "refunded": charge.amount_refunded if charge is not None else 0,
            "customer": charge.customer if charge is not None else "", "contact_id": who.get("contact_id"),
            "customer_name": who.get("name") or "", "dispute_id": dispute,
            "refundable": left if can_refund else 0, "can_refund": can_refund,
        })
    return Warnings(rows=rows, page=page, has_more=has_more)
