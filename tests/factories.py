"""Stripe-shaped payloads for what localstripe cannot produce (disputes, early fraud warnings,
charge and refund events ...), built on Stripe's own example objects (payments/samples.json,
vendored from stripe/openapi's fixtures3.json with its MIT licence) with realistic values on top."""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from payments import samples
from tickets.actions._rules import open_ticket, status_fields

# Stripe's example object per resource name; read-only here (factories deep-copy it).
RESOURCES = samples.resources()
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
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@paydesk.test")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "correct horse battery")
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


def mirror(*objects: dict) -> list[dict]:
    """Put Stripe objects into the mirror the way an API read does (payments.mirror.upsert_fetched)."""
    from payments.mirror import upsert_fetched

    upsert_fetched(list(objects), int(time.time()))
    return list(objects)


# --- tickets ------------------------------------------------------------------------------
# Rows for tests that need existing tickets; the behaviour under test goes through tickets.actions.


def line_user_id() -> str:
    return "U" + secrets.token_hex(16)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Team"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Contact"

    name = factory.Faker("name")


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Identity"

    contact = factory.SubFactory(ContactFactory)
    kind = "email"
    value = factory.Sequence(lambda n: f"customer{n}@example.com")


# What open_ticket takes; TicketFactory writes any other field given over what it set.
TICKET_OPENED_WITH = ("requester", "subject", "channel", "priority", "team", "assignee", "tags", "number")


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket opened by the code every action opens tickets with (tickets.actions._rules:
    open_ticket for the number, SLA due times and tags; status_fields for a status other
    than open), so the rules live once. Other fields given (a test's own sla_due, say) are
    written over what the rules set."""

    class Meta:
        model = "tickets.Ticket"

    subject = factory.Faker("sentence", nb_words=5)
    channel = "email"
    requester = factory.SubFactory(ContactFactory)

    @classmethod
    def _create(cls, model_class, *args, status: str = "open", **kwargs):
        opened = {name: kwargs.pop(name) for name in TICKET_OPENED_WITH if name in kwargs}
        with transaction.atomic():
            ticket = open_ticket(actor=None, **opened)
            if status != ticket.status:
                ticket.save(update_fields=status_fields(ticket, status))
            if kwargs:
                model_class.objects.filter(pk=ticket.pk).update(**kwargs)
                for name, value in kwargs.items():
                    setattr(ticket, name, value)
        return ticket


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Message"

    ticket = factory.SubFactory(TicketFactory)
    kind = "inbound"
    channel = factory.SelfAttribute("ticket.channel")
    contact = factory.SelfAttribute("ticket.requester")
    body_text = factory.Faker("paragraph")


class MacroFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tickets.Macro"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Macro {n}")
    body = "Hi {{ contact.first_name }},\n\nThanks for writing about ticket #{{ ticket.number }}.\n\n{{ agent.first_name }}"


def line_event(kind: str = "message", *, user_id: str | None = None, text: str = "こんにちは",
               event_id: str | None = None, message_id: str | None = None, timestamp: int | None = None,
               redelivery: bool = False) -> dict:
    """One webhook event in the shape the LINE Messaging API documents."""
    event = {
        "type": kind,
        "mode": "active",
        "timestamp": timestamp or int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id or line_user_id()},
        "webhookEventId": event_id or "01" + secrets.token_hex(12).upper(),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind != "unfollow":
        event["replyToken"] = secrets.token_hex(16)
    if kind == "message":
        event["message"] = {
            "id": message_id or str(400000000000000000 + next(_seq) * 7919 + secrets.randbelow(10**6)),
            "type": "text",
            "quoteToken": secrets.token_urlsafe(24),
            "text": text,
        }
    elif kind == "follow":
        event["follow"] = {"isUnblocked": False}
    return event


def line_payload(*events: dict, destination: str = "U" + "0" * 32) -> bytes:
    return json.dumps({"destination": destination, "events": list(events)}, ensure_ascii=False).encode()


def line_signature(body: bytes, channel_secret: str) -> str:
    import base64
    import hashlib
    import hmac

    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()
