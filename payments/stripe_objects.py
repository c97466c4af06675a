"""Reading Stripe objects, once: references and times, what a charge can still refund, how its
payment method is called, a subscription's current period (since API 2025-03-31 it lives on the
items), and what a plan is called ("Tea club (¥1,500/month)"). The actions, the selectors, the
panel and the timeline all read Stripe's shapes through these, so an API change is met here.

Functions take Stripe's dicts (as mirrored or as the API returned them); `refundable` also
takes a mirrored Charge row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from django.utils.translation import gettext as _, gettext_lazy, pgettext

from . import stripe_words
from .models import Price, Product
from .money import format_money


def ref(value: Any) -> str:
    """The id of a reference that may be an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""  # anything else is kept, so the mirror's shape check can name it


def ts(value: Any) -> dt.datetime | None:
    """A Stripe time stamp (seconds) as an aware UTC datetime; None for none."""
    if value in (None, "", 0) or isinstance(value, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _field(obj, name: str):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def refundable(charge) -> int:
    """What can still be refunded: nothing of a failed or uncaptured charge; else the amount
    less what was refunded (Stripe counts a released, uncaptured part as refunded), never
    above what was captured (old API versions don't say: a captured charge captured it all)."""
    if _field(charge, "status") == "failed" or _field(charge, "captured") is False:
        return 0
    amount = int(_field(charge, "amount") or 0)
    captured = _field(charge, "amount_captured")
    captured = amount if captured is None else int(captured)
    return max(0, min(amount - int(_field(charge, "amount_refunded") or 0), captured))


# How a preview names what was paid with, other than a card ("to Misaki Sato's konbini account").
_ACCOUNTS = {
    "konbini": gettext_lazy("konbini account"),
    "customer_balance": gettext_lazy("customer balance account"),
    "paypay": gettext_lazy("paypay account"),
    "link": gettext_lazy("link account"),
    "paypal": gettext_lazy("paypal account"),
}


# Stripe's card brands as the card says them (`brand` on a payment method, a source's own words).
_BRANDS = {
    "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "american_express": "American Express",
    "jcb": "JCB", "diners": "Diners Club", "discover": "Discover", "unionpay": "UnionPay",
    "cartes_bancaires": "Cartes Bancaires", "eftpos_au": "eftpos Australia", "interac": "Interac", "link": "Link",
}


def card_details(charge: dict) -> dict:
    """The card a charge was paid with: `payment_method_details.card`, or an old charge's card
    `source`; {} when it wasn't a card."""
    details = charge.get("payment_method_details") or {}
    if details.get("type") == "card":
        return details.get("card") or {}
    source = charge.get("source")
    if not details.get("type") and isinstance(source, dict) and source.get("object") == "card":
        return source
    return {}


def card_brand(card: dict) -> str:
    brand = card.get("brand") or ""
    return _BRANDS.get(brand.lower().replace(" ", "_"), brand.replace("_", " ").title()) if brand else ""


def card_label(charge: dict) -> str:
    """How the payment page, the panel beside a ticket and the refund preview name the card:
    "Visa ending 5556", "Apple Pay (Visa ending 5556)" through a wallet, in the reader's
    language; "" when the charge wasn't paid by card."""
    card = card_details(charge)
    if not card:
        return ""
    brand, last4 = card_brand(card), card.get("last4") or ""
    if brand and last4:
        said = _("%(brand)s ending %(last4)s") % {"brand": brand, "last4": last4}
    elif last4:
        said = _("card ending %(last4)s") % {"last4": last4}
    else:
        said = brand or pgettext("payment method", "card")
    wallet = (card.get("wallet") or {}).get("type") if isinstance(card.get("wallet"), dict) else ""
    if wallet:
        return pgettext("a card in a wallet", "%(wallet)s (%(card)s)") % {
            "wallet": stripe_words.label("card.wallet", wallet), "card": said}
    return said


def payment_method_label(charge: dict) -> str:
    """"Visa ending 4242", "card", "konbini account" ... as the charge says it was paid, in the
    reader's language; a card as card_label says it."""
    details = charge.get("payment_method_details") or {}
    if details.get("type") == "card":
        return card_label(charge)
    if details.get("type"):
        kind = details["type"]
        known = _ACCOUNTS.get(kind)
        return str(known) if known is not None else _("%(type)s account") % {"type": kind.replace("_", " ")}
    if card_details(charge):
        return card_label(charge)
    return _("payment method")


@dataclass(frozen=True)
class PaymentFacts:
    """What the payment page says of a charge, read from Stripe's shape once. A figure Stripe
    did not give (the fee and net before the balance transaction is known) is None, never a guess."""

    card: str  # card_label
    method: str  # payment_method_label
    brand: str
    last4: str
    wallet: str  # Stripe's wallet type ("apple_pay"), "" for none
    country: str  # the card's country (ISO code)
    funding: str
    outcome_type: str
    network_status: str
    seller_message: str
    risk_level: str
    risk_score: int | None
    three_d_secure: str  # the result ("authenticated"), "" when 3-D Secure did not run
    three_d_secure_version: str
    fee: int | None  # from the balance transaction, in its currency
    net: int | None
    balance_currency: str
    balance_transaction: str  # its id when Stripe gave only the id
    receipt_number: str
    receipt_url: str
    receipt_email: str
    description: str
    metadata: dict


def payment_facts(charge: dict) -> PaymentFacts:
    card = card_details(charge)
    outcome = charge.get("outcome") if isinstance(charge.get("outcome"), dict) else {}
    secure = card.get("three_d_secure") if isinstance(card.get("three_d_secure"), dict) else {}
    wallet = card.get("wallet") if isinstance(card.get("wallet"), dict) else {}
    balance = charge.get("balance_transaction")
    expanded = isinstance(balance, dict) and isinstance(balance.get("fee"), int) and isinstance(balance.get("net"), int)
    score = outcome.get("risk_score")
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), dict) else {}
    return PaymentFacts(
        card=card_label(charge), method=payment_method_label(charge), brand=card_brand(card),
        last4=str(card.get("last4") or ""), wallet=str(wallet.get("type") or ""),
        country=str(card.get("country") or ""), funding=str(card.get("funding") or ""),
        outcome_type=str(outcome.get("type") or ""), network_status=str(outcome.get("network_status") or ""),
        seller_message=str(outcome.get("seller_message") or ""), risk_level=str(outcome.get("risk_level") or ""),
        risk_score=score if isinstance(score, int) and not isinstance(score, bool) else None,
        three_d_secure=str(secure.get("result") or ""), three_d_secure_version=str(secure.get("version") or ""),
        fee=balance["fee"] if expanded else None, net=balance["net"] if expanded else None,
        balance_currency=str(balance.get("currency") or "") if expanded else "",
        balance_transaction=ref(balance) if not expanded and isinstance(balance, (str, dict)) else "",
        receipt_number=str(charge.get("receipt_number") or ""), receipt_url=str(charge.get("receipt_url") or ""),
        receipt_email=str(charge.get("receipt_email") or ""), description=str(charge.get("description") or ""),
        metadata=metadata,
    )


def subscription_period(subscription: dict) -> tuple[int | None, int | None]:
    """(start, end) of the current period in seconds; since API 2025-03-31 it lives on the items."""
    start, end = subscription.get("current_period_start"), subscription.get("current_period_end")
    if start is None or end is None:
        items = (subscription.get("items") or {}).get("data") or []
        starts = [i["current_period_start"] for i in items if i.get("current_period_start")]
        ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
        start = start if start is not None else (min(starts) if starts else None)
        end = end if end is not None else (max(ends) if ends else None)
    return (int(start) if start else None, int(end) if end else None)


# --- plans ---------------------------------------------------------------------------------------


def item_prices(subscription: dict) -> list[dict]:
    """The price of each item as embedded (old API versions say `plan`; an id becomes {"id": id}).
    A subscription without items (very old versions) has its one `plan`."""
    items = ((subscription.get("items") or {}).get("data")) or []
    prices = [i.get("price") or i.get("plan") or {} for i in items]
    if not prices and subscription.get("plan"):
        prices = [subscription["plan"]]
    return [p if isinstance(p, dict) else {"id": p} for p in prices if p]


def plan_text(name: str, amount: int | None, currency: str, interval: str) -> str:
    """Tea club (¥1,500/month) / Tea club(¥1,500/月): a plan's name with its price, when the price is known."""
    if amount is None or not currency:
        return name
    facts = {"name": name, "price": format_money(amount, currency),
             "interval": stripe_words.label("price.interval", interval)}
    if interval:
        return pgettext("plan with its price", "%(name)s (%(price)s/%(interval)s)") % facts
    return pgettext("plan with its price", "%(name)s (%(price)s)") % facts


class Plans:
    """What prices are called, read from the mirror in two queries for all of them (the prices,
    then their products). One rule for a name: the product's name, else the price's nickname,
    else an old plan's own name, else the price id."""

    def __init__(self, prices: Iterable[dict]):
        prices = list(prices)
        ids = {p.get("id") for p in prices if p.get("id")}
        self._rows = {row.id: row for row in Price.objects.filter(pk__in=ids).only(
            "id", "product", "nickname", "unit_amount", "currency", "recurring_interval")}
        products = {ref(p.get("product")) for p in prices} | {row.product for row in self._rows.values()}
        self._products = dict(Product.objects.filter(pk__in=[p for p in products if p]).values_list("id", "name"))

    @classmethod
    def of(cls, subscriptions: Iterable[dict]) -> Plans:
        return cls(price for sub in subscriptions for price in item_prices(sub))

    def name(self, price: dict) -> str:
        row = self._rows.get(price.get("id") or "")
        product = price.get("product")
        return ((product.get("name") if isinstance(product, dict) else "")
                or self._products.get(ref(product) or (row.product if row else ""), "")
                or (row.nickname if row else "") or price.get("nickname") or price.get("name")
                or price.get("id") or pgettext("a plan with no name", "plan"))

    def facts(self, price: dict) -> tuple[str, int | None, str, str]:
        """(name, unit amount in minor units, currency, interval), the mirror's copy first."""
        row = self._rows.get(price.get("id") or "")
        amount = row.unit_amount if row and row.unit_amount is not None else price.get(
            "unit_amount", price.get("amount"))  # old plans say `amount`
        currency = (row.currency if row else "") or price.get("currency") or ""
        interval = ((row.recurring_interval if row else "") or (price.get("recurring") or {}).get("interval")
                    or price.get("interval") or "")
        return self.name(price), amount, currency, interval

    def label(self, price: dict) -> str:
        return plan_text(*self.facts(price))

    def subscription_label(self, subscription: dict) -> str:
        """Every item's plan, with its price: "Tea club (¥1,500/month), Gift wrap (¥300/month)"."""
        return ", ".join(self.label(p) for p in item_prices(subscription))

    def subscription_name(self, subscription: dict) -> str:
        """Every item's plan by name only: "Tea club"."""
        return ", ".join(dict.fromkeys(self.name(p) for p in item_prices(subscription)))


def plan_label(subscription: dict) -> str:
    return Plans.of([subscription]).subscription_label(subscription)


def plan_facts(subscription: dict) -> list[list]:
    """Every item's [name, unit amount, currency, interval], to keep (JSON) and say later in
    the reader's language with plan_facts_text."""
    plans = Plans.of([subscription])
    return [list(plans.facts(p)) for p in item_prices(subscription)]


def plan_facts_text(facts: list) -> str:
    """What plan_facts kept, said now: "Tea club (¥1,500/month)" / 「Tea club（¥1,500/月）」."""
    return ", ".join(plan_text(*f) for f in facts if isinstance(f, (list, tuple)) and len(f) == 4)


def plan_name(subscription: dict) -> str:
    return Plans.of([subscription]).subscription_name(subscription)


def price_label(price: dict | str) -> str:
    """One price (embedded, or an id the mirror may know) as "Tea club (¥1,500/month)"."""
    price = price if isinstance(price, dict) else {"id": price}
    if set(price) == {"id"}:  # only an id: the mirror's copy says more
        price = Price.objects.filter(pk=price["id"]).values_list("data", flat=True).first() or price
    return Plans([price]).label(price)
