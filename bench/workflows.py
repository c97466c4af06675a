"""Workflows: a backtest of one workflow over 100,000 stored events.

    python -m bench.workflows                 # 100,000 early-fraud-warning events, 2,000 charges
    python -m bench.workflows --events 10000  # a quicker trial

Loads the events into their own database (named *bench*) with bulk inserts, then runs seed
001's fraud-warning template (fetch the charge, refund under 15 USD, else notify) against them
through console.workflows.backtest, as "Test against history" does. Writes the "workflows" key
of bench/results.json (backtest_100k_s is the figure for 100,000 events). It measures; it
asserts nothing. The live engine's throughput (eval_events_per_s) comes with the engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from urllib.parse import urlparse, urlunparse

from bench.inbox import ensure_database, loadavg, setup_django
from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_workflows"


def database_url() -> str:
    parsed = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paydesk"))
    return urlunparse(parsed._replace(path=f"/{DB_NAME}"))


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--charges", type=int, default=2_000)
    args = parser.parse_args(argv)
    url = database_url()
    ensure_database(url)
    setup_django(url)
    from console.workflows.backtest import backtest
    from console.workflows.templates import FRAUD_WARNING_REFUND_OR_NOTIFY as FRAUD_WARNING

    started = time.perf_counter()
    load(args.events, args.charges)
    load_seconds = time.perf_counter() - started
    load_start = loadavg()
    t, cpu = time.perf_counter(), time.process_time()
    report = backtest(FRAUD_WARNING, days=30)
    seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
    figures = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "loadavg_at_start": load_start, "loadavg_at_end": loadavg(),
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
    merge_write(RESULTS, {"workflows": figures})
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
