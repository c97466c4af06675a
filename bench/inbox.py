"""`python -m bench.inbox`: the agent inbox's first page with 100,000 tickets.

Renders the inbox view in-process through Django's test Client (session, middleware, view,
selectors, template: everything but the network) many times per case and prints p50/p95
server time (and this process's CPU time), the number of SQL queries and the page weight, for page sizes 25/50/100 (the
queries must not grow with the page size) and for the other views and a filtered list.
Measures; asserts nothing. Every printed figure is also written under the top-level key
"inbox" of bench/results.json (`--output`), the rest of the file kept (bench/results.py).

Its own database: BENCH_INBOX_DATABASE_URL, else DATABASE_URL with the database name
replaced by paydesk_bench_inbox (created and migrated if missing). The tickets are loaded
once with COPY and kept for later runs (`--reload` loads them again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from bench.results import RESULTS, merge_write

DB_NAME = "paydesk_bench_inbox"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--iterations", type=int, default=200, help="timed requests per case (after warm-up)")
    p.add_argument("--reload", action="store_true", help="drop the loaded tickets and load them again")
    p.add_argument("--quick", action="store_true", help="a trial run: 10,000 tickets, 40 iterations")
    p.add_argument("--output", type=Path, default=RESULTS, help="results file (its \"inbox\" key is replaced)")
    args = p.parse_args(argv)
    if args.quick:
        args.tickets, args.iterations = 10_000, 40
    return args


def bench_database_url(benchmark: str, db_name: str) -> str:
    """A benchmark's own database: BENCH_<NAME>_DATABASE_URL, else DATABASE_URL with its name
    replaced by `db_name`. PostgreSQL and named *bench*, since it is filled with test data."""
    url = os.environ.get(f"BENCH_{benchmark.upper()}_DATABASE_URL")
    if not url:
        parsed = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paydesk"))
        url = urlunparse(parsed._replace(path=f"/{db_name}"))
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql") or "bench" not in parsed.path:
        raise SystemExit(f"bench.{benchmark}: the database must be PostgreSQL and named *bench* "
                         "(it is filled with test data)")
    return url


def database_url() -> str:
    return bench_database_url("inbox", DB_NAME)


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    # Static URLs without a collectstatic manifest.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- data ------------------------------------------------------------------------------------------

TEAMS = ["Support", "Billing", "Returns", "VIP"]
TAGS = ["billing", "refund", "shipping", "vip", "damaged", "address-change", "subscription", "invoice",
        "double-charge", "cancel", "discount", "line", "wholesale", "japan", "urgent-followup"]
SUBJECTS = ["Where is my order?", "Charged twice", "Change my delivery address", "Refund for a damaged item",
            "Cancel my subscription", "Invoice for my company", "Discount code not working", "注文がまだ届きません",
            "Wrong size delivered", "Update my card", "Missing item in parcel", "How do I return this?"]


def load(n_tickets: int, reload: bool) -> dict:
    """Contacts, identities, teams, agents and n tickets (with tags), by COPY. Idempotent."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from tickets.models import Tag, Team, Ticket

    User = get_user_model()
    have = Ticket.objects.count()
    if have == n_tickets and not reload:
        return {"loaded": False}
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE tickets_ticket, tickets_ticket_tags, tickets_message, tickets_attachment, "
                    "tickets_identity, tickets_contactmerge, tickets_contact, tickets_tag, tickets_team, "
                    "tickets_team_members RESTART IDENTITY CASCADE")
    agent_group = Group.objects.get(name="agent")
    agents = []
    for i in range(20):
        user, _ = User.objects.get_or_create(username=f"bench-agent-{i}", defaults={"first_name": f"Agent{i}"})
        user.groups.add(agent_group)
        agents.append(user.pk)
    me, _ = User.objects.get_or_create(username="bench-me", defaults={"first_name": "Bench", "last_name": "Agent"})
    me.groups.add(agent_group)
    agents.append(me.pk)
    teams = [Team.objects.create(name=name, slug=name.lower()).pk for name in TEAMS]
    tags = [Tag.objects.create(name=name).pk for name in TAGS]

    rng = random.Random(3)
    now = timezone.now()
    n_contacts = max(1, n_tickets * 2 // 5)
    with connection.cursor() as cur:
        pg = cur.connection
        with pg.cursor() as c, c.copy("COPY tickets_contact (id, name, created, updated, version) FROM STDIN") as copy:
            for i in range(1, n_contacts + 1):
                copy.write_row((i, "" if i % 7 == 0 else f"Customer {i}", now, now, 0))
        with pg.cursor() as c, c.copy("COPY tickets_identity (contact_id, kind, value, reachable, created) FROM STDIN") as copy:
            for i in range(1, n_contacts + 1):
                copy.write_row((i, "email", f"customer{i}@example.com", True, now))
                if i % 3 == 0:
                    copy.write_row((i, "line", "U%032x" % i, True, now))
        statuses = ["open"] * 40 + ["pending"] * 10 + ["solved"] * 35 + ["closed"] * 15
        priorities = ["low"] * 15 + ["normal"] * 60 + ["high"] * 20 + ["urgent"] * 5
        cols = ("id, number, subject, status, priority, channel, requester_id, assignee_id, team_id, created, updated, "
                "version, last_message_at, first_response_due, resolution_due, first_responded_at, solved_at, sla_due")
        tag_rows = []
        with pg.cursor() as c, c.copy(f"COPY tickets_ticket ({cols}) FROM STDIN") as copy:
            for i in range(1, n_tickets + 1):
                status = rng.choice(statuses)
                created = now - _td(minutes=rng.randint(0, 60 * 24 * 60))
                first_due = created + _td(hours=rng.choice([1, 4, 24, 48]))
                resolution_due = first_due + _td(hours=48)
                responded = created + _td(minutes=rng.randint(5, 600)) if rng.random() < 0.6 else None
                active = status in ("open", "pending")
                sla_due = (resolution_due if responded else first_due) if active else None
                assignee = rng.choice(agents) if rng.random() < 0.6 else None
                team = rng.choice(teams) if rng.random() < 0.7 else None
                solved_at = created + _td(hours=rng.randint(1, 72)) if not active else None
                copy.write_row((
                    i, i, rng.choice(SUBJECTS), status, rng.choice(priorities), "line" if rng.random() < 0.3 else "email",
                    rng.randint(1, n_contacts), assignee, team, created, created + _td(minutes=rng.randint(0, 600)),
                    rng.randint(0, 5), created, first_due, resolution_due, responded, solved_at, sla_due,
                ))
                if rng.random() < 0.3:
                    for tag in rng.sample(tags, rng.randint(1, 3)):
                        tag_rows.append((i, tag))
        with pg.cursor() as c, c.copy("COPY tickets_ticket_tags (ticket_id, tag_id) FROM STDIN") as copy:
            for row in tag_rows:
                copy.write_row(row)
        for table in ("tickets_contact", "tickets_identity", "tickets_ticket", "tickets_ticket_tags", "tickets_tag",
                      "tickets_team"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        cur.execute("VACUUM ANALYZE")  # visibility map for index-only counts, as autovacuum would
    return {"loaded": True, "seconds": time.perf_counter() - started}


def _td(**kw):
    import datetime as dt

    return dt.timedelta(**kw)


# --- measuring -------------------------------------------------------------------------------------


def measure(client, url: str, iterations: int, *, statuses=(200,), row_marker: bytes = b"data-ticket-url=") -> dict:
    """p50/p95 server time, this process's CPU, the queries and size of one more request, and the
    rows it shows (`row_marker` counted); `statuses` are the answers the page may give (a jump is 302)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(max(5, iterations // 10)):  # warm-up: templates compiled, caches primed
        response = client.get(url)
        assert response.status_code in statuses, (url, response.status_code)
    times, cpu = [], []
    for _ in range(iterations):
        t, c = time.perf_counter(), time.process_time()
        client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
        # This process's own CPU (Django, view, template; not PostgreSQL's): on a busy
        # machine the wall times above include waiting for a core.
        "cpu": statistics.median(cpu),
        "queries": len(queries),
        "kb": len(response.content) / 1024,
        "rows": response.content.count(row_marker),
        "status": response.status_code,
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def case_figures(name: str, r: dict) -> dict:
    """One measured case as flat results keys: <name>_rows, _p50_ms, _p95_ms, _cpu_ms, _queries, _kb."""
    return {
        f"{name}_rows": r["rows"], f"{name}_p50_ms": round(r["p50"], 2), f"{name}_p95_ms": round(r["p95"], 2),
        f"{name}_cpu_ms": round(r["cpu"], 2), f"{name}_queries": r["queries"], f"{name}_kb": round(r["kb"], 2),
    }


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    load_start = loadavg()
    url = database_url()
    ensure_database(url)
    setup_django(url)
    info = load(args.tickets, args.reload)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tickets.models import Ticket

    me = get_user_model().objects.get(username="bench-me")
    client = Client()
    client.force_login(me)
    active = Ticket.objects.filter(status__in=("open", "pending"))
    sizes = {"tickets": Ticket.objects.count(), "tickets_open_or_pending": active.count(),
             "tickets_unassigned": active.filter(assignee__isnull=True).count(),
             "tickets_mine": active.filter(assignee=me).count()}
    print(f"bench.inbox: {sizes['tickets']:,} tickets ({sizes['tickets_open_or_pending']:,} open or pending; "
          f"{sizes['tickets_unassigned']:,} unassigned; {sizes['tickets_mine']:,} mine)"
          + (f", loaded in {info['seconds']:.1f} s" if info.get("loaded") else ""), flush=True)

    # (printed label, results name, path); "first_page" is the first page of 50 rows.
    cases = [
        ("Unassigned, first page", "first_page_25", "/tickets/unassigned/?n=25"),
        ("Unassigned, first page", "first_page", "/tickets/unassigned/?n=50"),
        ("Unassigned, first page", "first_page_100", "/tickets/unassigned/?n=100"),
        ("My tickets", "mine", "/tickets/mine/?n=50"),
        ("Team (Billing)", "team_billing", "/tickets/team-billing/?n=50"),
        ("All unsolved", "all_unsolved", "/tickets/all/?n=50"),
        ("All, LINE + high + tag", "all_line_high_tag", "/tickets/all/?n=50&channel=line&priority=high&tag=refund"),
        ("All, recently updated", "all_recently_updated", "/tickets/all/?n=50&sort=updated"),
    ]
    # The same first page read in Japanese (babel dates, the Japanese catalogue).
    japanese = Client(HTTP_ACCEPT_LANGUAGE="ja")
    japanese.force_login(me)
    cases.insert(2, ("Unassigned, first page, ja", "first_page_ja", "/tickets/unassigned/?n=50"))
    rows = []
    for label, name, path in cases:
        result = measure(japanese if name.endswith("_ja") else client, path, args.iterations)
        rows.append((label, name, path, result))
        print(f"  measured {path}", file=sys.stderr, flush=True)
    # The navigation counts alone, uncached (they are cached COUNTS_TTL seconds between pages).
    from django.core.cache import cache

    from tickets import selectors

    team_list = selectors.teams()
    count_times = []
    for _ in range(max(10, args.iterations // 4)):
        cache.clear()
        t = time.perf_counter()
        selectors.inbox_counts(me, team_list)
        count_times.append((time.perf_counter() - t) * 1000)
    count_times.sort()
    # Its queries counted once more, untimed (the column used to say 1 without counting).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cache.clear()
    with CaptureQueriesContext(connection) as count_queries:
        selectors.inbox_counts(me, team_list)
    counts = {"p50": statistics.median(count_times), "p95": count_times[int(len(count_times) * 0.95)],
              "queries": len(count_queries)}
    load_end = loadavg()
    head = f"{'case':<26} {'size':>4} {'rows':>4} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7} {'queries':>7} {'KB':>6}"
    print(head)
    print("-" * len(head))
    for label, _name, path, r in rows:
        size = path.split("n=")[1].split("&")[0]
        print(f"{label:<26} {size:>4} {r['rows']:>4} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['cpu']:>7.1f} {r['queries']:>7} "
              f"{r['kb']:>6.1f}")
    print(f"{'navigation counts, uncached':<36} {counts['p50']:>8.1f} "
          f"{counts['p95']:>8.1f} {'':>7} {counts['queries']:>7}")
    print(f"({args.iterations} requests per case, in-process test Client, {os.cpu_count()} CPUs, "
          f"load average {load_end[0]:.2f})")

    figures = {"when": when, "quick": args.quick, **sizes, "iterations": args.iterations,
               "navigation_counts_iterations": len(count_times), "cpus": os.cpu_count(),
               "loadavg_at_start": load_start, "loadavg_at_end": load_end}
    if info.get("loaded"):
        figures["load_seconds"] = round(info["seconds"], 1)
    for _label, name, _path, r in rows:
        figures.update(case_figures(name, r))
    figures.update(navigation_counts_p50_ms=round(counts["p50"], 2), navigation_counts_p95_ms=round(counts["p95"], 2),
                   navigation_counts_queries=counts["queries"])
    merge_write(args.output, {"inbox": figures})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
