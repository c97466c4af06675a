"""End to end with real processes: gunicorn serves the webhook, a Celery worker on Redis applies.

Both processes point at pytest-django's test database, so what they write is what the test
reads. Events are posted over HTTP, signed like Stripe signs them, and the test polls (with
a deadline) until the worker has applied them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from payments import mirror
from payments.models import Charge, Customer, Dispute, Refund, WebhookEvent
from tests import factories
from tests.conftest import OLD_WEBHOOK_SECRET, ROOT, WEBHOOK_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent
# The broker's bookkeeping keys for the default queue and for delivered-but-unacked tasks.
QUEUE_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db.get("USER") or "postgres", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _stop(proc: subprocess.Popen, sig: int = signal.SIGQUIT) -> None:
    """End a process group we started (quick shutdown); kill it if it does not go in time."""
    if proc.poll() is None:
        try:
            # SIGQUIT: gunicorn's quick shutdown; nothing is left to finish.
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Children (gunicorn or prefork workers) may outlive a killed parent: end the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1, detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{detail()}" if detail else ""))


class Stack:
    """The app (gunicorn, 2 workers) and Celery workers, all on the test database."""

    def __init__(self, tmp: Path):
        if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
            pytest.skip("end-to-end needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL)")
        self.tmp = tmp
        self.broker = settings.CELERY_BROKER_URL
        self.redis = redis.Redis.from_url(self.broker)
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": self.broker,
            "SECRET_KEY": "e2e-secret-key",
            "STRIPE_WEBHOOK_SECRETS": f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}",
            "STRIPE_API_KEY": "",
            "STRIPE_API_BASE": "",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[subprocess.Popen] = []
        self.url = ""
        self.workers = 0

    def clear_queue(self) -> None:
        # Tasks queued by other tests (whose events are gone) would only slow the worker down.
        self.redis.delete(*QUEUE_KEYS)

    def start_app(self) -> None:
        # The test binds the socket and hands it over: no race for a "free" port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        log = self.tmp / "gunicorn.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "console.wsgi:application", "--workers", "2",
                 "--bind", f"fd://{sock.fileno()}", "--graceful-timeout", "2"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),), start_new_session=True,
            )
        sock.close()
        self.procs.append(proc)
        self.url = f"http://127.0.0.1:{port}"

        def healthy():
            assert proc.poll() is None, f"gunicorn exited:\n{_tail(log)}"
            try:
                return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or slow to boot on a busy machine
                return False

        wait_until(healthy, 60, "gunicorn to answer /healthz")

    def start_worker(self, **env) -> subprocess.Popen:
        self.workers += 1
        log = self.tmp / f"celery-{self.workers}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(BIN / "celery"), "-A", "console", "worker", "--concurrency", "2", "--pool", "prefork",
                 "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"e2e{self.workers}@%h"],
                cwd=ROOT, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        proc.log = log
        self.procs.append(proc)
        return proc

    def post(self, session, body: bytes, header: str) -> requests.Response:
        """POST a signed body to the webhook through `session` (a requests.Session or the module)."""
        return session.post(
            f"{self.url}/stripe/webhook/", data=body, timeout=30,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("e2e"))
    try:
        s.start_app()
        yield s
    finally:
        # Before pytest-django drops the test database, which fails while they hold connections.
        s.stop()


@pytest.fixture
def worker_stack(stack):
    """The stack with an empty queue; workers started by the test are stopped after it."""
    stack.clear_queue()
    running = len(stack.procs)
    yield stack
    for proc in stack.procs[running:]:
        # The test is over: what a worker still holds is of no interest, and the queue is cleared.
        _stop(proc, signal.SIGKILL)
    del stack.procs[running:]
    stack.clear_queue()


def _statuses(ids) -> dict[str, tuple[str, int]]:
    return {e: (s, a) for e, s, a in WebhookEvent.objects.filter(pk__in=list(ids)).values_list("id", "status", "attempts")}


def wait_all_applied(ids, worker, stack: Stack, timeout: float = 40) -> None:
    def check():
        assert worker.poll() is None, f"celery worker exited:\n{_tail(worker.log)}"
        return WebhookEvent.objects.filter(pk__in=list(ids), status=WebhookEvent.Status.APPLIED).count() == len(ids)

    def detail():
        statuses = sorted(_statuses(ids).items())
        queue = {k: stack.redis.type(k).decode() for k in QUEUE_KEYS}
        sizes = {k: (stack.redis.llen(k) if t == "list" else stack.redis.hlen(k) if t == "hash"
                     else stack.redis.zcard(k) if t == "zset" else t) for k, t in queue.items()}
        now = time.time()
        ages = [round(now - score, 1) for _, score in stack.redis.zrange("unacked_index", 0, -1, withscores=True)]
        return f"events: {statuses}\nbroker: {sizes}, unacked ages {ages}\nworker log:\n{_tail(worker.log, 60)}"

    wait_until(check, timeout, "the worker to apply every event", detail=detail)


def test_every_event_delivered_three_times_concurrently_is_stored_and_applied_once(worker_stack):
    now = int(time.time())
    events, charges = [], []
    for i in range(12):
        charge = factories.ChargeFactory(created=now - 100)
        charges.append(charge)
        refunded = {**charge, "amount_refunded": 1000, "refunded": False}
        events.append(factories.event("charge.succeeded", charge, created=now - 50))
        events.append(factories.event("charge.refunded", refunded, created=now - 40,
                                      previous_attributes={"amount_refunded": 0}))
        events.append(factories.event("charge.refund.updated", factories.RefundFactory(charge=charge["id"]), created=now - 40))
    customer = factories.CustomerFactory()
    events.append(factories.event("customer.created", customer, created=now - 60))
    dispute = factories.DisputeFactory(charge=charges[0]["id"])
    events.append(factories.event("charge.dispute.created", dispute, created=now - 30))
    # Each event signed by one of the two valid secrets (rotation), each delivery re-signed.
    deliveries = [
        (e["id"], *factories.signed(e, random.choice([WEBHOOK_SECRET, OLD_WEBHOOK_SECRET])))
        for e in events for _ in range(3)
    ]
    random.Random(7).shuffle(deliveries)
    # The three copies of an event go out together: each waits at a barrier for its siblings.
    barriers = {e["id"]: threading.Barrier(3) for e in events}

    def deliver(item):
        event_id, body, header = item
        barriers[event_id].wait(timeout=30)
        response = worker_stack.post(requests, body, header)
        return event_id, response.status_code, response.json().get("reason")

    with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
        answers = list(pool.map(deliver, deliveries))

    assert {code for _, code, _ in answers} == {200}
    for event in events:
        reasons = sorted(r for e, _, r in answers if e == event["id"])
        assert reasons == ["duplicate", "duplicate", "stored"], event["id"]

    # Stored while no worker runs: nothing is applied inside the request.
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.PENDING}
    worker = worker_stack.start_worker()
    wait_all_applied([e["id"] for e in events], worker, worker_stack)

    assert WebhookEvent.objects.count() == len(events)
    # One claim per event: a duplicate delivery never queued a second apply.
    assert set(_statuses(e["id"] for e in events).values()) == {(WebhookEvent.Status.APPLIED, 1)}
    assert Charge.objects.count() == len(charges)
    for charge, refunded_event in zip(charges, events[1::3]):
        row = Charge.objects.get(pk=charge["id"])
        assert (row.amount_refunded, row.version_source) == (1000, refunded_event["id"])
    assert Refund.objects.count() == len(charges)
    assert Customer.objects.get(pk=customer["id"]).email == customer["email"]
    assert Dispute.objects.get(pk=dispute["id"]).charge == charges[0]["id"]


def test_killed_worker_loses_nothing_after_restart(worker_stack):
    now = int(time.time())
    # A charge the mirror already has; the test holds its row lock so that the worker's
    # transactions for it are provably in flight when the worker is killed.
    held = factories.ChargeFactory(created=now - 1000)
    mirror.upsert_fetched([held], fetched_at=now - 900)
    events = []
    for i in range(40):
        if i in (8, 9):
            obj = {**held, "amount_refunded": 500 * (i - 7), "refunded": False}
            events.append(factories.event("charge.refunded", obj, created=now - 100 + i))
        else:
            events.append(factories.event("charge.succeeded", factories.ChargeFactory(created=now - 200), created=now - 100))
    ids = [e["id"] for e in events]

    with psycopg.connect(_database_url(), autocommit=False) as lock_conn, \
            psycopg.connect(_database_url(), autocommit=True) as watch_conn:
        lock_conn.execute("SELECT 1 FROM payments_charge WHERE id = %s FOR UPDATE", [held["id"]])
        with requests.Session() as session:
            for event in events:
                assert worker_stack.post(session, *factories.signed(event, WEBHOOK_SECRET)).status_code == 200
        first = worker_stack.start_worker()

        def both_children_blocked():
            assert first.poll() is None, f"celery worker exited:\n{_tail(first.log)}"
            # From another connection: a transaction sees one frozen snapshot of pg_stat_activity.
            row = watch_conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            return row[0] >= 2

        # Both pool processes sit in a transaction on the held charge: mid-batch, by construction.
        wait_until(both_children_blocked, 30, "the worker to block on the held charge")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        before = _statuses(ids)
        assert worker_stack.redis.hlen("unacked") > 0, "no task was in flight when the worker died"
        lock_conn.rollback()

    # The killed worker's transactions rolled back: their events are still pending, unclaimed.
    blocked = [e["id"] for e in events[8:10]]
    assert all(before[e] == (WebhookEvent.Status.PENDING, 0) for e in blocked), before
    assert sum(s == WebhookEvent.Status.APPLIED for s, _ in before.values()) < len(ids)

    # Redis hands an unacked task back once it is older than the visibility timeout; a worker
    # looks for such tasks as it starts. Let the dead worker's tasks age past the timeout first.
    visibility = 1
    newest = max(score for _, score in worker_stack.redis.zrange("unacked_index", 0, -1, withscores=True))
    time.sleep(max(0.0, newest + visibility + 0.5 - time.time()))
    second = worker_stack.start_worker(CELERY_VISIBILITY_TIMEOUT=str(visibility))
    wait_all_applied(ids, second, worker_stack)

    assert set(_statuses(ids).values()) == {(WebhookEvent.Status.APPLIED, 1)}
    row = Charge.objects.get(pk=held["id"])
    # The newest of the two refund events on the held charge won.
    assert (row.amount_refunded, row.version_source) == (1000, events[9]["id"])
    assert Charge.objects.count() == 39
