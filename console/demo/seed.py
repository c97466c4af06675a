"""The demo's shop, seeded through the real path.

Kissa Roasters sells coffee and tea to shoppers in the US (USD) and Japan (JPY). `seed`
builds its Stripe account in localstripe with the SDK (customers, products, plans,
payments that succeed or are declined, refunds, subscriptions, invoices); localstripe
sends its own signed events to the console's webhook. What localstripe cannot send
(charge and refund events, disputes, early fraud warnings, prices, subscription updates)
is posted to the same webhook as signed, Stripe-shaped events built on Stripe's example
objects (payments.samples). Nothing is written into the mirror directly: it fills from
the webhook, as in production.

Content is deterministic for a given `seed` number (names, baskets, which payment fails or
is disputed); ids and timestamps are whatever localstripe and the clock give.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable

import requests
import stripe

from payments import samples

LOCALSTRIPE_API_VERSION = "2017-08-15"
# What localstripe sends (localstripe/resources.py). While seeding, its deleted-subscription
# events are held back: the demo posts Stripe's fuller version (with cancellation_details).
LOCALSTRIPE_EVENT_TYPES = frozenset("""
    balance.available customer.created customer.updated customer.deleted customer.source.created
    customer.subscription.created customer.subscription.deleted invoice.created invoice.payment_succeeded
    invoice.payment_failed payment_intent.succeeded payment_intent.payment_failed plan.created
    product.created payout.created payout.updated payout.canceled payout.paid payout.failed
""".split())
HELD_BACK = frozenset({"customer.subscription.deleted"})
STATEMENT_DESCRIPTOR = "KISSA ROASTERS"

# --- who buys ---------------------------------------------------------------------

EN_NAMES = [
    ("Emma", "Johnson"), ("Liam", "Carter"), ("Olivia", "Bennett"), ("Noah", "Patel"), ("Ava", "Thompson"),
    ("Ethan", "Brooks"), ("Sophia", "Nguyen"), ("Mason", "Reed"), ("Isabella", "Garcia"), ("Lucas", "Murphy"),
    ("Mia", "Campbell"), ("James", "O'Connor"), ("Charlotte", "Hughes"), ("Benjamin", "Wright"),
    ("Amelia", "Foster"), ("Henry", "Walsh"), ("Harper", "Collins"), ("Daniel", "Kim"), ("Grace", "Sullivan"),
    ("Jack", "Turner"), ("Chloe", "Ramirez"), ("Owen", "Fitzgerald"), ("Lily", "Chen"), ("Samuel", "Price"),
    ("Zoe", "Martinez"), ("Leo", "Anderson"), ("Hannah", "Schmidt"), ("Nathan", "Rivera"), ("Ella", "Morgan"),
    ("Caleb", "Hayes"),
]
# (family, given) in kanji, then in romaji for the email address.
JA_NAMES = [
    ("佐藤", "美咲", "sato", "misaki"), ("鈴木", "大翔", "suzuki", "hiroto"), ("高橋", "陽菜", "takahashi", "hina"),
    ("田中", "蓮", "tanaka", "ren"), ("伊藤", "結衣", "ito", "yui"), ("渡辺", "湊", "watanabe", "minato"),
    ("山本", "さくら", "yamamoto", "sakura"), ("中村", "悠真", "nakamura", "yuma"), ("小林", "葵", "kobayashi", "aoi"),
    ("加藤", "颯太", "kato", "sota"), ("吉田", "凛", "yoshida", "rin"), ("山田", "健太", "yamada", "kenta"),
    ("佐々木", "美月", "sasaki", "mizuki"), ("山口", "翔", "yamaguchi", "sho"), ("松本", "優奈", "matsumoto", "yuna"),
    ("井上", "拓海", "inoue", "takumi"), ("木村", "花", "kimura", "hana"), ("林", "大輔", "hayashi", "daisuke"),
    ("清水", "千尋", "shimizu", "chihiro"), ("森", "結菜", "mori", "yuna"), ("池田", "陽太", "ikeda", "yota"),
    ("橋本", "彩", "hashimoto", "aya"), ("石川", "奏太", "ishikawa", "sota"), ("前田", "愛", "maeda", "ai"),
    ("藤田", "誠", "fujita", "makoto"), ("岡田", "真由", "okada", "mayu"), ("後藤", "亮", "goto", "ryo"),
    ("長谷川", "玲奈", "hasegawa", "rena"), ("村上", "直樹", "murakami", "naoki"), ("近藤", "恵", "kondo", "megumi"),
]
US_ADDRESSES = [
    {"line1": "2231 SE Division St", "city": "Portland", "state": "OR", "postal_code": "97202"},
    {"line1": "148 Bedford Ave", "city": "Brooklyn", "state": "NY", "postal_code": "11211"},
    {"line1": "1600 S Congress Ave", "city": "Austin", "state": "TX", "postal_code": "78704"},
    {"line1": "3510 Fremont Ave N", "city": "Seattle", "state": "WA", "postal_code": "98103"},
    {"line1": "410 Broadway", "city": "Oakland", "state": "CA", "postal_code": "94607"},
    {"line1": "77 Beacon St", "city": "Boston", "state": "MA", "postal_code": "02108"},
]
JP_ADDRESSES = [
    {"line1": "神南1-2-3", "city": "渋谷区", "state": "東京都", "postal_code": "150-0041"},
    {"line1": "中京区河原町通三条上ル 4-5", "city": "京都市", "state": "京都府", "postal_code": "604-8005"},
    {"line1": "北区梅田2-6-20", "city": "大阪市", "state": "大阪府", "postal_code": "530-0001"},
    {"line1": "中央区天神1-8-1", "city": "福岡市", "state": "福岡県", "postal_code": "810-0001"},
    {"line1": "中央区北1条西2-1", "city": "札幌市", "state": "北海道", "postal_code": "060-0001"},
    {"line1": "中区栄3-5-12", "city": "名古屋市", "state": "愛知県", "postal_code": "460-0008"},
]
# Stripe's test card numbers (16 digits: localstripe wants exactly that), with what the
# card network would say about them.
CARDS = {
    "4242424242424242": ("visa", "US", "credit"),
    "5555555555554444": ("mastercard", "US", "credit"),
    "4000056655665556": ("visa", "US", "debit"),
    "2223003122003222": ("mastercard", "US", "credit"),
    "3566002020360505": ("jcb", "JP", "credit"),
    "4000003920000003": ("visa", "JP", "credit"),
}
US_CARDS = ["4242424242424242", "5555555555554444", "4000056655665556", "2223003122003222"]
JP_CARDS = ["3566002020360505", "4000003920000003"]
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined
DECLINES = [
    ("insufficient_funds", "Your card has insufficient funds."),
    ("generic_decline", "Your card was declined."),
    ("do_not_honor", "Your card was declined."),
    ("card_velocity_exceeded", "Your card has exceeded its balance or credit limit."),
]


@dataclass
class Shopper:
    name: str
    email: str
    phone: str
    currency: str
    country: str
    address: dict
    card: str
    locale: str
    customer_id: str = ""
    payment_method: str = ""


def make_shoppers(size: int, rng: random.Random) -> list[Shopper]:
    """`size` shoppers, a little under half of them in Japan; the first is 佐藤 美咲."""
    en, ja = list(EN_NAMES), list(JA_NAMES)
    rng.shuffle(en)
    ja = ja[:1] + rng.sample(ja[1:], len(ja) - 1)
    shoppers, used = [], Counter()
    for i in range(size):
        japanese = i == 0 or (i != 1 and rng.random() < 0.45)
        if japanese:
            family, given, family_r, given_r = ja[used["ja"] % len(ja)]
            round_ = used["ja"] // len(ja)
            used["ja"] += 1
            local = f"{given_r}.{family_r}" if i == 0 or rng.random() < 0.7 else f"{family_r}.{given_r}"
            shoppers.append(Shopper(
                name=f"{family} {given}",
                email=f"{local}{round_ or ''}@example.jp",
                phone=f"+81 90-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                currency="jpy", country="JP", address={**rng.choice(JP_ADDRESSES), "country": "JP"},
                card=rng.choice(JP_CARDS), locale="ja-JP",
            ))
        else:
            first, last = en[used["en"] % len(en)]
            round_ = used["en"] // len(en)
            used["en"] += 1
            clean = last.replace("'", "").lower()
            local = rng.choice([f"{first.lower()}.{clean}", f"{first[0].lower()}{clean}",
                                f"{first.lower()}{clean}{rng.randint(10, 99)}"])
            shoppers.append(Shopper(
                name=f"{first} {last}",
                email=f"{local}{round_ or ''}@{rng.choice(['example.com', 'example.org', 'example.net'])}",
                phone=f"+1 415-555-01{rng.randint(0, 99):02d}",
                currency="usd", country="US", address={**rng.choice(US_ADDRESSES), "country": "US"},
                card=rng.choice(US_CARDS), locale="en-US",
            ))
    return shoppers


# --- what they buy ------------------------------------------------------------------


@dataclass(frozen=True)
class Good:
    sku: str
    name: str
    currency: str
    amount: int  # minor units (cents; yen have none)


@dataclass(frozen=True)
class Plan:
    key: str
    product: str
    nickname: str
    currency: str
    amount: int
    interval: str


GOODS = [
    Good("yirgacheffe-340", "Ethiopia Yirgacheffe beans, 340 g", "usd", 1950),
    Good("huila-340", "Colombia Huila beans, 340 g", "usd", 1700),
    Good("espresso-1kg", "House espresso blend, 1 kg", "usd", 4200),
    Good("dripper", "Ceramic pour-over dripper", "usd", 3400),
    Good("kettle", "Gooseneck kettle", "usd", 8900),
    Good("filters-100", "Paper filters, 100 pack", "usd", 650),
    Good("mug", "Stoneware mug", "usd", 2400),
    Good("matcha-uji-30", "抹茶 宇治 30g", "jpy", 2700),
    Good("hojicha-100", "ほうじ茶 100g", "jpy", 1080),
    Good("dripbag-10", "ドリップバッグ 10袋", "jpy", 1620),
    Good("arita-yunomi", "有田焼 湯呑み", "jpy", 3960),
    Good("nambu-kyusu", "南部鉄器 急須", "jpy", 12800),
    Good("chasen", "茶筅 (百本立)", "jpy", 4400),
]
PLANS = [
    Plan("coffee-monthly", "Coffee subscription", "Coffee subscription — monthly", "usd", 1800, "month"),
    Plan("coffee-annual", "Coffee subscription", "Coffee subscription — annual", "usd", 19000, "year"),
    Plan("espresso-monthly", "Espresso lovers box", "Espresso lovers box — monthly", "usd", 2900, "month"),
    Plan("matcha-monthly", "抹茶 定期便", "抹茶 定期便 — 毎月", "jpy", 3200, "month"),
    Plan("wagashi-monthly", "季節の和菓子 定期便", "季節の和菓子 定期便 — 毎月", "jpy", 4500, "month"),
]
SHIPPING = {"usd": (3500, 500), "jpy": (5000, 650)}  # free from, else this much
# Every story once in the first four subscribers, then mostly happy ones.
SUBSCRIPTION_ROLES = ["active", "canceled", "incomplete", "cancel_at_period_end", "active",
                      "active", "active", "canceled", "active", "active"]
CANCELLATIONS = [
    ("too_expensive", "Prices went up with shipping; I'll buy beans locally for now."),
    ("unused", "Bags were piling up — we drink less coffee since the baby arrived."),
    ("switched_service", "別のお店の定期便に切り替えました。"),
    ("customer_service", "Two deliveries arrived late in a row."),
    ("missing_features", "毎月ではなく隔月のプランがあれば続けたいです。"),
]
DISPUTES = [  # (status, reason) in the order they are handed out
    ("needs_response", "product_not_received"),
    ("under_review", "fraudulent"),
    ("won", "duplicate"),
    ("warning_needs_response", "general"),
    ("lost", "product_unacceptable"),
    ("needs_response", "credit_not_processed"),
    ("needs_response", "fraudulent"),
    ("under_review", "product_not_received"),
    ("warning_closed", "general"),
]
EVIDENCE_DUE_DAYS = [2, 5, 9, 13, 17, 6, 11, 3]
NETWORK_REASON_CODES = {  # the networks' own codes for each Stripe reason
    "visa": {"fraudulent": "10.4", "product_not_received": "13.1", "duplicate": "12.6.1",
             "product_unacceptable": "13.3", "credit_not_processed": "13.6", "subscription_canceled": "13.2",
             "general": "13.3"},
    "mastercard": {"fraudulent": "4837", "product_not_received": "4855", "duplicate": "4834",
                   "product_unacceptable": "4853", "credit_not_processed": "4860", "subscription_canceled": "4841",
                   "general": "4853"},
}
FRAUD_TYPES = ["made_with_stolen_card", "unauthorized_use_of_card", "card_never_received", "misc"]


@dataclass
class Order:
    number: str
    lines: list[tuple[Good, int]]
    currency: str
    shipping: int

    @property
    def amount(self) -> int:
        return sum(g.amount * q for g, q in self.lines) + self.shipping

    @property
    def description(self) -> str:
        items = ", ".join(g.name + (f" ×{q}" if q > 1 else "") for g, q in self.lines)
        return f"Order {self.number}: {items}"


def make_order(number: int, currency: str, rng: random.Random) -> Order:
    goods = [g for g in GOODS if g.currency == currency]
    picked = rng.sample(goods, rng.choice([1, 1, 2, 2, 3]))
    lines = [(g, 2 if g.amount < 2000 and rng.random() < 0.3 else 1) for g in picked]
    subtotal = sum(g.amount * q for g, q in lines)
    free_from, fee = SHIPPING[currency]
    return Order(f"KR-{number}", lines, currency, 0 if subtotal >= free_from else fee)


# --- what happened to each payment --------------------------------------------------


@dataclass
class Payment:
    """A charge localstripe made, and the story the demo tells about it."""

    charge: dict  # localstripe's charge, as a dict
    shopper: Shopper
    card: str
    description: str
    metadata: dict
    invoice: str = ""
    order: Order | None = None
    refunds: list[tuple[dict, str, str]] = field(default_factory=list)  # (localstripe refund, reason, note)
    dispute: tuple[str, str] | None = None  # (status, reason)
    warning: str = ""  # early fraud warning type
    final: dict = field(default_factory=dict)  # the charge as the last posted event left it
    last_event_at: int = 0
    # How long ago the shopper really ordered: localstripe stamps everything "now", so a one-off
    # order's charge and refunds say when they happened in their own `created` (the events that
    # carry them are still sent now, so the mirror's ordering is untouched).
    age: int = 0

    @property
    def created(self) -> int:
        return self.charge["created"] - self.age

    @property
    def succeeded(self) -> bool:
        return self.charge["status"] == "succeeded"


@dataclass
class SeedReport:
    created: Counter = field(default_factory=Counter)  # what was made, by kind
    posted_events: list[str] = field(default_factory=list)  # ids of the signed events we posted
    expected_events: set[str] = field(default_factory=set)  # localstripe's delivered ones and ours
    statuses: Counter = field(default_factory=Counter)  # what became of them in the mirror
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, for -v 2


def _pick(key: str, n: int) -> int:
    """A stable choice in range(n) from a string (str hash() changes with every process)."""
    return zlib.crc32(key.encode()) % n


class DemoError(Exception):
    """The demo could not be seeded; the message says why, never a secret."""


# --- posting signed events --------------------------------------------------------


class WebhookPoster:
    """POSTs events to the console's webhook signed with `secret`, as Stripe would."""

    def __init__(self, url: str, secret: str):
        self.url, self.secret = url, secret
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def post(self, payload: dict) -> None:
        body, header = samples.sign(payload, self.secret)
        response = self._session().post(
            self.url, data=body, timeout=60,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        )
        if response.status_code != 200:
            try:
                reason = response.json().get("reason", "")
            except ValueError:
                reason = response.text[:200]
            raise DemoError(f"the webhook answered {response.status_code} to {payload['type']}: {reason}")

    def post_chains(self, chains: list[list[dict]], workers: int = 4) -> list[str]:
        """Post each chain's events in order; chains (different objects) go in parallel."""

        def run(chain: list[dict]) -> list[str]:
            for payload in chain:
                self.post(payload)
            return [p["id"] for p in chain]

        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            return [event_id for ids in pool.map(run, [c for c in chains if c]) for event_id in ids]
        finally:
            # On Ctrl-C or a refused event, post nothing more.
            pool.shutdown(wait=True, cancel_futures=True)


# --- Stripe-shaped objects for what localstripe cannot send ---------------------------


def _card_details(card: str, payment_method: dict | None) -> dict:
    brand, country, funding = CARDS.get(card, ("visa", "US", "credit"))
    pm_card = (payment_method or {}).get("card") or {}
    details = samples.sample("charge")["payment_method_details"]
    details["card"].update(
        brand=brand, country=country, funding=funding, network=brand, last4=card[-4:],
        exp_month=pm_card.get("exp_month", 12), exp_year=pm_card.get("exp_year", 2030),
        fingerprint=pm_card.get("fingerprint") or samples.new_id("fp")[3:19],
        wallet=None, amount_authorized=None,
    )
    return details


def charge_object(p: Payment, payment_method: dict | None = None) -> dict:
    c, s = p.charge, p.shopper
    ok = p.succeeded
    decline_code, message = (None, None) if ok else DECLINES[_pick(c["id"], len(DECLINES))]
    return samples.sample(
        "charge",
        id=c["id"], amount=c["amount"], amount_captured=c["amount"] if ok else 0, amount_refunded=0,
        balance_transaction=c.get("balance_transaction"),
        billing_details={"address": {**{k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")},
                                     **s.address},
                         "email": s.email, "name": s.name, "phone": s.phone, "tax_id": None},
        calculated_statement_descriptor=STATEMENT_DESCRIPTOR, captured=ok, created=p.created,
        currency=c["currency"], customer=c.get("customer"), description=p.description, disputed=False,
        failure_code=None if ok else "card_declined", failure_message=message, invoice=p.invoice or None,
        metadata=p.metadata,
        outcome={"advice_code": None if ok else "try_again_later", "network_advice_code": None,
                 "network_decline_code": None, "network_status": "approved_by_network" if ok else "declined_by_network",
                 "reason": decline_code, "risk_level": "normal", "risk_score": 20 + _pick(c["id"], 40),
                 "seller_message": "Payment complete." if ok else f"The bank returned the decline code `{decline_code}`.",
                 "type": "authorized" if ok else "issuer_declined"},
        paid=ok, payment_intent=c.get("payment_intent"), payment_method=c.get("payment_method"),
        payment_method_details=_card_details(p.card, payment_method), receipt_email=s.email,
        receipt_number=None, receipt_url=None, refunded=False,
        refunds={"object": "list", "data": [], "has_more": False, "total_count": 0,
                 "url": f"/v1/charges/{c['id']}/refunds"},
        shipping=None, source=None, statement_descriptor=None, status=c["status"], transfer_data=None,
    )


def refund_created(p: Payment, refund: dict) -> int:
    """A back-dated order's refund came a few hours to a few days after it, never in the future."""
    if not p.age:
        return refund["created"]
    later = 3600 + _pick(refund["id"], 4 * 86400)
    return min(p.created + later, refund["created"] - 3600)


def refund_object(p: Payment, refund: dict, reason: str, note: str, *, reference: str | None = None) -> dict:
    return samples.sample(
        "refund",
        id=refund["id"], amount=refund["amount"], balance_transaction=refund.get("balance_transaction"),
        charge=p.charge["id"], created=refund_created(p, refund), currency=refund["currency"],
        customer=p.charge.get("customer"), payment_intent=p.charge.get("payment_intent"),
        payment_method=p.charge.get("payment_method"), reason=reason, metadata={"note": note} if note else {},
        destination_details={"card": {"reference": reference, "reference_status": "available" if reference else "pending",
                                      "reference_type": "acquirer_reference_number", "type": "refund"},
                             "type": "card"},
        status="succeeded",
    )


def _end_of_day(ts: int, days: int) -> int:
    day = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).date() + dt.timedelta(days=days)
    return int(dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.timezone.utc).timestamp())


def dispute_object(p: Payment, *, id: str, status: str, reason: str, created: int, due_days: int,
                   evidence: dict | None = None) -> dict:
    brand = CARDS.get(p.card, ("visa",))[0]
    inquiry = status.startswith("warning_")
    base = samples.sample("dispute")
    base["evidence"].update(evidence or {})
    submitted = bool(evidence)
    return {
        **base,
        "id": id, "amount": p.charge["amount"], "currency": p.charge["currency"], "charge": p.charge["id"],
        "payment_intent": p.charge.get("payment_intent"), "created": created, "status": status, "reason": reason,
        "balance_transactions": [], "is_charge_refundable": inquiry, "metadata": {},
        "evidence_details": {"due_by": _end_of_day(created, due_days), "has_evidence": submitted,
                             "past_due": False, "submission_count": 1 if submitted else 0,
                             "enhanced_eligibility": {}},
        "payment_method_details": {"card": {"brand": brand, "case_type": "inquiry" if inquiry else "chargeback",
                                            "network_reason_code": NETWORK_REASON_CODES.get(brand, {}).get(reason),
                                            "network": brand},
                                   "type": "card"},
        "enhanced_eligibility_types": ["visa_compelling_evidence_3"] if (brand, reason) == ("visa", "fraudulent") else [],
    }


def evidence_for(p: Payment) -> dict:
    s = p.shopper
    jp = s.country == "JP"
    ship_day = dt.datetime.fromtimestamp(p.created, tz=dt.timezone.utc).date()
    return {
        "customer_name": s.name,
        "customer_email_address": s.email,
        "billing_address": ", ".join(v for v in s.address.values() if v),
        "product_description": p.description,
        "shipping_carrier": "ヤマト運輸" if jp else "USPS",
        "shipping_tracking_number": f"{_pick(p.charge['id'], 10**9):012d}" if jp
        else f"9400 1118 9922 {_pick(p.charge['id'], 10**8):08d}",
        "shipping_date": ship_day.isoformat(),
        "uncategorized_text": (
            "配達完了の記録があり、お客様からも受け取りのご連絡をいただいています。" if jp
            else "Carrier confirms delivery to the billing address; the customer emailed us on arrival."
        ),
    }


def price_object(*, id: str, product: str, currency: str, amount: int, nickname: str | None,
                 interval: str | None, created: int, lookup_key: str | None = None) -> dict:
    return samples.sample(
        "price",
        id=id, product=product, currency=currency, unit_amount=amount, unit_amount_decimal=str(amount),
        nickname=nickname, created=created, lookup_key=lookup_key, custom_unit_amount=None, transform_quantity=None,
        type="recurring" if interval else "one_time",
        recurring={"interval": interval, "interval_count": 1, "meter": None, "usage_type": "licensed",
                   "trial_period_days": None} if interval else None,
    )


def early_fraud_warning_object(p: Payment, *, id: str, fraud_type: str, actionable: bool, created: int) -> dict:
    return samples.sample(
        "radar.early_fraud_warning",
        id=id, charge=p.charge["id"], payment_intent=p.charge.get("payment_intent"),
        fraud_type=fraud_type, actionable=actionable, created=created,
    )


# --- the seeding itself -----------------------------------------------------------


def _d(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


# One-off orders are spread over this many days before today (subscriptions start today).
ORDER_HISTORY_DAYS = 120


class Seeder:
    """Builds the shop in localstripe, then tells the webhook what localstripe cannot."""

    def __init__(self, client: stripe.StripeClient, poster: WebhookPoster, *, localstripe_url: str,
                 webhook_id: str, size: int = 40, seed: int = 7, timeout: float = 90.0):
        if size < 2:
            raise DemoError("the demo needs at least 2 customers")
        self.client, self.poster, self.size = client, poster, size
        self.localstripe_url, self.webhook_id, self.timeout = localstripe_url, webhook_id, timeout
        self.rng = random.Random(seed)
        self.report = SeedReport()
        self.payments: list[Payment] = []
        self.payment_methods: dict[str, dict] = {}
        self.products: dict[str, str] = {}  # product name -> id
        self.plans: dict[str, dict] = {}  # plan key -> localstripe plan
        self.one_time_prices: list[dict] = []
        self.cancellations: list[tuple[str, str, str, str, int]] = []  # (subscription, role, feedback, comment, at)
        self.silent_intents: list[dict] = []  # payment intents localstripe made without an event
        self.failed_invoices: list[dict] = []  # first invoices the bank declined (no event from localstripe)
        self.dispute_due: list[int] = []  # days to answer each dispute, in the order they were opened
        self._order_no = 10400 + self.rng.randint(0, 80)

    # localstripe -------------------------------------------------------------------

    def _payment_method(self, shopper: Shopper, number: str) -> dict:
        pm = _d(self.client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": number, "exp_month": str(self.rng.randint(1, 12)),
                     "exp_year": str(self.rng.randint(2027, 2031)), "cvc": "123"},
            "billing_details": {"name": shopper.name, "email": shopper.email, "phone": shopper.phone},
        }))
        self.payment_methods[pm["id"]] = pm
        return pm

    def catalog(self) -> None:
        for good in GOODS:
            product = _d(self.client.v1.products.create(params={
                "name": good.name, "type": "good", "metadata": {"sku": good.sku},
                "statement_descriptor": STATEMENT_DESCRIPTOR,
            }))
            self.products[good.name] = product["id"]
            self.one_time_prices.append(price_object(
                id=samples.new_id("price"), product=product["id"], currency=good.currency, amount=good.amount,
                nickname=None, interval=None, created=product["created"], lookup_key=good.sku,
            ))
        for plan in PLANS:
            if plan.product not in self.products:
                product = _d(self.client.v1.products.create(params={"name": plan.product, "type": "service"}))
                self.products[plan.product] = product["id"]
            # A plan is a price in Stripe (one id for both): the subscription's items name it.
            self.plans[plan.key] = _d(self.client.v1.plans.create(params={
                "id": samples.new_id("price"), "product": self.products[plan.product], "amount": plan.amount,
                "currency": plan.currency, "interval": plan.interval, "nickname": plan.nickname,
                "metadata": {"lookup_key": plan.key},
            }))
        self.report.created["products"] = len(self.products)
        self.report.created["prices"] = len(self.one_time_prices) + len(self.plans)

    def customers(self, shoppers: list[Shopper]) -> None:
        for n, s in enumerate(shoppers):
            pm = self._payment_method(s, s.card)
            customer = _d(self.client.v1.customers.create(params={
                "name": s.name, "email": s.email, "phone": s.phone, "address": s.address,
                "preferred_locales": [s.locale], "payment_method": pm["id"],
                "invoice_settings": {"default_payment_method": pm["id"]},
                "metadata": {"shop_customer_id": f"C-{20310 + n * 7}", "signup_channel":
                             "line" if s.country == "JP" and n % 3 == 0 else "web"},
            }))
            s.customer_id, s.payment_method = customer["id"], pm["id"]
        self.report.created["customers"] = len(shoppers)

    def _order(self, s: Shopper, declined: bool, age: int = 0) -> None:
        self._order_no += self.rng.randint(1, 9)
        order = make_order(self._order_no, s.currency, self.rng)
        card = DECLINED_CARD if declined else s.card
        pm_id = self._payment_method(s, card)["id"] if declined else s.payment_method
        metadata = {"order_id": order.number, "items": str(sum(q for _, q in order.lines))}
        intent = self.client.v1.payment_intents.create(params={
            "amount": order.amount, "currency": order.currency, "customer": s.customer_id,
            "payment_method": pm_id, "metadata": metadata,
        })
        try:
            intent = self.client.v1.payment_intents.confirm(intent.id)
        except stripe.CardError:
            intent = self.client.v1.payment_intents.retrieve(intent.id)
        charge = _d(intent.latest_charge)
        self.payments.append(Payment(charge, s, card, order.description, metadata, order=order, age=age))
        self.report.created["payments_failed" if declined else "payments_succeeded"] += 1

    def orders(self, shoppers: list[Shopper]) -> None:
        counts = [1 + (self.rng.random() < 0.6) + (self.rng.random() < 0.25) for _ in shoppers]
        i = 0
        while sum(counts) < 10:  # enough payments, even for a tiny demo, to tell every story once
            counts[i % len(counts)] += 1
            i += 1
        plan = [(s, k) for s, n in zip(shoppers, counts) for k in range(n)]
        self.rng.shuffle(plan)  # shoppers order in turn, so order numbers rise with time across them
        declines = max(1, round(len(plan) * 0.1))
        declined_at = set(self.rng.sample(range(1, len(plan)), min(declines, len(plan) - 1)))
        for i, (s, _) in enumerate(plan):
            # Spread over the last ORDER_HISTORY_DAYS, oldest first; the newest a couple of hours ago.
            age = max(2 * 3600, ORDER_HISTORY_DAYS * 86400 * (len(plan) - i) // len(plan)
                      + self.rng.randint(0, 12 * 3600))
            if i in declined_at:
                self._order(s, declined=True, age=age)
                if self.rng.random() < 0.6:  # they tried again with their usual card, minutes later
                    self._order(s, declined=False, age=age - 300)
            else:
                self._order(s, declined=False, age=age)

    def subscriptions(self, shoppers: list[Shopper]) -> None:
        subscribers = shoppers[::2]
        drafts = 0
        for n, s in enumerate(subscribers):
            role = SUBSCRIPTION_ROLES[n % len(SUBSCRIPTION_ROLES)]
            options = [p for p in PLANS if p.currency == s.currency]
            plan = self.plans[options[n % len(options)].key]
            card = s.card
            if role == "incomplete":
                # A new card that the bank declines: the first invoice cannot be paid.
                card = DECLINED_CARD
                pm = self._payment_method(s, card)
                self.client.v1.customers.update(s.customer_id, params={
                    "invoice_settings": {"default_payment_method": pm["id"]}})
            sub = _d(self.client.v1.subscriptions.create(params={
                "customer": s.customer_id, "items": [{"plan": plan["id"]}],
                "metadata": {"plan_key": plan["metadata"]["lookup_key"]},
            }))
            invoice = _d(self.client.v1.invoices.retrieve(sub["latest_invoice"]))
            charge = invoice.get("charge")
            if role == "incomplete" and invoice.get("payment_intent"):
                self.silent_intents.append(_d(self.client.v1.payment_intents.retrieve(invoice["payment_intent"])))
                self.failed_invoices.append(invoice)
            if isinstance(charge, dict):
                desc = "Subscription creation"
                self.payments.append(Payment(charge, s, card, desc, {"subscription": sub["id"]}, invoice=invoice["id"]))
                self.report.created["payments_succeeded" if charge["status"] == "succeeded" else "payments_failed"] += 1
            self.report.created["invoices"] += 1
            if role in ("cancel_at_period_end", "canceled"):
                feedback, comment = CANCELLATIONS[(n // len(SUBSCRIPTION_ROLES) + n) % len(CANCELLATIONS)]
                if role == "canceled":
                    self.client.v1.subscriptions.cancel(sub["id"])
                else:
                    self.client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
                self.cancellations.append((sub["id"], role, feedback, comment, int(time.time())))
            elif role == "active" and drafts < 2:
                # Next period's invoice, still a draft: what support sees before a renewal.
                self.client.v1.invoices.create(params={"customer": s.customer_id, "subscription": sub["id"]})
                drafts += 1
                self.report.created["invoices"] += 1
            self.report.created[f"subscriptions_{role}"] += 1

    def outcomes(self) -> None:
        """Refunds in localstripe, and which payments are disputed or warned about."""
        pool = [p for p in self.payments if p.succeeded and not p.invoice]
        self.rng.shuffle(pool)
        n = len(pool)
        take = iter(pool)

        def next_payment() -> Payment | None:
            return next(take, None)

        for k in range(max(1, round(n * 0.06))):
            p = next_payment()
            if p:
                reason = ["requested_by_customer", "duplicate", "requested_by_customer"][k % 3]
                note = ["Customer changed their mind before shipping.", "Charged twice at checkout.",
                        "注文のキャンセル（発送前）"][k % 3]
                self._refund(p, None, reason, note)
        for k in range(max(1, round(n * 0.06))):
            p = next_payment()
            if p:
                # One item arrived damaged: refund that item (or a third of a single-item order).
                good, qty = self.rng.choice(p.order.lines)
                unit = 100 if p.charge["currency"] == "usd" else 10  # whole dollars, tens of yen
                amount = good.amount if (len(p.order.lines) > 1 or qty > 1) else p.charge["amount"] // 3 // unit * unit
                note = f"Arrived damaged: {good.name}" if p.shopper.country != "JP" else f"破損のため一部返金: {good.name}"
                self._refund(p, amount, "requested_by_customer", note)
        # A small shop gets one; from 20 payments on, one in every state the queue shows.
        for k in range(max(1, round(n * 0.07)) if n < 20 else len(DISPUTES)):
            p = next_payment()
            if p:
                p.dispute = DISPUTES[k % len(DISPUTES)]
        for k in range(max(1, round(n * 0.04))):
            p = next_payment()
            if p:
                p.warning = FRAUD_TYPES[k % len(FRAUD_TYPES)]
                if k % 3 == 1:  # refunded as fraudulent once the warning came in
                    self._refund(p, None, "fraudulent", "Refunded after an early fraud warning.")
                elif k % 3 == 2:  # the warning turned into a dispute
                    p.dispute = ("needs_response", "fraudulent")
        # One subscription payment disputed as canceled, when there are enough to spare.
        renewals = [p for p in self.payments if p.succeeded and p.invoice]
        if n >= 20 and renewals:
            self.rng.choice(renewals).dispute = ("needs_response", "subscription_canceled")

    def _refund(self, p: Payment, amount: int | None, reason: str, note: str) -> None:
        params = {"charge": p.charge["id"], "metadata": {"reason": reason, "note": note}}
        if amount:
            params["amount"] = amount
        refund = _d(self.client.v1.refunds.create(params=params))
        p.refunds.append((refund, reason, note))
        self.report.created["refunds_partial" if amount else "refunds_full"] += 1

    # the webhook -------------------------------------------------------------------

    def charge_chain(self, p: Payment) -> list[dict]:
        """charge.succeeded / charge.failed, then each refund as Stripe reports it."""
        obj = charge_object(p, self.payment_methods.get(p.charge.get("payment_method") or ""))
        chain = [samples.event("charge.succeeded" if p.succeeded else "charge.failed", obj,
                               created=p.charge["created"])]
        refunded = 0
        for refund, reason, note in p.refunds:
            before = {"amount_refunded": refunded, "refunded": refunded >= obj["amount"]}
            refunded += refund["amount"]
            pending = refund_object(p, refund, reason, note)
            obj = {**obj, "amount_refunded": refunded, "refunded": refunded >= obj["amount"],
                   "refunds": {**obj["refunds"], "data": [pending, *obj["refunds"]["data"]],
                               "total_count": obj["refunds"]["total_count"] + 1}}
            at = max(refund["created"], chain[-1]["created"])
            chain += [
                samples.event("refund.created", pending, created=at),
                samples.event("charge.refunded", obj, created=at, previous_attributes=before),
                # The acquirer reference number arrives a little later: charge.refund.updated.
                samples.event("charge.refund.updated",
                              refund_object(p, refund, reason, note, reference=f"7{_pick(refund['id'], 10**9):09d}{_pick(refund['id'][::-1], 10**9):09d}"),
                              created=at + 1,
                              previous_attributes={"destination_details": {"card": {"reference": None,
                                                                                    "reference_status": "pending"}}}),
            ]
        p.final, p.last_event_at = obj, chain[-1]["created"]
        return chain

    def dispute_chain(self, p: Payment, now: int) -> list[dict]:
        status, reason = p.dispute
        id_ = samples.new_id("dp")
        due = EVIDENCE_DUE_DAYS[_pick(id_, len(EVIDENCE_DUE_DAYS))]
        first = "warning_needs_response" if status.startswith("warning") else "needs_response"
        # Deadlines spread over the coming days: the first disputes due soonest (under a day, then two).
        due = min(due, 1 + len(self.dispute_due)) if len(self.dispute_due) < 2 else due
        self.dispute_due.append(due)
        # After everything the charge's own events said, so the charge update is the newest.
        at = max(now - 3, p.last_event_at + 1)
        opened = dispute_object(p, id=id_, status=first, reason=reason, created=at, due_days=due)
        charge = {**p.final, "disputed": True}
        chain = [
            samples.event("charge.dispute.created", opened, created=at),
            # Stripe's charge says disputed from now on.
            samples.event("charge.updated", charge, created=at, previous_attributes={"disputed": False}),
        ]
        if status in ("under_review", "won"):
            reviewed = dispute_object(p, id=id_, status="under_review", reason=reason, created=at,
                                      due_days=due, evidence=evidence_for(p))
            chain.append(samples.event("charge.dispute.updated", reviewed, created=at + 1,
                                       previous_attributes={"status": "needs_response"}))
        if status == "warning_closed":
            closed = dispute_object(p, id=id_, status=status, reason=reason, created=at, due_days=due)
            chain.append(samples.event("charge.dispute.closed", closed, created=at + 2,
                                       previous_attributes={"status": "warning_needs_response"}))
        if status in ("won", "lost"):
            closed = dispute_object(p, id=id_, status=status, reason=reason, created=at, due_days=due,
                                    evidence=evidence_for(p) if status == "won" else None)
            chain.append(samples.event("charge.dispute.closed", closed, created=at + 2,
                                       previous_attributes={"status": "under_review" if status == "won"
                                                            else "needs_response"}))
        return chain

    def warning_chain(self, p: Payment, now: int) -> list[dict]:
        id_ = samples.new_id("issfr")
        refunds = [r for r, reason, _ in p.refunds if reason == "fraudulent"]
        created = max(p.charge["created"], refunds[0]["created"] - 1) if refunds else max(now - 4, p.charge["created"] + 1)
        # When it happened, for the object: a refunded warning came before its (back-dated) refund;
        # an open one arrives now, weeks after an old order, as warnings do. Events go out now.
        when = max(p.created + 60, refund_created(p, refunds[0]) - 1800) if refunds and p.age else created
        chain = [samples.event("radar.early_fraud_warning.created",
                               early_fraud_warning_object(p, id=id_, fraud_type=p.warning, actionable=True,
                                                          created=when), created=created)]
        if refunds:  # refunded: nothing left to act on
            chain.append(samples.event(
                "radar.early_fraud_warning.updated",
                early_fraud_warning_object(p, id=id_, fraud_type=p.warning, actionable=False, created=when),
                created=refunds[0]["created"] + 1, previous_attributes={"actionable": True}))
        return chain

    def tell_the_webhook(self) -> None:
        prices = list(self.one_time_prices)
        for plan_key, plan in self.plans.items():
            spec = next(p for p in PLANS if p.key == plan_key)
            prices.append(price_object(id=plan["id"], product=plan["product"], currency=plan["currency"],
                                       amount=plan["amount"], nickname=spec.nickname, interval=spec.interval,
                                       created=plan["created"], lookup_key=spec.key))
        first = [[samples.event("price.created", price, created=price["created"])] for price in prices]
        first += [self.charge_chain(p) for p in self.payments]
        # localstripe does not announce an invoice's declined payment intent: post its own
        # object, in its own (older) API version, so the mirror fetches the intent as it is.
        first += [[samples.event("payment_intent.payment_failed", pi, api_version=LOCALSTRIPE_API_VERSION)]
                  for pi in self.silent_intents]
        self.report.posted_events += self.poster.post_chains(first)

        # Disputes and warnings name charges: post them once the charges are in the mirror.
        now = int(time.time())
        second = [self.dispute_chain(p, now) for p in self.payments if p.dispute]
        second += [self.warning_chain(p, now) for p in self.payments if p.warning]
        # A subscription's first payment declined: Stripe says invoice.payment_failed (the demo's
        # workflows make a billing ticket of it); localstripe says nothing, so it is posted here.
        second += [[samples.event("invoice.payment_failed",
                                  {**inv, "billing_reason": inv.get("billing_reason") or "subscription_create",
                                   "number": inv.get("number") or f"DEMO-{inv['id'][-6:].upper()}",
                                   "attempt_count": max(1, inv.get("attempt_count") or 0)},
                                  created=now - 2, api_version=LOCALSTRIPE_API_VERSION)]
                   for inv in self.failed_invoices]
        self.report.posted_events += self.poster.post_chains(second)
        self.tell_the_stand_in([event for chain in second for event in chain])
        self.report.created["disputes"] = len([p for p in self.payments if p.dispute])
        self.report.created["early_fraud_warnings"] = len([p for p in self.payments if p.warning])

    def tell_the_stand_in(self, events: list[dict]) -> None:
        """Disputes and fraud warnings exist at Stripe, not only in events: the stand-in beside
        localstripe learns each one's latest state, so the console can read, answer and accept them."""
        kinds = ("dispute", "radar.early_fraud_warning")
        latest = {}  # each object's last state, in the order of the events
        for event in events:
            if event["data"]["object"].get("object") in kinds:
                latest[event["data"]["object"]["id"]] = event["data"]["object"]
        objects = list(latest.values())
        if not objects:
            return
        response = requests.post(f"{self.localstripe_url}/_paydesk/objects", json=objects, timeout=30)
        if response.status_code != 200:
            raise DemoError(f"the Stripe stand-in answered {response.status_code} to the disputes")

    def settle(self) -> None:
        """Wait until the mirror has applied every event localstripe sent and we posted."""
        sent = {e.id for e in self.client.v1.events.list(params={"limit": 100}).auto_paging_iter()
                if e.type in LOCALSTRIPE_EVENT_TYPES - HELD_BACK}
        self.report.expected_events = sent | set(self.report.posted_events)
        self.report.statuses = wait_for_events(self.report.expected_events, timeout=self.timeout)

    def cancellation_events(self) -> None:
        """How each subscription was canceled, as Stripe tells it (localstripe has no
        cancellation_details, nor canceled_at): posted last, so that no fetch of the
        subscription from localstripe (for its earlier events) is newer than these."""
        if not self.cancellations:
            return
        # localstripe's own deleted events are held back by the registration; its deliveries
        # wait 1 s, so be sure they have passed before the webhook takes every type again.
        time.sleep(max(0.0, max(at for *_, at in self.cancellations) + 1.5 - time.time()))
        time.sleep(1 - time.time() % 1)  # a new second: later than anything the mirror fetched
        now = int(time.time())
        chains = []
        for sub_id, role, feedback, comment, at in self.cancellations:
            sub = _d(self.client.v1.subscriptions.retrieve(sub_id))
            details = {"comment": comment, "feedback": feedback, "reason": "cancellation_requested"}
            if role == "canceled":
                obj = {**sub, "canceled_at": sub.get("ended_at") or at, "cancellation_details": details}
                chains.append([samples.event("customer.subscription.deleted", obj, created=now)])
            else:
                obj = {**sub, "cancel_at": sub.get("current_period_end"), "canceled_at": at,
                       "cancellation_details": details}
                previous = {"cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
                            "cancellation_details": {"comment": None, "feedback": None, "reason": None}}
                chains.append([samples.event("customer.subscription.updated", obj, created=now,
                                             previous_attributes=previous)])
        posted = self.poster.post_chains(chains)
        self.report.posted_events += posted
        self.report.expected_events |= set(posted)
        self.report.statuses = event_statuses(self.report.expected_events)
        self.report.statuses["missing"] = len(self.report.expected_events) - sum(self.report.statuses.values())

    def run(self) -> SeedReport:
        started = lap = time.monotonic()
        register_webhook(self.localstripe_url, self.webhook_id, self.poster.url, self.poster.secret,
                         events=sorted(LOCALSTRIPE_EVENT_TYPES - HELD_BACK))
        shoppers = make_shoppers(self.size, self.rng)
        for name, step in [("catalog", self.catalog), ("customers", lambda: self.customers(shoppers)),
                           ("orders", lambda: self.orders(shoppers)),
                           ("subscriptions", lambda: self.subscriptions(shoppers)),
                           ("refunds", self.outcomes), ("signed events", self.tell_the_webhook),
                           ("waiting for the mirror", self.settle), ("cancellations", self.cancellation_events)]:
            step()
            now = time.monotonic()
            self.report.phases[name], lap = now - lap, now
        # From now on everything localstripe does reaches the console, as from Stripe.
        register_webhook(self.localstripe_url, self.webhook_id, self.poster.url, self.poster.secret)
        self.report.seconds = time.monotonic() - started
        return self.report


def register_webhook(localstripe_url: str, webhook_id: str, url: str, secret: str,
                     events: list[str] | None = None) -> None:
    """Point localstripe's webhook `webhook_id` at `url` (all event types, or only `events`)."""
    body = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = events
    response = requests.post(f"{localstripe_url}/_config/webhooks/{webhook_id}", json=body, timeout=10)
    if response.status_code != 200:
        raise DemoError(f"localstripe refused the webhook registration ({response.status_code})")


def seed(client: stripe.StripeClient, localstripe_url: str, webhook_url: str, secret: str, *,
         webhook_id: str = "paydesk-demo", size: int = 40, seed: int = 7, timeout: float = 90.0) -> SeedReport:
    """Seed the demo account in localstripe (`client`, `localstripe_url`) and through the
    webhook at `webhook_url`; return when the mirror has applied it all (or `timeout` passed).

    Registers localstripe's webhook `webhook_id` for `webhook_url` and leaves it registered.
    """
    poster = WebhookPoster(webhook_url, secret)
    try:
        return Seeder(client, poster, localstripe_url=localstripe_url, webhook_id=webhook_id, size=size,
                      seed=seed, timeout=timeout).run()
    except stripe.StripeError as exc:
        raise DemoError(f"localstripe refused a request: {exc.__class__.__name__}: {exc.user_message or exc}") from exc
    except requests.RequestException as exc:
        raise DemoError(f"could not reach the webhook: {exc.__class__.__name__}") from exc


# --- after seeding ------------------------------------------------------------------


def event_statuses(event_ids: Iterable[str]) -> Counter:
    from payments.models import WebhookEvent

    ids, counts = list(event_ids), Counter()
    for start in range(0, len(ids), 500):
        for status in WebhookEvent.objects.filter(id__in=ids[start : start + 500]).values_list("status", flat=True):
            counts[status] += 1
    return counts


def wait_for_events(event_ids: set[str], timeout: float = 60.0) -> Counter:
    """Wait until every event has reached the mirror and none is pending; return their statuses.

    Returns early with what arrived if `timeout` passes (the caller reports it).
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = event_statuses(event_ids)
        settled = sum(counts.values()) >= len(event_ids) and not counts.get("pending")
        if settled or time.monotonic() > deadline:
            counts["missing"] = len(event_ids) - sum(counts.values())
            return counts
        time.sleep(0.25)


def mirror_counts() -> dict[str, int]:
    from payments.mirror import KINDS

    return {name: kind.model.objects.count() for name, kind in KINDS.items()}


# --- people -------------------------------------------------------------------------

DEMO_USERS = [  # username, role (group), first and last name, the console's language and time zone
    ("agent", "agent", "Yui", "Nakamura", "", ""),
    ("finance", "finance", "Daniel", "Ortiz", "", ""),
    ("admin", "admin", "Priya", "Shah", "", ""),
    # A support agent of the Tokyo team: the console in Japanese, dates in Japan time.
    ("agent_ja", "agent", "Haruka", "Kimura", "ja", "Asia/Tokyo"),
]


def ensure_demo_users(password: str) -> list[str]:
    """One user per role, named after it, plus a Japanese-speaking agent; all with `password`;
    admin may also use Django admin. Preferences are set through the console's own actions."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import transaction

    from console import actions

    User = get_user_model()
    hashed = make_password(password)  # once: hashing is slow on purpose, and it is one password
    with transaction.atomic():
        for username, role, first, last, language, zone in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name = first, last
            user.email = f"{username.replace('_', '.')}@paydesk.localhost"
            user.is_staff = username == "admin"
            user.is_active = True
            user.password = hashed
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            actions.set_language(actor=user, user=user, language=language)
            actions.set_time_zone(actor=user, user=user, name=zone)
    return [u[0] for u in DEMO_USERS]
