"""Small pieces of the inbox and the ticket page, rendered in Python: a list page has many rows."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Inline icons (16px grid, stroke): no icon font, no extra request.
_ICONS = {
    "email": '<path d="M2.5 4.5h11v7h-11z"/><path d="m2.5 4.5 5.5 4 5.5-4"/>',
    "line": '<path d="M8 2.8c-3.3 0-6 2.1-6 4.8 0 2.4 2.1 4.3 5 4.7l.2 1.6 2.3-1.8c2.6-.6 4.5-2.4 4.5-4.5 0-2.7-2.7-4.8-6-4.8z"/>',
    "web": '<circle cx="8" cy="8" r="5.5"/><path d="M2.5 8h11M8 2.5c1.6 1.7 1.6 9.3 0 11M8 2.5c-1.6 1.7-1.6 9.3 0 11"/>',
    "phone": '<path d="M4 2.5h2l1 3-1.5 1a7 7 0 0 0 4 4l1-1.5 3 1v2a1.5 1.5 0 0 1-1.5 1.5A10.5 10.5 0 0 1 2.5 4 1.5 1.5 0 0 1 4 2.5z"/>',
}
_CHANNEL_LABEL = {"email": "Email", "line": "LINE", "web": "Web", "phone": "Phone"}


@register.simple_tag
def channel_icon(channel: str) -> SafeString:
    path = _ICONS.get(channel, _ICONS["web"])
    label = _CHANNEL_LABEL.get(channel, channel)
    return format_html(
        '<span class="channel channel-{}" title="{}" aria-label="{}"><svg viewBox="0 0 16 16" fill="none" '
        'stroke="currentColor" stroke-width="1.4" stroke-linejoin="round" aria-hidden="true">{}</svg></span>',
        channel, label, label, mark_safe(path),
    )


_STATUS_TONE = {"open": "warn", "pending": "info", "solved": "ok", "closed": ""}


@register.simple_tag
def status_badge(status: str) -> SafeString:
    return format_html('<span class="badge badge-{} status-{}">{}</span>', _STATUS_TONE.get(status, ""), status,
                       status.capitalize())


@register.simple_tag
def priority(value: str) -> SafeString:
    return format_html('<span class="prio prio-{}">{}</span>', value, value.capitalize())


def _span(delta: dt.timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    if minutes < 60:
        return f"{max(minutes, 1)}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h {minutes % 60}m" if hours < 10 and minutes % 60 else f"{hours}h"
    return f"{hours // 24}d"


@register.simple_tag
def due(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    """The SLA deadline as people read it: "in 3h", "2h late"; amber within the hour."""
    if value is None:
        return mark_safe('<span class="due due-none">—</span>')
    now = now or timezone.now()
    delta = value - now
    exact = formats.date_format(timezone.localtime(value), "M j, H:i")
    if delta.total_seconds() < 0:
        return format_html('<span class="due due-late" title="Due {}">{} late</span>', exact, _span(delta))
    css = "due due-soon" if delta <= dt.timedelta(hours=1) else "due"
    return format_html('<span class="{}" title="Due {}">in {}</span>', css, exact, _span(delta))


@register.filter
def when(value: dt.datetime | None) -> str:
    if not value:
        return ""
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return formats.date_format(local, "H:i")
    return formats.date_format(local, "M j, H:i")


@register.filter
def person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def initials(name: str) -> str:
    parts = [p for p in str(name or "").replace("@", " ").replace(".", " ").split() if p]
    if not parts:
        return "?"
    if len(parts) == 1:
        return parts[0][:2]
    return parts[0][0] + parts[1][0]


@register.filter
def contact_label(contact) -> str:
    """A contact's name, else the first identity (prefetched on list pages)."""
    if contact is None:
        return ""
    if contact.name:
        return contact.name
    for identity in contact.identities.all():
        return identity.value
    return f"Contact {contact.pk}"
