"""`python -m bench.disputes`: the dispute queue's first page with 100,000 disputes.

Loads 100,000 mirrored disputes (with their charges, customers, contacts and some assigned
cases: statuses, reasons, currencies, deadlines and card details as a shop sees them over a few
years: most closed, a few hundred needing a response) by COPY, then renders /disputes/ through
Django's test Client as a finance user (session, middleware, view, selectors, template) many
times: p50/p95 server time and the SQL queries of the first page (queue_p95_ms, queue_queries),
and of a filtered page and a later page beside it. Measures; asserts nothing.

Writes the "disputes" key of bench/results.json (the others' kept: bench/results.py). Its own
database: BENCH_DISPUTES_DATABASE_URL, else DATABASE_URL with the name replaced by
paydesk_bench_disputes (created and migrated if missing; the data is kept for later runs,
`--reload` loads it again).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_disputes"

# How a shop's disputes are spread over the years (relative weights).
STATUSES = {"needs_response": 30, "warning_needs_response": 6, "under_review": 60, "warning_under_review": 8,
            "won": 420, "lost": 420, "prevented": 28, "warning_closed": 28}
REASONS = {"fraudulent": 45, "product_not_received": 18, "subscription_canceled": 10, "duplicate": 6,
           "credit_not_processed": 6, "unrecognized": 7, "product_unacceptable": 5, "general": 3}
CURRENCIES = {"usd": 55, "jpy": 30, "eur": 10, "gbp": 5}
TYPICAL = {"usd": (800, 25000), "jpy": (800, 30000), "eur": (700, 20000), "gbp": (600, 18000)}
CARDS = [("visa", ["10.4", "13.1", "13.2", "12.6.1", "13.3"]), ("mastercard", ["4837", "4853", "4855", "4834"]),
         ("amex", ["F29", "C08", "C28"]), ("jcb", ["541", "526"])]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.disputes", description=__doc__.splitlines()[0])
    p.add_argument("--disputes", type=int, default=100_000)
    p.add_argument("--iterations", type=int, default=200, help="timed requests per case (after warm-up)")
    p.add_argument("--reload", action="store_true", help="drop the loaded disputes and load them again")
    p.add_argument("--quick", action="store_true", help="a trial run: 10,000 disputes, 40 iterations")
    p.add_argument("--output", type=Path, default=RESULTS, help="results file (its \"disputes\" key is replaced)")
    args = p.parse_args(argv)
    if args.quick:
        args.disputes, args.iterations = 10_000, 40
    return args


def database_url() -> str:
    from bench.inbox import bench_database_url

    return bench_database_url("disputes", DB_NAME)


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _copy(pg, model, rows) -> None:
    """COPY rows (dicts by field name) into a model's table."""
    fields = [f for f in model._meta.concrete_fields]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    with pg.cursor() as c, c.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as out:
        for row in rows:
            out.write_row([json.dumps(row[f.name]) if f.get_internal_type() == "JSONField" else row[f.name]
                           for f in fields])


def load(n: int, reload: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from console.disputes.models import DisputeCase
    from payments import samples
    from payments.models import Charge, Customer, Dispute
    from tickets.models import Contact, Identity

    User = get_user_model()
    finance = Group.objects.get(name="finance")
    people = []
    for i in range(6):
        user, _ = User.objects.get_or_create(username=f"bench-finance-{i}", defaults={"first_name": f"Finance{i}"})
        user.groups.add(finance)
        people.append(user.pk)
    if Dispute.objects.count() == n and not reload:
        return {"loaded": False}
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE payments_dispute, payments_charge, payments_customer, disputes_disputecase, "
                    "tickets_identity, tickets_contact RESTART IDENTITY CASCADE")
    resources = samples.resources()
    rng = random.Random(10)
    now = timezone.now()
    now_ts = int(now.timestamp())
    n_customers = max(1, n * 3 // 10)
    base = {"livemode": False, "deleted": False, "version_ts": now_ts, "version_rank": 0, "version_source": "api",
            "synced_at": now}

    def customers():
        for i in range(n_customers):
            cid = f"cus_bench{i:07d}"
            name = f"Customer {i}"
            data = {**copy.deepcopy(resources["customer"]), "id": cid, "name": name, "email": f"c{i}@example.com"}
            yield {**base, "id": cid, "created": now - dt.timedelta(days=rng.randint(30, 1500)), "data": data,
                   "email": data["email"], "name": name, "phone": "", "currency": "", "delinquent": False}

    charges, disputes, cases = [], [], []
    for i in range(n):
        status = _pick(rng, STATUSES)
        currency = _pick(rng, CURRENCIES)
        low, high = TYPICAL[currency]
        amount = rng.randint(low, high) // (100 if currency == "jpy" else 1) * (100 if currency == "jpy" else 1)
        brand, codes = rng.choice(CARDS)
        customer = f"cus_bench{rng.randrange(n_customers):07d}"
        if status in ("needs_response", "warning_needs_response"):
            created = now - dt.timedelta(hours=rng.randint(1, 20 * 24))
            due = now + dt.timedelta(hours=rng.randint(-12, 21 * 24))
        elif status in ("under_review", "warning_under_review"):
            created = now - dt.timedelta(days=rng.randint(10, 60))
            due = created + dt.timedelta(days=21)
        else:
            created = now - dt.timedelta(days=rng.randint(40, 3 * 365), seconds=rng.randint(0, 86400))
            due = created + dt.timedelta(days=21)
        charged = created - dt.timedelta(days=rng.randint(3, 90))
        cid, did = f"ch_bench{i:08d}", f"dp_bench{i:08d}"
        card = copy.deepcopy(resources["charge"]["payment_method_details"])
        card["card"].update(brand=brand, network=brand, last4=f"{rng.randint(0, 9999):04d}")
        description = rng.choice(["Sencha 200g", "Matcha starter set", "Gyokuro gift box", "Coffee subscription",
                                  "Hojicha 100g ×3", "Drip bags (20)", ""])
        metadata = {"order_id": f"A-{100000 + i}"} if rng.random() < 0.7 else {}
        cdata = {**copy.deepcopy(resources["charge"]), "id": cid, "amount": amount, "amount_captured": amount,
                 "currency": currency, "customer": customer, "disputed": True, "created": int(charged.timestamp()),
                 "description": description or None, "metadata": metadata, "payment_method_details": card}
        charges.append({**base, "id": cid, "created": charged, "data": cdata, "customer": customer,
                        "payment_intent": "", "invoice": "", "status": "succeeded", "paid": True, "amount": amount,
                        "amount_captured": amount, "amount_refunded": 0, "refunded": False, "disputed": True,
                        "currency": currency, "billing_email": "", "failure_code": "",
                        "description": description})
        submitted = status not in ("needs_response", "warning_needs_response") and rng.random() < 0.7
        has_evidence = submitted or rng.random() < 0.3
        reason = _pick(rng, REASONS)
        ddata = {**copy.deepcopy(resources["dispute"]), "id": did, "amount": amount, "currency": currency,
                 "charge": cid, "status": status, "reason": reason, "created": int(created.timestamp()),
                 "is_charge_refundable": status in ("warning_needs_response", "warning_under_review"),
                 "evidence_details": {"due_by": int(due.timestamp()), "has_evidence": has_evidence,
                                      "past_due": due < now, "submission_count": 1 if submitted else 0,
                                      "enhanced_eligibility": {}},
                 "payment_method_details": {"type": "card", "card": {
                     "brand": brand, "network": brand, "network_reason_code": rng.choice(codes),
                     "case_type": "inquiry" if status.startswith("warning_") else "chargeback"}}}
        disputes.append({**base, "id": did, "created": created, "data": ddata, "charge": cid, "payment_intent": "",
                         "amount": amount, "currency": currency, "status": status, "reason": reason, "due_by": due})
        if rng.random() < 0.25:
            cases.append({"id": len(cases) + 1, "dispute_id": did, "assignee": rng.choice(people),
                          "ticket": None, "reminded_at": None, "created": now, "updated": now})
    with connection.cursor() as cur:
        pg = cur.connection
        _copy(pg, Customer, customers())
        _copy(pg, Charge, charges)
        _copy(pg, Dispute, disputes)
        _copy(pg, DisputeCase, cases)
        contacts = [{"id": i + 1, "name": f"Customer {i}", "created": now, "updated": now, "version": 0,
                     "merged_into": None, "language": ""} for i in range(0, n_customers, 2)]
        _copy(pg, Contact, contacts)
        _copy(pg, Identity, ({"id": j + 1, "contact": c["id"], "kind": "stripe_customer",
                              "value": f"cus_bench{c['id'] - 1:07d}", "reachable": True, "created": now}
                             for j, c in enumerate(contacts)))
        for table in ("disputes_disputecase", "tickets_contact", "tickets_identity"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        cur.execute("VACUUM ANALYZE")  # visibility map and statistics, as autovacuum would leave them
    return {"loaded": True, "seconds": time.perf_counter() - started}


def evidence_assembly(messages: int = 200, rounds: int = 3) -> dict:
    """Seconds to assemble a fraud dispute's evidence for a customer who wrote `messages` times
    (email and LINE, English and Japanese, with agents' replies): the mirror reads and the
    conversation's PDF with its embedded CJK font. Made once in the bench database."""
    import statistics
    import time as _time

    from console.disputes.evidence import assemble
    from payments.mirror import upsert_fetched
    from payments.samples import sample
    from tickets.models import Identity, Message
    from tickets.actions import receive_message

    customer_id, charge_id, dispute_id = "cus_bench_evidence", "ch_bench_evidence", "dp_bench_evidence"
    now = int(_time.time())
    upsert_fetched([
        sample("customer", id=customer_id, name="Misaki Sato", email="bench.evidence@example.jp"),
        sample("charge", id=charge_id, customer=customer_id, amount=4200, currency="usd", created=now - 86400,
               description="Order KR-10538: Uji matcha 30g x2"),
        sample("dispute", id=dispute_id, charge=charge_id, amount=4200, currency="usd", reason="fraudulent",
               status="needs_response", created=now - 3600),
    ], now)
    have = Message.objects.filter(ticket__requester__identities__value="bench.evidence@example.jp").count()
    for n in range(have, messages):
        text = (f"Message {n}: the parcel for order KR-10538 has not arrived yet. " if n % 2 else
                f"メッセージ {n}：注文 KR-10538 の荷物がまだ届いていません。確認をお願いします。") * 4
        receive_message(channel="email", sender="bench.evidence@example.jp", subject="Order KR-10538",
                        body_text=text)
    contact = Identity.objects.get(kind="email", value="bench.evidence@example.jp").contact
    Identity.objects.get_or_create(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id,
                                   defaults={"contact": contact})
    times, size = [], 0
    for _ in range(rounds):
        started = _time.perf_counter()
        draft = assemble(dispute_id)
        times.append(_time.perf_counter() - started)
        size = len(draft.files["customer_communication"].content)
    return {"evidence_messages": messages, "evidence_rounds": rounds,
            "evidence_200_messages_s": round(statistics.median(times), 2), "evidence_pdf_kb": round(size / 1024, 1)}


def main(argv=None) -> int:
    from bench.inbox import case_figures, ensure_database, loadavg, measure, setup_django

    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    url = database_url()
    ensure_database(url)
    setup_django(url)
    info = load(args.disputes, args.reload)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from payments.models import Dispute

    me = get_user_model().objects.get(username="bench-finance-0")
    client = Client()
    client.force_login(me)
    sizes = {"disputes": Dispute.objects.count(),
             "disputes_needing_response": Dispute.objects.filter(
                 status__in=("needs_response", "warning_needs_response")).count()}
    print(f"bench.disputes: {sizes['disputes']:,} disputes ({sizes['disputes_needing_response']:,} needing a response)"
          + (f", loaded in {info['seconds']:.1f} s" if info.get("loaded") else ""), flush=True)
    cases = [
        ("Queue, first page", "queue", "/disputes/"),
        ("Queue, needs response, due in 3 days, unassigned", "queue_due_unassigned",
         "/disputes/?group=respond&due=3&assignee=nobody"),
        ("Queue, closed, fraudulent", "queue_closed_fraudulent", "/disputes/?group=closed&reason=fraudulent"),
        ("Queue, page 20", "queue_page_20", "/disputes/?page=20"),
        ("Early fraud warnings", "fraud_warnings", "/disputes/fraud-warnings/"),
    ]
    rows = []
    for label, name, path in cases:
        result = measure(client, path, args.iterations)
        rows.append((label, name, path, result))
    head = f"{'case':<52} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>7} {'KB':>6}"
    print(head)
    print("-" * len(head))
    for label, _name, _path, r in rows:
        print(f"{label:<52} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['cpu']:>7.1f} {r['queries']:>7} {r['kb']:>6.1f}")
    evidence = evidence_assembly(messages=200)
    print(f"Evidence assembled for a customer with {evidence['evidence_messages']} messages: "
          f"{evidence['evidence_200_messages_s']:.2f} s (median of {evidence['evidence_rounds']}; "
          f"PDF {evidence['evidence_pdf_kb']:.0f} KB)")
    load_end = loadavg()
    print(f"({args.iterations} requests per case, in-process test Client, {os.cpu_count()} CPUs, "
          f"load average {load_end[0]:.2f})")
    figures = {"when": when, "quick": args.quick, **sizes, "iterations": args.iterations, "cpus": os.cpu_count(),
               "loadavg_at_end": load_end}
    if info.get("loaded"):
        figures["load_seconds"] = round(info["seconds"], 1)
    for _label, name, _path, r in rows:
        figures.update({k: v for k, v in case_figures(name, r).items() if not k.endswith("_rows")})
    figures.update(evidence)
    merge_write(args.output, {"disputes": figures})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
