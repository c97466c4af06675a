"""`python -m bench.assist`: the intent classifier's quality on its held-back messages, and what assist costs in time.

Quality: the built-in classifier trained on the "train" split of console/assist/data/messages.jsonl
exactly as the product trains it (classifier.train), read on the "test" split as the product shows
it (classifier.rank, then classifier.decide at classifier.threshold(): a message under the
threshold is "other"). Accuracy and macro F1, overall and per language (en, ja), and each intent's
precision, recall, F1 and support (scikit-learn's metrics); beside them the accuracy of the best
guess before the threshold (accuracy_top1) and the share of messages that fell under it.

Time: training (median of 3); classifier.classify_many over the whole set repeated to at least
5,000 messages, after warm-up (messages per second); classifier.classify one message at a time
(p50/p95 over 500); and what the task does for a draft (selectors.history + linking.link +
drafts.write, draft_p50_ms/draft_p95_ms; history alone beside it) for a customer with a year of
mirrored Stripe history (~40 USD charges, refunds, a cancelled and an active subscription,
invoices, a dispute), over ~300 drafts spread over the ten intents and both languages. Measures;
asserts nothing.

Writes the "assist" key of bench/results.json (the others' kept: bench/results.py). Its own
database for the draft history: BENCH_ASSIST_DATABASE_URL, else DATABASE_URL with the name replaced
by paydesk_bench_assist (created and migrated if missing; the customer's objects are upserted again
on each run, under fixed ids).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_assist"
LANGUAGES = ("en", "ja")
CUSTOMER_ID = "cus_bench_assist"
CUSTOMER_NAME = "Misaki Sato"
DAY = 86400


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.assist", description=__doc__.splitlines()[0])
    p.add_argument("--training-rounds", type=int, default=3, help="trainings timed (the median is kept)")
    p.add_argument("--batch", type=int, default=5000, help="at least this many messages through classify_many")
    p.add_argument("--single", type=int, default=500, help="messages classified one at a time")
    p.add_argument("--drafts", type=int, default=300, help="drafts timed (spread over intents and languages)")
    p.add_argument("--quick", action="store_true",
                   help="a trial run: the same quality figures; 1 training, 1,000 batched, 100 single, 60 drafts")
    p.add_argument("--output", type=Path, default=RESULTS, help="results file (its \"assist\" key is replaced)")
    args = p.parse_args(argv)
    if args.quick:
        args.training_rounds, args.batch, args.single, args.drafts = 1, 1000, 100, 60
    return args


def database_url() -> str:
    from bench.inbox import bench_database_url

    return bench_database_url("assist", DB_NAME)


def percentile(values: list[float], q: float) -> float:
    """The q-th value of the sorted times, the way the other benchmarks take their p95."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# --- quality ---------------------------------------------------------------------------------------


def read(model, texts: list[str], limit: float) -> list[tuple[str, str, float, bool]]:
    """Each text as the product reads it (classifier.classify_many's steps, with this model):
    (intent after the threshold, best guess before it, its probability, under the threshold)."""
    from console.assist import classifier

    out = []
    for text, ranked in zip(texts, classifier.rank(model, texts)):
        if not classifier.customer_words(text).strip():
            out.append(("other", "other", 1.0, False))  # nothing of the customer's own to read
            continue
        decided = classifier.decide(ranked, limit=limit)
        out.append((decided.intent, ranked[0][0], ranked[0][1], decided.below_threshold))
    return out


def scores(truth: list[str], predicted: list[str], labels) -> dict:
    """Accuracy, macro F1 and per-intent precision/recall/F1/support (scikit-learn)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=list(labels), zero_division=0)
    macro = precision_recall_fscore_support(truth, predicted, labels=list(labels), average="macro", zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(macro[2]), 4),
        "per_intent": {label: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                               "f1": round(float(f[i]), 4), "support": int(s[i])} for i, label in enumerate(labels)},
    }


def quality(train_rows: list[dict], test_rows: list[dict], limit: float) -> dict:
    """The figures of a model trained on `train_rows` (classifier.train) read on `test_rows`."""
    from sklearn.metrics import accuracy_score, f1_score

    from console.assist import classifier

    labels = classifier.INTENTS
    model = classifier.train(train_rows)
    reads = read(model, [r["text"] for r in test_rows], limit)
    out: dict = {"threshold": limit}
    for suffix, keep in [("", lambda r: True)] + [(f"_{lang}", lambda r, lang=lang: r["lang"] == lang)
                                                  for lang in LANGUAGES]:
        pairs = [(row, got) for row, got in zip(test_rows, reads) if keep(row)]
        if not pairs:
            continue
        truth = [row["intent"] for row, _ in pairs]
        shown = [got[0] for _, got in pairs]
        top1 = [got[1] for _, got in pairs]
        s = scores(truth, shown, labels)
        out[f"accuracy{suffix}"] = s["accuracy"]
        out[f"macro_f1{suffix}"] = s["macro_f1"]
        out[f"accuracy_top1{suffix}"] = round(float(accuracy_score(truth, top1)), 4)
        out[f"macro_f1_top1{suffix}"] = round(float(f1_score(truth, top1, labels=list(labels), average="macro",
                                                             zero_division=0)), 4)
        out[f"below_threshold_share{suffix}"] = round(sum(got[3] for _, got in pairs) / len(pairs), 4)
        out[f"per_intent{suffix}"] = s["per_intent"]
    out["misread"] = [{"id": row["id"], "intent": row["intent"], "shown": got[0], "best_guess": got[1],
                       "confidence": round(got[2], 3)}
                      for row, got in zip(test_rows, reads) if got[0] != row["intent"]]
    return out


# --- classifier timings ----------------------------------------------------------------------------


def training_seconds(rows: list[dict], rounds: int) -> float:
    from console.assist import classifier

    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        classifier.train(rows)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def classify_throughput(texts: list[str], at_least: int, rounds: int = 3) -> dict:
    """Messages per second through classifier.classify_many (the product's cached model), the
    set repeated to `at_least` messages; the median of `rounds` passes after a warm-up."""
    from console.assist import classifier

    batch = texts * math.ceil(at_least / len(texts))
    classifier.classify_many(texts[:200])  # warm-up: the model trained and kept, numpy's paths taken
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        classifier.classify_many(batch)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {"classify_batch": len(batch), "classify_batch_s": round(seconds, 3),
            "classify_per_s": round(len(batch) / seconds, 1)}


def classify_single(texts: list[str], n: int) -> dict:
    from console.assist import classifier

    rng = random.Random(4)
    chosen = [rng.choice(texts) for _ in range(n)]
    for text in chosen[:20]:
        classifier.classify(text)
    times = []
    for text in chosen:
        started = time.perf_counter()
        classifier.classify(text)
        times.append((time.perf_counter() - started) * 1000)
    return {"classify_single_n": n, "classify_single_p50_ms": round(statistics.median(times), 3),
            "classify_single_p95_ms": round(percentile(times, 0.95), 3)}


# --- drafts ----------------------------------------------------------------------------------------

ORDERS = [("Sencha 200g", 1800), ("Matcha starter set", 4200), ("Gyokuro gift box", 5600),
          ("Hojicha 100g ×3", 2700), ("Drip bags (20)", 1600), ("Colombia Huila 250g", 1700),
          ("Gooseneck kettle", 8900), ("Ceramic dripper", 3200), ("Uji matcha 30g ×2", 4800),
          ("Kyusu teapot", 6400), ("Ethiopia Guji 250g", 1900), ("Tea sampler", 2500)]


def mirror_customer() -> int:
    """A customer with a year of USD history in the mirror (upsert_fetched, as an API read
    writes it) and a contact linked to it; the contact's id. Same ids on every run."""
    from payments.mirror import upsert_fetched
    from payments.samples import sample
    from tickets.models import Contact, Identity

    now = int(time.time())
    rng = random.Random(40)
    objects = [sample("customer", id=CUSTOMER_ID, name=CUSTOMER_NAME, email="misaki.sato@example.jp",
                      created=now - 400 * DAY, metadata={})]
    charges: list[dict] = []

    def charge(n: int, amount: int, created: int, description: str, **fields) -> dict:
        values = dict(id=f"ch_bench_assist_{n:03d}", customer=CUSTOMER_ID, amount=amount, amount_captured=amount,
                      amount_refunded=0, currency="usd", status="succeeded", paid=True, captured=True, refunded=False,
                      disputed=False, created=created, description=description, invoice=None, metadata={},
                      payment_intent=f"pi_bench_assist_{n:03d}", refunds=None,
                      billing_details={"email": "misaki.sato@example.jp", "name": CUSTOMER_NAME, "address": None,
                                       "phone": None, "tax_id": None},
                      receipt_url=f"https://pay.stripe.com/receipts/payment/bench_assist_{n:03d}")
        c = sample("charge", **{**values, **fields})
        charges.append(c)
        return c

    def invoice(n: int, c: dict, subscription: str, status: str = "paid") -> dict:
        return sample("invoice", id=f"in_bench_assist_{n:03d}", customer=CUSTOMER_ID, subscription=subscription,
                      charge=c["id"], status=status, number=f"KR-{4100 + n}", amount_due=c["amount"],
                      amount_paid=c["amount"] if status == "paid" else 0, amount_remaining=0, currency="usd",
                      created=c["created"] - 60, due_date=None, next_payment_attempt=None,
                      hosted_invoice_url=f"https://invoice.stripe.com/i/bench_assist_{n:03d}",
                      invoice_pdf=f"https://pay.stripe.com/invoice/bench_assist_{n:03d}/pdf")

    # The old subscription: monthly $24.00 for ten months, cancelled 80 days ago; one renewal
    # still went through after the cancellation (a "charged after cancel" to find).
    old, new = "sub_bench_assist_old", "sub_bench_assist_new"
    n = 0
    for month in range(10):
        n += 1
        c = charge(n, 2400, now - (365 - 30 * month) * DAY + 3600, "Coffee subscription (monthly)",
                   invoice=f"in_bench_assist_{n:03d}")
        objects.append(invoice(n, c, old))
    n += 1
    late = charge(n, 2400, now - 65 * DAY, "Coffee subscription (monthly)", invoice=f"in_bench_assist_{n:03d}")
    objects.append(invoice(n, late, old))
    objects.append(sample("subscription", id=old, customer=CUSTOMER_ID, status="canceled", currency="usd",
                          created=now - 366 * DAY, canceled_at=now - 80 * DAY, ended_at=now - 80 * DAY,
                          cancel_at=None, cancel_at_period_end=False, current_period_start=now - 95 * DAY,
                          current_period_end=now - 80 * DAY))
    # The new one: monthly $18.00 for 70 days; a renewal declined once, paid on the retry.
    for days in (70, 40, 10):
        n += 1
        if days == 40:
            charge(n, 1800, now - 41 * DAY, "Tea subscription (monthly)", status="failed", paid=False,
                   amount_captured=0, failure_code="card_declined", failure_message="Your card was declined.")
            n += 1
        c = charge(n, 1800, now - days * DAY, "Tea subscription (monthly)", invoice=f"in_bench_assist_{n:03d}")
        objects.append(invoice(n, c, new))
    objects.append(sample("subscription", id=new, customer=CUSTOMER_ID, status="active", currency="usd",
                          created=now - 70 * DAY, canceled_at=None, ended_at=None, cancel_at=None,
                          cancel_at_period_end=False, current_period_start=now - 10 * DAY,
                          current_period_end=now + 20 * DAY))
    # Orders over the year, newest a few days ago: one charged twice, one declined.
    days_ago = sorted(rng.sample(range(4, 360), 23), reverse=True)
    for i, days in enumerate(days_ago):
        n += 1
        item, amount = ORDERS[i % len(ORDERS)]
        order = f"KR-{10400 + i}"
        charge(n, amount, now - days * DAY - rng.randint(0, DAY), f"Order {order}: {item}",
               metadata={"order_id": order})
    n += 1
    twin_at = now - 3 * DAY
    first = charge(n, 4200, twin_at, "Order KR-10430: Matcha starter set", metadata={"order_id": "KR-10430"})
    n += 1
    charge(n, 4200, twin_at + 95, "Order KR-10430: Matcha starter set", metadata={"order_id": "KR-10430"})
    n += 1
    charge(n, 5600, now - 2 * DAY, "Order KR-10431: Gyokuro gift box", status="failed", paid=False,
           amount_captured=0, failure_code="insufficient_funds", failure_message="Your card has insufficient funds.")
    # Refunds: an order in full, another in part, the late renewal; the duplicate still pending.
    orders = [c for c in charges if c["description"].startswith("Order ") and c["status"] == "succeeded"]
    refunds = [(orders[5], orders[5]["amount"], "succeeded"), (orders[12], 800, "succeeded"),
               (late, late["amount"], "succeeded"), (first, first["amount"], "pending")]
    for k, (c, amount, status) in enumerate(refunds, 1):
        created = min(c["created"] + rng.randint(1, 8) * DAY, now - 3600)
        objects.append(sample("refund", id=f"re_bench_assist_{k:03d}", charge=c["id"], amount=amount, currency="usd",
                              status=status, reason="requested_by_customer", created=created,
                              payment_intent=c["payment_intent"]))
        c["amount_refunded"] += amount if status == "succeeded" else 0
        c["refunded"] = c["amount_refunded"] >= c["amount"]
    # A dispute on an older order, won.
    disputed = orders[3]
    disputed["disputed"] = True
    objects.append(sample("dispute", id="dp_bench_assist_001", charge=disputed["id"], amount=disputed["amount"],
                          currency="usd", status="won", reason="product_not_received",
                          created=disputed["created"] + 20 * DAY,
                          payment_intent=disputed["payment_intent"]))
    upsert_fetched(objects + charges, now)
    identity = Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=CUSTOMER_ID).first()
    if identity is None:
        contact = Contact.objects.create(name=CUSTOMER_NAME)
        identity = Identity.objects.create(contact=contact, kind=Identity.Kind.STRIPE_CUSTOMER, value=CUSTOMER_ID)
    return identity.contact_id


def draft_timings(contact_id: int, messages: list[dict], iterations: int) -> dict:
    """What the task does for a draft, timed: the contact's history, the links for the message's
    intent and entities (extracted beforehand, as triage keeps them), and the draft's words.
    Round-robin over every (intent, language), each cycling through its labelled messages."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from console.assist import drafts, linking
    from console.assist.classifier import INTENTS
    from console.assist.entities import extract
    from console.assist.selectors import history

    now = timezone.now()
    groups = {}
    for intent in INTENTS:
        for lang in LANGUAGES:
            rows = [r for r in messages if r["intent"] == intent and r["lang"] == lang]
            groups[intent, lang] = [
                [e.__dict__ for e in extract(r["text"], now=now, tz=settings.SHOP_TIME_ZONE)] for r in rows]
    keys = list(groups)

    def one(i: int) -> tuple[float, float, float, float, object]:
        intent, lang = keys[i % len(keys)]
        found = groups[intent, lang][(i // len(keys)) % len(groups[intent, lang])]
        at = timezone.now()
        t0 = time.perf_counter()
        h = history(contact_id, until=at)
        t1 = time.perf_counter()
        links = linking.link(intent, found, h, at=at)
        t2 = time.perf_counter()
        draft = drafts.write(intent=intent, language=lang, name=CUSTOMER_NAME, links=links, h=h)
        t3 = time.perf_counter()
        return (t3 - t0) * 1000, (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (h, draft)

    for i in range(len(keys)):  # warm-up: every template compiled, both catalogues loaded
        one(i)
    total, hist, link, write = [], [], [], []
    facts = 0
    for i in range(iterations):
        a, b, c, d, (h, draft) = one(i)
        total.append(a), hist.append(b), link.append(c), write.append(d)
        facts += len(draft.facts)
    with CaptureQueriesContext(connection) as queries:
        h = history(contact_id, until=timezone.now())
    return {
        "draft_iterations": iterations,
        "draft_p50_ms": round(statistics.median(total), 2), "draft_p95_ms": round(percentile(total, 0.95), 2),
        "history_p50_ms": round(statistics.median(hist), 2), "history_p95_ms": round(percentile(hist, 0.95), 2),
        "link_p95_ms": round(percentile(link, 0.95), 2), "write_p95_ms": round(percentile(write, 0.95), 2),
        "history_queries": len(queries),
        "history_objects": {"charges": len(h.charges), "refunds": len(h.refunds),
                            "subscriptions": len(h.subscriptions), "invoices": len(h.invoices),
                            "disputes": len(h.disputes)},
        "draft_facts_mean": round(facts / iterations, 1) if iterations else 0.0,
    }


# --- report ----------------------------------------------------------------------------------------


def table(q: dict, t: dict, counts: dict) -> str:
    lines = []
    cols = [("all", ""), *((lang, f"_{lang}") for lang in LANGUAGES)]
    head = f"{'quality (test split)':<30}" + "".join(f"{name:>9}" for name, _ in cols)
    lines += [head, "-" * len(head)]
    test_n = [counts["test_messages"], *(counts[f"test_messages_{lang}"] for lang in LANGUAGES)]
    lines.append(f"{'messages':<30}" + "".join(f"{n:>9}" for n in test_n))
    for label, key, pct in [("accuracy", "accuracy", False), ("macro F1", "macro_f1", False),
                            ("accuracy before threshold", "accuracy_top1", False),
                            ("macro F1 before threshold", "macro_f1_top1", False),
                            ("under the threshold", "below_threshold_share", True)]:
        cells = [q.get(f"{key}{suffix}") for _, suffix in cols]
        lines.append(f"{label:<30}" + "".join(f"{v:>8.1%} " if pct else f"{v:>9.3f}" for v in cells))
    lines.append(f"(threshold {q['threshold']}: a best guess under it is shown as \"other\"; "
                 f"trained on {counts['train_messages']} messages)")
    lines.append("")
    group = "".join(f" | {name:^23}" for name, _ in cols)
    lines.append(f"{'intent':<22}{group}")
    sub = "".join(f" | {'P':>5} {'R':>5} {'F1':>5} {'n':>5}" for _ in cols)
    lines.append(f"{'':<22}{sub}")
    lines.append("-" * len(sub + " " * 22))
    for intent in q["per_intent"]:
        row = f"{intent:<22}"
        for _, suffix in cols:
            m = q[f"per_intent{suffix}"][intent]
            row += f" | {m['precision']:>5.2f} {m['recall']:>5.2f} {m['f1']:>5.2f} {m['support']:>5}"
        lines.append(row)
    if q["misread"]:
        lines.append("")
        lines.append(f"misread ({len(q['misread'])}): " + "; ".join(
            f"{m['id']} {m['intent']} → {m['shown']}" + (f" (best guess {m['best_guess']} {m['confidence']:.2f})"
                                                        if m["shown"] != m["best_guess"] else f" ({m['confidence']:.2f})")
            for m in q["misread"]))
    lines.append("")
    w = 36
    lines.append(f"{'timing':<{w}} result")
    lines.append(f"{'-' * w} {'-' * 40}")
    lines.append(f"{'training (classifier.train)':<{w}} {t['training_s']:.2f} s "
                 f"(median of {t['training_rounds']}, {counts['train_messages']} messages)")
    lines.append(f"{'classify_many':<{w}} {t['classify_per_s']:,.0f} messages/s "
                 f"({t['classify_batch']:,} in {t['classify_batch_s']:.2f} s, median of 3)")
    lines.append(f"{'classify, one message at a time':<{w}} p50 {t['classify_single_p50_ms']:.2f} ms, "
                 f"p95 {t['classify_single_p95_ms']:.2f} ms ({t['classify_single_n']} messages)")
    o = t["history_objects"]
    lines.append(f"{'draft: history + link + write':<{w}} p50 {t['draft_p50_ms']:.2f} ms, "
                 f"p95 {t['draft_p95_ms']:.2f} ms ({t['draft_iterations']} drafts, 10 intents × en/ja)")
    lines.append(f"{'  history alone':<{w}} p50 {t['history_p50_ms']:.2f} ms, p95 {t['history_p95_ms']:.2f} ms "
                 f"({t['history_queries']} queries; " + ", ".join(f"{k} {v}" for k, v in o.items()) + ")")
    lines.append(f"{'  link / write':<{w}} p95 {t['link_p95_ms']:.2f} ms / {t['write_p95_ms']:.2f} ms")
    return "\n".join(lines)


def main(argv=None) -> int:
    from bench.inbox import ensure_database, loadavg, setup_django

    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    url = database_url()
    ensure_database(url)
    setup_django(url)
    import sklearn

    from console.assist import classifier

    train_rows, test_rows = classifier.load_dataset("train"), classifier.load_dataset("test")
    everything = classifier.load_dataset()
    counts = {"train_messages": len(train_rows), "test_messages": len(test_rows),
              **{f"test_messages_{lang}": sum(r["lang"] == lang for r in test_rows) for lang in LANGUAGES}}
    print(f"bench.assist: {counts['train_messages']} training and {counts['test_messages']} test messages",
          file=sys.stderr, flush=True)
    q = quality(train_rows, test_rows, classifier.threshold())
    # The product's own path (classify_many, its cached model) reads the test split the same way.
    product = [c.intent for c in classifier.classify_many([r["text"] for r in test_rows])]
    shown = {m["id"]: m["shown"] for m in q["misread"]}
    same = all(p == shown.get(r["id"], r["intent"]) for p, r in zip(product, test_rows))
    if not same:
        print("bench.assist: classify_many disagrees with the evaluation's reading", file=sys.stderr)

    texts = [r["text"] for r in everything]
    t = {"training_rounds": args.training_rounds, "training_s": round(training_seconds(train_rows,
                                                                                      args.training_rounds), 3)}
    t.update(classify_throughput(texts, args.batch))
    t.update(classify_single(texts, args.single))
    print("bench.assist: classifier timed; drafts ...", file=sys.stderr, flush=True)
    contact_id = mirror_customer()
    t.update(draft_timings(contact_id, everything, args.drafts))
    load_end = loadavg()
    print(table(q, t, counts))
    print(f"({os.cpu_count()} CPUs, load average {load_end[0]:.2f}; scikit-learn {sklearn.__version__})")

    figures = {"when": when, "quick": args.quick, "cpus": os.cpu_count(), "loadavg_at_end": load_end,
               "counts": counts, "sklearn": sklearn.__version__, "classify_many_agrees": same, **q, **t}
    merge_write(args.output, {"assist": figures})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
