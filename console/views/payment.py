"""The payment page, `/stripe/payments/<charge>/`: what Stripe's own page shows of a charge —
money, card, outcome and risk, receipt and order, the invoice and subscription it paid, refunds,
disputes and fraud warnings — beside the customer and their tickets. It takes the place of
payments' generic mirror page for charges (console/urls.py lists it first), because the
contact and the tickets are console's to compose."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from payments import selectors as payment_selectors
from payments.views import object_url

from .. import payment_selectors as selectors

TEMPLATE = "payments/charge.html"


@require_GET
@vary_on_headers("HX-Request")
@permission_required("payments.view_charge", raise_exception=True)
def payment(request: HttpRequest, charge_id: str) -> HttpResponse:
    page = selectors.payment_page(charge_id, with_tickets=request.user.has_perm("tickets.view_ticket"))
    if page is None:
        raise Http404(_("No payment %(id)s in the mirror") % {"id": charge_id})
    for dispute in page.disputes:  # the dispute queue's page when it has one, else the mirror's
        try:
            dispute.link = reverse("dispute", args=[dispute.pk])
        except NoReverseMatch:
            dispute.link = object_url(dispute.pk)
    context = {
        "page": page,
        "charge": page.charge,
        "facts": page.facts,
        "events": (payment_selectors.object_events(page.charge.pk)
                   if request.user.has_perm("payments.view_webhookevent") else None),
        "nav": "payments",
    }
    return render(request, TEMPLATE + ("#payment" if request.htmx else ""), context)
