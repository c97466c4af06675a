"""Properties of applying events, against real PostgreSQL.

1. Order: for random event streams of one or several objects (timestamps non-decreasing,
   ties common, every update carrying the previous_attributes of what it changed), any
   permutation applied gives the same mirror as the stream in order; and when the stream
   is unambiguous (values never come back), that state is each object's last event.
2. Concurrency: each event delivered three times at once, over the webhook and the task,
   is stored once, applied once and announced once; many events of the same objects
   applied by concurrent workers (and a concurrent bulk upsert) end where serial
   application ends, with no deadlock, lost update or duplicate row.
"""

from __future__ import annotations

import copy
import itertools
import os
import queue
import threading

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.actions.events import apply_event
from payments.events import store_event
from payments.mirror import KINDS, upsert_fetched
from payments.models import WebhookEvent
from payments.signals import stripe_event_applied
from payments.tasks import apply_event_task
from tests import factories
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import in_threads

T = 1_760_000_000

# Modest by default so the suite stays fast; PAYDESK_PROPERTY_EXAMPLES=1000 for a long hunt.
PROPERTY = settings(
    max_examples=int(os.environ.get("PAYDESK_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- stream generation ---------------------------------------------------------------

SUB_STATUS_RANK = {"incomplete": 1, "trialing": 2, "active": 3, "past_due": 4, "paused": 4, "unpaid": 5, "canceled": 6}
PI_STATUSES = ["requires_payment_method", "requires_action", "processing", "requires_capture", "succeeded", "canceled"]
PI_EVENT = {
    "requires_payment_method": "payment_intent.payment_failed",
    "requires_action": "payment_intent.requires_action",
    "processing": "payment_intent.processing",
    "requires_capture": "payment_intent.amount_capturable_updated",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
}


def _new_object(kind: str, index: int) -> dict:
    if kind == "customer":
        return factories.CustomerFactory(id=f"cus_prop{index}", name="Sora Ito", email=f"sora{index}@example.jp",
                                         phone=None, description=None, metadata={"rev": "0"})
    if kind == "subscription":
        return factories.SubscriptionFactory(id=f"sub_prop{index}", customer=f"cus_prop{index}", status="incomplete",
                                             description=None, metadata={"rev": "0"})
    return factories.PaymentIntentFactory(id=f"pi_prop{index}", status="requires_payment_method", amount_received=0,
                                          description=None, metadata={"rev": "0"})


@st.composite
def streams(draw, *, fresh: bool):
    """A list of events for 1-2 objects, in the order Stripe created them.

    fresh=True: every value an update sets is new, and status only moves up its lifecycle,
    so the true order is recoverable and the last event must win. fresh=False: values
    toggle back, statuses move anywhere, payment intents' events carry no
    previous_attributes (as at Stripe): only permutation-independence is promised.

    Biased towards what breaks mirrors: many events of one object in one second, and
    consecutive updates of the same field (the chain is then only visible link by link).
    """
    kinds = ["customer", "subscription"] if fresh else ["customer", "subscription", "payment_intent"]
    objects = [{"kind": draw(st.sampled_from(kinds)), "state": None, "done": False, "last": []}
               for _ in range(draw(st.integers(1, 2)))]
    for index, o in enumerate(objects):
        o["initial"] = _new_object(o["kind"], index)
    counter = itertools.count(1)
    events: list[dict] = []
    t = T

    def value(field: str):
        if fresh:
            n = next(counter)
            return f"v{n}@example.com" if field == "email" else f"{field} {n}"
        pool = {"email": ["a@example.com", "b@example.com"], "name": ["Aki", "Ben"], "description": ["x", None]}
        return draw(st.sampled_from(pool.get(field, ["p", "q"])))

    # Bursts: an object gets 1-4 events in one second, then time moves on (or not).
    plan = []
    for _ in range(draw(st.integers(1, 5))):
        plan.append((draw(st.integers(0, len(objects) - 1)), draw(st.sampled_from([0, 1, 2]))))
        plan.extend([(plan[-1][0], 0)] * draw(st.integers(0, 3)))
    for index, step in plan:
        o = objects[index]
        if o["done"]:
            continue
        t += step
        event_id = f"evt_{draw(st.text('0123456789abcdef', min_size=3, max_size=3))}{len(events):03d}"
        kind = o["kind"]
        if o["state"] is None:
            o["state"] = copy.deepcopy(o["initial"])
            type_ = "customer.subscription.created" if kind == "subscription" else f"{kind}.created"
            events.append(factories.event(type_, copy.deepcopy(o["state"]), created=t, event_id=event_id))
            continue
        state, previous = copy.deepcopy(o["state"]), {}
        if kind == "customer" and draw(st.integers(0, 9)) == 0:
            o["done"] = True
            events.append(factories.event("customer.deleted", state, created=t, event_id=event_id))
            continue
        if kind in ("subscription", "payment_intent") and draw(st.integers(0, 2)) == 0:
            if kind == "subscription":
                rank = SUB_STATUS_RANK[state["status"]]
                choices = [s for s, r in SUB_STATUS_RANK.items() if (r > rank if fresh else s != state["status"])]
            else:
                choices = [s for s in PI_STATUSES if s != state["status"]]
            if choices:
                previous["status"] = state["status"]
                state["status"] = draw(st.sampled_from(choices))
        fields = {"customer": ["email", "name", "metadata"],
                  "subscription": ["description", "metadata"] + ([] if fresh else ["cancel_at_period_end"]),
                  "payment_intent": ["description", "metadata"]}[kind]
        if o["last"] and draw(st.booleans()):
            changed = o["last"]  # the same field again: only the link before names this state
        else:
            # In fresh streams every update sets at least one new value.
            changed = draw(st.lists(st.sampled_from(fields), min_size=0 if previous and not fresh else 1, max_size=2,
                                    unique=True))
        for field in changed:
            if field == "metadata":
                previous["metadata"] = {"rev": state["metadata"]["rev"]}
                state["metadata"] = {"rev": str(next(counter)) if fresh else draw(st.sampled_from(["0", "1"]))}
            elif field == "cancel_at_period_end":
                previous[field] = state[field]
                state[field] = not state[field]
            else:
                previous[field] = state.get(field)
                state[field] = value(field)
        if not previous:
            continue
        o["state"], o["last"] = state, changed
        if kind == "payment_intent":
            # Stripe sends previous_attributes only with *.updated events.
            events.append(factories.event(PI_EVENT[state["status"]], copy.deepcopy(state), created=t, event_id=event_id))
        elif kind == "subscription" and state["status"] == "canceled" and fresh:
            o["done"] = True
            events.append(factories.event("customer.subscription.deleted", copy.deepcopy(state), created=t,
                                          event_id=event_id))
        else:
            type_ = "customer.subscription.updated" if kind == "subscription" else f"{kind}.updated"
            events.append(factories.event(type_, copy.deepcopy(state), created=t, event_id=event_id,
                                          previous_attributes=previous))
    return events


# --- running a stream ------------------------------------------------------------------

MODELS = [KINDS[k].model for k in ("customer", "subscription", "payment_intent")]


def mirror_state() -> dict:
    """Every mirrored row of the kinds used here, everything but the write time."""
    state = {}
    for model in MODELS:
        for row in model.objects.values():
            row.pop("synced_at")
            state[row["id"]] = row
    return state


def reset() -> None:
    WebhookEvent.objects.all().delete()
    for model in MODELS:
        model.objects.all().delete()


def run(events: list[dict]) -> dict:
    reset()
    for payload in events:
        store_event(payload)
        assert apply_event(payload["id"]) == WebhookEvent.Status.APPLIED
    return mirror_state()


def last_states(events: list[dict]) -> dict[str, dict]:
    last = {}
    for payload in events:
        last[payload["data"]["object"]["id"]] = payload
    return last


@pytest.mark.django_db
@PROPERTY
@given(data=st.data())
def test_unambiguous_streams_end_at_the_last_event_in_any_order(data):
    events = data.draw(streams(fresh=True))
    in_order = run(events)
    for object_id, payload in last_states(events).items():
        row = in_order[object_id]
        assert row["data"] == payload["data"]["object"], payload["type"]
        assert row["version_source"] == payload["id"]
        assert row["deleted"] == (payload["type"] == "customer.deleted")
    permuted = data.draw(st.permutations(events))
    assert run(permuted) == in_order
    assert run(list(reversed(events))) == in_order


@pytest.mark.django_db
@PROPERTY
@given(data=st.data())
def test_any_permutation_gives_the_in_order_state(data):
    events = data.draw(streams(fresh=False))
    in_order = run(events)
    assert set(in_order) == {p["data"]["object"]["id"] for p in events}
    assert run(data.draw(st.permutations(events))) == in_order


# --- concurrency -------------------------------------------------------------------------


@pytest.fixture
def announced():
    calls, lock = [], threading.Lock()

    def receiver(sender, **kwargs):
        with lock:
            calls.append(kwargs["event"]["id"])

    stripe_event_applied.connect(receiver, dispatch_uid="test_properties.announced")
    yield calls
    stripe_event_applied.disconnect(dispatch_uid="test_properties.announced")


@pytest.mark.django_db(transaction=True)
def test_every_event_delivered_three_times_at_once_is_applied_once(eager_tasks, announced):
    charge = factories.ChargeFactory(amount=6400, currency="jpy")
    dispute = factories.DisputeFactory(charge=charge["id"], amount=6400, currency="jpy")
    payloads = [
        factories.event("customer.created", factories.CustomerFactory(email="hina.ogawa@example.jp"), created=T),
        factories.event("charge.succeeded", charge, created=T),
        factories.event("charge.refunded", {**charge, "amount_refunded": 6400, "refunded": True}, created=T + 1),
        factories.event("charge.dispute.created", dispute, created=T + 2),
        factories.event("radar.early_fraud_warning.created", factories.EarlyFraudWarningFactory(charge=charge["id"]),
                        created=T + 2),
        factories.event("invoice.paid", factories.InvoiceFactory(), created=T + 3),
    ]
    for payload in payloads:
        body, signature = factories.signed(payload, WEBHOOK_SECRET)

        def deliver(i, body=body, signature=signature, event_id=payload["id"]):
            # Stripe's delivery over the webhook, then a task for it as a redelivered or
            # requeued message would run it in another worker.
            response = Client().generic("POST", "/stripe/webhook/", body, content_type="application/json",
                                        HTTP_STRIPE_SIGNATURE=signature)
            return response.status_code, response.json()["reason"], apply_event_task.apply(args=(event_id,)).get(disable_sync_subtasks=False)

        results = in_threads(3, deliver)
        assert sorted(r[:2] for r in results) == [(200, "duplicate"), (200, "duplicate"), (200, "stored")]
        assert {r[2] for r in results} == {WebhookEvent.Status.APPLIED}

    assert WebhookEvent.objects.count() == len(payloads)
    for payload in payloads:
        event = WebhookEvent.objects.get(pk=payload["id"])
        assert (event.status, event.attempts, event.last_error) == (WebhookEvent.Status.APPLIED, 1, "")
    assert sorted(announced) == sorted(p["id"] for p in payloads)
    counts = {kind: KINDS[kind].model.objects.count() for kind in KINDS}
    assert counts == {"customer": 1, "product": 0, "price": 0, "payment_intent": 0, "charge": 1, "refund": 0,
                      "dispute": 1, "subscription": 0, "invoice": 1, "radar.early_fraud_warning": 1}
    assert KINDS["charge"].model.objects.get().amount_refunded == 6400


def _busy_stream() -> list[dict]:
    """Events for three objects, many in the same second, chained like Stripe chains them."""
    events: list[dict] = []
    sub = factories.SubscriptionFactory(id="sub_busy", status="incomplete", metadata={"rev": "0"})
    charge = factories.ChargeFactory(id="ch_busy", captured=False, amount_captured=0, amount=9000, metadata={"rev": "0"})
    customer = factories.CustomerFactory(id="cus_busy", metadata={"rev": "0"})
    events.append(factories.event("customer.subscription.created", sub, created=T, event_id="evt_busy_s0"))
    events.append(factories.event("charge.succeeded", charge, created=T, event_id="evt_busy_c0"))
    events.append(factories.event("customer.created", customer, created=T, event_id="evt_busy_u0"))
    status = ["incomplete", "active", "active", "active", "past_due", "past_due", "active", "active", "canceled"]
    for n in range(1, 9):
        t = T + n // 3  # three events a second
        prev_sub = sub
        sub = {**sub, "status": status[n], "metadata": {"rev": str(n)}}
        events.append(factories.event(
            "customer.subscription.updated", sub, created=t, event_id=f"evt_busy_s{9 - n}x",
            previous_attributes={"metadata": prev_sub["metadata"], **({"status": prev_sub["status"]}
                                                                     if prev_sub["status"] != sub["status"] else {})},
        ))
        prev_charge = charge
        charge = {**charge, "metadata": {"rev": str(n)}}
        type_ = "charge.updated"
        if n == 2:
            charge, type_ = {**charge, "captured": True, "amount_captured": 9000}, "charge.captured"
        elif n in (5, 7):
            charge = {**charge, "amount_refunded": charge["amount_refunded"] + 1500, "refunded": False}
            type_ = "charge.refunded"
        events.append(factories.event(type_, charge, created=t, event_id=f"evt_busy_c{9 - n}x",
                                      previous_attributes={"metadata": prev_charge["metadata"]}
                                      if type_ == "charge.updated" else None))
        prev_customer = customer
        customer = {**customer, "name": f"Name {n}", "metadata": {"rev": str(n)}}
        events.append(factories.event("customer.updated", customer, created=t, event_id=f"evt_busy_u{9 - n}x",
                                      previous_attributes={"name": prev_customer["name"],
                                                           "metadata": prev_customer["metadata"]}))
    return events


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_on_the_same_objects_end_where_serial_ends():
    import random

    events = _busy_stream()
    for payload in events:
        store_event(payload)
    stale = [copy.deepcopy(p["data"]["object"]) for p in events[:3]]  # a backfill page read long ago

    def reset_mirror():
        for kind in ("customer", "subscription", "charge"):
            KINDS[kind].model.objects.all().delete()
        WebhookEvent.objects.update(status=WebhookEvent.Status.PENDING, attempts=0, last_error="")

    for payload in events:
        assert apply_event(payload["id"]) == WebhookEvent.Status.APPLIED
    serial = {kind: list(KINDS[kind].model.objects.values()) for kind in ("customer", "subscription", "charge")}
    for rows in serial.values():
        for row in rows:
            row.pop("synced_at")
    # Serial application is itself right: each object ends at its last event.
    last = last_states(events)
    for rows in serial.values():
        (row,) = rows
        assert row["version_source"] == last[row["id"]]["id"]

    rng = random.Random(2026)
    for _round in range(3):
        reset_mirror()
        shuffled = events[:]
        rng.shuffle(shuffled)
        work: queue.Queue = queue.Queue()
        for payload in shuffled:
            work.put(payload["id"])

        def worker(i):
            if i == 4:  # a backfill writing the same rows in bulk, with an old fetch time
                for _ in range(5):
                    upsert_fetched(stale, T - 1000)
                return []
            done = []
            while True:
                try:
                    event_id = work.get_nowait()
                except queue.Empty:
                    return done
                done.append(apply_event_task.apply(args=(event_id,)).get(disable_sync_subtasks=False))

        results = in_threads(5, worker)
        assert sorted(itertools.chain(*results)) == [WebhookEvent.Status.APPLIED] * len(events)
        # One attempt each: no deadlock, serialization failure or lock timeout was retried.
        assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
        for kind, rows in serial.items():
            now = list(KINDS[kind].model.objects.values())
            for row in now:
                row.pop("synced_at")
            assert now == rows, kind
