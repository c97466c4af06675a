"""The bell in the top bar and the notifications page's rows."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _, pgettext

from common.l10n import format_when, format_when_short
from console.notification_selectors import unread_count

register = template.Library()


@register.simple_tag
def unread_notifications(user) -> int:
    """`{% unread_notifications user as unread %}`: the bell's count, one indexed query."""
    return unread_count(user)


@register.filter
def bell_count(count: int) -> str:
    """The count on the bell: up to 99, then 99+."""
    return "99+" if count > 99 else str(count)


@register.filter
def notified_at(value) -> str:
    """When a notification came, short (12月3日 9:48 / Dec 3, 9:48 AM), in the reader's zone."""
    return format_when_short(value) if value else ""


@register.filter
def notified_at_full(value) -> str:
    """The same moment in full, with the year and the time zone, for a tooltip."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{format_when(local, tz=local.tzinfo)} {local.tzname() or ''}".strip()


@register.filter
def link_label(link: str) -> str:
    """What a notification's link opens, in words: "Ticket #17", else "Open"."""
    import re

    found = re.fullmatch(r"/tickets/(\d+)/", link or "")
    if found:
        return _("Ticket #%(number)s") % {"number": found.group(1)}
    return pgettext("notification link", "Open")
