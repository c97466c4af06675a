"""Whole days and hours, said exactly in the reader's language: "7 days", "20 days 4 hours" /
「7日」「20日4時間」. common.l10n.format_span rounds to the largest unit that fits (7 days is
"1 week", 28 days "1 month"), which is right for a lag and wrong for an evidence deadline or the
unused part of a billing period, where the days are the point."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_timedelta
from django.utils.translation import pgettext

from common.l10n import babel_locale, is_japanese

_SECONDS = {"day": 86400, "hour": 3600}


def units(count: int, unit: str) -> str:
    """`count` days or hours: "3 days", "1 hour" / 「3日」「1時間」 (never rounded to weeks or months)."""
    locale = babel_locale()
    text = format_timedelta(dt.timedelta(seconds=count * _SECONDS[unit]), granularity=unit, threshold=10**9,
                            locale=locale)
    # babel writes "3 日"; Japanese writes the number and its unit together.
    return text.replace("\xa0", "").replace(" ", "") if is_japanese(locale) else text


def days_and_hours(seconds: float) -> str:
    """Days and hours, rounded down: "20 days 4 hours", "3 hours" / 「20日4時間」「3時間」."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours = rest // 3600
    if days and hours:
        return pgettext("days and hours", "%(days)s %(hours)s") % {"days": units(days, "day"),
                                                                   "hours": units(hours, "hour")}
    return units(days, "day") if days else units(hours, "hour")
