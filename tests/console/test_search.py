"""The top bar: one match goes straight to the customer page (or the Stripe object when no
contact has it); several matches list; a user without contacts keeps the mirror's search."""

import time

import pytest
from django.urls import reverse

from tests import factories
from tests.helpers import deliver
from tickets import actions as ticket_actions

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def mika(agent):
    cus = factories.CustomerFactory(email="mika@example.jp", name="Mika Tanaka")
    deliver("customer.created", cus, created=NOW - 100)
    from tickets.models import Identity

    contact = Identity.objects.get(value=cus["id"]).contact
    line = factories.line_user_id()
    ticket_actions.link_identity(actor=agent, contact=contact, kind="line", value=line)
    ticket_actions.link_identity(actor=agent, contact=contact, kind="phone", value="+81 90-1234-5678")
    ch = factories.ChargeFactory(customer=cus["id"])
    deliver("charge.succeeded", ch, created=NOW - 100)
    dp = factories.DisputeFactory(charge=ch["id"])
    deliver("charge.dispute.created", dp, created=NOW - 100)
    ticket = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Refund?")
    return {"contact": contact, "cus": cus, "ch": ch, "dp": dp, "line": line, "ticket": ticket}


def go(client, q):
    return client.get(reverse("search"), {"q": q})


@pytest.mark.parametrize("key", ["email", "name", "phone", "line", "cus", "ch", "pi", "dp", "ticket"])
def test_one_match_goes_to_the_customer_page(client, agent, mika, key):
    q = {"email": "MIKA@example.jp", "name": "mika tan", "phone": "090-1234-5678", "line": mika["line"],
         "cus": mika["cus"]["id"], "ch": mika["ch"]["id"], "pi": mika["ch"]["payment_intent"],
         "dp": mika["dp"]["id"], "ticket": f"#{mika['ticket'].number}"}[key]
    if key == "pi":
        deliver("payment_intent.succeeded", factories.PaymentIntentFactory(id=q, customer=mika["cus"]["id"]),
                created=NOW - 100)
    client.force_login(agent)
    assert go(client, q)["Location"] == reverse("customer", args=[mika["contact"].pk])


def test_stripe_object_without_a_contact_goes_to_the_object(client, finance):
    ch = factories.ChargeFactory(customer="cus_nobody")
    factories.mirror(ch)
    client.force_login(finance)
    assert go(client, ch["id"])["Location"] == reverse("mirror_object", args=["payments", ch["id"]])


def test_several_matches_list(client, agent, mika):
    ticket_actions.create_contact(actor=agent, name="Mika Sato")
    client.force_login(agent)
    response = go(client, "Mika")
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 customers match" in html and reverse("customer", args=[mika["contact"].pk]) in html


def test_nothing_found_falls_back_to_the_mirror_search(client, admin_user):
    client.force_login(admin_user)
    assert go(client, "nobody at all")["Location"] == reverse("mirror_list", args=["customers"]) + "?q=nobody+at+all"


def test_anonymous_is_sent_to_log_in(client):
    assert go(client, "mika")["Location"].startswith("/login/")


@pytest.mark.parametrize("q", ["²", "#²", "¹²³", "٣", "#٣", "１２３", "#99999999999999999999999", "#-1"])
def test_digits_that_are_not_ascii_are_not_ticket_numbers(client, agent, no_role, mika, q):
    """str.isdigit() accepts "²", which int() refuses: such a query is searched as text."""
    client.force_login(agent)
    response = go(client, q)
    assert response.status_code == 302 and response["Location"].startswith(reverse("mirror_list", args=["customers"]))
    client.force_login(no_role)
    assert go(client, q).status_code == 302
    client.logout()
    assert go(client, q)["Location"].startswith("/login/")
