"""console links a mirrored Stripe customer to the contact with its email (console/receivers.py),
applied through payments.actions.apply_event like any webhook event, once it committed."""

from __future__ import annotations

import time

import pytest

from audit.models import AuditEntry
from payments.actions.events import apply_event
from payments.events import store_event
from tests import factories
from tests.helpers import committed
from tickets import actions
from tickets.models import Contact, ContactMerge, Identity

pytestmark = pytest.mark.django_db


def apply(type_: str, customer: dict, **kwargs) -> str:
    """Apply as the worker does; console's listener links once the event is committed."""
    payload = factories.event(type_, customer, **kwargs)
    with committed():
        store_event(payload)
        return apply_event(payload["id"])


def test_a_new_stripe_customer_links_to_the_contact_with_its_email():
    contact = actions.receive_message(channel="email", sender="Hana.Sato@example.com", subject="Hi",
                                      body_text="Hello", channel_message_id="m1@x").message.contact
    customer = factories.CustomerFactory(email="hana.sato@EXAMPLE.com", name="Hana Sato")

    assert apply("customer.created", customer) == "applied"

    ident = Identity.objects.get(kind="stripe_customer")
    assert ident.value == customer["id"] and ident.contact == contact
    assert AuditEntry.objects.filter(action="identity.link", actor=None, target=f"contact:{contact.pk}").exists()


def test_a_stripe_customer_with_an_unknown_email_creates_the_contact():
    customer = factories.CustomerFactory(email="new@example.jp", name="新しい 顧客")

    apply("customer.created", customer)

    contact = Contact.objects.get()
    assert contact.name == "新しい 顧客"
    assert set(contact.identities.values_list("kind", "value")) == {
        ("email", "new@example.jp"), ("stripe_customer", customer["id"]),
    }


def test_two_stripe_customers_with_one_email_end_on_one_contact():
    first = factories.CustomerFactory(email="twice@example.com")
    second = factories.CustomerFactory(email="Twice@Example.com")

    apply("customer.created", first)
    apply("customer.created", second)

    contact = Contact.objects.get()
    assert set(contact.identities.filter(kind="stripe_customer").values_list("value", flat=True)) == {
        first["id"], second["id"],
    }


def test_an_update_to_the_same_customer_changes_nothing_and_an_email_change_brings_the_contacts_together():
    customer = factories.CustomerFactory(email="old@example.com")
    now = int(time.time())
    apply("customer.created", customer, created=now)
    apply("customer.updated", customer | {"description": "vip"}, created=now + 10)
    assert Contact.objects.count() == 1 and not ContactMerge.objects.exists()

    newer = actions.resolve_contact("email", "new@example.com")[0]
    apply("customer.updated", customer | {"email": "new@example.com"}, created=now + 20,
          previous_attributes={"email": "old@example.com"})

    merge = ContactMerge.objects.get()
    assert merge.survivor == newer
    assert set(newer.identities.values_list("value", flat=True)) == {"new@example.com", "old@example.com", customer["id"]}


def test_customers_without_a_usable_email_are_left_alone_and_the_mirror_applies():
    assert apply("customer.created", factories.CustomerFactory(email=None)) == "applied"
    assert apply("customer.created", factories.CustomerFactory(email="not an email")) == "applied"

    assert not Contact.objects.exists()
    assert AuditEntry.objects.filter(action="identity.link_skipped").count() == 1
