"""payments.sync: backfill and reconciliation over real HTTP against localstripe.

Data is created with the SDK at localstripe; where a fault or a resource localstripe lacks is
needed, a tiny HTTP proxy (tests/payments/sync_helpers.py) sits in front of it.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from payments import sync
from payments.events import store_event
from payments.models import (
    Charge, Customer, Dispute, Invoice, PaymentIntent, Price, Product, Refund, Subscription, SyncCursor, WebhookEvent,
)
from tests.payments.sync_helpers import (
    StripeProxy, customer_with_card, listed_ids, paid_charge, recorded_disputes, recorded_prices, seed_shop,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ls(localstripe):
    return localstripe.client()


@pytest.fixture
def proxy(localstripe, settings):
    """The app talks to localstripe through the proxy."""
    p = StripeProxy(localstripe.url)
    settings.STRIPE_API_BASE = p.url
    yield p
    p.close()


def many_customers(ls, n: int) -> list[str]:
    return [ls.v1.customers.create({"name": f"Shopper {i:03d}", "email": f"shopper{i:03d}@example.com"}).id for i in range(n)]


def is_page_after(after: str):
    return lambda method, path, query: method == "GET" and path == "/v1/customers" and query.get("starting_after") == after


# --- backfill -------------------------------------------------------------------------------


def test_backfill_mirrors_everything_localstripe_has(ls):
    shop = seed_shop(ls, customers=3)
    truth = {
        "customer": listed_ids(ls, "customers"),
        "payment_intent": listed_ids(ls, "payment_intents"),
        "charge": listed_ids(ls, "charges"),
        "refund": listed_ids(ls, "refunds"),
        "subscription": listed_ids(ls, "subscriptions", status="all"),
        "invoice": listed_ids(ls, "invoices"),
        "product": listed_ids(ls, "products"),
    }
    # 3 payment-intent charges, 3 direct charges, 2 subscription invoices' charges.
    assert len(truth["charge"]) == 8 and len(truth["invoice"]) == 2

    results = sync.backfill()

    models = {"customer": Customer, "payment_intent": PaymentIntent, "charge": Charge, "refund": Refund,
              "subscription": Subscription, "invoice": Invoice, "product": Product}
    for name, model in models.items():
        assert results[name].status == "ok", results[name]
        assert results[name].count == len(truth[name])
        assert set(model.objects.values_list("id", flat=True)) == truth[name], name
        cursor = SyncCursor.objects.get(name=f"backfill:{name}")
        assert (cursor.cursor, cursor.count, cursor.last_error) == ("", len(truth[name]), "")
        assert cursor.finished_at is not None
    # localstripe has no prices: reported, not fatal.
    assert results["price"].status == "skipped"
    assert "404" in results["price"].skipped
    assert SyncCursor.objects.get(name="backfill:price").last_error.startswith("skipped")
    # Disputes and early fraud warnings are answered by the stand-in beside it (none here).
    for name in ("dispute", "radar.early_fraud_warning"):
        assert (results[name].status, results[name].count) == ("ok", 0), results[name]

    # The mirrored columns come from the listed objects.
    refund = Refund.objects.get(pk=shop["refunds"][0])
    assert (refund.charge, refund.amount, refund.currency) == (shop["charges"][0], 1000, "jpy")
    charge = Charge.objects.get(pk=shop["charges"][0])
    assert (charge.amount, charge.amount_refunded, charge.customer) == (3200, 1000, shop["customers"][0])
    pi = PaymentIntent.objects.get(pk=shop["payment_intents"][1])
    assert (pi.status, pi.amount, pi.customer) == ("succeeded", 2500, shop["customers"][1])
    assert pi.latest_charge in truth["charge"]
    # The canceled subscription is listed too (Stripe hides it unless status=all).
    assert Subscription.objects.get(pk=shop["subscriptions"][1]).status == "canceled"
    assert Subscription.objects.get(pk=shop["subscriptions"][0]).status == "active"
    assert all(r.version_source == "api" for r in Customer.objects.all())


def test_payment_intents_bring_their_embedded_charges(ls):
    shop = seed_shop(ls, customers=2)
    truth = listed_ids(ls, "payment_intents")  # the shop's two and the two subscription invoices'
    assert set(shop["payment_intents"]) < truth

    results = sync.backfill(["payment_intents"])

    assert list(results) == ["payment_intent"] and results["payment_intent"].count == len(truth)
    pis = PaymentIntent.objects.in_bulk(truth)
    # API 2017-08-15 embeds the charge list; the mirror keeps those charges as well.
    assert set(Charge.objects.values_list("id", flat=True)) == {pi.latest_charge for pi in pis.values()}
    assert all(c.payment_intent in pis for c in Charge.objects.all())


def test_interrupted_backfill_resumes_from_its_checkpoint(ls, proxy):
    ids = set(many_customers(ls, 130))

    class Interrupted(Exception):
        pass

    def stop_after_first_page(stage, result):
        if stage == "page":
            raise Interrupted

    with pytest.raises(Interrupted):
        sync.backfill(["customer"], progress=stop_after_first_page)

    cursor = SyncCursor.objects.get(name="backfill:customer")
    first_page = proxy.seen("GET", "/v1/customers")
    assert len(first_page) == 1 and first_page[0]["limit"] == "100"
    assert Customer.objects.count() == 100 and cursor.count == 100
    assert cursor.cursor in ids and cursor.finished_at is None and "Interrupted" in cursor.last_error
    checkpoint = cursor.cursor

    result = sync.backfill(["customer"])["customer"]

    assert result.resumed_from == checkpoint
    assert (result.count, result.total, result.pages) == (30, 130, 1)
    # The resumed run asked only for what came after the checkpoint.
    assert proxy.seen("GET", "/v1/customers")[1:] == [{"limit": "100", "starting_after": checkpoint}]
    assert set(Customer.objects.values_list("id", flat=True)) == ids
    cursor.refresh_from_db()
    assert (cursor.cursor, cursor.count, cursor.last_error) == ("", 130, "")
    assert cursor.finished_at is not None

    # A finished run is not resumed: the next one lists from the start.
    again = sync.backfill(["customer"])["customer"]
    assert (again.resumed_from, again.count, again.pages) == ("", 130, 2)


def test_429_with_retry_after_is_waited_out_and_listing_resumes(ls, proxy):
    ids = many_customers(ls, 130)
    page_one_last = ls.v1.customers.list({"limit": 100}).data[-1].id
    proxy.fault_once(is_page_after(page_one_last), 429, {"Retry-After": "1"})

    result = sync.backfill(["customer"])["customer"]

    assert result.status == "ok" and result.rate_limited == 1
    assert (result.count, result.pages) == (130, 2)
    listed = proxy.seen("GET", "/v1/customers")
    # Page one once; page two refused, then asked again from the checkpoint.
    assert [q.get("starting_after") for q in listed] == [None, page_one_last, page_one_last]
    assert Customer.objects.count() == len(ids)
    assert SyncCursor.objects.get(name="backfill:customer").count == 130


def test_server_error_is_retried_other_errors_stop_only_that_resource(ls, proxy):
    shop = seed_shop(ls, customers=2)
    proxy.fault_once(lambda m, p, q: p == "/v1/charges", 502)
    proxy.fault_once(lambda m, p, q: p == "/v1/refunds", 401)

    results = sync.backfill(["customer", "charge", "refund"])

    assert results["charge"].status == "ok" and results["charge"].retries == 1
    assert Charge.objects.filter(pk__in=shop["charges"]).count() == 2
    assert results["refund"].status == "error" and "AuthenticationError" in results["refund"].error
    refund_cursor = SyncCursor.objects.get(name="backfill:refund")
    assert "AuthenticationError" in refund_cursor.last_error and refund_cursor.finished_at is None
    assert results["customer"].status == "ok" and Customer.objects.count() == 2


def test_recorded_resources_localstripe_lacks_are_backfilled_through_http(ls, proxy):
    """Prices (with unit_amount_decimal, a Decimal in the SDK) and disputes, as Stripe lists them."""
    charge = paid_charge(ls, 5000, "jpy")
    proxy.recorded["/v1/prices"] = recorded_prices(205)
    proxy.recorded["/v1/disputes"] = recorded_disputes([charge.id])

    results = sync.backfill(["price", "dispute"])

    assert (results["price"].count, results["price"].pages) == (205, 3)
    price = Price.objects.get(pk="price_rec0007")
    assert (price.unit_amount, price.product, price.recurring_interval) == (1207, "prod_recorded01", "month")
    assert price.data["unit_amount_decimal"] == "1207"
    dispute = Dispute.objects.get()
    assert (dispute.charge, dispute.status) == (charge.id, "needs_response")
    assert dispute.due_by is not None


def test_since_lists_only_objects_created_from_that_day(ls):
    customer, _ = customer_with_card(ls, "Aiko Mori")
    charge = ls.v1.charges.create({"amount": 1800, "currency": "usd", "customer": customer})
    created = charge.created

    later = sync.backfill(["charge"], since=created + 1)["charge"]
    assert later.status == "ok" and later.count == 0 and not Charge.objects.exists()

    same_second = sync.backfill(["charge"], since=created)["charge"]
    assert same_second.count == 1 and Charge.objects.filter(pk=charge.id).exists()
    assert SyncCursor.objects.get(name="backfill:charge").since == created


def test_a_resource_the_server_cannot_filter_by_date_is_an_error_not_a_crash(ls):
    customer_with_card(ls, "Ren Kobayashi")

    results = sync.backfill(["customer", "charge"], since=int(time.time()) - 86400)

    # localstripe filters only charges by date; Stripe filters every list.
    assert results["customer"].status == "error" and "InvalidRequestError" in results["customer"].error
    assert results["charge"].status == "ok"


def test_a_live_run_holds_its_resource(ls):
    many_customers(ls, 2)
    SyncCursor.objects.create(name="backfill:customer", cursor="cus_inflight", count=100, started_at=timezone.now())

    result = sync.backfill(["customer"])["customer"]

    assert result.status == "skipped" and "another backfill of customer" in result.skipped
    assert not Customer.objects.exists()
    # Once it has gone quiet past the lease it is taken as stopped and resumed.
    SyncCursor.objects.filter(name="backfill:customer").update(
        updated_at=timezone.now() - dt.timedelta(seconds=sync.LEASE_SECONDS + 1)
    )
    resumed = sync.backfill(["customer"])["customer"]
    assert resumed.status == "ok" and resumed.resumed_from == "cus_inflight"


def test_unknown_resource_is_refused():
    with pytest.raises(ValueError, match="unknown resource 'coupons'"):
        sync.backfill(["coupons"])


# --- reconciliation --------------------------------------------------------------------------


def test_reconcile_applies_events_the_webhook_never_delivered(ls, eager_tasks, django_capture_on_commit_callbacks):
    shop = seed_shop(ls, customers=2)
    events = [e.to_dict() for e in ls.v1.events.list({"limit": 100}).auto_paging_iter()]
    handled = [e for e in events if e["type"] in sync.HANDLED_TYPES]
    delivered = handled[0]
    store_event(delivered)  # the one the webhook did deliver
    assert len(handled) > 5 and len(handled) < len(events)  # plan.created is not mirrored

    with django_capture_on_commit_callbacks(execute=True):
        result = sync.reconcile()

    assert (result.listed, result.new, result.existing) == (len(events), len(handled) - 1, 1)
    assert result.unhandled == len(events) - len(handled)
    assert result.since <= int(time.time()) - sync.RETENTION_SECONDS + 5  # first run: 30 days back
    stored = WebhookEvent.objects.exclude(pk=delivered["id"])
    assert stored.count() == len(handled) - 1
    assert set(stored.values_list("source", flat=True)) == {"reconcile"}
    assert set(stored.values_list("status", flat=True)) == {"applied"}
    # Applied through apply_event: the 2017-08-15 objects were read fresh from localstripe.
    assert set(Customer.objects.values_list("id", flat=True)) == set(shop["customers"])
    assert set(PaymentIntent.objects.values_list("id", flat=True)) == listed_ids(ls, "payment_intents")
    assert Subscription.objects.get(pk=shop["subscriptions"][1]).status == "canceled"
    cursor = SyncCursor.objects.get(name="reconcile")
    assert cursor.since == max(e["created"] for e in events)
    assert cursor.count == len(handled) - 1 and cursor.finished_at is not None

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = sync.reconcile()

    assert (again.new, again.existing) == (0, len(handled)) and callbacks == []
    assert again.since == cursor.since - sync.RECONCILE_OVERLAP_SECONDS
    assert WebhookEvent.objects.count() == len(handled)
    assert SyncCursor.objects.get(name="reconcile").count == 0


def test_reconcile_resumes_after_a_rate_limit(ls, proxy, eager_tasks, django_capture_on_commit_callbacks):
    many_customers(ls, 60)  # customer.created + nothing else: 60 events, one page
    proxy.fault_once(lambda m, p, q: p == "/v1/events", 429, {"Retry-After": "0"})

    with django_capture_on_commit_callbacks(execute=True):
        result = sync.reconcile()

    assert result.new == 60 and len(proxy.seen("GET", "/v1/events")) == 2
    assert Customer.objects.count() == 60


def test_reconcile_failure_is_recorded_and_the_window_does_not_move(ls, proxy):
    many_customers(ls, 1)
    proxy.fault_once(lambda m, p, q: p == "/v1/events", 403)

    with pytest.raises(Exception, match="proxy answered 403"):
        sync.reconcile()

    cursor = SyncCursor.objects.get(name="reconcile")
    assert cursor.since is None and cursor.finished_at is None and "403" in cursor.last_error


def test_reconcile_task_returns_its_counts_and_skips_without_a_key(ls, settings, django_capture_on_commit_callbacks):
    from payments.tasks import reconcile_events

    many_customers(ls, 3)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        counts = reconcile_events.apply().get()
    assert (counts["listed"], counts["new"], counts["existing"]) == (3, 3, 0) and len(queued) == 3
    assert WebhookEvent.objects.filter(status="pending", source="reconcile").count() == 3

    settings.STRIPE_API_KEY = ""
    assert reconcile_events.apply().get() == {"skipped": "no STRIPE_API_KEY"}
