"""Money is integer minor units plus a currency. Formatting goes through babel."""

from decimal import Decimal

from babel.numbers import format_currency

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


def format_money(amount: int | None, currency: str, locale: str = "en_US") -> str:
    """¥1,000 for 1000 JPY; $10.00 for 1000 USD."""
    if amount is None or not currency:
        return "—"
    digits = decimals(currency)
    pattern = None
    if digits == 0:
        pattern = "¤#,##0"
    return format_currency(
        to_major(amount, currency), currency.upper(), locale=locale, format=pattern, currency_digits=digits != 0
    )
