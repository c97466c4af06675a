"""The signed-in person's notifications: the page the bell in the top bar opens, and
"Mark all read". Everyone signed in has their own (no role needed); nobody sees another's."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from .. import actions
from ..notification_selectors import notification_page, unread_count


@require_GET
@vary_on_headers("HX-Request")
def notifications(request: HttpRequest) -> HttpResponse:
    """Newest first, fifty at a time; HTMX gets the list (or, scrolling on, the next rows)."""
    after = request.GET.get("after", "")[:300]
    rows, cursor = notification_page(request.user, after=after)
    context = {"notifications": rows, "cursor": cursor, "after": after, "nav": "notifications",
               "unread": 0 if request.htmx and after else unread_count(request.user)}
    template = "notifications/notifications.html"
    if request.htmx and after:
        template += "#rows"
    elif request.htmx:
        template += "#list"
    return render(request, template, context)


@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    count = actions.mark_notifications_read(actor=request.user, user=request.user)
    if count:
        messages.success(request, ngettext("Marked %(count)s notification read.",
                                           "Marked %(count)s notifications read.", count) % {"count": count})
    else:
        messages.info(request, _("Nothing was unread."))
    return redirect("notifications")
