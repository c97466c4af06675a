"""payments.tasks.apply_event_task: transient errors retried with backoff, poison events
parked as failed without blocking the rest, redeliveries are no-ops, replay.

Tasks run with `.apply()`: Celery's own synchronous execution of the real task, retries
included (an eager retry runs again at once; the countdown it asked for is reported by
Celery's task_retry signal). Errors are real: a PostgreSQL lock timeout, a refused TCP
connection to the Stripe API base.
"""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest
from celery.signals import task_retry
from django.db import connection

from audit.models import AuditEntry
from payments.actions.events import replay_events
from payments.events import store_event
from payments.mirror import upsert_fetched
from payments.models import Charge, Customer, WebhookEvent
from payments.signals import stripe_event_applied
from payments.tasks import _backoff, apply_event_task
from tests import factories, helpers

pytestmark = pytest.mark.django_db
# Tests where another session must see committed rows (a lock held elsewhere) use this.
committed = pytest.mark.django_db(transaction=True)

T = 1_760_000_000
APPLIED, FAILED, PENDING = WebhookEvent.Status.APPLIED, WebhookEvent.Status.FAILED, WebhookEvent.Status.PENDING


def stored(payload: dict) -> str:
    store_event(payload)
    return payload["id"]


def run(event_id: str, **kwargs) -> str:
    # disable_sync_subtasks=False: Celery's "inside a task" flag is process-wide, and other
    # eager tasks (other threads, other tests) may have left it set; this is no subtask.
    # helpers.committed: what the applying transaction leaves for after its commit runs too.
    with helpers.committed():
        return apply_event_task.apply(args=(event_id,), kwargs=kwargs).get(disable_sync_subtasks=False)


def event_row(event_id: str) -> WebhookEvent:
    return WebhookEvent.objects.get(pk=event_id)


class Retries(list):
    """The countdowns apply_event_task asked for, in order; `hooks` run at each retry."""

    def __init__(self):
        super().__init__()
        self.hooks = []


@pytest.fixture
def retries():
    seen = Retries()

    def on_retry(sender=None, request=None, reason=None, **kwargs):
        if getattr(sender, "name", None) == apply_event_task.name:
            seen.append(reason.when)
            for hook in seen.hooks:
                hook(len(seen))

    task_retry.connect(on_retry, weak=False)
    yield seen
    task_retry.disconnect(on_retry)


@pytest.fixture
def announced():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs["event"]["id"])

    stripe_event_applied.connect(receiver, dispatch_uid="test_tasks.announced")
    yield calls
    stripe_event_applied.disconnect(dispatch_uid="test_tasks.announced")


def _dsn() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    user = quote(db.get("USER") or "postgres", safe="")
    return f"postgresql://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@contextmanager
def row_locked_elsewhere(table: str, row_id: str):
    """Another session holds a row lock, as a long transaction in another worker would.
    Yields a function that ends that transaction."""
    other = psycopg.connect(_dsn())
    other.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [row_id])
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    try:
        yield other.rollback
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_backoff_grows_and_is_capped():
    assert [_backoff(n) for n in range(9)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]


@committed
def test_a_database_lock_timeout_is_retried_with_backoff_then_applied(retries, announced):
    customer = factories.CustomerFactory(name="Before")
    upsert_fetched([customer], T - 100)
    event_id = stored(factories.event("customer.updated", {**customer, "name": "After"}, created=T,
                                      previous_attributes={"name": "Before"}))
    with row_locked_elsewhere("payments_customer", customer["id"]) as release:
        # The other transaction ends after the first failed attempt; the first failure was
        # recorded on the event (status pending, error kept) before the retry ran.
        def after_first_retry(n):
            if n == 1:
                row = event_row(event_id)
                assert (row.status, row.attempts) == (PENDING, 1)
                assert row.last_error.startswith("OperationalError:") and "lock timeout" in row.last_error
                release()

        retries.hooks.append(after_first_retry)
        assert run(event_id) == APPLIED
    assert retries == [5]
    row = event_row(event_id)
    assert (row.status, row.attempts, row.last_error) == (APPLIED, 2, "")
    assert Customer.objects.get(pk=customer["id"]).name == "After"
    assert announced == [event_id]


@committed
def test_a_lasting_database_error_is_parked_as_failed_after_the_retries(settings, retries, announced):
    settings.STRIPE_APPLY_MAX_RETRIES = 3
    customer = factories.CustomerFactory()
    upsert_fetched([customer], T - 100)
    event_id = stored(factories.event("customer.updated", {**customer, "name": "Blocked"}, created=T,
                                      previous_attributes={"name": customer["name"]}))
    with row_locked_elsewhere("payments_customer", customer["id"]):
        assert run(event_id) == FAILED
    assert retries == [5, 10, 20]
    row = event_row(event_id)
    assert (row.status, row.attempts) == (FAILED, 4)
    assert "lock timeout" in row.last_error
    assert Customer.objects.get(pk=customer["id"]).name == customer["name"] and not announced
    # Once the database is fine, a replay applies it.
    assert replay_events([event_id], actor=None, enqueue=False) == 1
    assert event_row(event_id).status == APPLIED
    assert Customer.objects.get(pk=customer["id"]).name == "Blocked"


def test_a_stripe_connection_error_is_retried_then_parked(settings, retries):
    settings.STRIPE_APPLY_MAX_RETRIES = 2
    settings.STRIPE_API_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    # An event of an older API version is read fresh from the API, which is unreachable.
    customer = factories.CustomerFactory()
    event_id = stored(factories.event("customer.created", customer, created=T, api_version="2017-08-15"))
    assert run(event_id) == FAILED
    assert retries == [5, 10]
    row = event_row(event_id)
    assert (row.status, row.attempts) == (FAILED, 3)
    assert row.last_error.startswith("APIConnectionError:")
    assert "sk_test_unreachable" not in row.last_error
    assert not Customer.objects.exists()


def test_a_stripe_connection_error_then_stripe_answers(settings, localstripe, retries, announced):
    created = localstripe.client().v1.customers.create({"email": "ren.kobayashi@example.jp", "name": "Ren Kobayashi"})
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    thin = factories.event("customer.created", {"id": created.id, "object": "customer"}, created=T,
                           api_version="2017-08-15")
    event_id = stored(thin)
    retries.hooks.append(lambda n: setattr(settings, "STRIPE_API_BASE", reachable))
    assert run(event_id) == APPLIED
    assert retries == [5]
    row = Customer.objects.get(pk=created.id)
    assert (row.email, row.version_source) == ("ren.kobayashi@example.jp", "api")
    assert event_row(event_id).attempts == 2 and announced == [event_id]


@pytest.mark.parametrize(
    "case",
    ["unmirrored_type", "amount_not_a_number", "amount_as_decimal_string", "id_too_long", "status_not_a_string",
     "thin_without_key"],
)
def test_a_poison_event_is_failed_at_once_and_does_not_block_the_rest(case, retries):
    charge = factories.ChargeFactory(amount=1500)
    before = factories.event("charge.succeeded", charge, created=T)
    after = factories.event("charge.refunded", {**charge, "amount_refunded": 1500, "refunded": True}, created=T + 9)
    if case == "unmirrored_type":
        poison = factories.event("charge.updated", {"id": "po_1", "object": "payout", "amount": 5}, created=T + 5)
        expected = "event object type 'payout' is not mirrored"
    elif case == "amount_not_a_number":
        poison = factories.event("charge.updated", {**charge, "amount": "lots"}, created=T + 5)
        expected = 'charge.amount is text "lots", not a whole number'
    elif case == "amount_as_decimal_string":
        # Not Stripe-shaped: an exporter that wrote amounts in major units, as text.
        poison = factories.event("charge.updated", {**charge, "amount_refunded": "15.00"}, created=T + 5)
        expected = 'charge.amount_refunded is text "15.00", not a whole number'
    elif case == "id_too_long":
        poison = factories.event("charge.updated", {**charge, "id": "ch_" + "x" * 300}, created=T + 5)
        expected = "charge.id is 303 characters long"
    elif case == "status_not_a_string":
        poison = factories.event("charge.updated", {**charge, "status": {"nested": True}}, created=T + 5)
        expected = 'charge.status is an object {"nested": true}, not text'
    else:
        poison = factories.event("charge.updated", {"id": charge["id"], "object": "charge"}, created=T + 5)
        poison["data"]["object"] = None
        poison["related_object"] = {"id": charge["id"], "type": "charge"}
        expected = "thin event and no STRIPE_API_KEY"
    ids = [stored(before), stored(poison), stored(after)]
    assert [run(e) for e in ids] == [APPLIED, FAILED, APPLIED]
    bad = event_row(poison["id"])
    assert bad.status == FAILED and bad.attempts == 1 and expected in bad.last_error
    assert retries == []  # permanent: no retry
    row = Charge.objects.get(pk=charge["id"])
    assert (row.amount, row.amount_refunded, row.refunded) == (1500, 1500, True)
    assert Charge.objects.count() == 1


def test_a_redelivered_task_for_an_applied_event_is_a_no_op(announced):
    customer = factories.CustomerFactory()
    event_id = stored(factories.event("customer.created", customer, created=T))
    assert run(event_id) == APPLIED
    before_event = WebhookEvent.objects.values().get(pk=event_id)
    before_row = Customer.objects.values().get(pk=customer["id"])
    time.sleep(0.01)  # so a rewrite would show in synced_at / processed_at
    assert run(event_id) == APPLIED
    assert run(event_id, source="reconcile") == APPLIED
    assert WebhookEvent.objects.values().get(pk=event_id) == before_event
    assert Customer.objects.values().get(pk=customer["id"]) == before_row
    assert announced == [event_id]


def test_an_ignored_event_task_does_nothing():
    event_id = stored(factories.event("payout.paid", {"id": "po_9", "object": "payout"}, created=T))
    assert run(event_id) == WebhookEvent.Status.IGNORED
    assert event_row(event_id).attempts == 0


@committed
def test_replay_through_the_queue_reapplies_failed_events_and_audits(finance, eager_tasks, announced):
    customer = factories.CustomerFactory(name="Yui Nakamura")
    event_id = stored(factories.event("customer.created", customer, created=T))
    WebhookEvent.objects.filter(pk=event_id).update(status=FAILED, attempts=7, last_error="OperationalError: outage")
    assert replay_events([event_id], actor=finance) == 1  # enqueued on commit, run eagerly
    row = event_row(event_id)
    assert (row.status, row.attempts, row.last_error) == (APPLIED, 8, "")
    assert Customer.objects.get(pk=customer["id"]).name == "Yui Nakamura"
    assert announced == [event_id]
    entry = AuditEntry.objects.get(action="stripe_event.replay")
    assert (entry.actor, entry.target) == (finance, event_id)
