"""The assist card beside a ticket's conversation (embedded by hx-get from the ticket page): what
the latest customer message was understood as, the Stripe objects it is about and why, the
entities, the draft reply with each fact linked to its object, and the suggested actions,
each opening the usual confirmed action with its fields filled in."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from payments.views import object_url
from tickets.models import Message, MessageTriage, ReplyDraft, Team, Ticket

from .linking import reason_text
from .words import intent_label, entity_label, suggestion_label

TEMPLATE = "assist/card.html"


def _link_rows(triage: MessageTriage) -> list[dict]:
    rows = []
    for link in triage.links or []:
        if not isinstance(link, dict) or not link.get("id"):
            continue
        object_id = str(link["id"])
        url = object_url(object_id)
        rows.append({"object": link.get("object"), "id": object_id, "url": url, "why": reason_text(link),
                     "close_second": link.get("close_second", "")})
    return rows


def _suggestion_rows(ticket: Ticket, draft: ReplyDraft | None, user) -> list[dict]:
    rows = []
    contact = ticket.requester_id
    finance = Team.objects.filter(slug=settings.CONSOLE_FINANCE_TEAM).first()
    for s in (draft.suggestions if draft else []) or []:
        action = s.get("action") if isinstance(s, dict) else None
        query = {"ticket": ticket.pk}
        if action == "refund" and s.get("id") and user.has_perm("payments.refund_charge"):
            query["reason"] = s.get("reason") or "requested_by_customer"
            url = reverse("customer_refund_form", args=[contact, s["id"]])
        elif action == "portal" and user.has_perm("payments.create_portal_session"):
            query["flow"] = s.get("flow") or "payment_method_update"
            url = reverse("customer_portal_form", args=[contact])
        elif action == "cancel_subscription" and s.get("id") and user.has_perm("payments.cancel_subscription"):
            url = reverse("customer_cancel_form", args=[contact, s["id"]])
        elif action == "ask_finance" and user.has_perm("tickets.assign_ticket") and finance is not None:
            rows.append({"action": action, "label": suggestion_label(s), "team": finance.pk})
            continue
        else:
            continue
        rows.append({"action": action, "label": suggestion_label(s), "url": f"{url}?{urlencode(query)}"})
    return rows


@require_GET
@permission_required("tickets.view_ticket", raise_exception=True)
def ticket_assist(request: HttpRequest, number: int) -> HttpResponse:
    ticket = Ticket.objects.select_related("requester").filter(number=number).first()
    if ticket is None:
        raise Http404("No such ticket")
    message = (Message.objects.filter(ticket=ticket, kind=Message.Kind.INBOUND)
               .select_related("triage").order_by("-created", "-id").first())
    triage = getattr(message, "triage", None) if message is not None else None
    draft = ticket.drafts.filter(status=ReplyDraft.Status.OPEN).first()
    context = {
        "ticket": ticket, "message": message, "triage": triage,
        "intent": intent_label(triage.intent) if triage else "",
        "runner_up": intent_label(triage.runner_up) if triage and triage.runner_up else "",
        "links": _link_rows(triage) if triage else [],
        "entities": [{"kind": entity_label(e.get("kind")), "text": e.get("text")}
                     for e in (triage.entities if triage else []) if isinstance(e, dict)],
        "draft": draft,
        "facts": [{**f, "url": object_url(str(f.get("id") or ""))}
                  for f in (draft.facts if draft else []) if isinstance(f, dict)],
        "suggestions": _suggestion_rows(ticket, draft, request.user),
        "can_reply": request.user.has_perm("tickets.reply_ticket"),
    }
    return render(request, TEMPLATE, context)
