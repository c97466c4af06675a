"""Stripe-shaped payloads for what localstripe cannot produce (disputes, early fraud warnings,
charge and refund events ...), built on Stripe's own example objects in
shared/stripe-openapi/fixtures3.json with realistic values on top."""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
from pathlib import Path

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from payments import samples

_FIXTURES_DIRS = [
    Path(__file__).resolve().parent.parent.parent / "shared" / "stripe-openapi",
    Path(__file__).resolve().parent.parent / "shared" / "stripe-openapi",
]


def _load(name: str) -> dict:
    for d in _FIXTURES_DIRS:
        if (d / name).exists():
            return json.loads((d / name).read_text())["resources"]
    raise FileNotFoundError(f"{name} not found beside the checkout (shared/stripe-openapi)")


RESOURCES = _load("fixtures3.json")
_seq = itertools.count(1)


def stripe_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}{next(_seq)}"


class StripeDictFactory(factory.DictFactory):
    """A Stripe object: the fixture for `resource`, then the declared fields, then overrides."""

    class Meta:
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        resource = kwargs.pop("resource")
        base = copy.deepcopy(RESOURCES[resource])
        base.update(kwargs)
        return base

    _create = _build


class CustomerFactory(StripeDictFactory):
    resource = "customer"
    id = factory.LazyFunction(lambda: stripe_id("cus"))
    name = factory.Faker("name")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '.')}@example.com")
    created = factory.LazyFunction(lambda: int(time.time()) - 86400 * 30)
    metadata = factory.Dict({})


class ChargeFactory(StripeDictFactory):
    resource = "charge"
    id = factory.LazyFunction(lambda: stripe_id("ch"))
    amount = 4200
    amount_captured = factory.SelfAttribute("amount")
    amount_refunded = 0
    currency = "usd"
    customer = factory.LazyFunction(lambda: stripe_id("cus"))
    payment_intent = factory.LazyFunction(lambda: stripe_id("pi"))
    status = "succeeded"
    paid = True
    captured = True
    refunded = False
    disputed = False
    invoice = None
    created = factory.LazyFunction(lambda: int(time.time()) - 3600)
    billing_details = factory.Dict({"email": "mika.tanaka@example.jp", "name": "Mika Tanaka", "address": None, "phone": None})


class RefundFactory(StripeDictFactory):
    resource = "refund"
    id = factory.LazyFunction(lambda: stripe_id("re"))
    amount = 1000
    currency = "usd"
    charge = factory.LazyFunction(lambda: stripe_id("ch"))
    payment_intent = None
    status = "succeeded"
    reason = "requested_by_customer"
    created = factory.LazyFunction(lambda: int(time.time()) - 600)


class DisputeFactory(StripeDictFactory):
    resource = "dispute"
    id = factory.LazyFunction(lambda: stripe_id("dp"))
    amount = 4200
    currency = "usd"
    charge = factory.LazyFunction(lambda: stripe_id("ch"))
    payment_intent = None
    status = "needs_response"
    reason = "fraudulent"
    created = factory.LazyFunction(lambda: int(time.time()) - 600)
    evidence_details = factory.LazyAttribute(
        lambda o: {"due_by": o.created + 7 * 86400, "has_evidence": False, "past_due": False, "submission_count": 0}
    )


class EarlyFraudWarningFactory(StripeDictFactory):
    resource = "radar.early_fraud_warning"
    id = factory.LazyFunction(lambda: stripe_id("issfr"))
    charge = factory.LazyFunction(lambda: stripe_id("ch"))
    fraud_type = "unauthorized_use_of_card"
    actionable = True
    created = factory.LazyFunction(lambda: int(time.time()) - 600)


class SubscriptionFactory(StripeDictFactory):
    resource = "subscription"
    id = factory.LazyFunction(lambda: stripe_id("sub"))
    customer = factory.LazyFunction(lambda: stripe_id("cus"))
    status = "active"
    currency = "usd"
    cancel_at_period_end = False
    canceled_at = None
    ended_at = None
    cancel_at = None
    created = factory.LazyFunction(lambda: int(time.time()) - 86400 * 40)


class InvoiceFactory(StripeDictFactory):
    resource = "invoice"
    id = factory.LazyFunction(lambda: stripe_id("in"))
    customer = factory.LazyFunction(lambda: stripe_id("cus"))
    status = "paid"
    amount_due = 2000
    amount_paid = 2000
    currency = "usd"
    number = factory.Sequence(lambda n: f"PD-{1000 + n}")
    created = factory.LazyFunction(lambda: int(time.time()) - 86400)


class PaymentIntentFactory(StripeDictFactory):
    resource = "payment_intent"
    id = factory.LazyFunction(lambda: stripe_id("pi"))
    amount = 4200
    amount_received = 4200
    currency = "usd"
    customer = factory.LazyFunction(lambda: stripe_id("cus"))
    status = "succeeded"
    latest_charge = None
    created = factory.LazyFunction(lambda: int(time.time()) - 3600)


def event(type_: str, obj: dict, *, created: int | None = None, previous_attributes: dict | None = None,
          event_id: str | None = None, api_version: str | None = None) -> dict:
    """A Stripe event around `obj`, in the shape of fixtures3.json's `event` (payments.samples.event)."""
    return samples.event(type_, obj, created=created, previous_attributes=previous_attributes,
                         event_id=event_id, api_version=api_version)


def signed(payload: dict | bytes | str, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send (payments.samples.sign)."""
    return samples.sign(payload, secret, timestamp)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@paydesk.test")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


def mirror(*objects: dict) -> list[dict]:
    """Put Stripe objects into the mirror the way an API read does (payments.mirror.upsert_fetched)."""
    from payments.mirror import upsert_fetched

    upsert_fetched(list(objects), int(time.time()))
    return list(objects)
