"""Pages of the mirror: lists of each Stripe type, one object, the event log, sync health.

Every view serves the whole page, or the fragment HTMX asked for (`template#partial`).
Permissions are checked here, per Stripe type; the login itself is the middleware's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.utils.translation import gettext as _, gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.vary import vary_on_headers

from . import selectors
from .actions import events as actions
from .mirror import KINDS
from .models import Customer, WebhookEvent


@dataclass(frozen=True)
class Column:
    label: str  # lazy: said in the reader's language
    field: str
    # text | money | date | status | id (this object, linked) | ref (another object, linked)
    # | customer (a customer id shown by name or email) | bool | email | mono
    kind: str = "text"
    blank_zero: bool = False  # "Refunded $0.00" on every row is noise
    words: str = ""  # a label column's field in payments.stripe_words, when not "<object>.<field>"


@dataclass(frozen=True)
class MirrorList:
    slug: str
    kind: str
    title: str
    singular: str
    columns: tuple[Column, ...]
    facts: tuple[Column, ...]  # the object page's summary
    search_placeholder: str = gettext_lazy("Search by id, email or name")


_CREATED = Column(gettext_lazy("Created"), "created", "date")

LISTS: dict[str, MirrorList] = {
    m.slug: m
    for m in [
        MirrorList(
            "customers", "customer", gettext_lazy("Customers"), gettext_lazy("Customer"),
            (Column(gettext_lazy("Name"), "name"), Column(gettext_lazy("Email"), "email", "email"), Column(gettext_lazy("Customer"), "id", "id"), _CREATED),
            (Column(gettext_lazy("Name"), "name"), Column(gettext_lazy("Email"), "email", "email"), Column(gettext_lazy("Phone"), "phone"),
             Column(gettext_lazy("Currency"), "currency", "currency"), Column(gettext_lazy("Delinquent"), "delinquent", "bool"), _CREATED),
        ),
        MirrorList(
            "payments", "charge", gettext_lazy("Payments"), gettext_lazy("Payment"),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Charge"), "id", "id"),
             Column(gettext_lazy("Refunded"), "amount_refunded", "money", blank_zero=True), _CREATED),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Refunded"), "amount_refunded", "money"),
             Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Billing email"), "billing_email", "email"),
             Column(gettext_lazy("Payment intent"), "payment_intent", "ref"), Column(gettext_lazy("Invoice"), "invoice", "ref"),
             Column(gettext_lazy("Description"), "description"), Column(gettext_lazy("Failure code"), "failure_code", "label"),
             Column(gettext_lazy("Disputed"), "disputed", "bool"), _CREATED),
            gettext_lazy("Search by id, customer id, email"),
        ),
        MirrorList(
            "refunds", "refund", gettext_lazy("Refunds"), gettext_lazy("Refund"),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Refund"), "id", "id"), Column(gettext_lazy("Charge"), "charge", "ref"), Column(gettext_lazy("Reason"), "reason", "label"),
             _CREATED),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Charge"), "charge", "ref"),
             Column(gettext_lazy("Payment intent"), "payment_intent", "ref"), Column(gettext_lazy("Reason"), "reason", "label"), _CREATED),
            gettext_lazy("Search by id or charge id"),
        ),
        MirrorList(
            "disputes", "dispute", gettext_lazy("Disputes"), gettext_lazy("Dispute"),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Reason"), "reason", "label"), Column(gettext_lazy("Dispute"), "id", "id"), Column(gettext_lazy("Charge"), "charge", "ref"),
             Column(gettext_lazy("Evidence due"), "due_by", "due")),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Reason"), "reason", "label"),
             Column(gettext_lazy("Evidence due"), "due_by", "due"), Column(gettext_lazy("Charge"), "charge", "ref"),
             Column(gettext_lazy("Payment intent"), "payment_intent", "ref"), _CREATED),
            gettext_lazy("Search by id or charge id"),
        ),
        MirrorList(
            "subscriptions", "subscription", gettext_lazy("Subscriptions"), gettext_lazy("Subscription"),
            (Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Plan"), "plan", "plan"), Column(gettext_lazy("Subscription"), "id", "id"),
             Column(gettext_lazy("Current period ends"), "current_period_end", "date"),
             Column(gettext_lazy("Cancels at period end"), "cancel_at_period_end", "bool")),
            (Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Current period ends"), "current_period_end", "date"),
             Column(gettext_lazy("Cancels at period end"), "cancel_at_period_end", "bool"), Column(gettext_lazy("Canceled"), "canceled_at", "date"),
             Column(gettext_lazy("Currency"), "currency", "currency"), _CREATED),
            gettext_lazy("Search by id or customer id"),
        ),
        MirrorList(
            "invoices", "invoice", gettext_lazy("Invoices"), gettext_lazy("Invoice"),
            (Column(gettext_lazy("Amount due"), "amount_due", "money"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Number"), "number", "mono"), Column(gettext_lazy("Customer"), "customer", "customer"),
             Column(gettext_lazy("Invoice"), "id", "id"), _CREATED),
            (Column(gettext_lazy("Amount due"), "amount_due", "money"), Column(gettext_lazy("Amount paid"), "amount_paid", "money"),
             Column(gettext_lazy("Number"), "number", "mono"), Column(gettext_lazy("Customer"), "customer", "customer"),
             Column(gettext_lazy("Subscription"), "subscription", "ref"), Column(gettext_lazy("Charge"), "charge", "ref"),
             Column(gettext_lazy("Due"), "due_date", "date"), _CREATED),
            gettext_lazy("Search by id, number or customer id"),
        ),
        MirrorList(
            "payment-intents", "payment_intent", gettext_lazy("Payment intents"), gettext_lazy("Payment intent"),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Status"), "status", "status"),
             Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Payment intent"), "id", "id"), _CREATED),
            (Column(gettext_lazy("Amount"), "amount", "money"), Column(gettext_lazy("Received"), "amount_received", "money"),
             Column(gettext_lazy("Customer"), "customer", "customer"), Column(gettext_lazy("Latest charge"), "latest_charge", "ref"),
             Column(gettext_lazy("Description"), "description"), _CREATED),
            gettext_lazy("Search by id or customer id"),
        ),
        MirrorList(
            "fraud-warnings", "radar.early_fraud_warning", gettext_lazy("Early fraud warnings"), gettext_lazy("Early fraud warning"),
            (Column(gettext_lazy("Fraud type"), "fraud_type", "label", words="early_fraud_warning.fraud_type"), Column(gettext_lazy("Actionable"), "actionable", "bool"),
             Column(gettext_lazy("Warning"), "id", "id"), Column(gettext_lazy("Charge"), "charge", "ref"), _CREATED),
            (Column(gettext_lazy("Fraud type"), "fraud_type", "label", words="early_fraud_warning.fraud_type"), Column(gettext_lazy("Actionable"), "actionable", "bool"),
             Column(gettext_lazy("Charge"), "charge", "ref"), Column(gettext_lazy("Payment intent"), "payment_intent", "ref"), _CREATED),
            gettext_lazy("Search by id or charge id"),
        ),
        MirrorList(
            "products", "product", gettext_lazy("Products"), gettext_lazy("Product"),
            (Column(gettext_lazy("Name"), "name"), Column(pgettext_lazy("product", "Active"), "active", "bool"), Column(gettext_lazy("Product"), "id", "id"), _CREATED),
            (Column(gettext_lazy("Name"), "name"), Column(pgettext_lazy("product", "Active"), "active", "bool"), _CREATED),
            gettext_lazy("Search by id or name"),
        ),
        MirrorList(
            "prices", "price", gettext_lazy("Prices"), gettext_lazy("Price"),
            (Column(gettext_lazy("Price"), "id", "id"), Column(gettext_lazy("Product"), "product", "ref"), Column(gettext_lazy("Nickname"), "nickname"),
             Column(gettext_lazy("Amount"), "unit_amount", "money"), Column(gettext_lazy("Interval"), "recurring_interval", "label", words="price.interval"), _CREATED),
            (Column(gettext_lazy("Product"), "product", "ref"), Column(gettext_lazy("Nickname"), "nickname"),
             Column(gettext_lazy("Amount"), "unit_amount", "money"), Column(gettext_lazy("Interval"), "recurring_interval", "label", words="price.interval"),
             Column(pgettext_lazy("product", "Active"), "active", "bool"), _CREATED),
            gettext_lazy("Search by id, product id or nickname"),
        ),
    ]
}

KIND_TO_LIST = {spec.kind: spec for spec in LISTS.values()}

ID_PREFIX_TO_LIST = {
    "cus_": "customers", "ch_": "payments", "py_": "payments", "re_": "refunds", "pyr_": "refunds",
    "dp_": "disputes", "du_": "disputes", "sub_": "subscriptions", "in_": "invoices", "pi_": "payment-intents",
    "issfr_": "fraud-warnings", "prod_": "products", "price_": "prices",
}


def list_for_id(object_id: str) -> str:
    """The list slug a Stripe id belongs to, from its prefix ("" if none)."""
    for prefix, slug in ID_PREFIX_TO_LIST.items():
        if object_id.startswith(prefix):
            return slug
    return ""


@functools.lru_cache(maxsize=64)
def _list_url(slug: str) -> str:
    return reverse("mirror_list", args=[slug])


def object_url(object_id: str) -> str:
    """/stripe/<list>/<id>/ from the id's prefix; hundreds per page, so no reverse() per id."""
    slug = list_for_id(object_id or "")
    return f"{_list_url(slug)}{quote(object_id, safe='')}/" if slug else ""


def view_perm(kind: str) -> str:
    return f"payments.view_{KINDS[kind].model._meta.model_name}"


def _spec_for(request: HttpRequest, slug: str) -> MirrorList:
    spec = LISTS.get(slug)
    if spec is None:
        raise Http404(_("No such list"))
    if not request.user.has_perm(view_perm(spec.kind)):
        raise PermissionDenied(_("You don't have access to %(list)s.") % {"list": str(spec.title).lower()})
    return spec


def customer_labels(rows, columns) -> dict[str, str]:
    """Name or email for the customers a page of rows mentions: one query per page."""
    ids = {getattr(r, c.field) for r in rows for c in columns if c.kind == "customer" and getattr(r, c.field, "")}
    if not ids:
        return {}
    return {
        cid: name or email or cid
        for cid, name, email in Customer.objects.filter(pk__in=ids).values_list("id", "name", "email")
    }


@require_GET
@vary_on_headers("HX-Request")
def mirror_list(request: HttpRequest, slug: str) -> HttpResponse:
    spec = _spec_for(request, slug)
    q = request.GET.get("q", "").strip()[:200]
    status = request.GET.get("status", "")
    if status not in selectors.statuses(spec.kind):
        status = ""
    after = request.GET.get("after", "")[:300]
    rows, cursor = selectors.mirror_page(spec.kind, q=q, status=status, after=after)
    context = {
        "spec": spec, "rows": rows, "cursor": cursor, "q": q, "status": status, "after": after,
        "statuses": selectors.statuses(spec.kind), "nav": slug,
        "customers": customer_labels(rows, spec.columns),
    }
    template = "payments/mirror_list.html"
    if request.htmx and after:
        template += "#rows"  # infinite scroll: the next rows only
    elif request.htmx and request.htmx.target == "mirror-table":
        template += "#table"  # the filter form: the whole table
    return render(request, template, context)


@require_GET
def mirror_object(request: HttpRequest, slug: str, object_id: str) -> HttpResponse:
    spec = _spec_for(request, slug)
    obj = KINDS[spec.kind].model.objects.filter(pk=object_id).first()
    if obj is None:
        raise Http404(_("No %(kind)s %(id)s in the mirror") % {"kind": str(spec.singular).lower(), "id": object_id})
    can_see_events = request.user.has_perm("payments.view_webhookevent")
    related = []
    for kind, rows, query in selectors.related(spec.kind, obj):
        other = KIND_TO_LIST[kind]
        if request.user.has_perm(view_perm(kind)):
            # The column pointing back at this object says nothing on this page.
            columns = tuple(c for c in other.columns if getattr(rows[0], c.field, None) != obj.pk)
            related.append({"spec": other, "rows": rows, "columns": columns, "query": query})
    rows_for_labels = [obj] + [r for block in related for r in block["rows"]]
    context = {
        "spec": spec,
        "obj": obj,
        "facts": spec.facts,
        "metadata": (obj.data or {}).get("metadata") or {},
        "events": selectors.object_events(obj.pk) if can_see_events else None,
        "related": related,
        "items": selectors.subscription_items(obj) if spec.kind == "subscription" else [],
        "customers": customer_labels(
            rows_for_labels, spec.facts + tuple(c for block in related for c in block["columns"])
        ),
        "nav": slug,
    }
    return render(request, "payments/mirror_object.html", context)


@require_GET
@vary_on_headers("HX-Request")
@permission_required("payments.view_webhookevent", raise_exception=True)
def event_log(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    status = request.GET.get("status", "")
    if status not in WebhookEvent.Status.values:
        status = ""
    after = request.GET.get("after", "")[:300]
    events, cursor = selectors.event_page(q=q, status=status, after=after)
    context = {
        "events": events, "cursor": cursor, "status": status, "q": q, "after": after,
        "statuses": WebhookEvent.Status.values, "nav": "events",
    }
    template = "payments/event_log.html"
    if request.htmx and after:
        template += "#rows"
    elif request.htmx and request.htmx.target == "event-table":
        template += "#table"
    return render(request, template, context)


@require_GET
@permission_required("payments.view_webhookevent", raise_exception=True)
def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    event = WebhookEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404(_("No stored event %(id)s") % {"id": event_id})
    return render(
        request,
        "payments/event_detail.html",
        {"event": event, "object_url": object_url(event.object_id), "nav": "events"},
    )


@require_GET
@vary_on_headers("HX-Request")
@permission_required("payments.view_sync_health", raise_exception=True)
def sync_health(request: HttpRequest) -> HttpResponse:
    health = selectors.sync_health()
    context = {"health": health, "pending_age": selectors.pending_age_seconds(health), "nav": "sync"}
    template = "payments/sync_health.html" + ("#health" if request.htmx else "")
    return render(request, template, context)


def _from_sync_page(request: HttpRequest, ids: list[str], act, none: str, done) -> HttpResponse:
    """A sync page button: `act` on the chosen events (or every one), then back to the page.
    `done(count)` says what was done."""
    if not ids:
        messages.info(request, none)
        return redirect("sync_health")
    count = act(ids, actor=request.user)
    messages.success(request, done(count))
    return redirect("sync_health")


@require_POST
@permission_required("payments.replay_event", raise_exception=True)
def replay_failed(request: HttpRequest) -> HttpResponse:
    """The sync page's replay buttons: one failed event, or every failed one."""
    return _from_sync_page(request, selectors.failed_event_ids(request.POST.getlist("event")[:1000]),
                           actions.replay_events, _("There are no failed events to replay."),
                           lambda n: ngettext("Queued %(count)s failed event for replay.",
                                              "Queued %(count)s failed events for replay.", n) % {"count": n})


@require_POST
@permission_required("payments.replay_event", raise_exception=True)
def retry_follow_up(request: HttpRequest) -> HttpResponse:
    """The sync page's retry of what failed after an event was applied (timeline, contacts)."""
    return _from_sync_page(request, selectors.unannounced_event_ids(request.POST.getlist("event")[:1000]),
                           actions.retry_announcements, _("Nothing is waiting for a retry."),
                           lambda n: ngettext("Queued the follow-up of %(count)s event again.",
                                              "Queued the follow-up of %(count)s events again.", n) % {"count": n})
