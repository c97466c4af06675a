"""The dispute queue and the early-fraud-warning tab (under disputes/, console/urls.py).

Each page serves its table alone to an HTMX request. Everyone who reads disputes sees the
queue (agents too, read-only); finance and admins assign. Each row opens the dispute's own page
(page.py: its facts, evidence and accept).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from payments.stripe_words import label

from . import actions, selectors

QUEUE_TEMPLATE = "disputes/queue.html"
WARNINGS_TEMPLATE = "disputes/fraud_warnings.html"


@require_GET
@permission_required(("disputes.view_disputecase", "payments.view_dispute"), raise_exception=True)
def dispute_queue(request: HttpRequest) -> HttpResponse:
    filters = selectors.parse_filters(request.GET)
    page = selectors.parse_page(request.GET.get("page", ""))
    queue = selectors.dispute_queue(filters, page, user=request.user)
    can_assign = request.user.has_perm("disputes.change_disputecase")
    context = {
        "queue": queue, "filters": filters, "nav": "disputes", "can_assign": can_assign,
        "people": list(selectors.assignable_users()) if can_assign else [],
        "reasons": [(value, label("dispute.reason", value)) for value in selectors.REASONS],
        "tabs": [(group, queue.counts[group]) for group in selectors.GROUPS],
        "here": urlencode(filters.query()),
        "newer": urlencode(filters.query(page=page - 1)) if page > 1 else "",
        "older": urlencode(filters.query(page=page + 1)) if queue.has_more else "",
    }
    return render(request, QUEUE_TEMPLATE + ("#queue-table" if request.htmx else ""), context)


@require_POST
@permission_required("disputes.change_disputecase", raise_exception=True)
def dispute_assign(request: HttpRequest) -> HttpResponse:
    """Bulk assign the ticked disputes (assign_to: a username, "me", or "nobody"); back to the
    queue under the same filters (the form carries them, "assignee" among them)."""
    back = reverse("dispute_queue")
    query = selectors.parse_filters(request.POST).query()
    if query:
        back += "?" + urlencode(query)
    who = request.POST.get("assign_to", "")
    who = who.strip() if isinstance(who, str) else ""
    if who == "me":
        assignee = request.user
    elif who in ("", "nobody"):
        assignee = None
    else:
        assignee = get_user_model().objects.filter(username=who[:150]).first()
        if assignee is None:
            messages.error(request, _("There is no user “%(user)s”.") % {"user": who[:150]})
            return redirect(back)
    try:
        changed = actions.assign_disputes(actor=request.user, dispute_ids=request.POST.getlist("dispute"),
                                          assignee=assignee)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    if assignee is None:
        messages.success(request, ngettext("%(count)s dispute unassigned.", "%(count)s disputes unassigned.",
                                           changed) % {"count": changed})
    else:
        messages.success(request, ngettext("%(count)s dispute assigned to %(user)s.",
                                           "%(count)s disputes assigned to %(user)s.", changed)
                         % {"count": changed, "user": assignee.get_full_name() or assignee.get_username()})
    return redirect(back)


@require_GET
@permission_required(("payments.view_earlyfraudwarning", "payments.view_charge"), raise_exception=True)
def dispute_fraud_warnings(request: HttpRequest) -> HttpResponse:
    page = selectors.parse_page(request.GET.get("page", ""))
    warnings = selectors.fraud_warnings(page)
    context = {"warnings": warnings, "nav": "fraud-warnings",
               "can_refund": request.user.has_perm("payments.refund_charge")}
    return render(request, WARNINGS_TEMPLATE + ("#warning-table" if request.htmx else ""), context)
