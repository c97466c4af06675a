"""payments.mirror: every mirrored type applied from its event, older API shapes, the guarded
upsert and the same-version tie rule. Real PostgreSQL; events go through store_event and
apply_event like a worker applies them."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from payments import mirror
from payments.actions.events import apply_event
from payments.events import store_event
from payments.mirror import KINDS, Candidate, resolve_tie, upsert_fetched
from payments.models import (
    Charge,
    Customer,
    Dispute,
    EarlyFraudWarning,
    Invoice,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Subscription,
    WebhookEvent,
)
from tests import factories

pytestmark = pytest.mark.django_db

T = 1_760_000_000  # a fixed second, so ties are ties
OLD_API = "2017-08-15"  # what localstripe renders


def utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def deliver(payload: dict) -> str:
    """Store an event as the webhook does and apply it as the worker does."""
    store_event(payload)
    return apply_event(payload["id"])


def resource(resource_name: str, **fields) -> dict:
    obj = copy.deepcopy(factories.RESOURCES[resource_name])
    obj.update(fields)
    return obj


def assert_whole_object_kept(row, obj: dict) -> None:
    assert row.data == obj
    assert (row.version_ts, row.version_source) != (0, "")


# --- every mirrored type, from its event ----------------------------------------------


def test_customer_created_then_deleted_is_marked_not_dropped():
    customer = factories.CustomerFactory(
        email="  Haruka.Sato@Example.JP ", name="Haruka Sato", phone="+81 90 1234 5678", currency="jpy",
        delinquent=True, created=T - 86400,
    )
    assert deliver(factories.event("customer.created", customer, created=T)) == WebhookEvent.Status.APPLIED
    row = Customer.objects.get(pk=customer["id"])
    assert (row.email, row.name, row.phone, row.currency, row.delinquent) == (
        "haruka.sato@example.jp", "Haruka Sato", "+81 90 1234 5678", "jpy", True,
    )
    assert row.created == utc(T - 86400) and not row.deleted
    assert_whole_object_kept(row, customer)

    deliver(factories.event("customer.deleted", customer, created=T + 60))
    row = Customer.objects.get(pk=customer["id"])
    assert row.deleted and row.email == "haruka.sato@example.jp"
    assert row.version_ts == T + 60


def test_deleted_stub_object_marks_the_row_deleted():
    customer = factories.CustomerFactory()
    deliver(factories.event("customer.created", customer, created=T))
    stub = {"id": customer["id"], "object": "customer", "deleted": True}
    deliver(factories.event("customer.deleted", stub, created=T + 5))
    row = Customer.objects.get(pk=customer["id"])
    assert row.deleted and row.data == stub


def test_product_and_price_reference_by_id_and_delete():
    product = resource("product", id="prod_TeaSubscription", name="Sencha of the month", active=True, created=T - 10)
    price = resource(
        "price", id="price_TeaMonthly", product=product["id"], nickname="Monthly", unit_amount=1800,
        currency="jpy", recurring={"interval": "month", "interval_count": 1}, active=True, created=T - 10,
    )
    # The price arrives before its product: the reference is kept as an id all the same.
    deliver(factories.event("price.created", price, created=T))
    row = Price.objects.get(pk=price["id"])
    assert (row.product, row.nickname, row.unit_amount, row.currency, row.recurring_interval, row.active) == (
        "prod_TeaSubscription", "Monthly", 1800, "jpy", "month", True,
    )
    assert not Product.objects.exists()
    deliver(factories.event("product.created", product, created=T))
    assert Product.objects.get(pk=product["id"]).name == "Sencha of the month"

    # An expanded product is stored as its id too.
    expanded = {**price, "product": product, "active": False}
    deliver(factories.event("price.updated", expanded, created=T + 1, previous_attributes={"active": True}))
    row = Price.objects.get(pk=price["id"])
    assert row.product == "prod_TeaSubscription" and row.active is False

    deliver(factories.event("product.deleted", {**product, "deleted": True}, created=T + 2))
    deliver(factories.event("price.deleted", expanded, created=T + 2))
    assert Product.objects.get(pk=product["id"]).deleted
    assert Price.objects.get(pk=price["id"]).deleted


def test_payment_intent_current_shape():
    intent = factories.PaymentIntentFactory(
        customer="cus_NotMirroredYet", latest_charge="ch_NotMirroredYet", amount=5400, amount_received=5400,
        currency="usd", status="succeeded", description="Order #1042",
    )
    deliver(factories.event("payment_intent.succeeded", intent, created=T))
    row = PaymentIntent.objects.get(pk=intent["id"])
    assert (row.customer, row.latest_charge, row.status, row.amount, row.amount_received, row.currency, row.description) == (
        "cus_NotMirroredYet", "ch_NotMirroredYet", "succeeded", 5400, 5400, "usd", "Order #1042",
    )
    assert not Customer.objects.exists() and not Charge.objects.exists()
    assert_whole_object_kept(row, intent)


def test_payment_intent_old_shape_with_charges_list():
    charge = factories.ChargeFactory(amount=3000, currency="jpy")
    intent = factories.PaymentIntentFactory(amount=3000, amount_received=3000, currency="jpy")
    del intent["latest_charge"]
    intent["charges"] = {"object": "list", "data": [charge], "has_more": False, "url": "/v1/charges"}
    # No API key: an older-version event is applied as it came.
    assert deliver(factories.event("payment_intent.succeeded", intent, created=T, api_version=OLD_API)) == "applied"
    row = PaymentIntent.objects.get(pk=intent["id"])
    assert row.latest_charge == charge["id"] and row.data["charges"]["data"][0]["id"] == charge["id"]


def test_charge_columns_and_expanded_references():
    charge = factories.ChargeFactory(
        customer={"id": "cus_Expanded1", "object": "customer"}, payment_intent="pi_Absent1", invoice="in_Absent1",
        amount=4200, amount_refunded=1200, refunded=False, disputed=True, currency="usd", status="succeeded",
        billing_details={"email": " Mika.Tanaka@Example.JP", "name": "Mika Tanaka", "address": None, "phone": None},
        failure_code=None, description="Two teapots",
    )
    deliver(factories.event("charge.refunded", charge, created=T))
    row = Charge.objects.get(pk=charge["id"])
    assert (row.customer, row.payment_intent, row.invoice) == ("cus_Expanded1", "pi_Absent1", "in_Absent1")
    assert (row.amount, row.amount_captured, row.amount_refunded, row.disputed, row.paid) == (4200, 4200, 1200, True, True)
    assert (row.billing_email, row.failure_code, row.description) == ("mika.tanaka@example.jp", "", "Two teapots")
    assert_whole_object_kept(row, charge)


def test_old_charge_shape_without_amount_captured():
    charge = factories.ChargeFactory(amount=2500, captured=True, billing_details=None, receipt_email="Old@Example.com")
    del charge["amount_captured"]
    deliver(factories.event("charge.succeeded", charge, created=T, api_version=OLD_API))
    row = Charge.objects.get(pk=charge["id"])
    assert row.amount_captured == 2500 and row.billing_email == "old@example.com"


def test_refund_references_absent_charge_by_id():
    refund = factories.RefundFactory(charge="ch_NeverSeen", amount=700, currency="jpy", status="pending", reason=None)
    deliver(factories.event("refund.created", refund, created=T))
    row = Refund.objects.get(pk=refund["id"])
    assert (row.charge, row.amount, row.currency, row.status, row.reason) == ("ch_NeverSeen", 700, "jpy", "pending", "")
    assert not Charge.objects.exists()
    deliver(factories.event("refund.updated", {**refund, "status": "succeeded"}, created=T + 3,
                            previous_attributes={"status": "pending"}))
    assert Refund.objects.get(pk=refund["id"]).status == "succeeded"


def test_dispute_due_by_and_charge_reference():
    dispute = factories.DisputeFactory(charge="ch_Disputed1", amount=4200, status="needs_response", created=T - 5)
    deliver(factories.event("charge.dispute.created", dispute, created=T))
    row = Dispute.objects.get(pk=dispute["id"])
    assert (row.charge, row.status, row.reason, row.amount) == ("ch_Disputed1", "needs_response", "fraudulent", 4200)
    assert row.due_by == utc(T - 5 + 7 * 86400)
    deliver(factories.event("charge.dispute.closed", {**dispute, "status": "won"}, created=T + 86400))
    assert Dispute.objects.get(pk=dispute["id"]).status == "won"


def test_subscription_period_end_old_and_new_shapes_and_cancel():
    old = factories.SubscriptionFactory(current_period_end=T + 30 * 86400, customer="cus_Sub1")
    deliver(factories.event("customer.subscription.created", old, created=T, api_version=OLD_API))
    row = Subscription.objects.get(pk=old["id"])
    assert (row.customer, row.status, row.current_period_end) == ("cus_Sub1", "active", utc(T + 30 * 86400))

    new = factories.SubscriptionFactory()  # 2025-03-31 and later: the period lives on the items
    assert "current_period_end" not in new
    new["items"]["data"][0]["current_period_end"] = T + 31 * 86400
    deliver(factories.event("customer.subscription.created", new, created=T))
    assert Subscription.objects.get(pk=new["id"]).current_period_end == utc(T + 31 * 86400)

    canceled = {**new, "status": "canceled", "canceled_at": T + 100, "ended_at": T + 100}
    deliver(factories.event("customer.subscription.deleted", canceled, created=T + 100))
    row = Subscription.objects.get(pk=new["id"])
    # A canceled subscription still exists at Stripe: canceled, not deleted.
    assert (row.status, row.canceled_at, row.deleted) == ("canceled", utc(T + 100), False)


def test_invoice_subscription_old_and_new_shapes_and_delete():
    old = factories.InvoiceFactory(subscription="sub_Old1", charge="ch_Inv1", due_date=T + 86400)
    deliver(factories.event("invoice.paid", old, created=T, api_version=OLD_API))
    row = Invoice.objects.get(pk=old["id"])
    assert (row.subscription, row.charge, row.status, row.amount_paid, row.due_date) == (
        "sub_Old1", "ch_Inv1", "paid", 2000, utc(T + 86400),
    )

    new = factories.InvoiceFactory(status="draft", amount_paid=0)
    new["parent"] = {"type": "subscription_details", "quote_details": None,
                     "subscription_details": {"metadata": {}, "subscription": "sub_New1"}}
    deliver(factories.event("invoice.created", new, created=T))
    row = Invoice.objects.get(pk=new["id"])
    assert (row.subscription, row.status, row.number) == ("sub_New1", "draft", new["number"])
    deliver(factories.event("invoice.deleted", new, created=T + 9))
    assert Invoice.objects.get(pk=new["id"]).deleted


def test_early_fraud_warning():
    warning = factories.EarlyFraudWarningFactory(charge="ch_Fraud1", payment_intent="pi_Fraud1")
    deliver(factories.event("radar.early_fraud_warning.created", warning, created=T))
    row = EarlyFraudWarning.objects.get(pk=warning["id"])
    assert (row.charge, row.payment_intent, row.fraud_type, row.actionable) == (
        "ch_Fraud1", "pi_Fraud1", "unauthorized_use_of_card", True,
    )
    deliver(factories.event("radar.early_fraud_warning.updated", {**warning, "actionable": False}, created=T,
                            previous_attributes={"actionable": True}))
    assert EarlyFraudWarning.objects.get(pk=warning["id"]).actionable is False


def test_every_kind_is_covered_here():
    # If a kind is added to the registry, this file needs a test for it.
    assert set(KINDS) == {
        "customer", "product", "price", "payment_intent", "charge", "refund", "dispute", "subscription",
        "invoice", "radar.early_fraud_warning",
    }


# --- the guarded upsert ---------------------------------------------------------------


def test_upsert_keeps_the_newest_version_and_reports_what_it_wrote():
    kind = KINDS["customer"]
    customer = factories.CustomerFactory(name="Old")
    newer = {**customer, "name": "New"}
    v = lambda s, r=1, src="evt_x": mirror.Version(s, r, src)  # noqa: E731
    assert mirror.upsert(kind, [(newer, v(T + 1), False)]) == {customer["id"]}
    assert mirror.upsert(kind, [(customer, v(T), False)]) == set()  # older second
    assert mirror.upsert(kind, [(customer, v(T + 1, 0), False)]) == set()  # same second, lower rank
    assert mirror.upsert(kind, [(newer, v(T + 1), False)]) == set()  # equal: not the upsert's call
    assert Customer.objects.get(pk=customer["id"]).name == "New"
    assert mirror.upsert(kind, [(customer, v(T + 1, 2), False)]) == {customer["id"]}
    assert Customer.objects.get(pk=customer["id"]).name == "Old"
    assert Customer.objects.count() == 1


def test_upsert_fetched_writes_embedded_children_and_respects_newer_events():
    charge = factories.ChargeFactory(amount=900)
    intent = factories.PaymentIntentFactory()
    intent["charges"] = {"object": "list", "data": [charge], "has_more": False}
    written = upsert_fetched([intent], T)
    assert written == {"payment_intent": {intent["id"]}, "charge": {charge["id"]}}
    # An event newer than the fetch wins; a fetch older than the stored event does not.
    deliver(factories.event("charge.refunded", {**charge, "amount_refunded": 900, "refunded": True}, created=T + 5))
    assert upsert_fetched([charge], T + 1) == {"charge": set()}
    assert Charge.objects.get(pk=charge["id"]).amount_refunded == 900


def test_a_second_api_read_in_the_same_second_replaces_the_first():
    # An agent edits a customer twice within a second; each action writes what the API
    # answered. The second answer must not be lost, nor beaten by the first edit's event.
    customer = factories.CustomerFactory(metadata={"tier": "silver"})
    assert upsert_fetched([customer], T) == {"customer": {customer["id"]}}
    gold = {**customer, "metadata": {"tier": "gold"}}
    assert upsert_fetched([gold], T) == {"customer": {customer["id"]}}
    deliver(factories.event("customer.updated", customer, created=T, previous_attributes={"metadata": {"tier": None}}))
    row = Customer.objects.get(pk=customer["id"])
    assert (row.data["metadata"], row.version_source) == ({"tier": "gold"}, "api")
    # An event never replaces an equal-version event's state through the upsert alone.
    assert mirror.upsert(KINDS["customer"], [(customer, mirror.Version(T, 0, "evt_other"), False)]) == set()


def test_version_ranks_order_a_lifecycle_within_one_second():
    v = lambda kind, obj, type_: mirror.version_for(KINDS[kind], obj, T, "evt_1", type_).key()  # noqa: E731
    pi = factories.PaymentIntentFactory(status="requires_payment_method")
    assert v("payment_intent", pi, "payment_intent.created") < v(
        "payment_intent", {**pi, "status": "succeeded"}, "payment_intent.succeeded"
    )
    charge = factories.ChargeFactory(captured=False, amount_captured=0)
    captured = {**charge, "captured": True, "amount_captured": charge["amount"]}
    refunded = {**captured, "amount_refunded": 100}
    disputed = {**refunded, "disputed": True}
    keys = [v("charge", c, "charge.updated") for c in (charge, captured, refunded, disputed)]
    assert keys == sorted(keys) and len(set(keys)) == 4
    # Deleted outranks every live state of that second.
    assert mirror.version_for(KINDS["charge"], disputed, T, "evt_2", deleted=True).key() > max(keys)


# --- resolve_tie on its own --------------------------------------------------------------


def test_resolve_tie_follows_the_chain_not_the_id():
    a = Candidate("evt_9", {"email": "b@x"}, {"email": "a@x"})
    b = Candidate("evt_5", {"email": "c@x"}, {"email": "b@x"})
    c = Candidate("evt_1", {"email": "d@x"}, {"email": "c@x"})
    for order in ([a, b, c], [c, b, a], [b, a, c], [c, a, b]):
        assert resolve_tie(order) is c


def test_resolve_tie_with_a_field_toggling_back():
    # x: 1 -> 2 -> 1 -> 2. Each state matches several previous_attributes; the longest chain
    # still ends at the last event, whatever order the candidates come in.
    e1 = Candidate("evt_d", {"x": 2, "n": 1}, {"x": 1, "n": 0})
    e2 = Candidate("evt_c", {"x": 1, "n": 2}, {"x": 2, "n": 1})
    e3 = Candidate("evt_b", {"x": 2, "n": 3}, {"x": 1, "n": 2})
    e4 = Candidate("evt_a", {"x": 1, "n": 4}, {"x": 2, "n": 3})
    import itertools

    for order in itertools.permutations([e1, e2, e3, e4]):
        assert resolve_tie(list(order)) is e4


def test_resolve_tie_pure_toggle_is_deterministic():
    # x: 1 -> 2 -> 1 with nothing else changing: the chain is ambiguous, but the answer is
    # a function of the set of candidates.
    import itertools

    e1 = Candidate("evt_b", {"x": 2}, {"x": 1})
    e2 = Candidate("evt_a", {"x": 1}, {"x": 2})
    e3 = Candidate("evt_c", {"x": 2}, {"x": 1})
    answers = {resolve_tie(list(order)).source for order in itertools.permutations([e1, e2, e3])}
    assert len(answers) == 1


def test_resolve_tie_prefers_a_fetched_state_and_falls_back_to_id():
    api = Candidate(mirror.API_SOURCE, {"x": 0}, None)
    a = Candidate("evt_1", {"x": 1}, None)
    b = Candidate("evt_2", {"x": 2}, None)
    assert resolve_tie([a, api, b]) is api
    assert resolve_tie([a, b]) is b and resolve_tie([b, a]) is b


def test_resolve_tie_many_toggles_stays_bounded_and_deterministic():
    import random

    cands = [Candidate(f"evt_{i:03d}", {"x": i % 2}, {"x": (i + 1) % 2}) for i in range(40)]
    first = resolve_tie(cands).source
    rng = random.Random(7)
    for _ in range(3):
        rng.shuffle(cands)
        assert resolve_tie(cands).source == first
