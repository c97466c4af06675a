"""Entities in a customer's message, English or Japanese: money, dates, order numbers, Stripe ids
and a card's last four digits, each with its offsets into the text as the customer wrote it.

Pure Python on purpose (nothing from Django): the console wires it in. Matching runs on an NFKC
copy of the text, so full-width digits, signs and letters read as ASCII ("２，０００円" is
"2,000円"); every span is mapped back through an index map, so text[start:end] == entity.text.

Precision over recall: a number is an entity only with its marker (a currency, "order"/"注文",
"#", "ending"/"下4桁", a month name, ...). Bare numbers, quantities, phone numbers, postal codes,
times and lone years are left alone. Every pattern is built so that the regex engine cannot
backtrack more than linearly (bounded spaces, separators required between repeats).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import get_currency_precision

__all__ = ["Entity", "extract"]


@dataclass(frozen=True)
class Entity:
    kind: str  # "money" | "date" | "order" | "stripe_id" | "card_last4"
    text: str  # the span as written in the message
    start: int  # offsets into the original text
    end: int
    value: dict  # kind-specific and JSON-safe (str, int, None)


# Where two candidates overlap, the longer wins; on a tie, the more specific kind. A blocker is a
# phrase read and set aside ("next Monday", "今週の土曜日" in the future): it keeps its parts
# ("今週") from being read on their own, and is not returned.
_BLOCKER = "blocker"
_KIND_RANK = {"stripe_id": 0, "order": 1, "card_last4": 2, "money": 3, "date": 4, _BLOCKER: 5}
_UTC = dt.timezone.utc
_MAX_AMOUNT = 2**53 - 1  # what a JSON reader (JavaScript) holds exactly
_SP = r"[ \t]"  # NFKC already turned no-break and ideographic spaces into " "


# --- folding: NFKC with a map back to the original offsets ---------------------------------------

_MAX_CLUSTER = 32  # a base and its combining marks; longer runs (zalgo text) are cut, not sorted


def _joins_previous(ch: str) -> bool:
    # Combining marks (and half-width katakana voicing marks) compose with the character before,
    # so they are normalised together: "ｶﾞ" is one cluster that becomes "ガ".
    return unicodedata.combining(ch) != 0 or ch in "\uff9e\uff9f"


def _fold(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """The NFKC text, and for each of its characters where its source starts and ends in `text`
    (None when nothing changes: the offsets are the same)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text, None, None
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and j - i < _MAX_CLUSTER and _joins_previous(text[j]):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j])
        pieces.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return "".join(pieces), starts, ends


# --- small helpers -------------------------------------------------------------------------------

@dataclass
class _Context:
    folded: str
    today: dt.date


@dataclass
class _Candidate:
    start: int  # in the folded text
    end: int
    kind: str
    value: dict


_Finder = Callable[[re.Match, _Context], "_Candidate | None"]


def _compile(pattern: str, *, ignore_case: bool = True) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def _alternation(words) -> str:
    # Longest first, so "US$" is tried before "$" and "dollars" before "dollar".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _parse_number(token: str) -> Decimal | None:
    """'2,000' -> 2000, '12,50' and '12.50' -> 12.50, '2.000,00' -> 2000.00, '1,234.5' -> 1234.5.
    A separator followed by exactly three digits at the end groups thousands; one or two digits
    after the last separator are decimals. Anything inconsistent ('1,2,3', '1.234,567') is None."""
    if len(token) > 30:
        return None
    groups = re.split(r"[.,]", token)
    separators = [c for c in token if c in ".,"]
    if not separators:
        return Decimal(token)

    def grouped(int_groups: list[str], seps: list[str]) -> bool:
        return (len(set(seps)) == 1 and 1 <= len(int_groups[0]) <= 3
                and all(len(g) == 3 for g in int_groups[1:]))

    tail = groups[-1]
    if len(tail) == 3:
        return Decimal("".join(groups)) if grouped(groups, separators) else None
    if len(tail) in (1, 2):
        decimal_sep, inner = separators[-1], separators[:-1]
        if inner and (decimal_sep in inner or not grouped(groups[:-1], inner)):
            return None
        return Decimal("".join(groups[:-1]) + "." + tail)
    return None


@lru_cache(maxsize=None)
def _precision(currency: str) -> int:
    return get_currency_precision(currency.upper())


def _money(start: int, end: int, amount: Decimal | None, currency: str | None) -> _Candidate | None:
    if amount is None:
        return None
    if currency is None:
        # No currency, so no known precision: the whole number as written, and nothing with a
        # decimal part (its scale would be a guess).
        minor = amount
    else:
        minor = amount * (10 ** _precision(currency))
    if minor != minor.to_integral_value() or not 0 <= minor <= _MAX_AMOUNT:
        return None  # "¥12.5": yen have no minor unit
    return _Candidate(start, end, "money", {"amount": int(minor), "currency": currency})


def _iso(day: dt.date) -> str:
    return day.isoformat()


def _day(start: int, end: int, day: dt.date | None) -> _Candidate:
    if day is None:  # no such day ("2/30"), or one in the future
        return _Candidate(start, end, _BLOCKER, {})
    return _Candidate(start, end, "date", {"date": _iso(day)})


def _span(start: int, end: int, first: dt.date, last: dt.date) -> _Candidate:
    return _Candidate(start, end, "date", {"from": _iso(first), "to": _iso(last)})


def _valid(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _most_recent(month: int, day: int, today: dt.date) -> dt.date | None:
    """The latest month/day not after today: customers write about the past. Feb 29 looks back
    to the last leap year."""
    for year in range(today.year, today.year - 9, -1):
        found = _valid(year, month, day)
        if found is not None and found <= today:
            return found
    return None


def _weekday_before(weekday: int, today: dt.date) -> dt.date:
    """The most recent `weekday` strictly before today (Monday is 0)."""
    return today - dt.timedelta(days=(today.weekday() - weekday) % 7 or 7)


def _week_monday(today: dt.date, weeks_back: int) -> dt.date:
    return today - dt.timedelta(days=today.weekday() + 7 * weeks_back)


def _last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def _year(text: str | None) -> int | None:
    if not text:
        return None
    return int(text) + 2000 if len(text) == 2 else int(text)


# --- money ---------------------------------------------------------------------------------------

_PREFIXES = {
    "$": "usd", "us$": "usd", "usd": "usd",
    "c$": "cad", "ca$": "cad", "cad": "cad", "a$": "aud", "au$": "aud", "aud": "aud",
    "¥": "jpy", "jp¥": "jpy", "jpy": "jpy",
    "€": "eur", "eur": "eur", "£": "gbp", "gbp": "gbp",
}
# Not "pounds" or "ポンド": at a coffee shop they are as likely a weight as a currency.
_SUFFIXES = {
    "円": "jpy", "yen": "jpy", "jpy": "jpy",
    "usd": "usd", "dollar": "usd", "dollars": "usd", "us dollars": "usd", "bucks": "usd", "ドル": "usd",
    "eur": "eur", "euro": "eur", "euros": "eur", "€": "eur", "ユーロ": "eur",
    "gbp": "gbp", "£": "gbp", "cad": "cad", "aud": "aud",
}
_NUM = r"[0-9]+(?:[.,][0-9]+)*"
_NUM_START = r"(?<![0-9A-Za-z_])(?<![0-9][.,])"  # the start of a number, not the middle of one

_MONEY_PREFIX = _compile(
    rf"(?<![A-Za-z0-9])(?P<cur>{_alternation(_PREFIXES)}){_SP}{{0,2}}(?P<num>{_NUM})"
    rf"(?:{_SP}{{0,2}}(?P<code>{_alternation(_SUFFIXES)}))?(?![A-Za-z0-9])"
)
_MONEY_SUFFIX = _compile(
    rf"{_NUM_START}(?P<num>{_NUM}){_SP}{{0,2}}(?P<code>{_alternation(_SUFFIXES)})(?![A-Za-z])"
)
# 1万円, 1.5万円, 2千円, 1万2千円, 1万2000円
_MONEY_KANJI = _compile(
    rf"{_NUM_START}(?:(?P<man>{_NUM})万)?(?:(?P<sen>{_NUM})千)?(?P<rest>{_NUM})?{_SP}{{0,2}}円"
)
# "refunded 20." / "返金額は2000です": a money word right before a number and nothing after it
# but punctuation or a particle, so "paid for 2 bags" and "amount: 3 items" stay out.
_MONEY_BARE = _compile(
    r"(?:(?<![A-Za-z])(?:refund(?:ed)?|charged|paid|amount|price|cost|fee)"
    rf"(?:{_SP}{{1,2}}(?:of|was|is|were))?"
    r"|返金額?|金額|料金|代金|請求額|お?支払い?額)"
    rf"{_SP}{{0,2}}(?:[:=]|は|が)?{_SP}{{0,2}}(?P<num>[0-9]+(?:,[0-9]{{3}})*)(?![0-9]|[.,][0-9])"
    rf"(?={_SP}{{0,3}}(?:$|[\r\n.,;:!?)\]」』。、]|です|でした|[でにをがはとのも]))"
)


def _money_prefix(m: re.Match, ctx: _Context) -> _Candidate | None:
    currency = _PREFIXES[m["cur"].lower()]
    if m["code"]:
        currency = _SUFFIXES[m["code"].lower()]  # "$20 CAD": the code is the more explicit
    return _money(m.start(), m.end(), _parse_number(m["num"]), currency)


def _money_suffix(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _money(m.start(), m.end(), _parse_number(m["num"]), _SUFFIXES[m["code"].lower()])


def _money_kanji(m: re.Match, ctx: _Context) -> _Candidate | None:
    if not (m["man"] or m["sen"]):
        return None  # plain "2000円" is _MONEY_SUFFIX's
    man = _parse_number(m["man"]) if m["man"] else Decimal(0)
    sen = _parse_number(m["sen"]) if m["sen"] else Decimal(0)
    rest = _parse_number(m["rest"]) if m["rest"] else Decimal(0)
    if man is None or sen is None or rest is None:
        return None
    # Each place below the one before: "1万2千円" and "1万2000円", not "12千円" or "1万20000円".
    if m["sen"] and (sen >= 10 or rest >= 1000):
        return None
    if m["man"] and sen * 1000 + rest >= 10000:
        return None
    return _money(m.start(), m.end(), man * 10000 + sen * 1000 + rest, "jpy")


def _money_bare(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _money(m.start("num"), m.end("num"), _parse_number(m["num"]), None)


# --- dates ---------------------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS_JA = "月火水木金土日"
_SMALL_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
                  "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
# A year after "March 5," unless it is really an amount ("March 5 2000円").
_YEAR = r"(?P<y>(?:19|20)[0-9]{2})(?![0-9]|[.,][0-9]|[ \t]{0,2}(?:円|yen|ドル|dollars?|bucks|usd|jpy|eur|gbp))"

_DATE_ISO = _compile(
    r"(?<![0-9A-Za-z/.\-])(?P<y>(?:19|20)[0-9]{2})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
    r"(?![0-9]|[/.\-][0-9])"
)
_DATE_JA = _compile(
    rf"(?<![0-9])(?:(?P<y>(?:19|20)[0-9]{{2}}){_SP}?年{_SP}?)?(?P<m>[0-9]{{1,2}}){_SP}?月{_SP}?(?P<d>[0-9]{{1,2}}){_SP}?日"
)
# 3/5 and 3/5/2026, month first (US, and how Japanese write it too).
_DATE_SLASH = _compile(
    r"(?<![0-9A-Za-z/.\-:])(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})(?:/(?P<y>[0-9]{4}|[0-9]{2}))?"
    r"(?![0-9]|/[0-9]|[.,][0-9])"
)
# ...but "1/2 cup", "5/5 stars" and "3/4 of" are fractions and ratings.
_NOT_A_DAY_AFTER = _compile(
    rf"{_SP}{{0,2}}(?:%|stars?|points?|pts|rating|lbs?|oz|kg|g|cups?|pounds?|ounces?|tsp|tbsp"
    r"|teaspoons?|tablespoons?|scoops?|of)(?![A-Za-z])"
)
_DATE_MONTH_DAY = _compile(
    rf"(?<![A-Za-z]){_MONTH}\.?{_SP}{{1,2}}(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?(?![0-9A-Za-z])"
    rf"(?:,?{_SP}{{1,2}}{_YEAR})?"
)
_DATE_DAY_MONTH = _compile(
    rf"(?<![0-9A-Za-z])(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?{_SP}{{1,2}}(?:of{_SP}{{1,2}})?{_MONTH}(?![A-Za-z])"
    rf"(?:\.?,?{_SP}{{1,2}}{_YEAR})?"  # "5 Mar. 2026"; the full stop of "...5th of March." stays out
)
_DATE_RELATIVE_EN = _compile(
    rf"(?<![A-Za-z])(?:(?P<dby>the{_SP}{{1,2}}day{_SP}{{1,2}}before{_SP}{{1,2}}yesterday)"
    r"|(?P<yesterday>yesterday)|(?P<today>today)"
    rf"|(?P<which>last|this){_SP}{{1,2}}(?P<unit>week|month))(?![A-Za-z])"
)
_DATE_WEEKDAY_EN = _compile(
    rf"(?<![A-Za-z])(?:(?P<mod>this{_SP}{{1,2}}past|last|this|next|past){_SP}{{1,2}})?"
    rf"(?P<wd>{'|'.join(_WEEKDAYS_EN)})(?![A-Za-z])"
)
_DATE_AGO_EN = _compile(
    rf"(?<![0-9A-Za-z])(?P<n>[0-9]{{1,3}}|{_alternation(_SMALL_NUMBERS)}){_SP}{{1,2}}days?{_SP}{{1,2}}ago(?![A-Za-z])"
)
_DATE_RELATIVE_JA = _compile(r"(?P<word>一昨日|昨日|昨夜|今日|本日|先々週|先週|今週|先月|今月)")
_DATE_WEEKDAY_JA = _compile(
    rf"(?:(?P<mod>先々週|先週|今週|来週)の?{_SP}?)?(?P<wd>[{_WEEKDAYS_JA}])曜日?"
)
_DATE_AGO_JA = _compile(rf"(?<![0-9月])(?P<n>[0-9]{{1,3}}){_SP}?日前")


def _date_iso(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _day(m.start(), m.end(), _valid(int(m["y"]), int(m["m"]), int(m["d"])))


def _date_ja(m: re.Match, ctx: _Context) -> _Candidate | None:
    month, day = int(m["m"]), int(m["d"])
    found = _valid(int(m["y"]), month, day) if m["y"] else _most_recent(month, day, ctx.today)
    return _day(m.start(), m.end(), found)


def _date_slash(m: re.Match, ctx: _Context) -> _Candidate | None:
    if _NOT_A_DAY_AFTER.match(ctx.folded, m.end()):
        return None
    month, day = int(m["m"]), int(m["d"])
    year = _year(m["y"])
    found = _valid(year, month, day) if year else _most_recent(month, day, ctx.today)
    return _day(m.start(), m.end(), found)


def _date_named_month(m: re.Match, ctx: _Context) -> _Candidate | None:
    if m["mon"].lower() == "may" and m["mon"][0] != "M":
        return None  # "you may 2x..." is the verb; the month is written "May"
    month, day = _MONTHS[m["mon"][:3].lower()], int(m["d"])
    found = _valid(int(m["y"]), month, day) if m["y"] else _most_recent(month, day, ctx.today)
    return _day(m.start(), m.end(), found)


def _date_relative_en(m: re.Match, ctx: _Context) -> _Candidate | None:
    today = ctx.today
    if m["dby"]:
        return _day(m.start(), m.end(), today - dt.timedelta(days=2))
    if m["yesterday"]:
        return _day(m.start(), m.end(), today - dt.timedelta(days=1))
    if m["today"]:
        return _day(m.start(), m.end(), today)
    this = m["which"].lower() == "this"
    if m["unit"].lower() == "week":
        monday = _week_monday(today, 0 if this else 1)
        return _span(m.start(), m.end(), monday, today if this else monday + dt.timedelta(days=6))
    if this:
        return _span(m.start(), m.end(), today.replace(day=1), today)
    return _span(m.start(), m.end(), *_last_month(today))


def _date_weekday_en(m: re.Match, ctx: _Context) -> _Candidate | None:
    weekday = _WEEKDAYS_EN.index(m["wd"].lower())
    modifier = " ".join((m["mod"] or "").lower().split())
    if modifier == "next":
        return _day(m.start(), m.end(), None)  # the future: not what a customer asks us to look up
    if modifier == "this":
        found = _week_monday(ctx.today, 0) + dt.timedelta(days=weekday)
        return _day(m.start(), m.end(), found if found <= ctx.today else None)
    # "last Tuesday", "this past Tuesday", "(on) Tuesday": the most recent before today.
    return _day(m.start(), m.end(), _weekday_before(weekday, ctx.today))


def _date_ago_en(m: re.Match, ctx: _Context) -> _Candidate | None:
    n = m["n"].lower()
    days = _SMALL_NUMBERS[n] if n in _SMALL_NUMBERS else int(n)
    return _day(m.start(), m.end(), ctx.today - dt.timedelta(days=days))


def _date_relative_ja(m: re.Match, ctx: _Context) -> _Candidate | None:
    today, word = ctx.today, m["word"]
    if word in ("今日", "本日"):
        return _day(m.start(), m.end(), today)
    if word in ("昨日", "昨夜"):
        return _day(m.start(), m.end(), today - dt.timedelta(days=1))
    if word == "一昨日":
        return _day(m.start(), m.end(), today - dt.timedelta(days=2))
    if word == "今週":
        return _span(m.start(), m.end(), _week_monday(today, 0), today)
    if word in ("先週", "先々週"):
        monday = _week_monday(today, 1 if word == "先週" else 2)
        return _span(m.start(), m.end(), monday, monday + dt.timedelta(days=6))
    if word == "今月":
        return _span(m.start(), m.end(), today.replace(day=1), today)
    return _span(m.start(), m.end(), *_last_month(today))  # 先月


def _date_weekday_ja(m: re.Match, ctx: _Context) -> _Candidate | None:
    weekday = _WEEKDAYS_JA.index(m["wd"])
    modifier = m["mod"]
    if modifier == "来週":
        return _day(m.start(), m.end(), None)
    if modifier:  # 先週の火曜日 is Tuesday of the week before this one (weeks start on Monday)
        weeks_back = {"今週": 0, "先週": 1, "先々週": 2}[modifier]
        found = _week_monday(ctx.today, weeks_back) + dt.timedelta(days=weekday)
        return _day(m.start(), m.end(), found if found <= ctx.today else None)
    return _day(m.start(), m.end(), _weekday_before(weekday, ctx.today))


def _date_ago_ja(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _day(m.start(), m.end(), ctx.today - dt.timedelta(days=int(m["n"])))


# --- order numbers -------------------------------------------------------------------------------

_DASHES = "-‐‒–—―−ー"
# After the number: not more digits, and not the rest of a date ("order 2026-03-05", "注文2026年").
_ORDER_END = r"(?![0-9]|[-/.][0-9]|[年月日])"
_ORDER_KR = _compile(rf"(?<![A-Za-z0-9])KR(?P<sep>{_SP}?[{_DASHES}]{_SP}?|{_SP})?(?P<num>[0-9]{{4,12}})(?![0-9])")
_ORDER_EN = _compile(
    rf"(?<![A-Za-z])orders?(?:{_SP}{{1,2}}(?:number|num\.?|no\.?|id|ref(?:erence)?)|{_SP}?no\.)?"
    rf"{_SP}{{0,2}}(?:is|was|[:=])?{_SP}{{0,2}}(?:#{_SP}?)?(?P<num>[0-9]{{4,12}}){_ORDER_END}"
)
_ORDER_JA = _compile(
    r"(?:注文|オーダー|受注)(?:番号|No\.?|ID|#|ナンバー)?"
    rf"{_SP}{{0,2}}(?:は|が|[:=])?{_SP}{{0,2}}[「『(\[]?{_SP}{{0,2}}(?:#{_SP}?)?(?P<num>[0-9]{{4,12}}){_ORDER_END}"
)
_ORDER_HASH = _compile(rf"(?<![A-Za-z0-9&#])#{_SP}?(?P<num>[0-9]{{4,12}}){_ORDER_END}")
# "Apt #1204", "Suite #300": an address, not an order.
_ADDRESS_BEFORE_HASH = _compile(r"(?<![A-Za-z])(?:apt|apartment|suite|ste|unit|room|rm|bldg|building|floor|box)\.?[ \t]{0,2}$")


def _order_kr(m: re.Match, ctx: _Context) -> _Candidate | None:
    sep = m["sep"]
    if sep is not None and not sep.strip() and m[0][:2] != "KR":
        return None  # "kr 1000" is Scandinavian kronor; "KR 10454" is ours
    number = "KR" + ("-" if sep is not None else "") + m["num"]
    return _Candidate(m.start(), m.end(), "order", {"number": number})


def _order_marked(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _Candidate(m.start("num"), m.end("num"), "order", {"number": m["num"]})


def _order_hash(m: re.Match, ctx: _Context) -> _Candidate | None:
    if _ADDRESS_BEFORE_HASH.search(ctx.folded, max(0, m.start() - 16), m.start()):
        return None
    return _order_marked(m, ctx)


# --- Stripe ids ----------------------------------------------------------------------------------

_STRIPE_OBJECTS = {
    "ch": "charge", "py": "payment", "pi": "payment_intent", "in": "invoice", "sub": "subscription",
    "re": "refund", "pyr": "refund", "cus": "customer", "dp": "dispute", "du": "dispute",
    "cs": "checkout_session", "evt": "event", "pm": "payment_method", "seti": "setup_intent",
    "si": "subscription_item", "src": "source",
    "txn": "balance_transaction", "po": "payout", "tr": "transfer", "ii": "invoiceitem",
    "cn": "credit_note",
}
# Case-sensitive: Stripe writes its prefixes in lower case. "pi_..._secret_..." yields the pi_ id.
_STRIPE_ID = _compile(
    rf"(?<![A-Za-z0-9_])(?P<prefix>{_alternation(_STRIPE_OBJECTS)})_(?:(?:test|live)_)?(?P<body>[A-Za-z0-9]{{8,100}})(?![A-Za-z0-9])",
    ignore_case=False,
)


def _stripe_id(m: re.Match, ctx: _Context) -> _Candidate | None:
    body = m["body"]
    # Stripe's ids are random mixed-case base62; "in_progress" and "re_download" are words.
    if not (any(c.isdigit() for c in body) or (any(c.isupper() for c in body) and any(c.islower() for c in body))):
        return None
    return _Candidate(m.start(), m.end(), "stripe_id", {"id": m[0], "object": _STRIPE_OBJECTS[m["prefix"]]})


# --- card last four ------------------------------------------------------------------------------

_LAST4_END = r"(?![0-9]|[.,][0-9])"
_CARD_ENDING = _compile(
    rf"(?<![A-Za-z])end(?:s|ing|ed)?(?:{_SP}{{1,2}}(?:in|with))?{_SP}{{0,2}}(?:[:#\-]{_SP}{{0,2}})?(?P<d>[0-9]{{4}}){_LAST4_END}"
)
_CARD_LAST_FOUR = _compile(
    rf"(?<![A-Za-z])last{_SP}?(?:4|four)(?:{_SP}{{1,2}}digits?)?"
    rf"(?:{_SP}{{1,2}}of{_SP}{{1,2}}(?:my|the){_SP}{{1,2}}card)?(?:{_SP}{{1,2}}(?:are|is|were))?"
    rf"{_SP}{{0,2}}(?:[:=\-]{_SP}{{0,2}})?(?P<d>[0-9]{{4}}){_LAST4_END}"
)
_MASK = "[*•●·xX]"
# "**** 4242", "•••• •••• •••• 4242", "xxxx-xxxx-xxxx-4242": separators are required between the
# groups of masks, so the engine has one way to read a run of them.
_CARD_MASKED = _compile(
    rf"(?<![A-Za-z0-9*•●·]){_MASK}{{2,}}(?:[ \t\-]{_MASK}{{2,}}){{0,3}}[ \t\-]?(?P<d>[0-9]{{4}}){_LAST4_END}",
    ignore_case=False,
)
_CARD_JA = _compile(
    rf"(?:(?:下|末尾|最後の){_SP}?(?:4|四){_SP}?(?:桁|ケタ|けた)目?|末尾(?:の番号)?)"
    rf"{_SP}{{0,2}}(?:は|が|[:=])?{_SP}{{0,2}}[「『(\[]?{_SP}{{0,2}}(?P<d>[0-9]{{4}}){_LAST4_END}"
)
_CARD_JA_ENDS = _compile(rf"(?<![0-9])(?P<d>[0-9]{{4}}){_SP}?で終わ")
_CARD_WORD_BEFORE = _compile(r"card|visa|master|amex|american express|jcb|discover|diners|カード|クレカ")


def _card(m: re.Match, ctx: _Context) -> _Candidate | None:
    return _Candidate(m.start("d"), m.end("d"), "card_last4", {"last4": m["d"]})


def _card_ending(m: re.Match, ctx: _Context) -> _Candidate | None:
    # "My plan ending in 2026" is a year; "card ending in 2019" is a card.
    if 1900 <= int(m["d"]) <= 2099 and not _CARD_WORD_BEFORE.search(ctx.folded, max(0, m.start() - 40), m.start()):
        return None
    return _card(m, ctx)


# --- putting it together -------------------------------------------------------------------------

_FINDERS: tuple[tuple[re.Pattern, _Finder], ...] = (
    (_STRIPE_ID, _stripe_id),
    (_ORDER_KR, _order_kr),
    (_ORDER_EN, _order_marked),
    (_ORDER_JA, _order_marked),
    (_ORDER_HASH, _order_hash),
    (_CARD_ENDING, _card_ending),
    (_CARD_LAST_FOUR, _card),
    (_CARD_MASKED, _card),
    (_CARD_JA, _card),
    (_CARD_JA_ENDS, _card),
    (_MONEY_PREFIX, _money_prefix),
    (_MONEY_SUFFIX, _money_suffix),
    (_MONEY_KANJI, _money_kanji),
    (_MONEY_BARE, _money_bare),
    (_DATE_ISO, _date_iso),
    (_DATE_JA, _date_ja),
    (_DATE_SLASH, _date_slash),
    (_DATE_MONTH_DAY, _date_named_month),
    (_DATE_DAY_MONTH, _date_named_month),
    (_DATE_RELATIVE_EN, _date_relative_en),
    (_DATE_WEEKDAY_EN, _date_weekday_en),
    (_DATE_AGO_EN, _date_ago_en),
    (_DATE_RELATIVE_JA, _date_relative_ja),
    (_DATE_WEEKDAY_JA, _date_weekday_ja),
    (_DATE_AGO_JA, _date_ago_ja),
)


def _today(now: dt.datetime, tz: str) -> dt.date:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        zone = _UTC  # an unknown zone name reads as UTC rather than failing the message
    if now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)  # naive datetimes are UTC, as Django stores them
    return now.astimezone(zone).date()


def _candidates(ctx: _Context) -> Iterator[_Candidate]:
    for pattern, finder in _FINDERS:
        for match in pattern.finditer(ctx.folded):
            found = finder(match, ctx)
            if found is not None and found.end > found.start:
                yield found


def extract(text: str, *, now: dt.datetime, tz: str = "UTC") -> list[Entity]:
    """All entities, in order of position; relative dates resolved against `now` in `tz`."""
    if not isinstance(text, str) or not text:
        return []
    folded, starts, ends = _fold(text)
    ctx = _Context(folded=folded, today=_today(now, tz))

    # Overlaps: the longest candidate wins, then the more specific kind, then the earlier.
    ranked = sorted(_candidates(ctx), key=lambda c: (c.start - c.end, _KIND_RANK[c.kind], c.start))
    taken = bytearray(len(folded))
    kept: list[_Candidate] = []
    for cand in ranked:
        if taken.find(1, cand.start, cand.end) == -1:
            taken[cand.start:cand.end] = b"\x01" * (cand.end - cand.start)
            kept.append(cand)

    entities: list[Entity] = []
    for cand in sorted(kept, key=lambda c: c.start):
        start, end = (cand.start, cand.end) if starts is None else (starts[cand.start], ends[cand.end - 1])
        if cand.kind == _BLOCKER or (entities and start < entities[-1].end):
            continue  # a blocker; or both came from one character NFKC expanded ("㏠" is "1日")
        value = dict(cand.value)
        if cand.kind == "order":
            value["number"] = value["number"].upper()
        entities.append(Entity(cand.kind, text[start:end], start, end, value))
    return entities
