"""`python -m bench.timeline`: the customer page with 20,000 timeline entries for one
customer, in a database of 1,000,000 entries.

Requests go through Django's test Client in-process (middleware, view, selectors,
template); prints p50/p95 server time, this process's CPU, queries and page weight for the
first page, a deep page (keyset cursor ~15,000 entries down), filtered pages, one entry's
detail and the Stripe panel (console/views/panel.py) when it exists. Measures; asserts nothing.
Every printed figure is also written under the top-level key "timeline" of bench/results.json
(`--output`), the rest of the file kept (bench/results.py).

Its own database: BENCH_TIMELINE_DATABASE_URL, else DATABASE_URL renamed
paydesk_bench_timeline (created and migrated if missing). Entries are generated inside
PostgreSQL (INSERT ... SELECT generate_series) once and kept; `--reload` loads again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from bench.inbox import case_figures, ensure_database, loadavg, measure, setup_django
from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_timeline"
KINDS = ["payment_succeeded", "payment_failed", "refund", "dispute_opened", "fraud_warning", "subscription_changed",
         "invoice_paid", "ticket", "message", "message", "action", "payment_succeeded"]


def database_url() -> str:
    from bench.inbox import bench_database_url

    return bench_database_url("timeline", DB_NAME)


def load(total: int, mine: int, contacts: int, reload: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from console.models import TimelineEntry
    from tickets.models import Contact, Identity

    user, _ = get_user_model().objects.get_or_create(username="bench-agent")
    user.groups.add(Group.objects.get(name="agent"))
    target = Contact.objects.filter(name="Bench Target").first()
    if target and not reload and TimelineEntry.objects.filter(contact=target).exists():
        return {"contact": target.pk, "loaded": False}
    started = time.perf_counter()
    with transaction.atomic():
        TimelineEntry.objects.all().delete()
        Contact.objects.filter(name__startswith="Bench ").delete()
        target = Contact.objects.create(name="Bench Target")
        Identity.objects.create(contact=target, kind="stripe_customer", value="cus_benchtarget")
        with connection.cursor() as cur:
            cur.execute("INSERT INTO tickets_contact (name, created, updated, version) "
                        "SELECT 'Bench ' || g, now(), now(), 0 FROM generate_series(1, %s) g", [contacts - 1])
            cur.execute("SELECT min(id), max(id) FROM tickets_contact WHERE name LIKE 'Bench %%' AND id <> %s", [target.pk])
            lo, hi = cur.fetchone()
            kinds = "ARRAY[" + ",".join(f"'{k}'" for k in KINDS) + "]"
            insert = (
                "INSERT INTO console_timelineentry (contact_id, occurred_at, kind, source, object_id, customer, title,"
                " summary, amount, currency, agent_purchase, data) "
                f"SELECT {{contact}}, now() - (g * interval '37 minutes') - (random() * interval '30 minutes'),"
                f" ({kinds})[1 + g %% {len(KINDS)}], {{prefix}} || g, 'ch_' || md5(g::text), 'cus_benchtarget',"
                " 'Payment', 'Order ' || g, 1000 + g %% 5000, 'jpy', g %% 50 = 0, '{{}}'::jsonb "
                "FROM generate_series(1, %s) g"
            )
            cur.execute(insert.format(contact=target.pk, prefix="'mine:'"), [mine])
            cur.execute(insert.format(contact=f"{lo} + g %% ({hi} - {lo} + 1)", prefix="'other:'"), [total - mine])
    with connection.cursor() as cur:
        cur.execute("ANALYZE console_timelineentry")
    return {"contact": target.pk, "loaded": True, "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--mine", type=int, default=20_000)
    p.add_argument("--contacts", type=int, default=5_000)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--reload", action="store_true")
    p.add_argument("--output", type=Path, default=RESULTS, help="results file (its \"timeline\" key is replaced)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    load_start = loadavg()
    url = database_url()
    ensure_database(url)
    setup_django(url)
    info = load(args.entries, args.mine, args.contacts, args.reload)
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from console.models import TimelineEntry
    from console.selectors import encode_cursor
    from tickets.models import Contact

    contact = info["contact"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-agent"))
    sizes = {"entries": TimelineEntry.objects.count(),
             "customer_entries": TimelineEntry.objects.filter(contact_id=contact).count(),
             "contacts": Contact.objects.filter(name__startswith="Bench ").count()}
    print(f"bench.timeline: {sizes['entries']:,} entries, "
          f"{sizes['customer_entries']:,} for the customer"
          + (f", loaded in {info['seconds']:.1f} s" if info.get("loaded") else ""), flush=True)
    mine = TimelineEntry.objects.filter(contact_id=contact).order_by("-occurred_at", "-id")
    deep = encode_cursor(mine[15_000])
    page = reverse("customer", args=[contact])
    frag = reverse("customer_timeline", args=[contact])
    # (printed label, results name, path); "first_page" is the customer page's first page.
    cases = [
        ("Customer page, first page", "first_page", page),
        ("Customer page, first, ja", "first_page_ja", page),
        ("Timeline fragment, first", "fragment_first", frag),
        ("Deep page (~15,000 down)", "deep_page", f"{frag}?cursor={deep}"),
        ("Filter: refunds", "filter_refunds", f"{frag}?filter=refunds"),
        ("Filter: tickets+messages", "filter_tickets_messages", f"{frag}?filter=tickets"),
        ("Filter: disputes, deep", "filter_disputes_deep", f"{frag}?filter=disputes&cursor={deep}"),
        ("Filter: agent purchases", "filter_agent_purchases", f"{frag}?filter=agent"),
        ("Entry detail", "entry_detail", reverse("timeline_entry", args=[contact, mine[0].pk])),
    ]
    try:
        cases.append(("Stripe panel", "stripe_panel", reverse("customer_panel", args=[contact])))
        # Beside a ticket the panel also lists the newest timeline entries (the id only switches that on).
        cases.append(("Panel + recent activity", "panel_recent_activity",
                      reverse("customer_panel", args=[contact]) + "?ticket=1"))
    except NoReverseMatch:
        pass
    # The same page read in Japanese (babel dates, day headings, the Japanese catalogue).
    japanese = Client(HTTP_ACCEPT_LANGUAGE="ja")
    japanese.force_login(get_user_model().objects.get(username="bench-agent"))
    rows = []
    for label, name, path in cases:
        reader = japanese if name.endswith("_ja") else client
        result = measure(reader, path, args.iterations)
        result["rows"] = reader.get(path).content.count(b'class="tl-entry ')
        rows.append((label, name, result))
        print(f"  measured {path}", file=sys.stderr, flush=True)
    load_end = loadavg()
    head = f"{'case':<28} {'rows':>4} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>7} {'KB':>6}"
    print(head)
    print("-" * len(head))
    for label, _name, r in rows:
        print(f"{label:<28} {r['rows']:>4} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['cpu']:>7.1f} {r['queries']:>7} {r['kb']:>6.1f}")

    figures = {"when": when, **sizes, "iterations": args.iterations,
               "cpus": os.cpu_count(), "loadavg_at_start": load_start, "loadavg_at_end": load_end}
    if info.get("loaded"):
        figures["load_seconds"] = round(info["seconds"], 1)
    for _label, name, r in rows:
        figures.update(case_figures(name, r))
    merge_write(args.output, {"timeline": figures})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
