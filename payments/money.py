"""Money is integer minor units plus a currency. Formatting goes through babel."""

import functools
from decimal import Decimal

from babel.numbers import format_currency

from common.l10n import babel_locale

# Stripe's own lists (they differ from ISO 4217 for a few currencies).
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())


def decimals(currency: str) -> int:
    c = (currency or "").lower()
    if c in ZERO_DECIMAL:
        return 0
    if c in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(int(amount)).scaleb(-decimals(currency))


# What a reader of each language expects to see where babel's symbol would mislead: Japanese
# business writing uses the half-width ¥ (babel gives the full-width ￥), and a bare "$" beside
# yen amounts is ambiguous, so dollars say which dollar.
SYMBOLS = {
    "ja": {"JPY": ("￥", "¥"), "USD": ("$", "US$")},
}


def format_money(amount: int | None, currency: str, locale: str | None = None) -> str:
    """¥1,000 for 1000 JPY; $10.00 (English) or US$10.00 (Japanese) for 1000 USD.
    The locale is the reader's (Django's active language) unless one is given."""
    if amount is None or not currency:
        return "—"
    return _format(int(amount), currency.upper(), locale or babel_locale())


@functools.lru_cache(maxsize=8192)  # babel's formatting is the slow part of a money column
def _format(amount: int, currency: str, locale: str) -> str:
    digits = decimals(currency)
    pattern = "¤#,##0" if digits == 0 else None
    text = format_currency(to_major(amount, currency), currency, locale=locale, format=pattern,
                           currency_digits=digits != 0)
    swap = SYMBOLS.get(locale.split("_")[0], {}).get(currency)
    if swap and swap[0] in text and swap[1] not in text:
        text = text.replace(swap[0], swap[1], 1)
    return text
