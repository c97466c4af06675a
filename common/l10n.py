"""Dates, times, numbers and durations in the reader's language, through babel.

The reader's language is Django's active one (LocaleMiddleware, or `translation.override`
for what a customer receives). Patterns are resolved once per language and kept: a list
page formats a few hundred values, and babel's pattern lookup is the slow part.

    format_when(value)      Dec 3, 2026, 9:48 AM      2026年12月3日 9:48
    format_when_short(v)    Dec 3, 9:48 AM            12月3日 9:48     (year shown when not this year)
    format_time(value)      9:48 AM                   9:48
    format_date(value)      Dec 3, 2026               2026年12月3日
    format_day(value)       Thu, Dec 3                12月3日(木)      (timeline day headings)
    format_relative(delta)  in 5 days / 3 minutes ago 5日後 / 3分前
    format_span(delta)      5 days                    5日
    format_number(n)        1,234                     1,234
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from babel import Locale
from babel.dates import format_timedelta, parse_pattern
from babel.numbers import format_decimal
from django.utils import timezone, translation

# Django language code → babel locale. English is the console's default.
LOCALES = {"en": "en_US", "ja": "ja_JP"}
DEFAULT_LOCALE = "en_US"

# babel puts a space between a number and a Japanese unit ("5 日後"); Japanese writes them together.
_CJK_GAP = re.compile(r"(?<=\d) (?=[\u3000-\u9fff])")


def babel_locale(language: str | None = None) -> str:
    code = (language or translation.get_language() or "en").lower()
    return LOCALES.get(code.split("-")[0].split("_")[0], DEFAULT_LOCALE)


def is_japanese(locale: str) -> bool:
    return locale.startswith("ja")


@functools.lru_cache(maxsize=64)
def _pattern(locale: str, what: str):
    loc = Locale.parse(locale)
    skeletons = loc.datetime_skeletons
    time = loc.time_formats["short"].pattern
    glue = loc.datetime_formats["medium"]
    if what == "time":
        return parse_pattern(time)
    if what == "date":
        return parse_pattern(skeletons["yMMMd"].pattern)
    if what == "day":
        return parse_pattern(skeletons["MMMEd"].pattern)
    if what == "day_year":
        return parse_pattern(skeletons["yMMMEd"].pattern)
    if what == "when":
        return parse_pattern(glue.replace("{1}", skeletons["yMMMd"].pattern).replace("{0}", time))
    if what == "when_short":
        return parse_pattern(glue.replace("{1}", skeletons["MMMd"].pattern).replace("{0}", time))
    raise ValueError(what)


_locale = functools.lru_cache(maxsize=16)(Locale.parse)  # parsing a locale is most of a value's cost


def _apply(what: str, value, locale: str | None) -> str:
    locale = locale or babel_locale()
    return _pattern(locale, what).apply(value, _locale(locale))


def _local(value: dt.datetime, tz=None) -> dt.datetime:
    if timezone.is_naive(value):
        return value
    return value.astimezone(tz or timezone.get_current_timezone())


def format_when(value: dt.datetime | None, *, locale: str | None = None, tz=None) -> str:
    """The full moment, in the current time zone: for titles and audit rows."""
    return _apply("when", _local(value, tz), locale) if value else ""


def format_when_short(value: dt.datetime | None, *, locale: str | None = None, tz=None, today=None) -> str:
    """Day and time without the year when it is this year: for list cells."""
    if not value:
        return ""
    local = _local(value, tz)
    this_year = (today or timezone.localdate()).year
    return _apply("when_short" if local.year == this_year else "when", local, locale)


def format_time(value: dt.datetime | None, *, locale: str | None = None, tz=None) -> str:
    return _apply("time", _local(value, tz), locale) if value else ""


def format_date(value: dt.date | dt.datetime | None, *, locale: str | None = None) -> str:
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        value = _local(value).date()
    return _apply("date", value, locale)


def format_day(value: dt.date, *, locale: str | None = None, today: dt.date | None = None) -> str:
    """A day heading: weekday and date, the year only when it is not this year."""
    this_year = (today or timezone.localdate()).year
    return _apply("day" if value.year == this_year else "day_year", value, locale)


def format_relative(delta: dt.timedelta, *, locale: str | None = None, threshold: float = 0.85) -> str:
    """'in 5 days' / '3 minutes ago'; a positive delta is in the future."""
    locale = locale or babel_locale()
    text = format_timedelta(delta, add_direction=True, locale=locale, threshold=threshold)
    return _CJK_GAP.sub("", text) if is_japanese(locale) else text


def format_span(delta: dt.timedelta, *, locale: str | None = None, short: bool = False,
                granularity: str = "second") -> str:
    """A length of time without direction: '5 days', '3 min' / '5日', '3分'."""
    locale = locale or babel_locale()
    text = format_timedelta(delta, locale=locale, format="short" if short else "long", granularity=granularity)
    return _CJK_GAP.sub("", text) if is_japanese(locale) else text


def format_number(value, *, locale: str | None = None) -> str:
    if value is None:
        return "—"
    return format_decimal(value, locale=locale or babel_locale())
