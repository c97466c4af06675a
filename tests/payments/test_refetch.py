"""apply_event's API path: thin, partial and old-API-version events are read fresh from the API
(localstripe over HTTP) when a key is configured, and referenced objects the mirror lacks
(a refund's charge) are fetched by sync_object after the event commits."""

from __future__ import annotations

import pytest
import stripe

from payments.actions.events import apply_event, sync_object
from payments.errors import EventNotApplicable
from payments.events import store_event
from payments.models import Charge, Customer, Refund, WebhookEvent
from payments.tasks import apply_event_task
from tests import factories
from tests.helpers import eager_tasks, tasks_run
from tests.payments.sync_helpers import customer_with_card, paid_charge

pytestmark = pytest.mark.django_db


@pytest.fixture
def ls(localstripe):
    return localstripe.client()


def localstripe_event(ls, type_: str, object_id: str) -> dict:
    return next(
        e.to_dict()
        for e in ls.v1.events.list({"limit": 100}).auto_paging_iter()
        if e.type == type_ and e.data.object.id == object_id
    )


def test_old_api_version_event_is_refetched(ls):
    customer, _ = customer_with_card(ls, "Misaki Sato")
    ls.v1.customers.update(customer, {"name": "Misaki Sato-Kimura", "email": "misaki.kimura@example.jp"})
    created = localstripe_event(ls, "customer.created", customer)
    assert created["api_version"] == "2017-08-15" and created["data"]["object"]["name"] == "Misaki Sato"
    store_event(created)

    assert apply_event(created["id"]) == WebhookEvent.Status.APPLIED

    row = Customer.objects.get(pk=customer)
    # The event's 2017 snapshot is stale; the mirror has what the API says now.
    assert (row.name, row.email, row.version_source) == ("Misaki Sato-Kimura", "misaki.kimura@example.jp", "api")
    assert row.version_ts >= created["created"]


def test_without_a_key_the_old_event_is_applied_as_delivered(ls, settings):
    customer, _ = customer_with_card(ls, "James Carter")
    ls.v1.customers.update(customer, {"name": "James R. Carter"})
    created = localstripe_event(ls, "customer.created", customer)
    store_event(created)
    settings.STRIPE_API_KEY = ""

    apply_event(created["id"])

    row = Customer.objects.get(pk=customer)
    assert (row.name, row.version_source) == ("James Carter", created["id"])


def test_thin_event_names_its_object_and_is_filled_from_the_api(ls):
    customer, _ = customer_with_card(ls, "Yuto Nakamura")
    thin = factories.event("customer.updated", {})
    thin["data"] = {}
    thin["related_object"] = {"id": customer, "type": "customer", "url": f"/v1/customers/{customer}"}
    store_event(thin)
    assert WebhookEvent.objects.get(pk=thin["id"]).object_id == customer

    apply_event(thin["id"])

    row = Customer.objects.get(pk=customer)
    assert (row.name, row.email) == ("Yuto Nakamura", "yuto.nakamura@example.com")
    assert row.data["invoice_settings"]["default_payment_method"].startswith("pm_")


def test_thin_event_about_an_object_stripe_does_not_have_fails_and_is_parked(ls):
    thin = factories.event("customer.updated", {})
    thin["data"] = {}
    thin["related_object"] = {"id": "cus_neverexisted", "type": "customer", "url": "/v1/customers/cus_neverexisted"}
    store_event(thin)

    with pytest.raises(EventNotApplicable, match="could not fetch cus_neverexisted"):
        apply_event(thin["id"])
    # Through the task, the poison event is marked failed instead of retried forever.
    assert apply_event_task.apply(args=[thin["id"]]).get() == WebhookEvent.Status.FAILED
    event = WebhookEvent.objects.get(pk=thin["id"])
    assert event.status == WebhookEvent.Status.FAILED and "cus_neverexisted" in event.last_error
    assert not Customer.objects.exists()


def test_a_deleted_customer_is_applied_from_the_event_when_the_api_says_404(ls):
    customer, _ = customer_with_card(ls, "Olivia Brooks")
    snapshot = ls.v1.customers.retrieve(customer).to_dict()
    ls.v1.customers.delete(customer)
    deleted = factories.event("customer.deleted", snapshot, api_version="2017-08-15")
    store_event(deleted)

    assert apply_event(deleted["id"]) == WebhookEvent.Status.APPLIED

    row = Customer.objects.get(pk=customer)
    assert row.deleted and row.name == "Olivia Brooks"


def test_a_refunds_charge_is_fetched_after_the_event_commits(
    ls, eager_tasks, django_capture_on_commit_callbacks
):
    customer, _ = customer_with_card(ls, "Haruka Ito")
    charge = ls.v1.charges.create({"amount": 6400, "currency": "jpy", "customer": customer})
    refund = ls.v1.refunds.create({"charge": charge.id, "amount": 1400}).to_dict()
    # localstripe sends no refund events: one shaped like Stripe's, around its real refund.
    event = factories.event("refund.created", refund)
    store_event(event)
    assert not Charge.objects.exists()

    with tasks_run() as ran, django_capture_on_commit_callbacks(execute=True):
        apply_event(event["id"])

    assert ran == ["payments.tasks.sync_object_task"]  # for the charge, once committed
    assert Refund.objects.get(pk=refund["id"]).charge == charge.id
    mirrored = Charge.objects.get(pk=charge.id)
    assert (mirrored.amount, mirrored.amount_refunded, mirrored.customer) == (6400, 1400, customer)
    assert mirrored.version_source == "api"


def test_references_the_mirror_has_are_not_fetched_again(ls, django_capture_on_commit_callbacks):
    charge = paid_charge(ls, 900, "usd")
    refund = ls.v1.refunds.create({"charge": charge.id, "amount": 100}).to_dict()
    factories.mirror(charge.to_dict())
    event = factories.event("refund.created", refund)
    store_event(event)

    with tasks_run() as ran, eager_tasks(), django_capture_on_commit_callbacks(execute=True):
        apply_event(event["id"])

    assert ran == [] and Refund.objects.filter(pk=refund["id"]).exists()


def test_sync_object_fetches_one_object_and_reports_a_missing_one(ls):
    charge = paid_charge(ls, 2500, "usd")

    assert sync_object("charge", charge.id) is True
    assert Charge.objects.get(pk=charge.id).amount == 2500
    with pytest.raises(stripe.InvalidRequestError):
        sync_object("charge", "ch_missing000")

