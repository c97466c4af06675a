"""Money is integer minor units plus a currency. Formatting goes through babel.

The rules (Stripe's zero- and three-decimal lists, the symbols a Japanese reader expects) live in
common.money, which tickets use too; payments adds what only Stripe amounts need."""

from decimal import Decimal

from common.money import SYMBOLS, THREE_DECIMAL, ZERO_DECIMAL, decimals, format_money  # noqa: F401


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(int(amount)).scaleb(-decimals(currency))
