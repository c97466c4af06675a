"""Dates, times, numbers and money read the way each language writes them (babel), in the
reader's time zone: `2026年12月3日 9:48` and `Dec 3, 2026, 9:48 AM` (CLDR puts a narrow
no-break space before AM), `¥2,500` in both, `US$39.00` where a Japanese reader must be told
which dollar."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone, translation

from common import l10n
from payments.money import format_money

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
# 00:48 UTC is 9:48 in Tokyo: the zone is applied before formatting.
MOMENT = dt.datetime(2026, 12, 3, 0, 48, tzinfo=dt.UTC)
TODAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def tokyo():
    with timezone.override(TOKYO):
        yield


@pytest.mark.parametrize("language, expected", [
    ("ja", {"when": "2026年12月3日 9:48", "short": "12月3日 9:48", "time": "9:48", "date": "2026年12月3日",
            "day": "12月3日(木)", "day_last_year": "2025年12月3日(水)"}),
    ("en", {"when": "Dec 3, 2026, 9:48\u202fAM", "short": "Dec 3, 9:48\u202fAM", "time": "9:48\u202fAM", "date": "Dec 3, 2026",
            "day": "Thu, Dec 3", "day_last_year": "Wed, Dec 3, 2025"}),
])
def test_dates_and_times(language, expected):
    with translation.override(language):
        assert l10n.format_when(MOMENT) == expected["when"]
        assert l10n.format_when_short(MOMENT, today=TODAY) == expected["short"]
        # Another year: the year is written.
        assert l10n.format_when_short(MOMENT.replace(year=2025), today=TODAY) == expected["when"].replace("2026", "2025")
        assert l10n.format_time(MOMENT) == expected["time"]
        assert l10n.format_date(MOMENT) == expected["date"]
        assert l10n.format_day(TODAY, today=TODAY) == expected["day"]
        assert l10n.format_day(dt.date(2025, 12, 3), today=TODAY) == expected["day_last_year"]


@pytest.mark.parametrize("language, later, earlier, span", [
    ("ja", "5日後", "3分前", "50秒"),
    ("en", "in 5 days", "3 minutes ago", "50 sec"),
])
def test_relative_times_and_spans(language, later, earlier, span):
    with translation.override(language):
        assert l10n.format_relative(dt.timedelta(days=5)) == later
        assert l10n.format_relative(dt.timedelta(minutes=-3)) == earlier
        assert l10n.format_span(dt.timedelta(seconds=50), short=True) == span


@pytest.mark.parametrize("language, jpy, usd, usd_negative, eur, number", [
    ("ja", "¥2,500", "US$39.00", "-US$39.00", "€10.50", "1,234,567"),
    ("en", "¥2,500", "$39.00", "-$39.00", "€10.50", "1,234,567"),
])
def test_money_and_numbers(language, jpy, usd, usd_negative, eur, number):
    with translation.override(language):
        assert format_money(2500, "jpy") == jpy
        assert format_money(3900, "USD") == usd
        assert format_money(-3900, "usd") == usd_negative
        assert format_money(1050, "eur") == eur
        assert l10n.format_number(1234567) == number


def test_an_explicit_locale_wins_over_the_active_language():
    # What a customer receives is formatted in the customer's locale, whatever the agent reads.
    with translation.override("ja"):
        assert format_money(3900, "usd", locale="en_US") == "$39.00"
        assert l10n.format_when(MOMENT, locale="en_US") == "Dec 3, 2026, 9:48\u202fAM"
    with translation.override("en"):
        assert l10n.format_when(MOMENT, locale="ja_JP") == "2026年12月3日 9:48"


def test_the_cache_is_per_language():
    # Formatting is cached; the same amount must not come back in the other language's form.
    with translation.override("en"):
        assert format_money(3900, "usd") == "$39.00"
    with translation.override("ja"):
        assert format_money(3900, "usd") == "US$39.00"


def test_languages_map_to_locales():
    assert l10n.babel_locale("ja") == "ja_JP" and l10n.babel_locale("ja-jp") == "ja_JP"
    assert l10n.babel_locale("en-us") == "en_US" and l10n.babel_locale("fr") == "en_US"
    assert l10n.format_when(None) == "" and format_money(None, "jpy") == "—"
