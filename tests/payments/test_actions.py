"""payments.actions, the apply path: watermark, same-second ties, the claim, the
stripe_event_applied announcement after commit, failures and replay. Real PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from payments.actions import events as actions
from payments.actions.events import apply_event, record_event_failure, replay_events
from payments.errors import EventNotApplicable
from payments.events import InvalidEvent, store_event
from payments.models import Customer, Dispute, PaymentIntent, PendingAnnouncement, Subscription, WebhookEvent
from payments.signals import stripe_event_applied
from tests import factories
from tests.helpers import committed, eager_tasks, tasks_run

pytestmark = pytest.mark.django_db

T = 1_760_000_000
APPLIED, FAILED, PENDING, IGNORED = (
    WebhookEvent.Status.APPLIED, WebhookEvent.Status.FAILED, WebhookEvent.Status.PENDING, WebhookEvent.Status.IGNORED,
)


@pytest.fixture
def announced():
    """Every stripe_event_applied sent, as (event id, kwargs)."""
    calls = []

    def receiver(sender, **kwargs):
        calls.append((kwargs["event"]["id"], kwargs))

    stripe_event_applied.connect(receiver, dispatch_uid="test_actions.announced")
    yield calls
    stripe_event_applied.disconnect(dispatch_uid="test_actions.announced")


def deliver(*payloads: dict) -> list[str]:
    """Store and apply each event as the worker does, and commit (so it is announced)."""
    statuses = []
    for payload in payloads:
        with committed():
            store_event(payload)
            statuses.append(apply_event(payload["id"]))
    return statuses


def customer_row(customer_id: str) -> Customer:
    return Customer.objects.get(pk=customer_id)


# --- the watermark ----------------------------------------------------------------------


@pytest.mark.parametrize("newer_first", [True, False])
def test_an_older_event_never_overwrites_a_newer_state(newer_first):
    customer = factories.CustomerFactory(name="Aiko Mori", email="aiko@example.jp")
    old = factories.event("customer.updated", {**customer, "name": "Aiko M."}, created=T,
                          previous_attributes={"name": "Aiko Mori"})
    new = factories.event("customer.updated", {**customer, "name": "Aiko Mori-Lee"}, created=T + 1,
                          previous_attributes={"name": "Aiko M."})
    assert deliver(*([new, old] if newer_first else [old, new])) == [APPLIED, APPLIED]
    row = customer_row(customer["id"])
    assert (row.name, row.version_ts, row.version_source) == ("Aiko Mori-Lee", T + 1, new["id"])


@pytest.mark.parametrize("order", ["created_first", "succeeded_first"])
def test_payment_intent_created_and_succeeded_in_one_second(order):
    intent = factories.PaymentIntentFactory(status="requires_payment_method", amount_received=0)
    # The id that sorts first belongs to the later event: the rank decides, not the id.
    created = factories.event("payment_intent.created", intent, created=T, event_id="evt_zz_created")
    succeeded = factories.event("payment_intent.succeeded", {**intent, "status": "succeeded", "amount_received": 4200},
                                created=T, event_id="evt_aa_succeeded")
    deliver(*([created, succeeded] if order == "created_first" else [succeeded, created]))
    row = PaymentIntent.objects.get(pk=intent["id"])
    assert (row.status, row.amount_received, row.version_source) == ("succeeded", 4200, "evt_aa_succeeded")


def _updates_chain(customer: dict, n: int, ids: list[str]) -> list[dict]:
    """n same-second customer.updated events, each changing one more field, chained by
    previous_attributes the way Stripe writes them: event i's describe event i-1's state,
    and no other (a metadata counter moves with every change)."""
    events, state = [], {**customer, "metadata": {"rev": "0"}}
    fields = ["email", "phone", "name", "description"]
    for i in range(n):
        field = fields[i % len(fields)]
        before = state
        value = f"{field}-v{i + 1}@x" if field == "email" else f"{field}-v{i + 1}"
        state = {**state, field: value, "metadata": {"rev": str(i + 1)}}
        events.append(factories.event("customer.updated", state, created=T, event_id=ids[i],
                                      previous_attributes={field: before[field], "metadata": before["metadata"]}))
    return events


@pytest.mark.parametrize("ids", [["evt_a1", "evt_b2"], ["evt_b2", "evt_a1"]], ids=["ids_ascending", "ids_descending"])
@pytest.mark.parametrize("reverse", [False, True], ids=["in_order", "reversed"])
def test_two_same_second_updates_the_later_in_the_chain_wins(ids, reverse):
    customer = factories.CustomerFactory()
    first, second = _updates_chain(customer, 2, ids)
    deliver(*([second, first] if reverse else [first, second]))
    row = customer_row(customer["id"])
    assert row.data == second["data"]["object"] and row.version_source == second["id"]


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("ids", [["evt_c", "evt_b", "evt_a"], ["evt_a", "evt_b", "evt_c"], ["evt_b", "evt_c", "evt_a"]])
def test_three_chain_in_any_permutation(perm, ids):
    customer = factories.CustomerFactory()
    chain = _updates_chain(customer, 3, ids)
    deliver(*[chain[i] for i in perm])
    row = customer_row(customer["id"])
    assert row.data == chain[2]["data"]["object"] and row.version_source == chain[2]["id"]
    assert row.email == "email-v1@x" and row.phone == "phone-v2"


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_chain_with_a_status_toggling_back(perm):
    # cancel_at_period_end true -> false -> true in one second: the only way to order them is
    # the whole chain (the second and the last have the same flag).
    sub = factories.SubscriptionFactory(cancel_at_period_end=False, metadata={"step": "0"})
    states, events = [sub], []
    for i, flag in enumerate([True, False, True], start=1):
        prev = states[-1]
        state = {**prev, "cancel_at_period_end": flag, "metadata": {"step": str(i)}}
        events.append(factories.event(
            "customer.subscription.updated", state, created=T, event_id=f"evt_{'zyx'[i - 1]}",
            previous_attributes={"cancel_at_period_end": prev["cancel_at_period_end"], "metadata": {"step": str(i - 1)}},
        ))
        states.append(state)
    deliver(*[events[i] for i in perm])
    row = Subscription.objects.get(pk=sub["id"])
    assert row.data["metadata"] == {"step": "3"} and row.cancel_at_period_end is True


@pytest.mark.parametrize("deleted_first", [True, False])
def test_deletion_beats_a_same_second_update(deleted_first):
    customer = factories.CustomerFactory()
    update = factories.event("customer.updated", {**customer, "name": "Late Edit"}, created=T,
                             previous_attributes={"name": customer["name"]}, event_id="evt_zzz")
    delete = factories.event("customer.deleted", customer, created=T, event_id="evt_aaa")
    deliver(*([delete, update] if deleted_first else [update, delete]))
    row = customer_row(customer["id"])
    assert row.deleted and row.version_source == "evt_aaa"


def test_a_tied_event_that_is_not_applied_does_not_decide():
    # Only applied events settle a tie: a stored-but-pending one is applied in its turn.
    customer = factories.CustomerFactory()
    first, second = _updates_chain(customer, 2, ["evt_b", "evt_a"])
    store_event(second)  # pending, not applied
    deliver(first)
    assert customer_row(customer["id"]).version_source == first["id"]
    assert apply_event(second["id"]) == APPLIED
    assert customer_row(customer["id"]).version_source == second["id"]


def test_a_fetched_state_of_the_same_second_wins_the_tie():
    from payments.mirror import upsert_fetched

    customer = factories.CustomerFactory(name="From API")
    upsert_fetched([customer], T)
    deliver(factories.event("customer.updated", {**customer, "name": "From event"}, created=T,
                            previous_attributes={"name": "x"}))
    assert customer_row(customer["id"]).name == "From API"


# --- the claim and the signal ---------------------------------------------------------


def test_an_event_is_applied_and_announced_once(announced):
    dispute = factories.DisputeFactory()
    payload = factories.event("charge.dispute.created", dispute, created=T)
    store_event(payload)
    with committed():
        assert apply_event(payload["id"]) == APPLIED
        assert not announced  # never inside the applying transaction
    with committed():
        assert apply_event(payload["id"]) == APPLIED  # a redelivered task
    event = WebhookEvent.objects.get(pk=payload["id"])
    assert (event.status, event.attempts, event.last_error) == (APPLIED, 1, "")
    assert event.processed_at is not None
    assert not PendingAnnouncement.objects.exists()  # every listener took it
    assert [e for e, _ in announced] == [payload["id"]]
    kwargs = announced[0][1]
    assert (kwargs["kind"], kwargs["source"]) == ("dispute", "webhook")
    assert kwargs["obj"] == dispute
    assert Dispute.objects.count() == 1


def test_a_late_older_event_is_still_announced_with_the_mirrored_state(announced):
    # A dispute opened then updated; the update arrives first. The opening still happened,
    # so listeners hear of it, with the object as the mirror now holds it.
    dispute = factories.DisputeFactory(status="needs_response")
    opened = factories.event("charge.dispute.created", dispute, created=T)
    updated = factories.event("charge.dispute.updated", {**dispute, "status": "under_review"}, created=T + 60,
                              previous_attributes={"status": "needs_response"})
    deliver(updated, opened)
    assert [e for e, _ in announced] == [updated["id"], opened["id"]]
    assert announced[1][1]["obj"]["status"] == "under_review"
    assert Dispute.objects.get(pk=dispute["id"]).status == "under_review"


def test_a_late_event_for_a_deleted_object_announces_it_deleted(announced):
    customer = factories.CustomerFactory()
    deleted = factories.event("customer.deleted", customer, created=T + 10)
    late = factories.event("customer.updated", {**customer, "name": "Too late"}, created=T,
                           previous_attributes={"name": customer["name"]})
    deliver(deleted, late)
    assert [kw["obj"].get("deleted") for _, kw in announced] == [True, True]
    assert announced[1][1]["obj"]["name"] == customer["name"]


def test_the_source_announced_is_where_the_event_came_from(announced):
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    with committed():
        store_event(payload, source=WebhookEvent.Source.RECONCILE)
        apply_event(payload["id"])
    assert announced[0][1]["source"] == "reconcile"


def test_a_replay_rewrites_but_does_not_announce_again(announced):
    customer = factories.CustomerFactory(email="Kenji@Example.com")
    payload = factories.event("customer.created", customer, created=T)
    deliver(payload)
    # Someone broke the row by hand; the replay of the applied event puts it right.
    Customer.objects.filter(pk=customer["id"]).update(email="", version_source="")
    with committed():
        assert apply_event(payload["id"], replay=True) == APPLIED
    assert customer_row(customer["id"]).email == "kenji@example.com"
    assert len(announced) == 1
    assert WebhookEvent.objects.get(pk=payload["id"]).attempts == 2


@pytest.fixture
def broken_listener():
    """A listener that fails until told otherwise, beside the others."""
    state = {"fail": True, "calls": 0}

    def listener(sender, **kwargs):
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError("the timeline had a bug")

    stripe_event_applied.connect(listener, dispatch_uid="test_actions.broken")
    yield state
    stripe_event_applied.disconnect(dispatch_uid="test_actions.broken")


def test_a_failing_listener_never_undoes_the_mirror_write_and_is_retried(broken_listener, announced):
    customer = factories.CustomerFactory(name="Rin Kato")
    payload = factories.event("customer.created", customer, created=T)
    with tasks_run() as ran:
        deliver(payload)
    # The mirror kept the event; the other listeners still heard of it; the error waits.
    assert customer_row(customer["id"]).name == "Rin Kato"
    assert WebhookEvent.objects.get(pk=payload["id"]).status == APPLIED
    pending = PendingAnnouncement.objects.get(event_id=payload["id"])
    assert "RuntimeError: the timeline had a bug" in pending.last_error
    # Eager tasks don't wait: every retry ran at once, then it was left for the sync page.
    assert ran.count("payments.tasks.announce_event_task") == len(actions.ANNOUNCE_RETRY_SECONDS)
    assert pending.attempts == 1 + len(actions.ANNOUNCE_RETRY_SECONDS)
    assert len(announced) == pending.attempts

    broken_listener["fail"] = False
    assert actions.announce_event(payload["id"]) is True
    assert not PendingAnnouncement.objects.exists()


def test_the_sync_pages_retry_announces_again_audited(broken_listener, finance, agent):
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    deliver(payload)
    broken_listener["fail"] = False
    with pytest.raises(PermissionDenied):
        actions.retry_announcements([payload["id"]], actor=agent)
    with committed():
        assert actions.retry_announcements([payload["id"], "evt_unknown"], actor=finance) == 1
    assert not PendingAnnouncement.objects.exists()
    assert AuditEntry.objects.get(action="stripe_event.reannounce").target == payload["id"]
    with committed():
        assert actions.retry_announcements([payload["id"]], actor=finance) == 0  # nothing left to retry


def test_ignored_events_are_never_applied(announced):
    payload = factories.event("payout.paid", {"id": "po_1", "object": "payout"}, created=T)
    assert store_event(payload) == (True, IGNORED)
    assert apply_event(payload["id"]) == IGNORED
    assert apply_event(payload["id"], replay=True) == IGNORED
    assert not announced


# --- what makes an event fail -----------------------------------------------------------


def test_an_unmirrored_object_under_a_handled_type_is_not_applicable():
    payload = factories.event("charge.succeeded", {"id": "po_123", "object": "payout", "amount": 5}, created=T)
    store_event(payload)
    with pytest.raises(EventNotApplicable, match="'payout' is not mirrored"):
        apply_event(payload["id"])
    assert WebhookEvent.objects.get(pk=payload["id"]).attempts == 0  # never claimed


def test_a_thin_event_without_an_api_key_is_not_applicable():
    payload = factories.event("customer.updated", {"id": "cus_thin", "object": "customer"}, created=T)
    payload["data"]["object"] = None
    payload["related_object"] = {"id": "cus_thin", "type": "customer"}
    store_event(payload)
    with pytest.raises(EventNotApplicable, match="no STRIPE_API_KEY"):
        apply_event(payload["id"])


def test_a_stored_payload_that_is_not_an_event_is_refused():
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    store_event(payload)
    WebhookEvent.objects.filter(pk=payload["id"]).update(payload={"object": "event", "id": payload["id"]})
    with pytest.raises(InvalidEvent):
        apply_event(payload["id"])
    with pytest.raises(EventNotApplicable):
        apply_event("evt_never_stored")


def test_record_event_failure_counts_attempts_and_parks_final_failures():
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    store_event(payload)
    record_event_failure(payload["id"], "OperationalError: the database went away", final=False)
    event = WebhookEvent.objects.get(pk=payload["id"])
    assert (event.status, event.attempts, event.last_error) == (PENDING, 1, "OperationalError: the database went away")
    record_event_failure(payload["id"], "x" * 5000, final=True)
    event = WebhookEvent.objects.get(pk=payload["id"])
    assert (event.status, event.attempts, len(event.last_error)) == (FAILED, 2, 2000)
    # A failed event is claimable again; applying it clears the error.
    assert apply_event(payload["id"]) == APPLIED
    event = WebhookEvent.objects.get(pk=payload["id"])
    assert (event.status, event.attempts, event.last_error) == (APPLIED, 3, "")
    # A failure reported late for an applied event changes nothing.
    record_event_failure(payload["id"], "late", final=True)
    assert WebhookEvent.objects.get(pk=payload["id"]).status == APPLIED


# --- replay ------------------------------------------------------------------------------


def test_replay_events_reapplies_failed_events_and_audits_each(finance, announced):
    good = factories.event("customer.created", factories.CustomerFactory(name="Replayed"), created=T)
    poison = factories.event("customer.created", {"id": "po_x", "object": "payout"}, created=T)
    for payload in (good, poison):
        store_event(payload)
        record_event_failure(payload["id"], "OperationalError: earlier outage", final=True)
    with committed():
        assert replay_events([good["id"], poison["id"]], actor=finance, enqueue=False) == 2
    assert WebhookEvent.objects.get(pk=good["id"]).status == APPLIED
    assert Customer.objects.get(pk=good["data"]["object"]["id"]).name == "Replayed"
    bad = WebhookEvent.objects.get(pk=poison["id"])
    assert bad.status == FAILED and "is not mirrored" in bad.last_error
    # Its first application: listeners hear of it, as from where it came.
    assert [e for e, _ in announced] == [good["id"]] and announced[0][1]["source"] == "webhook"
    entries = AuditEntry.objects.filter(action="stripe_event.replay")
    assert sorted((a.actor.username, a.target) for a in entries) == sorted(
        [("finance", good["id"]), ("finance", poison["id"])]
    )


def test_replay_needs_the_permission(agent):
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    store_event(payload)
    with pytest.raises(PermissionDenied):
        replay_events([payload["id"]], actor=agent, enqueue=False)
    assert not AuditEntry.objects.exists()
    assert WebhookEvent.objects.get(pk=payload["id"]).status == PENDING


def test_replay_enqueues_after_commit(finance, django_capture_on_commit_callbacks):
    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    store_event(payload)
    record_event_failure(payload["id"], "boom", final=True)
    with tasks_run() as ran, django_capture_on_commit_callbacks(execute=False) as callbacks:
        replay_events([payload["id"]], actor=finance)
        # Nothing runs inside the transaction that wrote the audit entry...
        assert ran == [] and AuditEntry.objects.filter(action="stripe_event.replay", target=payload["id"]).exists()
    with tasks_run() as ran, eager_tasks():
        for callback in callbacks:
            callback()
    # ...once it commits, one apply task per event (and the audit row's listeners).
    assert ran.count("payments.tasks.apply_event_task") == 1


def test_missing_references_are_not_fetched_without_a_key():
    refund = factories.RefundFactory(charge="ch_absent")
    with tasks_run() as ran:
        deliver(factories.event("refund.created", refund, created=T))
    assert "payments.tasks.sync_object_task" not in ran
    assert actions._missing_references(actions.KINDS["refund"], refund) == [("charge", "ch_absent")]


def test_an_announcement_lost_after_the_commit_is_found_again_by_the_requeue(announced, django_capture_on_commit_callbacks):
    # The worker died between the apply's commit and the announcement: the pending mark stays.
    import datetime as dt

    from django.utils import timezone

    from payments.tasks import requeue_stale_events

    payload = factories.event("customer.created", factories.CustomerFactory(), created=T)
    store_event(payload)
    with django_capture_on_commit_callbacks(execute=False):
        assert apply_event(payload["id"]) == APPLIED
    assert announced == [] and PendingAnnouncement.objects.filter(event_id=payload["id"]).exists()
    PendingAnnouncement.objects.update(created=timezone.now() - dt.timedelta(minutes=5))
    with committed():
        requeue_stale_events.apply()
    assert [e for e, _ in announced] == [payload["id"]]
    assert not PendingAnnouncement.objects.exists()
