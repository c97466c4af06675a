"""Workflows: a backtest of one workflow over 100,000 stored events, and the live engine's matching
of events to 1,000 active workflows.

    python -m bench.workflows                 # both: 100,000 fraud-warning events; 1,000 workflows × 10,000 events
    python -m bench.workflows --only eval     # the matching alone (the backtest's figures are kept)
    python -m bench.workflows --events 10000  # a quicker backtest trial

Backtest: loads the events into their own database (named *bench*) with bulk inserts, then runs
seed 001's fraud-warning template (fetch the charge, refund under 15 USD, else notify) against
them through console.workflows.backtest, as "Test against history" does (backtest_100k_s is the
figure for 100,000 events).

Matching (eval_*): 1,000 active workflows spread over the Stripe and ticket triggers with
conditions like people write them (amounts over a threshold in USD, JPY, EUR or GBP, guarded
by the currency, a few not; metadata equals; risk level, reason or billing reason in a list;
status changed to ... on *.updated events; any/all groups), then 10,000 Stripe-shaped events
(tests/factories.py payloads, mixed currencies, amounts and metadata) through
console.workflows.index.matching, one at a time in this one process: eval_events_per_s and
eval_p95_ms (per event). Each call reads the index generation from the cache, as production
does (Redis: CACHE_URL, else the bench's own CELERY_BROKER_URL db). Beside it: the conditions
alone, compiled (eval_compiled_only_*: what reading the generation every N ms would approach)
and interpreted by conditions.evaluate (eval_interpreted_only_*), and the generation read alone,
on the index's kept client and through Django's cache.get. Every case runs --rounds times,
interleaved, and its median round is kept: the machine may be shared.

Writes the "workflows" key of bench/results.json; a part not run keeps its figures there. Its
own database: BENCH_WORKFLOWS_DATABASE_URL, else DATABASE_URL with the name replaced by
paydesk_bench_workflows. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import random
import statistics
import time

from bench.inbox import ensure_database, loadavg, setup_django
from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_workflows"


def database_url() -> str:
    from bench.inbox import bench_database_url

    return bench_database_url("workflows", DB_NAME)


# --- the backtest ----------------------------------------------------------------------------------


def load(events: int, charges: int) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    from payments.models import Charge, WebhookEvent
    from tests import factories

    call_command("migrate", verbosity=0)
    WebhookEvent.objects.all().delete()
    Charge.objects.all().delete()
    now = timezone.now()
    made = [factories.ChargeFactory(amount=500 + 10 * i, currency="usd") for i in range(charges)]
    Charge.objects.bulk_create([Charge(id=c["id"], data=c, created=now, livemode=False) for c in made])
    rows = []
    for i in range(events):
        warning = factories.EarlyFraudWarningFactory(charge=made[i % charges]["id"])
        event = factories.event("radar.early_fraud_warning.created", warning)
        rows.append(WebhookEvent(id=event["id"], type=event["type"], created=now - dt.timedelta(seconds=i),
                                 payload=event, received_at=now, status="applied", object_id=warning["id"]))
        if len(rows) == 5000:
            WebhookEvent.objects.bulk_create(rows)
            rows = []
    WebhookEvent.objects.bulk_create(rows)


def run_backtest(args) -> dict:
    from console.workflows.backtest import backtest
    from console.workflows.templates import FRAUD_WARNING_REFUND_OR_NOTIFY as FRAUD_WARNING

    started = time.perf_counter()
    load(args.events, args.charges)
    load_seconds = time.perf_counter() - started
    t, cpu = time.perf_counter(), time.process_time()
    report = backtest(FRAUD_WARNING, days=30)
    seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
    figures = {
        "backtest_events": report.events, "backtest_charges": args.charges, "load_seconds": round(load_seconds, 1),
        "backtest_s": round(seconds, 2), "backtest_cpu_s": round(cpu_seconds, 2),
        "backtest_events_per_s": round(report.events / seconds) if seconds else None,
    }
    if report.events == 100_000:
        figures["backtest_100k_s"] = figures["backtest_s"]
    print(f"{'case':<34} {'events':>8} {'seconds':>8} {'cpu s':>7} {'events/s':>9}")
    print(f"{'backtest, fraud-warning template':<34} {report.events:>8,} {seconds:>8.2f} {cpu_seconds:>7.2f} "
          f"{figures['backtest_events_per_s']:>9,}")
    print(f"(matched {report.matched:,}; would refund {dict(report.refunds)} in {report.totals['refund']:,} refunds, "
          f"notify {report.notifications:,} times; load {load_seconds:.1f} s)")
    return figures


# --- matching events to active workflows ---------------------------------------------------------------

# How often each Stripe event arrives in a shop like the demo's (relative), and the workflows on it.
EVENT_WEIGHTS = {
    "payment_intent.succeeded": 16, "payment_intent.payment_failed": 4, "charge.succeeded": 16, "charge.failed": 4,
    "charge.refunded": 5, "refund.created": 5, "refund.updated": 3, "charge.dispute.created": 2,
    "charge.dispute.updated": 2, "charge.dispute.closed": 1, "radar.early_fraud_warning.created": 1,
    "radar.early_fraud_warning.updated": 1, "invoice.paid": 10, "invoice.payment_failed": 3,
    "customer.subscription.created": 4, "customer.subscription.updated": 6, "customer.subscription.deleted": 2,
    "customer.created": 8, "customer.updated": 7,
}
TICKET_TRIGGERS = ("ticket.created", "message.received", "ticket.solved")
CURRENCIES = {"usd": 55, "jpy": 25, "eur": 12, "gbp": 8}
# Typical amounts in the currency's real units, and the thresholds people set in them.
TYPICAL = {"usd": 60, "jpy": 6000, "eur": 55, "gbp": 45}
THRESHOLDS = {"usd": ["15", "100", "500", "1,000"], "jpy": ["2,000", "10,000", "50,000", "100,000"],
              "eur": ["50", "250", "1,000"], "gbp": ["25", "200", "750"]}
MINOR = {"usd": 100, "jpy": 1, "eur": 100, "gbp": 100}
# The amount of each resource that sits beside its currency.
MONEY_FIELD = {"payment_intent": "amount", "charge": "amount", "refund": "amount", "dispute": "amount",
               "invoice": "amount_due"}
IN_LISTS = {
    "charge": ("charge.outcome.risk_level", [["elevated", "highest"], ["highest"]]),
    "dispute": ("dispute.reason", [["fraudulent", "unrecognized"], ["product_not_received", "subscription_canceled"]]),
    "refund": ("refund.reason", [["fraudulent"], ["duplicate", "requested_by_customer"]]),
    "early_fraud_warning": ("early_fraud_warning.fraud_type", [["unauthorized_use_of_card", "card_never_received"],
                                                              ["made_with_stolen_card"]]),
    "invoice": ("invoice.billing_reason", [["subscription_cycle"], ["subscription_create", "manual"]]),
    "payment_intent": ("payment_intent.status", [["succeeded"], ["requires_payment_method", "canceled"]]),
    "subscription": ("subscription.status", [["active", "trialing"], ["past_due", "unpaid"]]),
    "customer": ("customer.address.country", [["JP"], ["US", "CA"]]),
}
CHANGES = {  # *.updated: what people watch change, and to what
    "refund": [("refund.status", "failed"), ("refund.status", "succeeded")],
    "dispute": [("dispute.status", "under_review"), ("dispute.status", "lost"), ("dispute.status", "won")],
    "early_fraud_warning": [("early_fraud_warning.actionable", False)],
    "subscription": [("subscription.status", "past_due"), ("subscription.status", "canceled"),
                     ("subscription.cancel_at_period_end", True)],
    "customer": [("customer.email", None)],  # None: "changed", whatever to
}


def _money_leaf(root: str, rng: random.Random, currency: str) -> dict:
    return {"ref": f"{root}.{MONEY_FIELD[root]}", "op": rng.choice(["gt", "gte", "gt", "lt"]),
            "value": {"amount": rng.choice(THRESHOLDS[currency]), "currency": currency.upper()}}


def _fact(trigger: str, root: str, rng: random.Random, currency: str) -> dict:
    """One condition people write on this trigger's object (amounts in the workflow's currency)."""
    kinds = ["meta", "in"] if root != "early_fraud_warning" else ["in", "actionable"]  # a warning has no metadata
    if root in MONEY_FIELD:
        kinds += ["money", "money"]
    if trigger.endswith(".updated") and root in CHANGES:
        kinds += ["change", "change"]
    kind = rng.choice(kinds)
    if kind == "money":
        leaf = _money_leaf(root, rng, currency)
        if rng.random() < 0.01:  # the mistake people make: no currency guard
            return leaf
        return {"all": [{"ref": f"{root}.currency", "op": "eq", "value": currency}, leaf]}
    if kind == "meta":
        key, values = rng.choice([("tier", ["vip", "gold"]), ("channel", ["web", "app", "line"]),
                                  ("plan", ["pro", "team"])])
        return {"ref": f"{root}.metadata.{key}", "op": "eq", "value": rng.choice(values)}
    if kind == "actionable":
        return {"ref": "early_fraud_warning.actionable", "op": "eq", "value": True}
    if kind == "change":
        ref, to = rng.choice(CHANGES[root])
        return {"ref": ref, "op": "changed"} if to is None else {"ref": ref, "op": "changed_to", "value": to}
    ref, lists = IN_LISTS[root]
    return {"ref": ref, "op": "in", "value": rng.choice(lists)}


def _ticket_fact(trigger: str, rng: random.Random) -> dict:
    facts = [
        {"ref": "ticket.channel", "op": "eq", "value": rng.choice(["line", "email"])},
        {"ref": "ticket.priority", "op": "in", "value": rng.choice([["high", "urgent"], ["urgent"]])},
        {"ref": "ticket.tags", "op": "contains", "value": rng.choice(["refund", "vip", "dispute"])},
        {"ref": "contact.language", "op": "eq", "value": rng.choice(["ja", "en"])},
    ]
    if trigger == "message.received":
        facts.append({"ref": "message.text", "op": "contains", "value": rng.choice(["返金", "refund", "cancel"])})
    return rng.choice(facts)


def _conditions(facts: list[dict], rng: random.Random) -> dict:
    if len(facts) == 1:
        return facts[0]
    if len(facts) == 3 and rng.random() < 0.5:
        return {"any": [facts[0], {"all": facts[1:]}]}
    return {rng.choice(["all", "all", "any"]): facts}


def workflow_definitions(count: int, rng: random.Random) -> list[dict]:
    from console.workflows.references import STRIPE_TRIGGERS, root_name

    stripe = list(STRIPE_TRIGGERS)
    steps = [{"action": "notify", "params": {"team": "finance", "text": "Have a look"}}]
    out = []
    for i in range(count):
        n_facts = rng.choices([0, 1, 2, 3], weights=[1, 5, 4, 2])[0]
        if i % 7 == 6:  # one in seven on a ticket event
            trigger = rng.choice(TICKET_TRIGGERS)
            definition = {"trigger": {"ticket": trigger}, "steps": steps}
            facts = [_ticket_fact(trigger, rng) for _ in range(n_facts)]
        else:
            trigger = stripe[i % len(stripe)]
            definition = {"trigger": {"stripe": trigger}, "steps": steps}
            currency = _pick(rng, CURRENCIES)
            facts = [_fact(trigger, root_name(STRIPE_TRIGGERS[trigger]), rng, currency) for _ in range(n_facts)]
        if facts:
            definition["conditions"] = _conditions(facts, rng)
        out.append(definition)
    return out


def load_workflows(definitions: list[dict]) -> None:
    """The workflows, active, as activate_workflow leaves them (bulk: the bench is not about saving)."""
    from django.db import connection, transaction

    from console.workflows.definition import trigger_key, validate_definition
    from console.workflows.models import Workflow, WorkflowVersion

    for definition in definitions:
        errors = validate_definition(definition)
        if errors:
            raise SystemExit(f"bench.workflows: a generated workflow is invalid: {errors} in {json.dumps(definition)}")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {Workflow._meta.db_table}, {WorkflowVersion._meta.db_table} CASCADE")
        workflows = Workflow.objects.bulk_create([Workflow(name=f"Bench workflow {i + 1}")
                                                  for i in range(len(definitions))])
        versions = WorkflowVersion.objects.bulk_create([
            WorkflowVersion(workflow=w, number=1, definition=d, trigger=trigger_key(d))
            for w, d in zip(workflows, definitions)])
        for workflow, version in zip(workflows, versions):
            workflow.status, workflow.active_version, workflow.trigger = "active", version, version.trigger
        Workflow.objects.bulk_update(workflows, ["status", "active_version", "trigger"])


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _amount(rng: random.Random, currency: str) -> int:
    major = TYPICAL[currency] * math.exp(rng.gauss(0, 1.3))
    return max(MINOR[currency], int(major * MINOR[currency]))


def _metadata(rng: random.Random) -> dict:
    metadata = {}
    if rng.random() < 0.2:
        metadata["tier"] = rng.choice(["vip", "gold"])
    if rng.random() < 0.5:
        metadata["channel"] = rng.choice(["web", "app", "line"])
    if rng.random() < 0.1:
        metadata["plan"] = rng.choice(["pro", "team", "basic"])
    return metadata


def stripe_events(count: int, rng: random.Random) -> list[dict]:
    """Stripe-shaped events (tests/factories.py) of the triggers' types, mixed as a shop gets them."""
    from tests import factories

    events = []
    for _ in range(count):
        kind = _pick(rng, EVENT_WEIGHTS)
        currency = _pick(rng, CURRENCIES)
        amount, metadata, previous = _amount(rng, currency), _metadata(rng), None
        if kind.startswith("payment_intent."):
            status = "succeeded" if kind.endswith("succeeded") else "requires_payment_method"
            obj = factories.PaymentIntentFactory(amount=amount, currency=currency, status=status, metadata=metadata)
        elif kind.startswith("charge.dispute."):
            status = {"created": "needs_response", "updated": rng.choice(["under_review", "needs_response"]),
                      "closed": rng.choice(["won", "lost"])}[kind.rsplit(".", 1)[1]]
            obj = factories.DisputeFactory(amount=amount, currency=currency, status=status, metadata=metadata,
                                           reason=rng.choice(["fraudulent", "unrecognized", "duplicate",
                                                              "product_not_received", "subscription_canceled"]))
            if kind != "charge.dispute.created":
                previous = {"status": "needs_response" if status != "needs_response" else "warning_needs_response"}
        elif kind.startswith("charge."):
            risk = rng.choices(["normal", "elevated", "highest"], weights=[85, 10, 5])[0]
            obj = factories.ChargeFactory(amount=amount, currency=currency, metadata=metadata,
                                          status="failed" if kind == "charge.failed" else "succeeded",
                                          outcome={"type": "authorized", "risk_level": risk,
                                                   "risk_score": rng.randint(0, 99)})
        elif kind.startswith("refund."):
            status = rng.choices(["succeeded", "pending", "failed"], weights=[70, 20, 10])[0]
            obj = factories.RefundFactory(amount=amount, currency=currency, status=status, metadata=metadata,
                                          reason=rng.choice(["requested_by_customer", "duplicate", "fraudulent"]))
            if kind == "refund.updated":
                previous = {"status": "pending"}
        elif kind.startswith("radar."):
            obj = factories.EarlyFraudWarningFactory(
                fraud_type=rng.choice(["unauthorized_use_of_card", "made_with_stolen_card", "card_never_received"]),
                actionable=kind.endswith("created"))
            if kind.endswith("updated"):
                previous = {"actionable": True}
        elif kind.startswith("invoice."):
            paid = kind == "invoice.paid"
            obj = factories.InvoiceFactory(amount_due=amount, amount_paid=amount if paid else 0, currency=currency,
                                           status="paid" if paid else "open", metadata=metadata,
                                           billing_reason=rng.choice(["subscription_cycle", "subscription_create",
                                                                      "manual"]),
                                           attempt_count=1 if paid else rng.randint(1, 4))
        elif kind.startswith("customer.subscription."):
            status = rng.choices(["active", "past_due", "canceled", "trialing"], weights=[70, 12, 10, 8])[0]
            obj = factories.SubscriptionFactory(currency=currency, status=status, metadata=metadata,
                                                cancel_at_period_end=rng.random() < 0.1)
            if kind.endswith("updated"):
                previous = rng.choice([{"status": "active"}, {"cancel_at_period_end": False},
                                       {"items": {"data": []}}])
        else:
            obj = factories.CustomerFactory(metadata=metadata,
                                            address={"country": rng.choice(["US", "JP", "JP", "CA", "GB"])})
            if kind == "customer.updated":
                previous = rng.choice([{"email": "old@example.com"}, {"metadata": {}}, {"name": "Old name"}])
        events.append(factories.event(kind, obj, previous_attributes=previous))
    return events


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def _time_each(function, cases: list[tuple[str, dict]]) -> tuple[list[float], float, float]:
    """Call function(key, context) per case; (seconds of each call, wall seconds, CPU seconds)."""
    each = []
    clock = time.perf_counter
    started, cpu = clock(), time.process_time()
    for key, context in cases:
        t = clock()
        function(key, context)
        each.append(clock() - t)
    return each, clock() - started, time.process_time() - cpu


def run_eval(args) -> dict:
    from django.conf import settings
    from django.core.cache import cache

    from console.workflows import index
    from console.workflows.conditions import ConditionError, evaluate
    from console.workflows.engine import stripe_context

    rng = random.Random(20261204)
    started = time.perf_counter()
    definitions = workflow_definitions(args.workflows, rng)
    load_workflows(definitions)
    index.bump_generation()
    print(f"bench.workflows: {args.workflows:,} active workflows; building {args.eval_events:,} events ...", flush=True)
    events = stripe_events(args.eval_events, rng)
    cases = [(f"stripe:{event['type']}", stripe_context(event)) for event in events]
    setup_seconds = time.perf_counter() - started

    # Cold: the first event of each trigger after a bump loads its workflows (one query) and
    # compiles their conditions.
    index.bump_generation()
    t = time.perf_counter()
    triggers = sorted({key for key, _context in cases})
    for key in triggers:
        index.matching(key, {})
    cold_ms = (time.perf_counter() - t) * 1000

    found = [index.matching(key, context) for key, context in cases]
    candidates = sum(len(f) for f in found)
    errors = sum(1 for f in found for c in f if c.error)
    by_trigger = {key: [(e, (e.definition or {}).get("conditions")) for e in index._entries(key)] for key in triggers}
    generation = index.current_generation()

    def compiled_only(key, context):  # matching() as it would be with the generation known (an N-ms read)
        real_read = index.current_generation
        index.current_generation = lambda: generation
        try:
            return index.matching(key, context)
        finally:
            index.current_generation = real_read

    def interpreted_only(key, context):  # the same with conditions.evaluate instead of compiled conditions
        out = []
        for entry, conditions in by_trigger[key]:
            try:
                if not conditions or evaluate(conditions, context):
                    out.append(entry.workflow_id)
            except (ConditionError, ValueError):
                out.append(entry.workflow_id)
        return out

    # (label, results prefix, function): interleaved rounds, each case's median round kept, so
    # that a burst of load on a shared machine doesn't land on one case only.
    variants = [
        ("matching(): generation read + conditions", "eval", index.matching),
        ("  conditions alone, compiled", "eval_compiled_only", compiled_only),
        ("  conditions alone, interpreted", "eval_interpreted_only", interpreted_only),
        ("  generation read alone (kept client)", "eval_generation_read", lambda k, c: index.current_generation()),
        ("  generation read by Django's cache.get", "eval_generation_read_django",
         lambda k, c: cache.get(index.GENERATION_KEY)),
    ]
    # The 10,000 events held here are millions of objects a worker never holds at once: out of
    # the garbage collector's sight, so that its full passes over them aren't what is measured.
    gc.collect()
    gc.freeze()
    load_start = loadavg()
    rounds: dict[str, list] = {prefix: [] for _label, prefix, _f in variants}
    for _round in range(args.rounds):
        for _label, prefix, function in variants:
            rounds[prefix].append(_time_each(function, cases))
    n = len(cases)
    on_triggers = [len(by_trigger[key]) for key, _context in cases]
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    figures = {
        "eval_workflows": args.workflows, "eval_events": n, "eval_triggers": len(triggers),
        "eval_workflows_per_event": round(statistics.mean(on_triggers), 1),
        "eval_candidates_per_event": round(candidates / n, 2), "eval_condition_errors": errors,
        "eval_cache": backend, "eval_rounds": args.rounds, "eval_setup_seconds": round(setup_seconds, 1),
        "eval_loadavg_at_start": load_start, "eval_cold_load_ms": round(cold_ms, 1),
    }
    print()
    print(f"{'case (one process, ' + format(n, ',') + ' events)':<42} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'cpu µs':>7}")
    for label, prefix, _function in variants:
        each, wall, cpu = sorted(rounds[prefix], key=lambda r: r[1])[len(rounds[prefix]) // 2]
        each = sorted(each)
        figures.update({
            f"{prefix}_events_per_s": round(n / wall), f"{prefix}_p50_ms": round(_percentile(each, 0.50) * 1000, 4),
            f"{prefix}_p95_ms": round(_percentile(each, 0.95) * 1000, 4),
            f"{prefix}_p99_ms": round(_percentile(each, 0.99) * 1000, 4),
            f"{prefix}_cpu_us_per_event": round(cpu / n * 1e6, 1),
        })
        print(f"{label:<42} {figures[f'{prefix}_events_per_s']:>7,} {figures[f'{prefix}_p50_ms']:>7.3f} "
              f"{figures[f'{prefix}_p95_ms']:>7.3f} {figures[f'{prefix}_p99_ms']:>7.3f} "
              f"{figures[f'{prefix}_cpu_us_per_event']:>7.1f}")
    print(f"({args.workflows:,} workflows on {len(triggers)} Stripe event types and {len(TICKET_TRIGGERS)} ticket "
          "ones, "
          f"{figures['eval_workflows_per_event']} on an event's trigger on average, "
          f"{figures['eval_candidates_per_event']} matched per event, {errors:,} condition errors; the generation from "
          f"{backend}; the median of {args.rounds} interleaved rounds; loading every trigger after a bump "
          f"{cold_ms:.1f} ms)")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["backtest", "eval"], help="run one part; the other's figures are kept")
    parser.add_argument("--events", type=int, default=100_000, help="backtest: stored events")
    parser.add_argument("--charges", type=int, default=2_000, help="backtest: charges they refer to")
    parser.add_argument("--workflows", type=int, default=1_000, help="matching: active workflows")
    parser.add_argument("--eval-events", type=int, default=10_000, help="matching: events")
    parser.add_argument("--rounds", type=int, default=3, help="matching: timed rounds of every case")
    args = parser.parse_args(argv)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not os.environ.get("CACHE_URL") and broker.startswith("redis://"):
        os.environ["CACHE_URL"] = broker  # the generation is read from Redis, as in production
    url = database_url()
    ensure_database(url)
    setup_django(url)

    previous = {}
    if RESULTS.exists():
        previous = json.loads(RESULTS.read_text(encoding="utf-8")).get("workflows") or {}
    figures = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "loadavg_at_start": loadavg(),
    }
    if args.only != "eval":
        figures.update(run_backtest(args))
    else:
        figures.update({k: v for k, v in previous.items() if k.startswith("backtest_") or k == "load_seconds"})
    if args.only != "backtest":
        figures.update(run_eval(args))
    else:
        figures.update({k: v for k, v in previous.items() if k.startswith("eval_")})
    figures["loadavg_at_end"] = loadavg()
    merge_write(RESULTS, {"workflows": figures})
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
