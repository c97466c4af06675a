"""Pages of the mirror: lists of each Stripe type, one object, the event log, sync health."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import actions, selectors
from .mirror import KINDS
from .models import WebhookEvent


@dataclass(frozen=True)
class Column:
    label: str
    field: str
    kind: str = "text"  # text | money | date | status | id | bool


@dataclass(frozen=True)
class MirrorList:
    slug: str
    kind: str
    title: str
    columns: tuple[Column, ...]


LISTS = {
    m.slug: m
    for m in [
        MirrorList("customers", "customer", "Customers", (
            Column("Customer", "id", "id"), Column("Name", "name"), Column("Email", "email"),
            Column("Created", "created", "date"),
        )),
        MirrorList("payments", "charge", "Payments", (
            Column("Amount", "amount", "money"), Column("Status", "status", "status"),
            Column("Charge", "id", "id"), Column("Customer", "customer", "id"),
            Column("Refunded", "amount_refunded", "money"), Column("Created", "created", "date"),
        )),
        MirrorList("refunds", "refund", "Refunds", (
            Column("Amount", "amount", "money"), Column("Status", "status", "status"),
            Column("Refund", "id", "id"), Column("Charge", "charge", "id"), Column("Reason", "reason"),
            Column("Created", "created", "date"),
        )),
        MirrorList("disputes", "dispute", "Disputes", (
            Column("Amount", "amount", "money"), Column("Status", "status", "status"),
            Column("Dispute", "id", "id"), Column("Charge", "charge", "id"), Column("Reason", "reason"),
            Column("Evidence due", "due_by", "date"),
        )),
        MirrorList("subscriptions", "subscription", "Subscriptions", (
            Column("Subscription", "id", "id"), Column("Status", "status", "status"),
            Column("Customer", "customer", "id"), Column("Period end", "current_period_end", "date"),
            Column("Cancels at end", "cancel_at_period_end", "bool"), Column("Created", "created", "date"),
        )),
        MirrorList("invoices", "invoice", "Invoices", (
            Column("Amount due", "amount_due", "money"), Column("Status", "status", "status"),
            Column("Number", "number"), Column("Invoice", "id", "id"), Column("Customer", "customer", "id"),
            Column("Created", "created", "date"),
        )),
        MirrorList("payment-intents", "payment_intent", "Payment intents", (
            Column("Amount", "amount", "money"), Column("Status", "status", "status"),
            Column("Payment intent", "id", "id"), Column("Customer", "customer", "id"),
            Column("Created", "created", "date"),
        )),
        MirrorList("fraud-warnings", "radar.early_fraud_warning", "Early fraud warnings", (
            Column("Warning", "id", "id"), Column("Fraud type", "fraud_type"), Column("Charge", "charge", "id"),
            Column("Actionable", "actionable", "bool"), Column("Created", "created", "date"),
        )),
        MirrorList("products", "product", "Products", (
            Column("Product", "id", "id"), Column("Name", "name"), Column("Active", "active", "bool"),
            Column("Created", "created", "date"),
        )),
    ]
}

ID_PREFIX_TO_LIST = {
    "cus_": "customers", "ch_": "payments", "py_": "payments", "re_": "refunds", "dp_": "disputes",
    "du_": "disputes", "sub_": "subscriptions", "in_": "invoices", "pi_": "payment-intents",
    "issfr_": "fraud-warnings", "prod_": "products",
}


def _perm_for(kind: str) -> str:
    return f"payments.view_{KINDS[kind].model._meta.model_name}"


@require_GET
def mirror_list(request: HttpRequest, slug: str) -> HttpResponse:
    spec = LISTS.get(slug)
    if spec is None:
        raise Http404
    if not request.user.has_perm(_perm_for(spec.kind)):
        return HttpResponse("You don't have access to this list.", status=403)
    q = request.GET.get("q", "")[:200]
    status = request.GET.get("status", "")[:32]
    rows, cursor = selectors.mirror_page(spec.kind, q=q, status=status, after=request.GET.get("after", ""))
    context = {
        "spec": spec, "rows": rows, "cursor": cursor, "q": q, "status": status,
        "statuses": selectors.statuses(spec.kind), "nav": slug,
    }
    template = "payments/mirror_list.html"
    if request.htmx and request.GET.get("after"):
        template += "#rows"
    elif request.htmx and request.htmx.target == "mirror-table":
        template += "#table"
    return render(request, template, context)


@require_GET
def mirror_object(request: HttpRequest, slug: str, object_id: str) -> HttpResponse:
    spec = LISTS.get(slug)
    if spec is None:
        raise Http404
    if not request.user.has_perm(_perm_for(spec.kind)):
        return HttpResponse("You don't have access to this object.", status=403)
    obj = KINDS[spec.kind].model.objects.filter(pk=object_id).first()
    if obj is None:
        raise Http404
    events = (
        WebhookEvent.objects.filter(object_id=object_id).defer("payload").order_by("-created")[:50]
        if request.user.has_perm("payments.view_webhookevent")
        else []
    )
    return render(request, "payments/mirror_object.html", {"spec": spec, "obj": obj, "events": events, "nav": slug})


@require_GET
@permission_required("payments.view_webhookevent", raise_exception=True)
def event_log(request: HttpRequest) -> HttpResponse:
    qs = WebhookEvent.objects.defer("payload").order_by("-received_at", "-id")
    status = request.GET.get("status", "")
    if status in WebhookEvent.Status.values:
        qs = qs.filter(status=status)
    q = request.GET.get("q", "").strip()[:200]
    if q:
        qs = qs.filter(id=q) | qs.filter(object_id=q) | qs.filter(type__startswith=q)
    return render(
        request,
        "payments/event_log.html",
        {"events": qs[:100], "status": status, "q": q, "statuses": WebhookEvent.Status.values, "nav": "events"},
    )


@require_GET
@permission_required("payments.view_sync_health", raise_exception=True)
def sync_health(request: HttpRequest) -> HttpResponse:
    health = selectors.sync_health()
    context = {"health": health, "pending_age": selectors.pending_age_seconds(health), "nav": "sync"}
    template = "payments/sync_health.html" + ("#health" if request.htmx else "")
    return render(request, template, context)


@require_POST
@permission_required("payments.replay_event", raise_exception=True)
def replay_failed(request: HttpRequest) -> HttpResponse:
    ids = request.POST.getlist("event") or list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).values_list("id", flat=True)[:1000]
    )
    ids = list(WebhookEvent.objects.filter(id__in=ids).values_list("id", flat=True))
    count = actions.replay_events(ids, actor=request.user)
    messages.success(request, f"Queued {count} event{'s' if count != 1 else ''} for replay.")
    return redirect("sync_health")
