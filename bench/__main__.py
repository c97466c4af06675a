"""`python -m bench [--quick]`: run every measure, print a table, write bench/results.json.

The file is merged, not replaced: this run's keys (when, quick, machine, intake, apply,
end_to_end, backfill) are written and the other benchmarks' ("inbox", "timeline") kept.

Environment (the Makefile's `bench` target sets it): DATABASE_URL (a PostgreSQL database whose
name contains "bench": it is dropped and recreated), CELERY_BROKER_URL (a Redis db of its own),
SECRET_KEY. The benchmark starts and stops its own gunicorn and Celery processes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import stack
from .results import RESULTS, merge_write

HERE = Path(__file__).resolve().parent
# This run's top-level keys in the results file; the rest belong to bench.inbox and bench.timeline.
OWNED = ("when", "quick", "machine", "intake", "apply", "end_to_end", "backfill")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a trial run: 1,000 events and 5,000 backfill objects")
    p.add_argument("--events", type=int, help="events per webhook measure (default 10,000)")
    p.add_argument("--objects", type=int, help="objects for the backfill measure (default 50,000)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections of the load generator")
    p.add_argument("--gunicorn-workers", type=int, default=2)
    p.add_argument("--worker-class", help="gunicorn worker class (default: gunicorn.conf.py's)")
    p.add_argument("--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py's)")
    p.add_argument("--celery-concurrency", type=int, default=2, help="Celery worker processes")
    p.add_argument("--only", choices=["webhooks", "intake", "backfill"], help="run one part only")
    p.add_argument("--loadgen", choices=["wrk", "python"], default="wrk", help="load generator (wrk is lighter)")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.events = args.events or (1000 if args.quick else 10_000)
    args.objects = args.objects or (5000 if args.quick else 50_000)
    return args


def check_environment() -> tuple[str, str]:
    db = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not db.startswith(("postgres://", "postgresql://")) or "bench" not in stack.database_name(db):
        raise SystemExit("bench: DATABASE_URL must be a PostgreSQL database named *bench* (see `make bench`)")
    if not broker.startswith("redis://"):
        raise SystemExit("bench: CELERY_BROKER_URL must be a Redis URL with a db of its own (see `make bench`)")
    return db, broker


def ensure_wrk() -> str | None:
    """wrk, from Debian's package if missing; None if it cannot be had (then Python generates load)."""
    path = shutil.which("wrk")
    if path:
        return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("bench: installing wrk (Debian package) ...", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       **quiet)
    return shutil.which("wrk")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- webhook measures ----------------------------------------------------------------


def sign(events: list[dict], secret: str, workdir: Path, name: str) -> Path:
    """Sign the events now (the tolerance is 300 s) into a requests file for the load generator."""
    from .events import sign_all, write_requests

    path = workdir / f"{name}.requests"
    write_requests(sign_all(events, secret), path)
    return path


def post_events(args, url: str, path: Path, count: int, wrk: str | None) -> dict:
    """Post the first `count` requests of `path` with the load generator; returns its figures."""
    if wrk and args.loadgen == "wrk":
        argv = [wrk, "-t1", f"-c{args.connections}", "-d600s", "--timeout", "30s", "-s", str(HERE / "wrk.lua"),
                f"{url}/stripe/webhook/"]
        tool = "wrk"
    else:
        argv = [sys.executable, "-m", "bench.loadgen", url, str(path), str(count), str(args.connections)]
        tool = "python asyncio"
    done = path.with_suffix(".done")
    done.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_REQUESTS": str(path), "BENCH_COUNT": str(count), "BENCH_DONE": str(done)}
    stdout = run_load(argv, env, done)
    line = next((l for l in stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"bench: the load generator failed:\n{stdout}")
    figures = json.loads(line[6:])
    seconds = figures["duration_us"] / 1e6
    ok = figures["requests"] - figures["non_2xx"]
    return {
        "tool": tool,
        "connections": args.connections,
        "requests": figures["requests"],
        "accepted": ok,
        "errors": {k: figures[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")},
        "seconds": round(seconds, 3),
        "accepted_per_s": round(ok / seconds, 1) if seconds else 0.0,
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p95_ms": round(figures["p95_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "max_ms": round(figures["max_us"] / 1000, 2),
    }


def run_load(argv: list[str], env: dict, done: Path, timeout: float = 900) -> str:
    """Run the load generator; interrupt wrk once its script says every request was answered."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, cwd=HERE.parent, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if done.exists():
                    proc.send_signal(signal.SIGINT)  # wrk prints its summary and exits
                    try:
                        proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        continue
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: the load generator did not finish within {timeout}s")
                time.sleep(0.002)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        return out.read()


def spares(args) -> int:
    # Requests still in flight when the load generator stops: new events too, never counted.
    return args.connections + 4


def wait_applied(since: dt.datetime, timeout: float, workers) -> dict:
    """Wait until no event received since `since` is pending; the figures come from the rows."""
    from django.db.models import Count, Max, Min

    from payments.models import WebhookEvent

    deadline = time.monotonic() + timeout
    rows = WebhookEvent.objects.filter(received_at__gte=since)
    while rows.filter(status=WebhookEvent.Status.PENDING).exists():
        for proc in workers:
            if proc.poll() is not None:
                raise SystemExit(f"bench: a Celery worker exited; see {proc.log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: events still pending after {timeout}s; see the worker logs")
        time.sleep(0.2)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")))
    span = rows.aggregate(first=Min("processed_at"), last=Max("processed_at"), received=Min("received_at"))
    return {"by_status": by_status, **span}


def per_event_us(seconds: float, events: int) -> float:
    return round(seconds / events * 1e6, 1) if events else 0.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def webhooks(args, db: str, broker: str, workdir: Path, results: dict) -> None:
    from django.db import connection

    from .events import make_events

    wrk = ensure_wrk()
    secret = "whsec_bench_" + secrets.token_hex(12)
    env = {
        **os.environ, "STRIPE_WEBHOOK_SECRETS": secret, "STRIPE_API_KEY": "", "STRIPE_API_BASE": "",
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
    }
    n, extra = args.events, spares(args)
    print(f"bench: building {2 * (n + extra) + 400:,} events ...", flush=True)
    warmup = make_events(400, seed=11)
    first = make_events(n + extra, seed=12)
    second = make_events(n + extra, seed=13)

    procs = stack.Processes(workdir, env)
    try:
        gunicorn, url = procs.gunicorn(args.gunicorn_workers, args.worker_class, args.threads)
        conf = stack.gunicorn_conf()
        worker_class = args.worker_class or conf.get("worker_class", "sync")
        threads = args.threads or conf.get("threads", 1)
        server = f"gunicorn {args.gunicorn_workers} × {worker_class}" + (f" ({threads} threads)" if threads > 1 else "")
        web_cpu = stack.CpuMeter(lambda: stack.group_pids(gunicorn.pid))
        db_cpu = stack.CpuMeter(stack.database_backends)

        # 1. Intake alone: no worker runs, tasks wait in Redis. A warm-up first opens the
        # workers' database connections and fills their caches.
        post_events(args, url, sign(warmup, secret, workdir, "warmup"), len(warmup) - extra, wrk)
        print(f"bench: webhook intake, {n:,} events ...", flush=True)
        path = sign(first, secret, workdir, "intake")
        started = dt.datetime.now(dt.timezone.utc)
        load_before = loadavg()
        web_cpu.start(), db_cpu.start()
        load_cpu = children_cpu()
        intake = post_events(args, url, path, n, wrk)
        load_cpu = children_cpu() - load_cpu
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM payments_webhookevent WHERE received_at >= %s", [started])
            intake["stored"] = cursor.fetchone()[0]
        intake.update(
            server=server, loadavg_before=load_before,
            cpu_us_per_event={
                "gunicorn": per_event_us(web_cpu.stop(), intake["accepted"]),
                "postgres": per_event_us(db_cpu.stop(), intake["accepted"]),
                "load_generator": per_event_us(load_cpu, intake["accepted"]),
            },
        )
        results["intake"] = intake
        if args.only == "intake":
            return

        # 2. The queue drained by the Celery workers.
        print(f"bench: apply, draining {stack.queue_length(broker):,} queued tasks ...", flush=True)
        load_before = loadavg()
        worker = procs.celery_worker("apply", args.celery_concurrency)
        worker_cpu = stack.CpuMeter(lambda: stack.group_pids(worker.pid))
        worker_cpu.start(), db_cpu.start()
        applied = wait_applied(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), 1800, [worker])
        total = sum(applied["by_status"].values())
        span = (applied["last"] - applied["first"]).total_seconds()
        results["apply"] = {
            "events": total, "by_status": applied["by_status"], "seconds": round(span, 3),
            "applied_per_s": round(total / span, 1) if span else 0.0,
            "workers": f"celery prefork, concurrency {args.celery_concurrency}", "loadavg_before": load_before,
            # The workers' start-up (imports) is counted in: they are new processes.
            "cpu_us_per_event": {
                "celery": per_event_us(worker_cpu.stop(), total),
                "postgres": per_event_us(db_cpu.stop(), total),
            },
        }

        # 3. End to end: posted while the workers run, until every one is applied.
        print(f"bench: end to end, {n:,} events ...", flush=True)
        path = sign(second, secret, workdir, "end_to_end")
        load_before = loadavg()
        web_cpu.start(), worker_cpu.start(), db_cpu.start()
        started = dt.datetime.now(dt.timezone.utc)
        during = post_events(args, url, path, n, wrk)
        done = wait_applied(started, 1800, [worker])
        events = sum(done["by_status"].values())
        seconds = (done["last"] - started).total_seconds()
        results["end_to_end"] = {
            "events": events, "by_status": done["by_status"], "seconds": round(seconds, 3),
            "applied_per_s": round(events / seconds, 1) if seconds else 0.0,
            "intake_accepted_per_s": during["accepted_per_s"], "intake_p50_ms": during["p50_ms"],
            "intake_p95_ms": during["p95_ms"], "server": server,
            "workers": f"celery prefork, concurrency {args.celery_concurrency}", "loadavg_before": load_before,
            "cpu_us_per_event": {
                "gunicorn": per_event_us(web_cpu.stop(), events),
                "celery": per_event_us(worker_cpu.stop(), events),
                "postgres": per_event_us(db_cpu.stop(), events),
            },
        }
    finally:
        procs.stop_all()


# --- backfill -----------------------------------------------------------------------


def backfill(args, results: dict) -> None:
    from payments.mirror import upsert_fetched

    from .events import make_pages

    print(f"bench: building {args.objects:,} objects ...", flush=True)
    pages = make_pages(args.objects)
    objects = sum(len(p) for _, p in pages)
    out = {"objects": objects, "pages": len(pages), "page_size": 100}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    fetched_at = int(time.time())
    # First pass inserts every row; the second, fetched a second later, replaces them all.
    for label, at in (("insert", fetched_at), ("refresh", fetched_at + 1)):
        print(f"bench: backfill apply ({label}), {objects:,} objects ...", flush=True)
        load_before = loadavg()
        per_resource: dict[str, float] = {}
        db_cpu = stack.CpuMeter(lambda: [backend])
        db_cpu.start()
        cpu = time.process_time()
        began = time.perf_counter()
        for resource, page in pages:
            t = time.perf_counter()
            upsert_fetched(page, at)
            per_resource[resource] = per_resource.get(resource, 0.0) + time.perf_counter() - t
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu
        counts = {r: sum(len(p) for rr, p in pages if rr == r) for r in per_resource}
        out[label] = {
            "seconds": round(seconds, 3), "objects_per_s": round(objects / seconds, 1), "loadavg_before": load_before,
            "cpu_us_per_object": {"python": per_event_us(cpu, objects), "postgres": per_event_us(db_cpu.stop(), objects)},
            "per_resource_objects_per_s": {r: round(counts[r] / s, 1) for r, s in per_resource.items()},
        }
    results["backfill"] = out


# --- report -------------------------------------------------------------------------


def table(results: dict) -> str:
    rows = []
    if "intake" in results:
        r = results["intake"]
        rows.append(("webhook intake", f"{r['accepted_per_s']:,.0f} events/s",
                     f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms; {r['accepted']:,} accepted of {r['requests']:,}, "
                     f"{r['connections']} connections ({r['tool']}), {r['server']}"))
        c = r["cpu_us_per_event"]
        rows.append(("  CPU per event", f"{c['gunicorn'] + c['postgres']:,.0f} µs",
                     f"gunicorn {c['gunicorn']:,.0f} µs + PostgreSQL {c['postgres']:,.0f} µs "
                     f"(load generator {c['load_generator']:,.0f} µs)"))
    if "apply" in results:
        r = results["apply"]
        rows.append(("apply (queue drain)", f"{r['applied_per_s']:,.0f} events/s",
                     f"{r['events']:,} events in {r['seconds']} s, {r['workers']}"))
        c = r["cpu_us_per_event"]
        rows.append(("  CPU per event", f"{c['celery'] + c['postgres']:,.0f} µs",
                     f"Celery {c['celery']:,.0f} µs (with the workers' start-up) + PostgreSQL {c['postgres']:,.0f} µs"))
    if "end_to_end" in results:
        r = results["end_to_end"]
        rows.append(("end to end", f"{r['applied_per_s']:,.0f} events/s",
                     f"{r['events']:,} events posted and applied in {r['seconds']} s "
                     f"(intake meanwhile {r['intake_accepted_per_s']:,.0f}/s, p95 {r['intake_p95_ms']} ms)"))
    if "backfill" in results:
        r = results["backfill"]
        for label in ("insert", "refresh"):
            c = r[label]["cpu_us_per_object"]
            rows.append((f"backfill apply ({label})", f"{r[label]['objects_per_s']:,.0f} objects/s",
                         f"{r['objects']:,} objects in pages of {r['page_size']}, {r[label]['seconds']} s; "
                         f"CPU per object: Python {c['python']:,.0f} µs + PostgreSQL {c['postgres']:,.0f} µs"))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'measure':<{w0}}  {'result':>{w1}}  detail", f"{'-' * w0}  {'-' * w1}  {'-' * 6}"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    db, broker = check_environment()
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ.update(DEBUG="0", STRIPE_API_KEY="", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    sys.path.insert(0, str(HERE.parent))

    print(f"bench: recreating database {stack.database_name(db)} ...", flush=True)
    stack.recreate_database(db)
    stack.clear_broker(broker)
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    results: dict = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": pg_version,
            "platform": platform.platform(), "loadavg_at_start": loadavg(),
        },
    }
    workdir = Path(tempfile.mkdtemp(prefix="paydesk-bench-"))
    if args.only in (None, "webhooks", "intake"):
        webhooks(args, db, broker, workdir, results)
    if args.only in (None, "backfill"):
        backfill(args, results)
    results["machine"]["loadavg_at_end"] = loadavg()
    print()
    print(table(results))
    print(f"\nload average at start {results['machine']['loadavg_at_start']}, at end {results['machine']['loadavg_at_end']}"
          f" ({results['machine']['cpus']} CPUs); process logs in {workdir}")
    merge_write(args.output, results, owned=OWNED)
    print(f"wrote {args.output.relative_to(Path.cwd()) if args.output.is_relative_to(Path.cwd()) else args.output}")


if __name__ == "__main__":
    main()
