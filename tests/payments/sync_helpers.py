"""Helpers for the backfill, reconcile and refetch tests: a small shop seeded at localstripe
through the SDK, and a tiny real HTTP proxy in front of localstripe that can answer a 429 or
a 5xx once, serve recorded Stripe-shaped lists of what localstripe lacks, and log requests."""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import requests

from tests import factories

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
NAMES = ["Misaki Sato", "James Carter", "Yuto Nakamura", "Olivia Brooks", "Haruka Ito", "Daniel Reyes"]


def customer_with_card(ls, name: str) -> tuple[str, str]:
    email = name.lower().replace(" ", ".") + "@example.com"
    customer = ls.v1.customers.create({"name": name, "email": email})
    pm = ls.v1.payment_methods.create({"type": "card", "card": CARD})
    ls.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    ls.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return customer.id, pm.id


def paid_charge(ls, amount: int, currency: str, name: str = "Aiko Mori"):
    """A charge on a customer's card (localstripe needs a card to charge)."""
    customer, _ = customer_with_card(ls, name)
    return ls.v1.charges.create({"amount": amount, "currency": currency, "customer": customer})


def seed_shop(ls, customers: int = 3) -> dict:
    """Per customer: a card, a paid payment intent (USD), a JPY charge partly refunded; the
    first two subscribe to a plan (an invoice each) and the second cancels."""
    product = ls.v1.products.create({"name": "Paydesk Pro"})
    plan = ls.v1.plans.create({"amount": 1500, "currency": "usd", "interval": "month", "product": product.id})
    out: dict = {"customers": [], "payment_intents": [], "charges": [], "refunds": [], "subscriptions": [],
                 "product": product.id}
    for i in range(customers):
        customer, pm = customer_with_card(ls, NAMES[i % len(NAMES)])
        out["customers"].append(customer)
        pi = ls.v1.payment_intents.create(
            {"amount": 2400 + 100 * i, "currency": "usd", "customer": customer, "payment_method": pm}
        )
        out["payment_intents"].append(ls.v1.payment_intents.confirm(pi.id).id)
        charge = ls.v1.charges.create({"amount": 3200 + 100 * i, "currency": "jpy", "customer": customer})
        out["charges"].append(charge.id)
        out["refunds"].append(ls.v1.refunds.create({"charge": charge.id, "amount": 1000}).id)
        if i < 2:
            sub = ls.v1.subscriptions.create({"customer": customer, "items": [{"plan": plan.id}]})
            out["subscriptions"].append(sub.id)
    if len(out["subscriptions"]) > 1:
        ls.v1.subscriptions.cancel(out["subscriptions"][1])
    return out


def listed_ids(ls, resource: str, **params) -> set[str]:
    """Every id localstripe lists for a resource (the truth a backfill must match)."""
    lst = getattr(ls.v1, resource).list({"limit": 100, **params})
    return {obj.id for obj in lst.auto_paging_iter()}


@dataclass
class Fault:
    match: Callable[[str, str, dict], bool]  # (method, path, query) -> bool
    status: int
    headers: dict = field(default_factory=dict)
    times: int = 1


class StripeProxy:
    """Forwards to localstripe over HTTP; faults and recorded lists are answered here."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str, dict]] = []
        self.faults: list[Fault] = []
        self.recorded: dict[str, list[dict]] = {}  # GET path -> objects, listed Stripe-style
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            do_POST = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault_once(self, match, status: int, headers: dict | None = None) -> None:
        self.faults.append(Fault(match, status, headers or {}))

    def seen(self, method: str, path: str) -> list[dict]:
        return [q for m, p, q in self.requests if m == method and p == path]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((h.command, parts.path, query))
            fault = next((f for f in self.faults if f.times > 0 and f.match(h.command, parts.path, query)), None)
            if fault:
                fault.times -= 1
        if fault:
            error = {"error": {"type": "rate_limit_error" if fault.status == 429 else "api_error",
                               "message": f"proxy answered {fault.status}"}}
            return self.answer(h, fault.status, json.dumps(error).encode(), fault.headers)
        if h.command == "GET" and parts.path in self.recorded:
            return self.answer(h, 200, json.dumps(self.list_page(parts.path, query)).encode())
        upstream = requests.request(
            h.command, self.upstream + h.path, data=body, timeout=30,
            headers={k: v for k, v in h.headers.items() if k.lower() in ("authorization", "content-type", "stripe-version")},
        )
        self.answer(h, upstream.status_code, upstream.content, {"Content-Type": upstream.headers.get("Content-Type", "")})

    def list_page(self, path: str, query: dict) -> dict:
        objects = self.recorded[path]
        start = 0
        if query.get("starting_after"):
            start = next(i + 1 for i, o in enumerate(objects) if o["id"] == query["starting_after"])
        limit = int(query.get("limit") or 10)
        page = objects[start : start + limit]
        return {"object": "list", "url": path, "has_more": start + limit < len(objects), "data": page}

    @staticmethod
    def answer(h, status: int, payload: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            if v:
                h.send_header(k, v)
        if not (headers or {}).get("Content-Type"):
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def recorded_prices(n: int) -> list[dict]:
    """Stripe-shaped prices (localstripe has plans only), newest first like Stripe lists."""
    now = int(time.time())
    out = []
    for i in range(n):
        price = copy.deepcopy(factories.RESOURCES["price"])
        price.update(id=f"price_rec{i:04d}", created=now - i, unit_amount=1200 + i, unit_amount_decimal=str(1200 + i),
                     product="prod_recorded01", nickname=f"Monthly {i}")
        out.append(price)
    return out


def recorded_disputes(charge_ids: list[str]) -> list[dict]:
    return [factories.DisputeFactory(charge=ch, amount=1000, currency="jpy") for ch in charge_ids]
