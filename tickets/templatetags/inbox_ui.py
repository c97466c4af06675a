"""Small pieces of the inbox and the ticket page, rendered in Python: a list page has many rows."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone, translation
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _, pgettext

from common.l10n import babel_locale, format_time, format_when_short

from ..identity import contact_display_name
from ..models import Channel, Identity, Ticket

register = template.Library()


@register.filter
def identity_kind(value) -> str:
    """email → Email / メール: how a contact is reached, in the reader's words."""
    return choice_label(Identity.Kind, value or "")


def choice_label(choices, value: str) -> str:
    """A model choice's label in the active language (the value itself if it is not a choice)."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


@register.simple_tag
def channel_icon(channel: str) -> SafeString:
    """The channel's icon (drawn by inbox.css) with its name for screen readers."""
    label = choice_label(Channel, channel)
    return format_html('<span class="channel channel-{}" role="img" title="{}" aria-label="{}"></span>',
                       channel, label, label)


_STATUS_TONE = {"open": "warn", "pending": "info", "solved": "ok", "closed": ""}


@register.simple_tag
def status_badge(status: str) -> SafeString:
    return format_html('<span class="badge badge-{} status-{}">{}</span>', _STATUS_TONE.get(status, ""), status,
                       choice_label(Ticket.Status, status))


@register.simple_tag
def priority(value: str) -> SafeString:
    return format_html('<span class="prio prio-{}">{}</span>', value, choice_label(Ticket.Priority, value))


class _Words:
    """The SLA texts in the active language, looked up once per rendering (a list has many rows)."""

    def __init__(self):
        self.locale = babel_locale()
        self.minutes = pgettext("duration, compact", "%(minutes)sm")
        self.hours = pgettext("duration, compact", "%(hours)sh")
        self.hours_minutes = pgettext("duration, compact", "%(hours)sh %(minutes)sm")
        self.days = pgettext("duration, compact", "%(days)sd")
        self.late = pgettext("SLA", "%(span)s late")
        self.ahead = pgettext("SLA", "in %(span)s")
        self.title = pgettext("SLA", "Due %(when)s")


def _span(delta: dt.timedelta, words: _Words) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    if minutes < 60:
        return words.minutes % {"minutes": max(minutes, 1)}
    hours = minutes // 60
    if hours < 48:
        if hours < 10 and minutes % 60:
            return words.hours_minutes % {"hours": hours, "minutes": minutes % 60}
        return words.hours % {"hours": hours}
    return words.days % {"days": hours // 24}


def _due_html(value: dt.datetime | None, now: dt.datetime, tz=None, words: _Words | None = None,
              today: dt.date | None = None) -> str:
    if value is None:
        return '<span class="due due-none">—</span>'
    words = words or _Words()
    delta = value - now
    exact = escape(words.title % {"when": format_when_short(value, locale=words.locale, tz=tz, today=today)})
    if delta.total_seconds() < 0:
        return f'<span class="due due-late" title="{exact}">{escape(words.late % {"span": _span(delta, words)})}</span>'
    css = "due due-soon" if delta <= dt.timedelta(hours=1) else "due"
    return f'<span class="{css}" title="{exact}">{escape(words.ahead % {"span": _span(delta, words)})}</span>'


@register.simple_tag
def due(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    """The SLA deadline as people read it: "in 3h", "2h late" (「あと3時間」「2時間超過」); amber within the hour."""
    return mark_safe(_due_html(value, now or timezone.now()))


@register.simple_tag
def sla_due(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    """`due` under a name of its own, for pages that also load mirror_ui (whose `due` is a
    dispute's evidence deadline)."""
    return due(value, now)


def _when(value: dt.datetime | None, today: dt.date, tz=None, locale: str | None = None) -> str:
    """The time alone for today, else the day and time (the year too when it is not this year)."""
    if not value:
        return ""
    tz = tz or timezone.get_current_timezone()
    if value.astimezone(tz).date() == today:
        return format_time(value, locale=locale, tz=tz)
    return format_when_short(value, locale=locale, tz=tz, today=today)


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
    """What agents call a contact (identity.contact_display_name: never an internal number);
    the identities are prefetched on list pages."""
    if contact is None:
        return ""
    if contact.name or contact.line_name:
        return contact_display_name(contact.name, contact.line_name, [])
    return contact_display_name("", "", [(i.kind, i.value) for i in contact.identities.all()])


@register.simple_tag
def contact_avatar(contact, label: str = "") -> SafeString:
    """The LINE profile picture when there is one, else the initials of the label."""
    label = label or contact_label(contact)
    return avatar_html(getattr(contact, "line_picture_url", ""), label)


def avatar_html(picture_url: str, label: str) -> SafeString:
    if picture_url:
        # LINE's CDN (allowed in the CSP's img-src); no referrer leaves for it.
        return format_html('<img class="avatar avatar-photo" src="{}" alt="" width="32" height="32" loading="lazy" '
                           'referrerpolicy="no-referrer">', picture_url)
    return format_html('<span class="avatar" aria-hidden="true">{}</span>', initials(label))


_CHANNEL_ICONS: dict[tuple[str, str], str] = {}


def _channel_html(channel: str, language: str | None = None) -> str:
    key = (language if language is not None else translation.get_language() or "", channel)
    if key not in _CHANNEL_ICONS:
        _CHANNEL_ICONS[key] = str(channel_icon(channel))
    return _CHANNEL_ICONS[key]


@register.simple_tag
def ticket_rows(rows, from_view: str, now: dt.datetime, base: str) -> SafeString:
    """The inbox's table rows, built in Python: up to 100 rows of eight cells each.

    `base` is the ticket URL prefix ("/tickets/"); every value is escaped here. What is
    translated (labels, the SLA words) is looked up once here, not per row.
    """
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    words = _Words()
    language = translation.get_language() or ""
    statuses = {value: escape(str(label)) for value, label in Ticket.Status.choices}
    priorities = {value: escape(str(label)) for value, label in Ticket.Priority.choices}
    select = _("Select ticket #%(number)s")
    view = escape(from_view)
    out = []
    for t in rows:
        url = f"{base}{t.number}/?from={view}"
        tags = "".join(f' <span class="tag">{escape(tag)}</span>' for tag in t.tags)
        assignee = escape(t.assignee) if t.assignee else '<span class="muted">—</span>'
        team = f'<div class="who">{escape(t.team)}</div>' if t.team else ""
        select_label = escape(select % {"number": t.number})
        status = statuses.get(t.status) or escape(t.status)
        picture = getattr(t, "picture", "")
        requester = (format_html('<img class="avatar avatar-photo avatar-small" src="{}" alt="" width="16" height="16" '
                                 'loading="lazy" referrerpolicy="no-referrer"> ', picture) if picture else "")
        out.append(
            f'<tr data-ticket-url="{url}">'
            f'<td class="check"><input type="checkbox" name="ticket" value="{t.pk}" aria-label="{select_label}"></td>'
            f'<td class="ticket-cell"><div class="subject-line">{_channel_html(t.channel, language)}'
            f'<a class="subject" href="{url}">{escape(t.subject)}</a></div>'
            f'<div class="who"><span class="num-id">#{t.number}</span> · {requester}'
            f'<span class="requester-name">{escape(t.requester)}</span>{tags}</div></td>'
            f'<td><span class="badge badge-{_STATUS_TONE.get(t.status, "")} status-{t.status}">{status}</span></td>'
            f'<td><span class="prio prio-{t.priority}">{priorities.get(t.priority) or escape(t.priority)}</span></td>'
            f'<td class="assignee">{assignee}{team}</td>'
            f"<td>{_due_html(t.sla_due, now, tz, words, today)}</td>"
            f'<td class="num muted nowrap">{_when(t.updated, today, tz, words.locale)}</td>'
            "</tr>"
        )
    return mark_safe("".join(out))


@register.simple_tag
def macro_effects(macro) -> str:
    """What a macro does besides filling in the text: "sets status pending; adds shipping"."""
    parts = []
    if macro.set_status:
        parts.append(_("sets status %(status)s") % {"status": str(macro.get_set_status_display()).lower()})
    if macro.set_priority:
        parts.append(_("sets priority %(priority)s") % {"priority": str(macro.get_set_priority_display()).lower()})
    if macro.set_team:
        parts.append(_("moves to %(team)s") % {"team": macro.set_team.name})
    if macro.set_assignee:
        parts.append(_("assigns %(person)s") % {"person": person(macro.set_assignee)})
    if macro.add_tags:
        parts.append(_("adds %(tags)s") % {"tags": ", ".join(macro.add_tags)})
    if not parts:
        return _("nothing else")
    return pgettext("list separator", "; ").join(parts)
