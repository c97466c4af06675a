"""`python -m bench.search`: the top-bar search with 100,000 tickets and 1,000,000 messages.

Loads contacts (names, email and phone identities, the phones stored as E.164 or as a Japanese
national number), Stripe customers, charges (order numbers in the description and metadata,
cards' last four) and tickets with their messages in English and Japanese (orders, products,
phone numbers), by COPY, the trigram indexes built after the load. Then requests /search/
through Django's test Client as an agent (session, middleware, view, selectors, template) many
times: p50/p95 server time and the SQL queries for a ticket number, a phone, an order number and
Japanese words (one of three characters or more, which the trigram index serves, and two of
two, which the short-gram index of tickets/0009 serves: a common one and one found nowhere).
Measures; asserts nothing.

Writes the "search" key of bench/results.json (the others' kept: bench/results.py). Its own
database: BENCH_SEARCH_DATABASE_URL, else DATABASE_URL with the name replaced by
paydesk_bench_search (created and migrated if missing; the data is kept for later runs,
`--reload` loads it again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_search"

PRODUCTS = [("V60 dripper", "ドリッパー"), ("ceramic dripper", "陶器のドリッパー"), ("Sencha 200g", "煎茶 200g"),
            ("Matcha starter set", "抹茶スターターセット"), ("Gyokuro gift box", "玉露ギフトボックス"),
            ("hand grinder", "手挽きミル"), ("Hojicha 100g", "ほうじ茶 100g"), ("drip bags (20)", "ドリップバッグ"),
            ("gooseneck kettle", "細口ケトル"), ("tea tumbler", "タンブラー")]
EN_IN = [
    "Hi, my order KR-{order} ({product}) hasn't arrived yet. Could you check the tracking for me?",
    "The {product} I received is damaged. Order KR-{order}. Please let me know about a replacement.",
    "I was charged twice for order KR-{order}. Please refund the duplicate payment.",
    "Could you change the delivery address for KR-{order}? You can reach me at {phone}.",
    "Is the {product} back in stock? I'd like to order two more.",
    "Please cancel my subscription before the next billing date. Thanks.",
]
EN_OUT = [
    "Thanks for reaching out. I've checked order KR-{order}: the {product} shipped yesterday.",
    "Sorry about that! I've refunded the duplicate charge for KR-{order}; it shows in 5-10 days.",
    "We'll send a replacement {product} today. No need to return the damaged one.",
]
JA_IN = [
    "注文番号 KR-{order} の{product}がまだ届いていません。確認をお願いします。",
    "{product}が破損して届きました。交換をお願いできますか。注文 KR-{order}",
    "KR-{order} の代金が二重に請求されています。返金をお願いします。",
    "配送先を変更したいです。電話番号は {phone} です。注文 KR-{order}",
    "{product}の再入荷はいつ頃でしょうか。",
    "定期便を解約したいです。次回の請求の前にお願いします。",
]
JA_OUT = [
    "お問い合わせありがとうございます。注文 KR-{order} の{product}は昨日発送いたしました。",
    "ご迷惑をおかけしました。KR-{order} の二重請求分を返金いたしました。",
    "交換の{product}を本日発送いたします。",
]
EN_SUBJECTS = ["Where is my order?", "Charged twice", "Change my delivery address", "Damaged {product}",
               "Cancel my subscription", "Order KR-{order}", "Back in stock?"]
JA_SUBJECTS = ["注文がまだ届きません", "二重請求について", "配送先の変更", "{product}が破損していました",
               "定期便の解約", "注文 KR-{order} について", "再入荷について"]
FAMILY = ["Tanaka", "Sato", "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Smith", "Garcia",
          "Müller", "Okafor", "Kim", "Chen"]
GIVEN = ["Mika", "Haruto", "Yui", "Sota", "Aoi", "Ren", "Hana", "Daniel", "Emma", "Jürgen", "Lucia", "Min"]
JA_NAMES = ["田中 美香", "佐藤 陽翔", "鈴木 結衣", "高橋 蒼太", "渡辺 葵", "伊藤 蓮", "山本 花"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--iterations", type=int, default=200, help="timed requests per case (after warm-up)")
    p.add_argument("--reload", action="store_true", help="drop the loaded data and load it again")
    p.add_argument("--quick", action="store_true", help="a trial run: 10,000 tickets, 100,000 messages, 40 iterations")
    p.add_argument("--output", type=Path, default=RESULTS, help="results file (its \"search\" key is replaced)")
    args = p.parse_args(argv)
    if args.quick:
        args.tickets, args.messages, args.iterations = 10_000, 100_000, 40
    return args


def database_url() -> str:
    from bench.inbox import bench_database_url

    return bench_database_url("search", DB_NAME)


def _phone(i: int) -> tuple[str, str]:
    """A contact's mobile number: (as stored, as a person writes it)."""
    national = f"090{10000000 + i * 7919 % 90000000:08d}"
    written = f"{national[:3]}-{national[3:7]}-{national[7:]}"
    return (f"+81{national[1:]}" if i % 3 else national), written


def _indexes():
    """The search migrations' index definitions (dropped for the load, built after it)."""
    migrations = ("tickets.migrations.0006_search_trigram_indexes", "payments.migrations.0008_search_trigram_indexes",
                  "tickets.migrations.0009_search_short_grams_phone_e164", "payments.migrations.0009_search_short_grams")
    return {name: definition for module in migrations
            for name, definition in importlib.import_module(module).INDEXES.items()}


def load(n_tickets: int, n_messages: int, reload: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from tickets.models import Message, Ticket

    User = get_user_model()
    agent_group = Group.objects.get(name="agent")
    me, _ = User.objects.get_or_create(username="bench-search-agent", defaults={"first_name": "Bench"})
    me.groups.add(agent_group)
    if Ticket.objects.count() == n_tickets and Message.objects.count() == n_messages and not reload:
        return {"loaded": False}
    started = time.perf_counter()
    indexes = _indexes()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE tickets_ticket, tickets_ticket_tags, tickets_message, tickets_attachment, "
                    "tickets_identity, tickets_contactmerge, tickets_contact, payments_charge, payments_customer "
                    "RESTART IDENTITY CASCADE")
        for name in indexes:
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
    rng = random.Random(12)
    now = timezone.now()
    now_ts = int(now.timestamp())
    n_contacts = max(10, n_tickets * 2 // 5)
    n_orders = max(10, n_tickets)
    base = (False, now_ts, 0, "api", now)  # deleted, version_ts, version_rank, version_source, synced_at
    contact_lang = {}
    with connection.cursor() as cur:
        pg = cur.connection
        with pg.cursor() as c, c.copy("COPY tickets_contact (id, name, created, updated, version, language) "
                                      "FROM STDIN") as out:
            for i in range(1, n_contacts + 1):
                ja = i % 2 == 0
                contact_lang[i] = ja
                name = rng.choice(JA_NAMES) if ja and i % 4 == 0 else f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
                created = now - dt.timedelta(days=rng.randint(0, 1500))
                out.write_row((i, name, created, created, 0, "ja" if ja else "en"))
        with pg.cursor() as c, c.copy("COPY tickets_identity (contact_id, kind, value, reachable, created) "
                                      "FROM STDIN") as out:
            for i in range(1, n_contacts + 1):
                domain = "example.jp" if contact_lang[i] else rng.choice(["example.com", "example.net", "example.de"])
                out.write_row((i, "email", f"customer{i}@{domain}", True, now))
                if i % 2:
                    out.write_row((i, "phone", _phone(i)[0], True, now))
                if i % 3 == 0:
                    out.write_row((i, "line", "U%032x" % i, True, now))
                if i % 2 == 0:
                    out.write_row((i, "stripe_customer", f"cus_bs{i:08d}", True, now))
        with pg.cursor() as c, c.copy("COPY payments_customer (id, livemode, created, data, deleted, version_ts, "
                                      "version_rank, version_source, synced_at, email, name, phone, currency, "
                                      "delinquent) FROM STDIN") as out:
            for i in range(2, n_contacts + 1, 2):
                cid, email, name = f"cus_bs{i:08d}", f"customer{i}@example.jp", f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
                data = {"id": cid, "object": "customer", "email": email, "name": name, "metadata": {}}
                out.write_row((cid, False, now - dt.timedelta(days=rng.randint(0, 1500)), json.dumps(data), *base,
                               email, name, "", "jpy", False))
        with pg.cursor() as c, c.copy("COPY payments_charge (id, livemode, created, data, deleted, version_ts, "
                                      "version_rank, version_source, synced_at, customer, payment_intent, invoice, "
                                      "status, paid, amount, amount_captured, amount_refunded, refunded, disputed, "
                                      "currency, billing_email, failure_code, description) FROM STDIN") as out:
            for k in range(n_orders):
                chid, order = f"ch_bs{k:09d}", f"KR-{10000 + k}"
                product = rng.choice(PRODUCTS)[0]
                amount = rng.choice([1200, 2500, 3800, 4200, 6400, 9800])
                customer = f"cus_bs{rng.randrange(1, n_contacts // 2 + 1) * 2:08d}"
                created = now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 900))
                description = f"Order {order}: {product}" if k % 5 else "Subscription"
                data = {"id": chid, "object": "charge", "amount": amount, "currency": "jpy", "customer": customer,
                        "description": description, "metadata": {"order_id": order},
                        "payment_method_details": {"type": "card", "card": {
                            "brand": rng.choice(["visa", "mastercard", "jcb", "amex"]),
                            "last4": f"{rng.randint(0, 9999):04d}"}}}
                out.write_row((chid, False, created, json.dumps(data), *base, customer, "", "", "succeeded", True,
                               amount, amount, 0, False, False, "jpy", "", "", description))
        ticket_ja, ticket_requester, ticket_created = {}, {}, {}
        cols = ("id, number, subject, status, priority, channel, requester_id, created, updated, version, "
                "last_message_at")
        with pg.cursor() as c, c.copy(f"COPY tickets_ticket ({cols}) FROM STDIN") as out:
            for i in range(1, n_tickets + 1):
                requester = rng.randint(1, n_contacts)
                ja = contact_lang[requester]
                product = rng.choice(PRODUCTS)[1 if ja else 0]
                subject = rng.choice(JA_SUBJECTS if ja else EN_SUBJECTS).format(
                    product=product, order=10000 + rng.randrange(n_orders))
                created = now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 900))
                ticket_ja[i], ticket_requester[i], ticket_created[i] = ja, requester, created
                out.write_row((i, i, subject, rng.choice(["open", "pending", "solved", "closed"]), "normal",
                               "line" if ja and i % 2 else "email", requester, created, created, 0, created))
        with pg.cursor() as c, c.copy("COPY tickets_message (uuid, ticket_id, kind, channel, contact_id, sender, "
                                      "recipient, subject, body_text, body_html, channel_message_id, headers, "
                                      "delivery_status, delivery_error, delivery_attempts, created) FROM STDIN") as out:
            for m in range(n_messages):
                t = m % n_tickets + 1  # every ticket gets its share, in turn
                ja, requester = ticket_ja[t], ticket_requester[t]
                inbound = (m // n_tickets) % 2 == 0 or rng.random() < 0.3
                templates = (JA_IN if inbound else JA_OUT) if ja else (EN_IN if inbound else EN_OUT)
                body = rng.choice(templates).format(
                    order=10000 + rng.randrange(n_orders), product=rng.choice(PRODUCTS)[1 if ja else 0],
                    phone=_phone(requester)[1])
                created = ticket_created[t] + dt.timedelta(minutes=(m // n_tickets) * rng.randint(5, 600))
                out.write_row((uuid.uuid4(), t, "inbound" if inbound else "outbound", "email", requester if inbound
                               else None, "", "", "", body, "", "", "{}", "" if inbound else "sent", "", 0, created))
        for table in ("tickets_contact", "tickets_identity", "tickets_ticket", "tickets_message"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        loaded = time.perf_counter() - started
        for name, definition in indexes.items():
            cur.execute(f'CREATE INDEX IF NOT EXISTS "{name}" {definition}')
        indexed = time.perf_counter() - started - loaded
        cur.execute("VACUUM ANALYZE")  # visibility map and statistics, as autovacuum would leave them
    return {"loaded": True, "seconds": time.perf_counter() - started, "copy_seconds": loaded,
            "index_seconds": indexed}


def measure(client, url: str, iterations: int) -> dict:
    """bench.inbox.measure for a page that may answer with a redirect (a jump), counting hits."""
    from bench.inbox import measure as measure_page

    return measure_page(client, url, iterations, statuses=(200, 302), row_marker=b'class="search-hit"')


def main(argv=None) -> int:
    from bench.inbox import case_figures, ensure_database, loadavg, setup_django

    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    url = database_url()
    ensure_database(url)
    setup_django(url)
    info = load(args.tickets, args.messages, args.reload)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tickets.models import Message, Ticket

    me = get_user_model().objects.get(username="bench-search-agent")
    client = Client()
    client.force_login(me)
    sizes = {"tickets": Ticket.objects.count(), "messages": Message.objects.count()}
    print(f"bench.search: {sizes['tickets']:,} tickets, {sizes['messages']:,} messages"
          + (f", loaded in {info['seconds']:.1f} s (indexes {info['index_seconds']:.1f} s)"
             if info.get("loaded") else ""), flush=True)
    number = sizes["tickets"] // 2 + 7
    phone = _phone(1001)[1]  # contact 1001 has a phone stored as E.164, typed as 090-xxxx-xxxx
    order = f"KR-{10000 + sizes['tickets'] // 3}"
    cases = [
        ("Ticket number (#n, a jump)", "ticket_number", f"#{number}"),
        ("Bare number (ticket, order numbers, amount)", "bare_number", str(number)),
        ("Card's last four", "last4", "0420"),
        ("Phone, national format", "phone", phone),
        ("Order number", "order_number", order),
        ("Japanese word, 5 characters (trigram)", "message_text", "手挽きミル"),
        ("Japanese word, 2 characters (no trigram)", "message_text_short", "二重"),
        ("Japanese word, 2 characters, found nowhere", "message_text_short_rare", "銀河"),
        ("English partial word", "english_partial", "grind"),
        ("Email domain", "email_domain", "example.jp"),
    ]
    rows = []
    for label, name, q in cases:
        rows.append((label, name, q, measure(client, f"/search/?{urlencode({'q': q})}", args.iterations)))
    head = f"{'case':<44} {'query':<16} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>7} {'hits':>5}"
    print(head)
    print("-" * len(head))
    for label, _name, q, r in rows:
        print(f"{label:<44} {q:<16} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['cpu']:>7.1f} {r['queries']:>7} "
              f"{r['rows'] if r['status'] == 200 else '→':>5}")
    load_end = loadavg()
    print(f"({args.iterations} requests per case, in-process test Client, {os.cpu_count()} CPUs, "
          f"load average {load_end[0]:.2f})")
    figures = {"when": when, "quick": args.quick, **sizes, "iterations": args.iterations, "cpus": os.cpu_count(),
               "loadavg_at_end": load_end}
    if info.get("loaded"):
        figures["load_seconds"] = round(info["seconds"], 1)
        figures["index_seconds"] = round(info["index_seconds"], 1)
    for _label, name, _q, r in rows:
        figures.update(case_figures(name, r))
    merge_write(args.output, {"search": figures})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
