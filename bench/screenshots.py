"""Screenshots of the console's main pages, and what each page weighs over the wire.

    python -m bench.screenshots                 # a fresh seeded console, shot into screenshots/
    python -m bench.screenshots --url http://127.0.0.1:8000 --username demo --password ...

Without --url it builds a throwaway console the way production runs it: an SQLite file
in a temporary directory, DEBUG off, collectstatic, gunicorn; seeds it through the real
path (signed webhooks for charges, refunds, disputes, subscriptions ...; a backfill and a
reconcile against localstripe for customers and products); then logs in with Playwright
and Debian's Chromium at 1440x900 and saves one PNG per page, once for each browser language
(`screenshots/en/`, `screenshots/ja/`). It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}
USERNAME, PASSWORD = "finance", "screens-" + secrets.token_hex(6)
WEBHOOK_SECRET = "whsec_screenshots_" + secrets.token_hex(8)

CUSTOMERS = [
    ("Mika Tanaka", "mika.tanaka@example.jp", "jpy"), ("Haruto Sato", "haruto.sato@example.jp", "jpy"),
    ("Yui Nakamura", "yui.nakamura@example.jp", "jpy"), ("Sora Ito", "sora.ito@example.jp", "jpy"),
    ("Ren Kobayashi", "ren.kobayashi@example.jp", "jpy"), ("Aoi Yamamoto", "aoi.yamamoto@example.jp", "jpy"),
    ("Emma Walker", "emma.walker@example.com", "usd"), ("Liam Johnson", "liam.johnson@example.com", "usd"),
    ("Olivia Chen", "olivia.chen@example.com", "usd"), ("Noah Martinez", "noah.martinez@example.com", "usd"),
    ("Ava Thompson", "ava.thompson@example.com", "usd"), ("Lucas Schmidt", "lucas.schmidt@example.de", "usd"),
    ("Hina Suzuki", "hina.suzuki@example.jp", "jpy"), ("Kenji Watanabe", "kenji.watanabe@example.jp", "jpy"),
    ("Sophia Rossi", "sophia.rossi@example.it", "usd"), ("Daniel Kim", "daniel.kim@example.com", "usd"),
    ("Riko Takahashi", "riko.takahashi@example.jp", "jpy"), ("Grace Lee", "grace.lee@example.com", "usd"),
]
PRODUCTS = [
    ("Coffee Club · Monthly", {"jpy": 1800, "usd": 1500}, "month"),
    ("Tea Sampler · Quarterly", {"jpy": 4800, "usd": 3900}, "month"),
    ("Roaster's Choice · Annual", {"jpy": 19800, "usd": 16500}, "year"),
]
DESCRIPTIONS = [
    "Order #{n} · Single origin beans", "Order #{n} · Hand grinder", "Order #{n} · Gift box",
    "Order #{n} · Drip kettle", "Order #{n} · Pour-over set", "Order #{n} · Matcha starter kit",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    import requests

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or busy starting
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


# --- a throwaway console ---------------------------------------------------------------------


class Console:
    """A console served by gunicorn over a temporary SQLite database, seeded through the real path."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'console.sqlite3'}",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SESSION_COOKIE_SECURE": "0",  # plain http on loopback
            "STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
        }
        for name in ("CELERY_BROKER_URL", "STRIPE_API_KEY", "STRIPE_API_BASE"):
            self.env.pop(name, None)  # tasks run in-process; events carry whole objects
        self.procs: list[subprocess.Popen] = []

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput", "--clear")
        gunicorn = [sys.executable, "-m", "gunicorn", "console.wsgi", "-b", f"127.0.0.1:{self.port}",
                    "-w", "1", "--threads", "4", "--log-level", "warning"]
        self.procs.append(subprocess.Popen(gunicorn, cwd=ROOT, env=self.env))
        wait_for(f"{self.url}/healthz")

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def seed(base_url: str) -> dict:
    """Post signed events like Stripe does; return a few ids worth a screenshot."""
    import requests
    from django.conf import settings

    from tests import factories

    secret = settings.STRIPE_WEBHOOK_SECRETS[0]  # the server's, passed down in the environment
    rng = random.Random(20250301)
    now = int(time.time())
    events: list[dict] = []

    def emit(type_, obj, created, **kw):
        events.append(factories.event(type_, obj, created=created, **kw))

    prices = {}
    for name, amounts, interval in PRODUCTS:
        pid = factories.stripe_id("prod")
        created = now - 200 * 86400
        product = factories.RESOURCES["product"] | {"id": pid, "name": name, "created": created, "active": True}
        emit("product.created", product, created)
        for currency, amount in amounts.items():
            price = factories.RESOURCES["price"] | {
                "id": factories.stripe_id("price"), "product": pid, "unit_amount": amount, "currency": currency,
                "recurring": {"interval": interval, "interval_count": 1}, "type": "recurring", "created": created,
                "nickname": None,
            }
            prices[(name, currency)] = price
            emit("price.created", price, created)

    customers = []
    for i, (name, email, currency) in enumerate(CUSTOMERS):
        created = now - rng.randint(20, 90) * 86400 - rng.randint(0, 86400)
        c = factories.CustomerFactory(name=name, email=email, created=created, currency=currency,
                                      metadata={"shop_customer_id": str(40100 + i)} if i % 3 == 0 else {})
        customers.append((c, currency))
        emit("customer.created", c, created)

    charges, order = [], 1041
    for n in range(64):
        customer, currency = rng.choice(customers)
        created = now - rng.randint(0, 28 * 86400)
        amount = rng.choice([1800, 2400, 3600, 4800, 7200, 12800, 19800, 32400]) if currency == "jpy" else \
            rng.choice([1500, 2400, 3900, 5200, 8900, 12900, 24900])
        failed = rng.random() < 0.08
        pi = factories.PaymentIntentFactory(customer=customer["id"], amount=amount, currency=currency,
                                            created=created, status="requires_payment_method" if failed else "succeeded",
                                            amount_received=0 if failed else amount)
        charge = factories.ChargeFactory(
            customer=customer["id"], amount=amount, currency=currency, created=created, payment_intent=pi["id"],
            status="failed" if failed else "succeeded", paid=not failed,
            failure_code="card_declined" if failed else None,
            description=rng.choice(DESCRIPTIONS).format(n=order),
            billing_details={"email": customer["email"], "name": customer["name"], "address": None, "phone": None},
        )
        order += rng.randint(1, 7)
        pi["latest_charge"] = charge["id"]
        emit("payment_intent.succeeded" if not failed else "payment_intent.payment_failed", pi, created)
        emit("charge.failed" if failed else "charge.succeeded", charge, created)
        if not failed:
            charges.append(charge)

    refunded = rng.sample(charges, 8)
    for i, charge in enumerate(refunded):
        part = charge["amount"] if i % 2 == 0 else charge["amount"] // 2
        when = charge["created"] + rng.randint(3600, 5 * 86400)
        refund = factories.RefundFactory(charge=charge["id"], amount=part, currency=charge["currency"], created=when,
                                         reason=rng.choice(["requested_by_customer", "duplicate"]))
        emit("refund.created", refund, when)
        updated = dict(charge, amount_refunded=part, refunded=part == charge["amount"])
        emit("charge.refunded", updated, when, previous_attributes={"amount_refunded": 0, "refunded": False})

    disputed = [c for c in charges if c not in refunded][:5]
    for i, charge in enumerate(disputed):
        when = charge["created"] + 2 * 86400
        status = ["needs_response", "needs_response", "warning_needs_response", "under_review", "won"][i]
        dispute = factories.DisputeFactory(
            charge=charge["id"], payment_intent=charge["payment_intent"], amount=charge["amount"],
            currency=charge["currency"], status=status, created=when,
            reason=["fraudulent", "product_not_received", "fraudulent", "subscription_canceled", "duplicate"][i],
        )
        emit("charge.dispute.created", dispute, when)
        emit("charge.updated", dict(charge, disputed=True), when, previous_attributes={"disputed": False})
    for charge in disputed[:2] + charges[-1:]:
        when = charge["created"] + 86400
        emit("radar.early_fraud_warning.created",
             factories.EarlyFraudWarningFactory(charge=charge["id"], created=when,
                                                payment_intent=charge["payment_intent"]), when)

    for i, (customer, currency) in enumerate(customers[:12]):
        name, _, interval = PRODUCTS[i % len(PRODUCTS)]
        price = prices[(name, currency)]
        created = customer["created"] + 86400
        status = ["active"] * 8 + ["trialing", "past_due", "canceled", "active"]
        period = 30 * 86400 if interval == "month" else 365 * 86400
        sub = factories.SubscriptionFactory(
            customer=customer["id"], currency=currency, status=status[i], created=created,
            current_period_end=now + rng.randint(2, 28) * 86400, cancel_at_period_end=i == 5,
            items={"object": "list", "data": [{"id": factories.stripe_id("si"), "object": "subscription_item",
                                               "price": {"id": price["id"]}, "quantity": 1}]},
        )
        emit("customer.subscription.created", sub, created)
        for k in range(2):
            when = now - (k + 1) * period // 2 if interval == "month" else created
            invoice = factories.InvoiceFactory(
                customer=customer["id"], subscription=sub["id"], currency=currency, created=when,
                amount_due=price["unit_amount"], amount_paid=price["unit_amount"] if i != 9 else 0,
                status="open" if i == 9 and k == 0 else "paid",
            )
            emit("invoice.paid" if invoice["status"] == "paid" else "invoice.finalized", invoice, when)

    # Events the mirror cannot apply without an API key (thin, v2 style): parked as failed.
    for obj_id, type_ in ((charges[3]["id"], "charge"), (customers[4][0]["id"], "customer")):
        thin = factories.event(f"{type_}.updated", {}, created=now - 900)
        thin["data"], thin["related_object"] = {}, {"id": obj_id, "type": type_}
        events.append(thin)
    failed_event = thin["id"]
    # Types the mirror does not keep: stored, marked ignored.
    events.append(factories.event("balance.available", {"object": "balance", "available": []}, created=now - 600))

    events.sort(key=lambda e: e["created"])
    session = requests.Session()
    for payload in events:
        body, header = factories.signed(payload, secret)
        response = session.post(f"{base_url}/stripe/webhook/", data=body,
                                headers={"Stripe-Signature": header, "Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"webhook refused {payload['type']}: {response.status_code} {response.text}")
    print(f"seeded {len(events)} events through the webhook")
    partly = next(c for i, c in enumerate(refunded) if i % 2 == 1)
    return {"charge": partly["id"], "customer": customers[0][0]["id"], "failed_event": failed_event}


def sync_from_localstripe(console: Console) -> None:
    """A backfill and a reconcile against localstripe, so the sync page shows real runs."""
    env = dict(console.env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.demo.localstripe_server", "--port", "0",
         "--state", str(console.workdir / "localstripe.pickle")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        port = int(proc.stdout.readline().split()[1])
        key = "sk_test_screenshots"
        import stripe

        client = stripe.StripeClient(key, base_addresses={"api": f"http://127.0.0.1:{port}"},
                                     stripe_version="2017-08-15", max_network_retries=0)
        for name, email in (("Takumi Mori", "takumi.mori@example.jp"), ("Chloe Martin", "chloe.martin@example.fr"),
                            ("Mei Fujita", "mei.fujita@example.jp")):
            client.v1.customers.create(params={"name": name, "email": email})
        env.update(STRIPE_API_KEY=key, STRIPE_API_BASE=f"http://127.0.0.1:{port}")
        script = (
            "import django; django.setup()\n"
            "from payments import sync\n"
            "sync.backfill(['customer', 'product'])\n"
            "sync.reconcile()\n"
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode:
            print("backfill/reconcile skipped:", (done.stderr.strip().splitlines() or ["?"])[-1])
        else:
            print("ran a backfill (customers, products) and a reconcile against localstripe")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def create_user(console: Console) -> None:
    script = (
        "import django, os; django.setup()\n"
        "from django.contrib.auth.models import Group, User\n"
        "u = User.objects.create_user(os.environ['SHOT_USER'], password=os.environ['SHOT_PASSWORD'],\n"
        "                             first_name='Keiko', last_name='Arai')\n"
        "u.groups.add(Group.objects.get(name='finance'))\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                   env={**console.env, "SHOT_USER": USERNAME, "SHOT_PASSWORD": PASSWORD})


def seed_in_process(console: Console) -> dict:
    """The factories need Django (for the API version and the user model): run them in a child."""
    script = (
        "import django, json, sys; django.setup()\n"
        "from bench import screenshots\n"
        "print('IDS ' + json.dumps(screenshots.seed(sys.argv[1])))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, console.url], cwd=ROOT, env=console.env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit("seeding failed")
    lines = done.stdout.splitlines()
    print(*[line for line in lines if not line.startswith("IDS ")], sep="\n")
    return json.loads(next(line for line in lines if line.startswith("IDS "))[4:])


# --- shooting -------------------------------------------------------------------------------------


def shoot(base: str, username: str, password: str, pages: list[tuple[str, str]], out: Path,
          language: str = "en") -> list[dict]:
    """Log in, then open each page in a fresh context (a cold cache) and save a PNG of it. The
    browser asks for `language` (Accept-Language), as a person who has not chosen one does."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        login_ctx = browser.new_context(viewport=VIEWPORT, locale=language)
        page = login_ctx.new_page()
        page.goto(f"{base}/login/")
        page.screenshot(path=str(out / "01-login.png"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button.primary")
        page.wait_for_url(f"{base}/")
        state = login_ctx.storage_state()
        login_ctx.close()
        for n, (name, path) in enumerate(pages, start=2):
            ctx = browser.new_context(viewport=VIEWPORT, storage_state=state, locale=language)
            page = ctx.new_page()
            sizes: list = []
            page.on("requestfinished", lambda request: sizes.append(request))
            response = page.goto(f"{base}{path}", wait_until="networkidle")
            page.wait_for_timeout(150)
            page.screenshot(path=str(out / f"{n:02d}-{name}.png"))
            transferred = 0
            for request in sizes:
                s = request.sizes()
                transferred += s["responseBodySize"] + s["responseHeadersSize"]
            timing = response.request.timing if response else {}
            # Time to first byte of the HTML: the server's time plus loopback, on a cold cache.
            ttfb = timing.get("responseStart", 0) - timing.get("requestStart", 0)
            results.append({"page": name, "language": language, "path": path, "status": response.status if response else None,
                            "requests": len(sizes), "bytes": transferred, "ttfb_ms": ttfb})
            ctx.close()
        browser.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--url", help="shoot a running console instead of building one")
    parser.add_argument("--username", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--keep", action="store_true", help="keep the temporary console's directory")
    parser.add_argument("--languages", default="en,ja",
                        help="the browser's languages, one set of screenshots each (OUT/en/, OUT/ja/)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run `make chromium` (scripts/chromium.sh)")

    workdir = Path(tempfile.mkdtemp(prefix="paydesk-shots-"))
    console = None
    try:
        if args.url:
            base, username, password, ids = args.url.rstrip("/"), args.username, args.password, {}
        else:
            console = Console(workdir)
            console.start()
            ids = seed_in_process(console)
            sync_from_localstripe(console)
            create_user(console)
            base, username, password = console.url, USERNAME, PASSWORD
        pages = [("home", "/"), ("customers", "/stripe/customers/"), ("payments", "/stripe/payments/")]
        if ids.get("charge"):
            pages.append(("charge", f"/stripe/payments/{ids['charge']}/"))
        if ids.get("customer"):
            pages.append(("customer", f"/stripe/customers/{ids['customer']}/"))
            # The search sends a linked Stripe customer to their contact's timeline, panel beside it.
            pages.append(("customer-timeline", f"/search/?q={ids['customer']}"))
        pages += [("disputes", "/stripe/disputes/"), ("subscriptions", "/stripe/subscriptions/"),
                  ("events", "/stripe/events/"), ("sync-health", "/sync/"),
                  ("account", "/account/")]
        if ids.get("failed_event"):
            pages.append(("failed-event", f"/stripe/events/{ids['failed_event']}/"))
        results = []
        for language in filter(None, args.languages.split(",")):
            results += shoot(base, username, password, pages, Path(args.out) / language, language)
    finally:
        if console:
            console.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'page':<18}{'lang':>5}{'status':>7}{'requests':>10}{'transferred':>14}{'HTML TTFB':>12}")
    for r in results:
        print(f"{r['page']:<18}{r['language']:>5}{r['status']!s:>7}{r['requests']:>10}{r['bytes'] / 1024:>11.1f} KB"
              f"{r['ttfb_ms']:>9.0f} ms")
    print(f"\nscreenshots in {args.out}/")


if __name__ == "__main__":
    main()
