"""Small pieces of the inbox and the ticket page, rendered in Python: a list page has many rows."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CHANNEL_LABEL = {"email": "Email", "line": "LINE", "web": "Web", "phone": "Phone"}


@register.simple_tag
def channel_icon(channel: str) -> SafeString:
    """The channel's icon (drawn by inbox.css) with its name for screen readers."""
    label = _CHANNEL_LABEL.get(channel, channel)
    return format_html('<span class="channel channel-{}" role="img" title="{}" aria-label="{}"></span>',
                       channel, label, label)


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


def _short(value: dt.datetime, tz=None) -> str:
    """'Nov 22, 14:05' in the current time zone. strftime, not date_format: a list page
    formats two dates per row, and date_format's localisation lookups dominate the render."""
    local = value.astimezone(tz or timezone.get_current_timezone())
    return f"{local:%b} {local.day}, {local:%H:%M}"


def _due_html(value: dt.datetime | None, now: dt.datetime, tz=None) -> str:
    if value is None:
        return '<span class="due due-none">—</span>'
    delta = value - now
    exact = _short(value, tz)
    if delta.total_seconds() < 0:
        return f'<span class="due due-late" title="Due {exact}">{_span(delta)} late</span>'
    css = "due due-soon" if delta <= dt.timedelta(hours=1) else "due"
    return f'<span class="{css}" title="Due {exact}">in {_span(delta)}</span>'


@register.simple_tag
def due(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    """The SLA deadline as people read it: "in 3h", "2h late"; amber within the hour."""
    return mark_safe(_due_html(value, now or timezone.now()))


def _when(value: dt.datetime | None, today: dt.date, tz=None) -> str:
    if not value:
        return ""
    local = value.astimezone(tz or timezone.get_current_timezone())
    if local.date() == today:
        return f"{local:%H:%M}"
    return f"{local:%b} {local.day}, {local:%H:%M}"


@register.filter
def when(value: dt.datetime | None) -> str:
    return _when(value, timezone.localdate())


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


_PRIORITY_LABEL = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}
_CHANNEL_ICONS: dict[str, str] = {}


def _channel_html(channel: str) -> str:
    if channel not in _CHANNEL_ICONS:
        _CHANNEL_ICONS[channel] = str(channel_icon(channel))
    return _CHANNEL_ICONS[channel]


@register.simple_tag
def ticket_rows(rows, from_view: str, now: dt.datetime, base: str) -> SafeString:
    """The inbox's table rows, built in Python: up to 100 rows of eight cells each.

    `base` is the ticket URL prefix ("/tickets/"); every value is escaped here.
    """
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    view = escape(from_view)
    out = []
    for t in rows:
        url = f"{base}{t.number}/?from={view}"
        tags = "".join(f' <span class="tag">{escape(tag)}</span>' for tag in t.tags)
        assignee = escape(t.assignee) if t.assignee else '<span class="muted">—</span>'
        team = f'<div class="who">{escape(t.team)}</div>' if t.team else ""
        out.append(
            f'<tr data-ticket-url="{url}">'
            f'<td class="check"><input type="checkbox" name="ticket" value="{t.pk}" aria-label="Select ticket {t.number}"></td>'
            f'<td class="ticket-cell"><div class="subject-line">{_channel_html(t.channel)}'
            f'<a class="subject" href="{url}">{escape(t.subject)}</a></div>'
            f'<div class="who"><span class="num-id">#{t.number}</span> · {escape(t.requester)}{tags}</div></td>'
            f'<td><span class="badge badge-{_STATUS_TONE.get(t.status, "")} status-{t.status}">{t.status.capitalize()}</span></td>'
            f'<td><span class="prio prio-{t.priority}">{_PRIORITY_LABEL.get(t.priority, t.priority)}</span></td>'
            f'<td class="assignee">{assignee}{team}</td>'
            f"<td>{_due_html(t.sla_due, now, tz)}</td>"
            f'<td class="num muted nowrap">{_when(t.updated, today, tz)}</td>'
            "</tr>"
        )
    return mark_safe("".join(out))
