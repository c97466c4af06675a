"""The agent inbox and the ticket page.

Every page view serves the whole page, or the fragment HTMX asked for (`template#partial`).
Every write calls one function in tickets.actions (which checks the permission again,
runs in a transaction and writes the audit entry); these views only read, call, and render.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.urls.converters import SlugConverter
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _, gettext_lazy, ngettext, pgettext
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from common import parsing

from . import attachment_scan, identity as identity_rules, presence, selectors
from .actions.contacts import link_identity, set_contact_language, undo_merge, unlink_identity
from .actions.assist import discard_reply_draft
from .actions.delivery import retry_delivery
from .actions.errors import ActionError, StaleTicket
from .actions.messages import IncomingAttachment, add_note, reply
from .actions.tickets import (
    apply_macro, assign, bulk_assign, bulk_set_status, bulk_set_tags, render_macro, set_priority, set_status,
    set_tags,
)
from .models import Channel, Contact, ContactMerge, Identity, Message, ReplyDraft, Ticket

VIEW_PERM = "tickets.view_ticket"
PAGE_SIZES = (25, 50, 100)
TEMPLATE = "tickets/inbox.html"
TICKET_TEMPLATE = "tickets/ticket.html"


def _int(value, default=None):
    return parsing.parse_int(value, default)


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# --- the inbox -------------------------------------------------------------------------------


# The inbox's own views; a team's view is named after the team.
VIEW_LABELS = {
    "mine": gettext_lazy("My tickets"),
    "unassigned": gettext_lazy("Unassigned"),
    "all": gettext_lazy("All tickets"),
}


def view_label(view) -> str:
    """An inbox view's name in the reader's language."""
    return str(VIEW_LABELS.get(view.key, view.label))


def _nav(request, team_list, current_key: str, counts: dict | None = None) -> list[dict]:
    counts = counts if counts is not None else selectors.inbox_counts(request.user, team_list)
    views = [("mine", VIEW_LABELS["mine"]), ("unassigned", VIEW_LABELS["unassigned"])]
    views += [(f"team-{t.slug}", t.name) for t in team_list]
    views.append(("all", VIEW_LABELS["all"]))
    return [
        {"key": key, "label": str(label), "url": reverse("inbox", args=[key]), "count": counts.get(key, 0),
         "current": key == current_key}
        for key, label in views
    ]


def _page_size(request) -> int:
    size = _int(request.GET.get("n"), selectors.PAGE_SIZE)
    return size if size in PAGE_SIZES else selectors.PAGE_SIZE


def _inbox_context(request, view, filters, *, after: str = "", size: int | None = None) -> dict:
    page = selectors.inbox_page(request.user, view, filters, after=after, size=size or _page_size(request))
    query = filters.query()
    if page.size != selectors.PAGE_SIZE:
        query["n"] = str(page.size)
    more_url = ""
    if page.cursor:
        more_url = f"{request.path}?{urlencode({**query, 'after': page.cursor})}"
    return {
        "view": view, "view_label": view_label(view), "filters": filters, "page": page, "rows": page.rows,
        "more_url": more_url,
        "now": timezone.now(), "filter_query": urlencode(query), "from_view": view.key,
        "ticket_base": reverse("inbox_home"),  # rows link to <base><number>/
    }


@require_GET
def inbox_home(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERM):
        raise PermissionDenied(_("You don't have access to tickets."))
    return redirect("inbox", "mine")


@require_GET
@vary_on_headers("HX-Request")
@permission_required(VIEW_PERM, raise_exception=True)
def inbox(request: HttpRequest, view: str) -> HttpResponse:
    team_list = selectors.teams()
    inbox_view = selectors.resolve_view(view, team_list)
    if inbox_view is None:
        raise Http404(_("No such inbox view"))
    filters = selectors.Filters.from_query(request.GET)
    after = request.GET.get("after", "")[:300]
    context = _inbox_context(request, inbox_view, filters, after=after)
    if request.htmx and after:
        return render(request, TEMPLATE + "#rows", context)  # infinite scroll: the next rows only
    if request.htmx and request.htmx.target == "inbox-table":
        return render(request, TEMPLATE + "#table", context)  # the filter form: the whole table
    context.update(_inbox_page_extras(request, team_list, inbox_view))
    return render(request, TEMPLATE, context)


def _inbox_page_extras(request, team_list, inbox_view) -> dict:
    return {
        "inbox_nav": _nav(request, team_list, inbox_view.key),
        "teams": team_list,
        "agents": selectors.assignable_agents(),
        "channels": Channel.choices,
        "priorities": Ticket.Priority.choices,
        "status_filters": _status_filters(),
        "page_sizes": PAGE_SIZES,
        "bulk_texts": {
            # "%(count)s" is replaced by inbox.js as boxes are ticked.
            "one": ngettext("%(count)s ticket selected", "%(count)s tickets selected", 1),
            "other": ngettext("%(count)s ticket selected", "%(count)s tickets selected", 2),
        },
        "nav": "inbox",
    }


def _status_filters() -> list[tuple[str, str]]:
    """The status filter's options: "unsolved", "any", and each status, as (value, label)."""
    special = {"unsolved": pgettext("ticket status filter", "Unsolved"), "any": _("Any status")}
    return [
        (key, special[key] if key in special else str(Ticket.Status(key).label))
        for key in selectors.STATUS_FILTERS
    ]


def _bulk_user(value: str, request):
    if value == "":
        return None
    if value == "me":
        return request.user
    pk = _int(value)
    user = get_user_model().objects.filter(pk=pk).first() if pk else None
    if user is None:
        raise ActionError(_("No such agent."), code="not_found")
    return user


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def inbox_bulk(request: HttpRequest) -> HttpResponse:
    """Assign, tag, solve or close the selected tickets, then show the list again."""
    team_list = selectors.teams()
    inbox_view = selectors.resolve_view(request.POST.get("view", ""), team_list)
    if inbox_view is None:
        return HttpResponseBadRequest(_("Unknown inbox view."))
    filters = selectors.Filters.from_query(request.POST)
    ids = [pk for pk in (_int(v) for v in request.POST.getlist("ticket")) if pk]
    op = request.POST.get("op", "")
    if op not in {"assign", "team", "tag", "solved", "closed"}:
        return HttpResponseBadRequest(_("Unknown bulk action."))
    # Each action has its own control in the bulk bar.
    value = request.POST.get({"assign": "assign_to", "team": "team", "tag": "add_tag"}.get(op, ""), "").strip()
    if not ids:
        messages.info(request, _("Select some tickets first."))
    else:
        try:
            if op == "assign":
                n = bulk_assign(actor=request.user, tickets=ids, assignee=_bulk_user(value, request))
                done = ngettext("Assigned %(count)s ticket.", "Assigned %(count)s tickets.", n) % {"count": n}
            elif op == "team":
                team = next((t for t in team_list if str(t.pk) == value), None)
                if value and team is None:
                    raise ActionError(_("No such team."), code="not_found")
                n = bulk_assign(actor=request.user, tickets=ids, team=team)
                if team is None:
                    done = ngettext("Moved %(count)s ticket to no team.", "Moved %(count)s tickets to no team.",
                                    n) % {"count": n}
                else:
                    done = ngettext("Moved %(count)s ticket to %(team)s.", "Moved %(count)s tickets to %(team)s.",
                                    n) % {"count": n, "team": team.name}
            elif op == "tag":
                if not value:
                    raise ActionError(_("Type a tag to add."), code="required")
                n = bulk_set_tags(actor=request.user, tickets=ids, add=[value])
                done = ngettext("Tagged %(count)s ticket “%(tag)s”.", "Tagged %(count)s tickets “%(tag)s”.",
                                n) % {"count": n, "tag": value}
            else:
                n = bulk_set_status(actor=request.user, tickets=ids, status=op)
                if op == "solved":
                    done = ngettext("Marked %(count)s ticket solved.", "Marked %(count)s tickets solved.",
                                    n) % {"count": n}
                else:
                    done = ngettext("Marked %(count)s ticket closed.", "Marked %(count)s tickets closed.",
                                    n) % {"count": n}
            messages.success(request, done)
            selectors.counts_changed()
        except ActionError as exc:
            messages.error(request, _errors(exc))
    if not request.htmx:
        query = urlencode(filters.query())
        return redirect(reverse("inbox", args=[inbox_view.key]) + (f"?{query}" if query else ""))
    size = _int(request.POST.get("n"))
    context = _inbox_context(request, inbox_view, filters, size=size if size in PAGE_SIZES else None)
    context["inbox_nav"] = _nav(request, team_list, inbox_view.key)
    context["oob_nav"] = True
    return render(request, TEMPLATE + "#bulk-response", context)


# --- one ticket ------------------------------------------------------------------------------


def _ticket_or_404(number: int) -> Ticket:
    ticket = selectors.ticket_by_number(number)
    if ticket is None:
        raise Http404(_("No ticket #%(number)s") % {"number": number})
    return ticket


def _seen(request) -> dt.datetime | None:
    return parsing.parse_datetime(request.POST.get("seen") or request.GET.get("seen") or "")


def _contact_context(request, contact: Contact, **extra) -> dict:
    return {
        "contact": contact,
        "identities": selectors.contact_identities(contact),
        "merges": selectors.undoable_merges(contact),
        "identity_kinds": Identity.Kind.choices,
        "can_link": request.user.has_perm("tickets.link_identity"),
        "can_merge": request.user.has_perm("tickets.merge_contacts"),
        "can_set_language": request.user.has_perm("tickets.change_contact"),
        "languages": settings.LANGUAGES,
        # What replies, macros and portal links are written in now (the contact's, or a guess).
        "replies_in": dict(settings.LANGUAGES).get(selectors.customer_language(contact, extra.get("ticket"))),
        **extra,
    }


def _from_view(request) -> str:
    """The inbox view the ticket was opened from ("mine" unless the request says another)."""
    from_view = request.GET.get("from") or request.POST.get("from") or ""
    # Only a key the inbox's URL can take (a team's slug); anything else would not reverse.
    if not (from_view in ("mine", "unassigned", "all") or re.fullmatch(f"team-{SlugConverter.regex}", from_view)):
        from_view = "mine"
    return from_view


def _ticket_context(request, ticket: Ticket, **extra) -> dict:
    user = request.user
    from_view = _from_view(request)
    context = {
        "ticket": ticket,
        "now": timezone.now(),
        "from_view": from_view,
        "back_url": reverse("inbox", args=[from_view]),
        "can_reply": user.has_perm("tickets.reply_ticket"),
        "can_note": user.has_perm("tickets.note_ticket"),
        "can_change": user.has_perm("tickets.change_ticket"),
        "can_assign": user.has_perm("tickets.assign_ticket"),
        "assist_url": assist_url(ticket),
        "can_retry": user.has_perm("tickets.retry_delivery"),
        "statuses": Ticket.Status.choices,
        "priorities": Ticket.Priority.choices,
        "draft": "",
        "kind": "reply",
        "nav": "inbox",
        # The composer's file limits (the server checks them again: tickets.actions.messages).
        "attachment_max_bytes": (min(settings.TICKETS_ATTACHMENT_MAX_BYTES, attachment_scan.LINE_IMAGE_MAX_BYTES)
                                 if ticket.channel == Channel.LINE else settings.TICKETS_ATTACHMENT_MAX_BYTES),
        "message_attachments_max_bytes": settings.TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES,
    }
    context.update(extra)
    return context


def assist_url(ticket: Ticket) -> str:
    """The console's assist card for this ticket (the reading of the latest message, the draft),
    embedded with hx-get like the customer panel; "" where the console serves none."""
    url = f"/assist/tickets/{ticket.number}/"
    try:
        resolve(url)
    except Resolver404:
        return ""
    return url


def customer_panel_url(contact: Contact, ticket: Ticket | None = None) -> str:
    """The console's customer panel for this contact, if the console serves one yet.

    tickets never imports console: the panel is a URL, embedded with hx-get. Until that
    page exists the slot shows a calm placeholder instead of requesting a 404. The ticket
    goes along so the panel's actions (a billing-portal link) can answer on it.
    """
    url = f"/customers/{contact.pk}/panel"
    try:
        resolve(url)
    except Resolver404:
        return ""
    return f"{url}?ticket={ticket.pk}" if ticket is not None else url


def _full_ticket_context(request, ticket: Ticket, **extra) -> dict:
    team_list = selectors.teams()
    context = _ticket_context(request, ticket, **extra)
    context.update(_contact_context(request, ticket.requester))
    context.update({
        "messages_list": selectors.thread(ticket),
        "macros": selectors.active_macros(request.user),
        "agents": selectors.assignable_agents(),
        "teams": team_list,
        "inbox_nav": _nav(request, team_list, context["from_view"]),
        "others": presence.touch(ticket.pk, request.user),
        "presence_ttl": presence.PRESENCE_TTL,
        "panel_url": customer_panel_url(ticket.requester, ticket),
        # Ticket merges (tickets/merge_views.py): the banners with Undo, and the "Merge into…" card.
        "merged_away": selectors.merged_away(ticket),
        "merges_into": selectors.merges_into(ticket),
        "can_merge_tickets": request.user.has_perms(("tickets.change_ticket", "tickets.merge_contacts")),
    })
    return context


@require_GET
@vary_on_headers("HX-Request")
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_detail(request: HttpRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(number)
    if request.htmx and request.htmx.target == "conversation":
        # "Show the update": the conversation again, and the page now knows the new version.
        context = _ticket_context(request, ticket, messages_list=selectors.thread(ticket),
                                  agents=selectors.assignable_agents(), teams=selectors.teams())
        return render(request, TICKET_TEMPLATE + "#conversation-refresh", context)
    return render(request, TICKET_TEMPLATE, _full_ticket_context(request, ticket))


def _thread_response(request, ticket: Ticket, *, changed: bool = False, **extra) -> HttpResponse:
    """The conversation and the composer (after a send, or with a warning or an error)."""
    team_list = selectors.teams()
    context = _ticket_context(request, ticket, messages_list=selectors.thread(ticket),
                              macros=selectors.active_macros(request.user), agents=selectors.assignable_agents(),
                              teams=team_list, **extra)
    if changed:
        context["inbox_nav"] = _nav(request, team_list, context["from_view"])
    return render(request, TICKET_TEMPLATE + "#thread-response", context)


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_reply(request: HttpRequest, number: int) -> HttpResponse:
    """Send a reply or add an internal note. A reply to a ticket that changed since the page
    was loaded (its version moved on) is not sent: the agent sees what changed and chooses."""
    ticket = _ticket_or_404(number)
    kind = request.POST.get("kind", "reply")
    if kind not in ("reply", "note"):
        return HttpResponseBadRequest(_("Choose a reply or a note."))
    body = request.POST.get("body", "")
    version = _int(request.POST.get("version"))
    status = request.POST.get("status", "")
    macro = selectors.macro(request.POST.get("macro"), request.user) if request.POST.get("macro") else None
    if request.POST.get("macro") and macro is None and selectors.macro(request.POST.get("macro")) is not None:
        raise Http404(_("No such macro."))  # a macro of a team the agent is not in: refused, nothing sent
    if status and status not in Ticket.Status.values:
        return HttpResponseBadRequest(_("Unknown status."))
    files = _uploaded(request)
    # The files do not survive a form shown again: the agent is told to attach them again.
    draft = {"draft": body, "kind": kind, "macro": macro, "status_after": status,
             "lost_files": [f.filename for f in files]}
    if kind == "reply" and not request.user.has_perm("tickets.reply_ticket"):
        raise PermissionDenied(_("You may not reply to customers."))
    if kind == "note" and not request.user.has_perm("tickets.note_ticket"):
        raise PermissionDenied(_("You may not add notes."))
    try:
        if macro is not None:
            apply_macro(actor=request.user, ticket=ticket, macro=macro, body=body, attachments=files,
                        as_note=kind == "note", expected_version=version if kind == "reply" else None)
            if status:
                set_status(actor=request.user, ticket=ticket, status=status)
        elif kind == "note":
            add_note(actor=request.user, ticket=ticket, body=body, attachments=files)
            if status:
                set_status(actor=request.user, ticket=ticket, status=status)
        else:
            reply(actor=request.user, ticket=ticket, body=body, status=status or None, attachments=files,
                  expected_version=version, from_draft=_int(request.POST.get("from_draft")))
    except StaleTicket:
        fresh = _ticket_or_404(number)
        changes = selectors.changes_since(fresh, _seen(request), request.user)
        if not request.htmx:
            return render(request, TICKET_TEMPLATE, _full_ticket_context(
                request, fresh, stale=True, changes=changes, **draft))
        return _thread_response(request, fresh, stale=True, changes=changes, **draft)
    except ActionError as exc:
        fresh = _ticket_or_404(number)
        if not request.htmx:
            return render(request, TICKET_TEMPLATE, _full_ticket_context(request, fresh, error=_errors(exc), **draft))
        return _thread_response(request, _ticket_or_404(number), error=_errors(exc), **draft)
    if status or macro is not None:
        selectors.counts_changed()
    if not request.htmx:
        messages.success(request, _("Reply queued.") if kind == "reply" else _("Note added."))
        return redirect("ticket", number)
    return _thread_response(request, _ticket_or_404(number), sent=kind, changed=bool(status or macro))


def _uploaded(request) -> list[IncomingAttachment]:
    """The composer's files. Each is read whole only when it is within the size limit (a larger
    one is refused by its size, unread)."""
    limit = settings.TICKETS_ATTACHMENT_MAX_BYTES
    files = []
    for upload in request.FILES.getlist("files"):
        content = upload.read() if upload.size <= limit else b""
        files.append(IncomingAttachment(filename=upload.name or "attachment", content=content,
                                        content_type=upload.content_type or "", size=upload.size))
    return files


def _props_response(request, ticket: Ticket, *, changed: bool = False, **extra) -> HttpResponse:
    team_list = selectors.teams()
    context = _ticket_context(request, ticket, agents=selectors.assignable_agents(), teams=team_list, **extra)
    if changed:  # the navigation counts move with status, assignee and team
        context["inbox_nav"] = _nav(request, team_list, context["from_view"])
    return render(request, TICKET_TEMPLATE + "#props-response", context)


def _go_next(request, ticket: Ticket) -> HttpResponse:
    """To the next ticket of the view the ticket was opened from (the list itself when none)."""
    from_view = _from_view(request)
    number = selectors.next_in_view(request.user, from_view, ticket)
    if number is None:
        url = reverse("inbox", args=[from_view])
        messages.success(request, _("Solved #%(number)s. No other tickets in this view.") % {"number": ticket.number})
    else:
        url = f"{reverse('ticket', args=[number])}?{urlencode({'from': from_view})}"
        messages.success(request, _("Solved #%(number)s.") % {"number": ticket.number})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_update(request: HttpRequest, number: int) -> HttpResponse:
    """Status, priority, assignee or team, edited in place."""
    ticket = _ticket_or_404(number)
    field = request.POST.get("field", "")
    value = request.POST.get("value", "")
    error = ""
    try:
        if field == "status":
            set_status(actor=request.user, ticket=ticket, status=value)
        elif field == "priority":
            set_priority(actor=request.user, ticket=ticket, priority=value)
        elif field == "assignee":
            assign(actor=request.user, ticket=ticket, assignee=_bulk_user(value, request))
        elif field == "team":
            team = next((t for t in selectors.teams() if str(t.pk) == value), None)
            if value and team is None:
                raise ActionError(_("No such team."), code="not_found")
            assign(actor=request.user, ticket=ticket, team=team)
        else:
            return HttpResponseBadRequest(_("Unknown field."))
    except ActionError as exc:
        error = _errors(exc)
    else:
        selectors.counts_changed()
        if field == "status" and value == Ticket.Status.SOLVED and request.POST.get("advance"):
            # "Solve" (or e) goes on to the view's next ticket when the person chose so;
            # console's PreferencesMiddleware puts their choice on the request.
            if getattr(request, "after_solve", "stay") == "next":
                return _go_next(request, ticket)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("ticket", number)
    return _props_response(request, _ticket_or_404(number), props_error=error, saved=field if not error else "",
                           changed=not error and field in ("status", "assignee", "team"))


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_tags(request: HttpRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(number)
    add = [t for t in request.POST.get("add", "").replace(",", " ").split() if t][:20]
    remove = [t for t in request.POST.getlist("remove") if t][:20]
    error = ""
    if add or remove:
        try:
            set_tags(actor=request.user, ticket=ticket, add=add, remove=remove)
        except ActionError as exc:
            error = _errors(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("ticket", number)
    return _props_response(request, _ticket_or_404(number), props_error=error, saved="tags" if not error else "")


@require_GET
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_macro(request: HttpRequest, number: int) -> HttpResponse:
    """The composer's text with the chosen macro filled in (placeholders replaced)."""
    ticket = _ticket_or_404(number)
    macro = selectors.macro(request.GET.get("macro"), request.user)
    if request.GET.get("macro") and macro is None and selectors.macro(request.GET.get("macro")) is not None:
        raise Http404(_("No such macro."))  # a macro of a team the agent is not in
    context = _ticket_context(request, ticket, kind=request.GET.get("kind", "reply"))
    if macro is None:
        context["draft"] = request.GET.get("body", "")
    else:
        context["draft"] = render_macro(macro, ticket=ticket, actor=request.user)
        context["macro"] = macro
    return render(request, TICKET_TEMPLATE + "#composer-body", context)


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_presence(request: HttpRequest, number: int) -> HttpResponse:
    """The page's heartbeat: I am here (typing or not); who else is; did the ticket change."""
    row = Ticket.objects.filter(number=number).values("pk", "version").first()
    if row is None:
        raise Http404(_("No ticket #%(number)s") % {"number": number})
    if request.POST.get("leave"):
        presence.leave(row["pk"], request.user)
        return HttpResponse(status=204)
    others = presence.touch(row["pk"], request.user, composing=bool(request.POST.get("composing")))
    version = _int(request.POST.get("version"))
    context = {
        "others": others, "changed": version is not None and version != row["version"],
        "ticket": {"number": number}, "presence_ttl": presence.PRESENCE_TTL,
    }
    return render(request, TICKET_TEMPLATE + "#presence", context)


@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def message_retry(request: HttpRequest, pk: int) -> HttpResponse:
    message = Message.objects.select_related("ticket").filter(pk=pk).first()
    if message is None:
        raise Http404(_("No such message"))
    error = ""
    try:
        retry_delivery(actor=request.user, message=message)
    except ActionError as exc:
        error = _errors(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("ticket", message.ticket.number)
    message = Message.objects.select_related("author", "contact").prefetch_related("attachments").get(pk=pk)
    context = _ticket_context(request, message.ticket, m=message, retry_error=error)
    return render(request, TICKET_TEMPLATE + "#message", context)


# --- the requester's identities --------------------------------------------------------------


def _contact_response(request, contact: Contact, **extra) -> HttpResponse:
    """The contact card again; if a ticket is given, for that ticket's (possibly new) requester."""
    number = _int(request.POST.get("ticket"))
    ticket = selectors.ticket_by_number(number) if number else None
    if ticket is not None:
        contact = ticket.requester
    elif contact.merged_into_id:
        contact = Contact.objects.get(pk=contact.merged_into_id)
    context = _contact_context(request, contact, ticket=ticket, **extra)
    if not request.htmx:
        for text in filter(None, [extra.get("notice"), extra.get("link_error")]):
            messages.info(request, text)
        return redirect("ticket", ticket.number) if ticket else redirect("inbox_home")
    return render(request, TICKET_TEMPLATE + "#contact", context)


@require_POST
@permission_required("tickets.link_identity", raise_exception=True)
def contact_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Link an email, LINE id, phone or Stripe customer to the contact. If someone else has
    it, say so and ask before merging the two (a merge moves their tickets here)."""
    contact = Contact.objects.filter(pk=pk).first()
    if contact is None:
        raise Http404(_("No such contact"))
    kind = request.POST.get("kind", "")
    if kind not in Identity.Kind.values:
        return HttpResponseBadRequest(_("Unknown identity kind."))
    raw = request.POST.get("value", "")[:320]
    try:
        value = identity_rules.normalise(kind, raw)
    except ValidationError as exc:
        return _contact_response(request, contact, link_error=_errors(exc), link_kind=kind, link_value=raw)
    owner = selectors.identity_owner(kind, value)
    if owner is not None and owner.contact_id != contact.pk and request.POST.get("confirm") != "merge":
        other = owner.contact
        return _contact_response(
            request, contact, confirm_merge=other, link_kind=kind, link_value=value,
            other_tickets=other.tickets.count(),
        )
    try:
        result = link_identity(actor=request.user, contact=contact, kind=kind, value=value)
    except ActionError as exc:
        return _contact_response(request, contact, link_error=_errors(exc), link_kind=kind, link_value=raw)
    if result.merge:
        notice = _("Linked %(value)s: %(name)s's tickets and identities moved here.") % {
            "value": value, "name": result.merge.merged}
    elif result.created:
        notice = _("Linked %(kind)s %(value)s.") % {"kind": str(Identity.Kind(kind).label).lower(), "value": value}
    else:
        notice = _("That identity was already linked here.")
    return _contact_response(request, contact, notice=notice)


@require_POST
@permission_required("tickets.change_contact", raise_exception=True)
def contact_language(request: HttpRequest, pk: int) -> HttpResponse:
    """The language replies to this customer are written in, set by an agent (blank: let the
    channels and what the customer writes decide)."""
    contact = Contact.objects.filter(pk=pk).first()
    if contact is None:
        raise Http404(_("No such contact"))
    language = request.POST.get("language", "")
    if language and language not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(_("Choose one of the languages in the list."))
    try:
        set_contact_language(actor=request.user, contact=contact, language=language, source="agent")
    except ActionError as exc:
        return _contact_response(request, contact, link_error=_errors(exc))
    if language:
        notice = _("Replies to this customer are now written in %(language)s.") % {
            "language": dict(settings.LANGUAGES)[language]}
    else:
        notice = _("Replies now follow the language this customer writes in.")
    return _contact_response(request, contact, notice=notice)


@require_POST
@permission_required("tickets.link_identity", raise_exception=True)
def identity_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    ident = Identity.objects.select_related("contact").filter(pk=pk).first()
    if ident is None:
        raise Http404(_("No such identity"))
    contact = ident.contact
    kind, value = str(ident.get_kind_display()).lower(), ident.value
    try:
        unlink_identity(actor=request.user, identity=ident)
    except ActionError as exc:
        return _contact_response(request, contact, link_error=_errors(exc))
    return _contact_response(
        request, contact,
        notice=_("Unlinked %(kind)s %(value)s. New messages from it will start a new contact.") % {
            "kind": kind, "value": value},
    )


@require_POST
@permission_required("tickets.merge_contacts", raise_exception=True)
def merge_undo(request: HttpRequest, pk: int) -> HttpResponse:
    merge = ContactMerge.objects.select_related("survivor", "merged").filter(pk=pk).first()
    if merge is None:
        raise Http404(_("No such merge"))
    try:
        undo_merge(actor=request.user, merge=merge)
    except ActionError as exc:
        return _contact_response(request, merge.survivor, link_error=_errors(exc))
    return _contact_response(request, merge.survivor, notice=_("Undid the merge: %(name)s is separate again.") % {
        "name": merge.merged})


@require_GET
@permission_required(VIEW_PERM, raise_exception=True)
def ticket_attachment(request: HttpRequest, number: int, pk: int) -> FileResponse:
    """A message's attachment (a customer's or an agent's), for whoever may read the ticket.

    A download, never rendered: an HTML or SVG file a customer sent must not run script in the
    console's origin. Only with ?inline=1 and only when the stored bytes are a picture browsers
    show (JPEG, PNG, GIF, WebP: the thread's thumbnails) is it served inline, as that type.
    """
    ticket = _ticket_or_404(number)
    attachment = selectors.ticket_attachment(ticket, pk)
    if attachment is None:
        raise Http404(_("No such attachment on this ticket"))
    fh = attachment.file.open("rb")
    image = ""
    if request.GET.get("inline") == "1":
        image = attachment_scan.previewable(fh.read(8192))
        fh.seek(0)
    response = FileResponse(
        fh,
        as_attachment=not image,
        filename=attachment.filename,
        content_type=image or attachment.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
@permission_required(("tickets.view_ticket", "tickets.reply_ticket"), raise_exception=True)
def ticket_draft_use(request: HttpRequest, number: int, pk: int) -> HttpResponse:
    """The composer's text box filled with the ticket's open draft, to edit and send (the reply
    then says it came from the draft, which is closed as sent)."""
    ticket = _ticket_or_404(number)
    draft = ReplyDraft.objects.filter(pk=pk, ticket=ticket, status=ReplyDraft.Status.OPEN).first()
    if draft is None:
        raise Http404(_("This draft is no longer open."))
    return render(request, TICKET_TEMPLATE + "#composer-body", {"ticket": ticket, "draft": draft.body,
                                                                "from_draft": draft.pk})


@require_POST
@permission_required(("tickets.view_ticket", "tickets.reply_ticket"), raise_exception=True)
def ticket_draft_discard(request: HttpRequest, number: int, pk: int) -> HttpResponse:
    ticket = _ticket_or_404(number)
    draft = ReplyDraft.objects.filter(pk=pk, ticket=ticket).first()
    if draft is None:
        raise Http404(_("No such draft."))
    discard_reply_draft(actor=request.user, draft=draft)
    if not request.htmx:
        return redirect("ticket", number)
    url = assist_url(ticket)  # the card again, from the console that draws it
    return HttpResponse(format_html('<div id="assist-card" hx-get="{}" hx-trigger="load" hx-swap="outerHTML"></div>', url)
                        if url else "")


@require_GET
@permission_required("tickets.view_contact", raise_exception=True)
def contact_list(request: HttpRequest) -> HttpResponse:
    """Every contact, LINE-only ones too (the Stripe customers list shows only Stripe's), newest
    first; each row opens the customer page. Filtered by channel, keyset-paginated."""
    channel = request.GET.get("channel", "")
    if channel not in selectors.CONTACT_CHANNELS:
        channel = ""
    page = selectors.contacts_page(channel, request.GET.get("after", "")[:200])
    channels = [(kind, Identity.Kind(kind).label) for kind in selectors.CONTACT_CHANNELS]
    context = {"rows": page.rows, "cursor": page.cursor, "channel": channel, "channels": channels,
               "after": request.GET.get("after", ""), "nav": "contacts"}
    if request.headers.get("HX-Request") and context["after"]:
        return render(request, "tickets/contacts.html#rows", context)
    return render(request, "tickets/contacts.html", context)
