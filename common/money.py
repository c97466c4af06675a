"""Money in the reader's language, for apps that may not import payments (tickets' thread
says "refunded ¥2,500"). The same rules as payments.money.format_money: minor units plus a
currency, Stripe's zero- and three-decimal lists, half-width ¥ and US$ for Japanese readers."""

from __future__ import annotations

import functools
from decimal import Decimal

from babel.numbers import format_currency

from .l10n import babel_locale

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
SYMBOLS = {"ja": {"JPY": ("￥", "¥"), "USD": ("$", "US$")}}


def decimals(currency: str) -> int:
    c = (currency or "").lower()
    return 0 if c in ZERO_DECIMAL else 3 if c in THREE_DECIMAL else 2


def format_money(amount, currency: str, locale: str | None = None) -> str:
    """¥1,000 for 1000 JPY; $10.00 (English) or US$10.00 (Japanese) for 1000 USD; "—" unknown."""
    if amount is None or not currency or isinstance(amount, bool):
        return "—"
    try:
        amount = int(amount)
    except (TypeError, ValueError):
        return "—"
    return _format(amount, currency.upper(), locale or babel_locale())


@functools.lru_cache(maxsize=8192)  # babel's formatting is the slow part of a money column
def _format(amount: int, currency: str, locale: str) -> str:
    digits = decimals(currency)
    text = format_currency(Decimal(amount).scaleb(-digits), currency, locale=locale,
                           format="¤#,##0" if digits == 0 else None, currency_digits=digits != 0)
    swap = SYMBOLS.get(locale.split("_")[0], {}).get(currency)
    if swap and swap[0] in text and swap[1] not in text:
        text = text.replace(swap[0], swap[1], 1)
    return text
