"""The customer page: header, then the timeline (keyset pages, HTMX infinite scroll), and
each entry's detail opened in place."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from audit.models import AuditEntry
from payments.models import Charge, Dispute, Invoice, Refund, Subscription
from tickets.models import Contact, Message, Ticket

from .. import selectors
from ..models import TimelineEntry
from ..templatetags.timeline_ui import local_day
from ..timeline import FILTERS, ts

TEMPLATE = "customers/customer.html"
PERMS = ("tickets.view_contact", "payments.view_charge")


def _filter(request) -> str:
    key = request.GET.get("filter", "")
    return key if key in FILTERS else ""


def _timeline_context(request, contact) -> dict:
    """One page of the timeline and what its rows need: the filter, the next cursor, and the
    day the previous page ended on (so a page does not repeat its day heading)."""
    key = _filter(request)
    cursor = request.GET.get("cursor", "")
    entries, next_cursor = selectors.timeline_page(contact.pk, filter_key=key, cursor=cursor)
    position = selectors.decode_cursor(cursor) if cursor else None
    return {"contact": contact, "entries": entries, "next_cursor": next_cursor, "filter": key,
            "after_day": local_day(position[0]) if position else "",
            "filters": [(k, label) for k, (label, _kinds) in FILTERS.items()]}


@require_GET
@permission_required(PERMS, raise_exception=True)
def customer(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=contact_id)
    if contact.merged_into_id:
        return redirect("customer", contact.merged_into_id)
    context = _timeline_context(request, contact)
    if request.htmx and request.GET.get("cursor"):
        return render(request, TEMPLATE + "#entries", context)
    if request.htmx and request.htmx.target == "timeline":
        return render(request, TEMPLATE + "#timeline", context)
    context.update(header=selectors.customer_header(contact), nav="customers",
                   time_zone_name=timezone.get_current_timezone_name())
    return render(request, TEMPLATE, context)


@require_GET
@permission_required(PERMS, raise_exception=True)
def customer_timeline(request: HttpRequest, contact_id: int) -> HttpResponse:
    """The timeline alone (chips and the next page), for HTMX and for the ticket page."""
    contact = get_object_or_404(Contact, pk=contact_id)
    context = _timeline_context(request, contact)
    return render(request, TEMPLATE + ("#entries" if request.GET.get("cursor") else "#timeline"), context)


DETAIL_OBJECTS = {
    "payment_succeeded": Charge, "payment_failed": Charge, "refund": Refund, "dispute_opened": Dispute,
    "dispute_updated": Dispute, "dispute_closed": Dispute, "invoice_paid": Invoice, "invoice_failed": Invoice,
    "subscription_started": Subscription, "subscription_changed": Subscription, "subscription_cancelled": Subscription,
}


SLUGS = {Charge: "payments", Refund: "refunds", Dispute: "disputes", Invoice: "invoices", Subscription: "subscriptions"}


@require_GET
@permission_required(PERMS, raise_exception=True)
def timeline_entry(request: HttpRequest, contact_id: int, entry_id: int) -> HttpResponse:
    entry = TimelineEntry.objects.filter(pk=entry_id, contact_id=contact_id).first()
    if entry is None:
        raise Http404(_("No such entry on this customer's timeline"))
    context = {"entry": entry, "contact_id": contact_id}
    model = DETAIL_OBJECTS.get(entry.kind)
    if model is not None:
        fields = ("id", "status", "due_by") if model is Dispute else ("id", "status")
        context["object"] = model.objects.filter(pk=entry.object_id).values(*fields).first()
        context["object_slug"] = SLUGS[model]
    expires = ((entry.data or {}).get("agent") or {}).get("expires_at")
    context["expires_at"] = ts(expires) if isinstance(expires, int) else None
    if entry.kind in ("payment_succeeded", "payment_failed"):
        context["why"] = selectors.why_charged(entry.object_id)
    elif entry.kind == "message" and entry.object_id.isdigit():
        context["message"] = Message.objects.filter(pk=entry.object_id).values(
            "kind", "channel", "sender", "subject", "body_text", "created").first()
    elif entry.kind == "ticket":
        context["ticket"] = Ticket.objects.filter(pk=entry.ticket_id).values("number", "subject", "status").first()
    elif entry.kind == "action" and (entry.data or {}).get("audit"):
        context["audit"] = AuditEntry.objects.filter(pk=(entry.data or {}).get("audit")).values(
            "action", "target", "details", "created").first()
    return render(request, "customers/entry.html", context)
