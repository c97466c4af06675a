"""manage.py stripe_backfill, stripe_replay and stripe_reconcile, through call_command,
against localstripe over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from payments.events import store_event
from payments.models import Charge, Customer, Refund, SyncCursor, WebhookEvent
from tests import factories
from tests.helpers import tasks_run
from tests.payments.sync_helpers import listed_ids, paid_charge, seed_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def ls(localstripe):
    return localstripe.client()


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(*args, stdout=None) -> tuple[str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- stripe_backfill -------------------------------------------------------------------------


def test_backfill_lists_the_resources_and_prints_a_summary(ls):
    shop = seed_shop(ls, customers=2)

    out, _ = run("stripe_backfill", "--resource", "customer", "charges", "--resource", "refund")

    assert set(Customer.objects.values_list("id", flat=True)) == set(shop["customers"])
    assert set(Charge.objects.values_list("id", flat=True)) == listed_ids(ls, "charges")
    assert Refund.objects.count() == 2
    lines = out.splitlines()
    assert lines[0].split() == ["resource", "objects", "pages", "seconds", "obj/s", "status"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["customer"][1:3] == ["2", "1"] and rows["customer"][-1] == "ok"
    assert rows["charge"][1] == str(len(listed_ids(ls, "charges")))
    assert rows["total"][1] == str(2 + len(listed_ids(ls, "charges")) + 2)
    assert "\r" not in out  # no progress bar when stdout is not a terminal


def test_backfill_shows_progress_bars_on_a_terminal(ls):
    seed_shop(ls, customers=1)
    terminal = Terminal()

    run("stripe_backfill", "--resource", "customer", "price", stdout=terminal)

    out = terminal.getvalue()
    assert "customer" in out and "obj/s" in out and "\r" in out
    assert "skipped: not available at this Stripe server" in out


def test_backfill_since_a_day(ls):
    paid_charge(ls, 1200, "usd")
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%d")

    run("stripe_backfill", "--resource", "charge", "--since", tomorrow)
    assert not Charge.objects.exists()
    run("stripe_backfill", "--resource", "charge", "--since", yesterday)
    assert Charge.objects.count() == 1


def test_backfill_failure_is_printed_and_exits_nonzero(ls):
    ls.v1.customers.create({"name": "Aiko Mori"})
    out = io.StringIO()

    # localstripe cannot filter customers by date: that resource fails, charges still run.
    with pytest.raises(CommandError, match="Backfill failed for customer; run again to resume"):
        call_command("stripe_backfill", "--resource", "customer", "charge", "--since", "2024-01-01", stdout=out)

    assert "error: InvalidRequestError" in out.getvalue()
    assert SyncCursor.objects.get(name="backfill:charge").finished_at is not None


def test_backfill_as_a_task(ls, eager_tasks):
    shop = seed_shop(ls, customers=1)

    out, _ = run("stripe_backfill", "--resource", "customer", "--task")

    assert out.startswith("Queued backfill task ") and "for customer" in out
    assert list(Customer.objects.values_list("id", flat=True)) == shop["customers"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--resource", "coupons"], "unknown resource 'coupons'"),
        (["--since", "last week"], "is not a date"),
    ],
)
def test_backfill_bad_arguments(args, message, localstripe):
    with pytest.raises(CommandError, match=message):
        run("stripe_backfill", *args)


def test_backfill_needs_a_key(db):
    with pytest.raises(CommandError, match="STRIPE_API_KEY is not configured"):
        run("stripe_backfill")


# --- stripe_replay ---------------------------------------------------------------------------


def stored(type_: str, obj: dict, status: str, created: int, error: str = "") -> str:
    payload = factories.event(type_, obj, created=created)
    store_event(payload)
    WebhookEvent.objects.filter(pk=payload["id"]).update(status=status, last_error=error)
    return payload["id"]


@pytest.fixture
def events(db):
    now = int(time.time())
    return {
        "failed_old": stored("customer.created", factories.CustomerFactory(name="Old Failure"), "failed",
                             now - 5 * 86400, "OperationalError: the database went away"),
        "failed_new": stored("charge.succeeded", factories.ChargeFactory(amount=777), "failed", now - 3600, "boom"),
        "applied": stored("customer.updated", factories.CustomerFactory(name="Applied Already"), "applied", now - 7200),
        "ignored": stored("payout.paid", factories.CustomerFactory(), "ignored", now - 60),
    }


def test_replay_failed_sync_applies_them_and_audits(events):
    out, _ = run("stripe_replay", "--failed", "--sync")

    assert out.strip() == "Replayed 2 events: 2 applied."
    assert set(WebhookEvent.objects.filter(status="applied").values_list("id", flat=True)) == {
        events["failed_old"], events["failed_new"], events["applied"]
    }
    assert Customer.objects.get().name == "Old Failure"
    assert Charge.objects.get().amount == 777
    assert set(AuditEntry.objects.filter(action="stripe_event.replay").values_list("target", flat=True)) == {
        events["failed_old"], events["failed_new"]
    }


def test_replay_queues_by_default(events, eager_tasks, django_capture_on_commit_callbacks):
    with tasks_run() as ran, django_capture_on_commit_callbacks(execute=True):
        out, _ = run("stripe_replay", "--failed")

    assert out.strip() == "Queued 2 events for replay." and ran.count("payments.tasks.apply_event_task") == 2
    assert not WebhookEvent.objects.filter(status="failed").exists()


def test_replay_by_id_and_time_range(events):
    out, err = run("stripe_replay", "--id", events["applied"], "--id", events["ignored"], "--id", "evt_unknown", "--sync")
    assert out.strip() == "Replayed 1 event: 1 applied."
    # The command lists the ids it skipped, sorted; the fixture's ids are random.
    assert ", ".join(sorted([events["ignored"], "evt_unknown"])) in err
    assert Customer.objects.get().name == "Applied Already"

    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()
    out, _ = run("stripe_replay", "--failed", "--since", since, "--sync")
    assert out.strip() == "Replayed 1 event: 1 applied."
    assert WebhookEvent.objects.get(pk=events["failed_old"]).status == "failed"

    until = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).strftime("%Y-%m-%d")
    out, _ = run("stripe_replay", "--until", until, "--sync")
    assert out.strip() == "Replayed 1 event: 1 applied."
    assert WebhookEvent.objects.get(pk=events["failed_old"]).status == "applied"


def test_replay_that_still_fails_exits_nonzero(db):
    # An event whose object type the mirror does not keep fails permanently.
    event_id = stored("customer.created", {"id": "po_1", "object": "payout"}, "failed", int(time.time()))
    with pytest.raises(CommandError, match="1 event\\(s\\) still failed"):
        run("stripe_replay", "--id", event_id, "--sync")
    assert "not mirrored" in WebhookEvent.objects.get(pk=event_id).last_error


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Say which events"),
        (["--since", "yesterday"], "--since: 'yesterday' is not a date"),
        (["--since", "2025-02-01", "--until", "2025-01-01"], "--since must be before --until"),
    ],
)
def test_replay_bad_arguments(args, message, db):
    with pytest.raises(CommandError, match=message):
        run("stripe_replay", *args)


def test_replay_with_nothing_to_do(events):
    out, _ = run("stripe_replay", "--since", "2999-01-01")
    assert out.strip() == "No events to replay."


# --- stripe_reconcile ------------------------------------------------------------------------


def test_reconcile_prints_what_it_found(ls, eager_tasks, django_capture_on_commit_callbacks):
    ls.v1.customers.create({"name": "Misaki Sato", "email": "misaki@example.jp"})
    ls.v1.customers.create({"name": "James Carter", "email": "james@example.com"})

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("stripe_reconcile")

    assert "Listed 2 events since " in out and ": 2 new (queued for applying), 0 already stored" in out
    assert Customer.objects.count() == 2
    out, _ = run("stripe_reconcile")
    assert ": 0 new (queued for applying), 2 already stored" in out


def test_reconcile_needs_a_key(db):
    with pytest.raises(CommandError, match="STRIPE_API_KEY is not configured"):
        run("stripe_reconcile")
