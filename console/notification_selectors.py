"""Reads of a person's notifications: the bell's count and the page's keyset pages."""

from __future__ import annotations

from django.db.models import Q

from common import parsing

from .models import Notification

PAGE_SIZE = 50


def unread_count(user) -> int:
    """How many of `user`'s notifications are unread: one count on the (recipient, read_at) index."""
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()


def notification_page(user, *, after: str = "", size: int = PAGE_SIZE) -> tuple[list[Notification], str]:
    """`user`'s notifications, newest first, `size` at a time. `after` is the cursor of the
    previous page's last row (its time and id); one that isn't a cursor gives no rows.
    Returns (rows, next cursor or "")."""
    qs = Notification.objects.filter(recipient_id=user.pk)
    if after:
        position = parsing.decode_cursor(after)
        if position is None:
            return [], ""
        when, last_id = position
        qs = qs.filter(Q(created__lt=when) | Q(created=when, id__lt=last_id))
    rows = list(qs.order_by("-created", "-id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    cursor = parsing.encode_cursor(rows[-1].created, rows[-1].pk) if more else ""
    return rows, cursor
