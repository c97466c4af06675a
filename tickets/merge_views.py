"""Merging a ticket into another of the same requester, from the ticket page, and undoing it.

GET /tickets/<n>/merge/ is the "Merge into…" card: the requester's other open tickets, then
(?into=<m>) what the merge will do in plain words; POST confirms it with the versions the
preview showed. Both are the card alone for HTMX and the whole ticket page without. A
confirmation sent twice finds the ticket merged already and goes to the survivor, saying so.
Writes go through tickets.actions.merges; these views only read, call and render.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from common import parsing

from . import selectors
from .actions.errors import ActionError
from .actions.merges import MERGE_PERMISSIONS, merge_tickets, undo_ticket_merge
from .models import Ticket, TicketMerge
from .views import TICKET_TEMPLATE, _errors, _full_ticket_context, _ticket_context, _ticket_or_404

PERMISSIONS = ("tickets.view_ticket", *MERGE_PERMISSIONS)


def _go(request, url: str) -> HttpResponse:
    """To `url`: a redirect, or HTMX's full-page redirect (the flash shows there)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _card(request, ticket: Ticket, **extra) -> HttpResponse:
    if request.htmx:
        context = _ticket_context(request, ticket, can_merge_tickets=True, **extra)
        return render(request, "tickets/_merge.html#merge-card", context)
    return render(request, TICKET_TEMPLATE, _full_ticket_context(request, ticket, **extra))


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
@permission_required(PERMISSIONS, raise_exception=True)
def ticket_merge(request: HttpRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(number)
    if request.method == "POST":
        return _confirm(request, ticket)
    if request.GET.get("close"):
        return _card(request, ticket)
    into = request.GET.get("into", "")
    if into:
        survivor = selectors.merge_candidate(ticket, into)
        if survivor is not None:
            return _card(request, ticket, merge_preview=selectors.merge_preview(ticket, survivor))
        return _card(request, ticket, merge_candidates=selectors.merge_candidates(ticket),
                     merge_error=_("Choose one of this requester's open tickets."))
    return _card(request, ticket, merge_candidates=selectors.merge_candidates(ticket))


def _confirm(request, merged: Ticket) -> HttpResponse:
    into = parsing.parse_int(request.POST.get("into"))
    survivor = selectors.ticket_by_number(into) if into is not None else None
    if survivor is None:
        return _card(request, merged, merge_candidates=selectors.merge_candidates(merged),
                     merge_error=_("Choose one of this requester's open tickets."))
    if merged.merged_into_id == survivor.pk:
        # The same confirmation again (a double click, a resent form): done already, nothing moves twice.
        messages.info(request, _("#%(merged)s was already merged into #%(survivor)s.") % {
            "merged": merged.number, "survivor": survivor.number})
        return _go(request, reverse("ticket", args=[survivor.number]))
    try:
        record = merge_tickets(
            actor=request.user, survivor=survivor, merged=merged,
            survivor_version=parsing.parse_int(request.POST.get("survivor_version")),
            merged_version=parsing.parse_int(request.POST.get("merged_version")),
        )
    except ActionError as exc:
        fresh, survivor = _ticket_or_404(merged.number), _ticket_or_404(survivor.number)
        if fresh.merged_into_id == survivor.pk:  # merged by the other request of a double submit
            messages.info(request, _("#%(merged)s was already merged into #%(survivor)s.") % {
                "merged": fresh.number, "survivor": survivor.number})
            return _go(request, reverse("ticket", args=[survivor.number]))
        if selectors.merge_candidate(fresh, survivor.number) is not None:
            return _card(request, fresh, merge_preview=selectors.merge_preview(fresh, survivor),
                         merge_error=_errors(exc))
        return _card(request, fresh, merge_candidates=selectors.merge_candidates(fresh), merge_error=_errors(exc))
    selectors.counts_changed()
    count = len(record.moved.get("messages", []))
    messages.success(request, ngettext(
        "Merged #%(merged)s into #%(survivor)s: %(count)s message moved.",
        "Merged #%(merged)s into #%(survivor)s: %(count)s messages moved.",
        count) % {"merged": merged.number, "survivor": survivor.number, "count": count})
    return _go(request, reverse("ticket", args=[survivor.number]))


@require_POST
@permission_required(PERMISSIONS, raise_exception=True)
def ticket_merge_undo(request: HttpRequest, pk: int) -> HttpResponse:
    merge = TicketMerge.objects.select_related("survivor", "merged").filter(pk=pk).first()
    if merge is None:
        raise Http404(_("No such merge"))
    # Back to the page the Undo was pressed on (either ticket of the merge), else the merged one.
    back = parsing.parse_int(request.POST.get("ticket"))
    if back not in (merge.survivor.number, merge.merged.number):
        back = merge.merged.number
    try:
        undo_ticket_merge(actor=request.user, merge=merge)
    except ActionError as exc:
        messages.error(request, _errors(exc))
    else:
        selectors.counts_changed()
        messages.success(request, _("Undid the merge: #%(merged)s is separate from #%(survivor)s again.") % {
            "merged": merge.merged.number, "survivor": merge.survivor.number})
    return _go(request, reverse("ticket", args=[back]))
