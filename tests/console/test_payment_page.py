"""The payment page (console/views/payment.py, console/payment_selectors.py): what Stripe's own
page shows of a charge, beside the customer and their tickets."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories

pytestmark = pytest.mark.django_db

NOW = int(time.time())


def _card(**more) -> dict:
    card = {"brand": "visa", "last4": "5556", "country": "JP", "funding": "credit",
            "three_d_secure": {"result": "authenticated", "version": "2.2.0"},
            "wallet": {"type": "apple_pay", "dynamic_last4": "0001"}}
    return {"type": "card", "card": card | more}


@pytest.fixture
def investigated():
    """A ¥12,000 payment through Apple Pay with 3-D Secure, an invoice of a subscription, a
    partial refund (and one only the charge's own list names), a dispute and a fraud warning;
    its customer is a contact with two tickets."""
    customer = factories.CustomerFactory(name="Haruka Ito", email="haruka.ito@example.jp")
    cid = customer["id"]
    sub = factories.SubscriptionFactory(customer=cid, currency="jpy")
    invoice = factories.InvoiceFactory(customer=cid, subscription=sub["id"], number="PD-4242", currency="jpy",
                                       amount_due=12000, amount_paid=12000)
    intent = factories.PaymentIntentFactory(customer=cid, currency="jpy", amount=12000,
                                            metadata={"order_id": "A-1001", "channel": "web"})
    charge = factories.ChargeFactory(
        customer=cid, amount=12000, currency="jpy", amount_refunded=3000, invoice=invoice["id"],
        payment_intent=intent["id"], disputed=True, description="Tea club, March box",
        metadata={"order_id": "A-1001-R"}, receipt_number="1234-5678", receipt_email="haruka.ito@example.jp",
        receipt_url="https://pay.stripe.com/receipts/payment/test_r1",
        balance_transaction={"id": "txn_paid1", "object": "balance_transaction", "amount": 12000, "fee": 432,
                             "net": 11568, "currency": "jpy"},
        outcome={"type": "authorized", "network_status": "approved_by_network", "risk_level": "elevated",
                 "risk_score": 67, "seller_message": "Payment complete.", "reason": None},
        payment_method_details=_card(),
        refunds={"object": "list", "data": [{"id": "re_embedded1", "object": "refund", "amount": 500,
                                             "currency": "jpy", "status": "succeeded", "reason": "duplicate",
                                             "created": NOW - 50}]},
    )
    refund = factories.RefundFactory(charge=charge["id"], amount=2500, currency="jpy", reason="requested_by_customer",
                                     created=NOW - 100)
    dispute = factories.DisputeFactory(charge=charge["id"], amount=12000, currency="jpy", reason="fraudulent",
                                       status="needs_response")
    warning = factories.EarlyFraudWarningFactory(charge=charge["id"], fraud_type="made_with_stolen_card")
    factories.mirror(customer, sub, invoice, intent, charge, refund, dispute, warning)
    contact = factories.IdentityFactory(kind="stripe_customer", value=cid).contact
    tickets = [factories.TicketFactory(requester=contact, subject=s) for s in ("Where is my box?", "Refund please")]
    other = factories.TicketFactory(subject="Someone else's question")
    return {"charge": charge, "refund": refund, "dispute": dispute, "warning": warning, "contact": contact,
            "tickets": tickets, "other": other, "invoice": invoice, "sub": sub}


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_every_role_reads_the_payment(request, as_user, investigated, role):
    response = as_user(request.getfixturevalue(role)).get(f"/stripe/payments/{investigated['charge']['id']}/")
    assert response.status_code == 200
    assert response.templates[0].name == "payments/charge.html"


def test_no_role_and_anonymous_are_kept_out(client, as_user, no_role, investigated):
    url = f"/stripe/payments/{investigated['charge']['id']}/"
    assert client.get(url).status_code == 302  # to the login
    assert as_user(no_role).get(url).status_code == 403


def test_the_page_shows_what_stripe_shows(as_user, finance, investigated):
    charge = investigated["charge"]
    html = as_user(finance).get(f"/stripe/payments/{charge['id']}/").content.decode()
    # Money: amount, fee and net from the balance transaction, what was refunded and what is left.
    assert "¥12,000" in html and "¥432" in html and "¥11,568" in html and "¥3,000" in html and "¥9,000" in html
    # The card as the panel and the refund preview name it, its country, 3-D Secure, outcome and risk.
    assert "Apple Pay (Visa ending 5556)" in html and ">JP<" in html
    assert "Authenticated" in html and "2.2.0" in html
    assert "Authorized" in html and "Approved by the network" in html and "Payment complete." in html
    assert "Elevated" in html and "score 67" in html
    # Receipt, description, order metadata (the charge's own wins; the payment intent fills the rest).
    assert "1234-5678" in html and "https://pay.stripe.com/receipts/payment/test_r1" in html
    assert "Tea club, March box" in html and "A-1001-R" in html and "web" in html
    assert "(on the payment intent)" in html
    # The invoice and subscription it paid, linked.
    assert f'href="/stripe/invoices/{investigated["invoice"]["id"]}/"' in html and "PD-4242" in html
    assert f'href="/stripe/subscriptions/{investigated["sub"]["id"]}/"' in html
    # Refunds (the mirror's and the one only the charge names), with reasons and status.
    assert investigated["refund"]["id"] in html and "¥2,500" in html and "Requested by customer" in html
    assert "re_embedded1" in html and "¥500" in html and "Duplicate" in html
    # The dispute and the fraud warning, linked; an open dispute is said at the top.
    assert f'/{investigated["dispute"]["id"]}/"' in html and "Fraudulent" in html
    assert f'href="/stripe/fraud-warnings/{investigated["warning"]["id"]}/"' in html and "Stolen card used" in html
    assert "open dispute" in html
    # The customer, their page, and their tickets (not another's).
    assert "Haruka Ito" in html and f'href="/customers/{investigated["contact"].pk}/"' in html
    for t in investigated["tickets"]:
        assert f'href="/tickets/{t.number}/"' in html and t.subject in html
    assert investigated["other"].subject not in html


def test_fee_and_net_are_never_invented(as_user, agent):
    charge = factories.ChargeFactory(amount=4200, currency="usd", balance_transaction="txn_notyet",
                                     payment_method_details=_card(wallet=None, three_d_secure=None))
    bare = factories.ChargeFactory(amount=1000, currency="usd", balance_transaction=None, customer=None)
    factories.mirror(charge, bare)
    html = as_user(agent).get(f"/stripe/payments/{charge['id']}/").content.decode()
    assert "Not known yet" in html and "txn_notyet" in html
    assert "Visa ending 5556" in html and "Apple Pay" not in html and "Not used" in html
    assert "Fee</dt>" not in html and "Net</dt>" not in html
    html = as_user(agent).get(f"/stripe/payments/{bare['id']}/").content.decode()
    assert "Not known yet: Stripe has not settled this payment." in html and "No refunds." in html


def test_a_customer_not_linked_to_a_contact_says_so(as_user, agent):
    charge = factories.ChargeFactory()
    factories.mirror(factories.CustomerFactory(id=charge["customer"], name="Unlinked Person"), charge)
    html = as_user(agent).get(f"/stripe/payments/{charge['id']}/").content.decode()
    assert "Unlinked Person" in html and "not linked to a contact yet" in html


def test_unknown_payment_is_404(as_user, agent):
    assert as_user(agent).get("/stripe/payments/ch_nothere/").status_code == 404


def test_htmx_gets_the_fragment(as_user, agent, investigated):
    response = as_user(agent).get(f"/stripe/payments/{investigated['charge']['id']}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<html" not in response.content and b"payment-page" in response.content


def test_queries_do_not_grow_with_tickets_or_refunds(as_user, agent, investigated):
    client = as_user(agent)
    url = f"/stripe/payments/{investigated['charge']['id']}/"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    charge_id = investigated["charge"]["id"]
    factories.mirror(*[factories.RefundFactory(charge=charge_id, currency="jpy", amount=10) for _ in range(5)])
    for _ in range(12):
        factories.TicketFactory(requester=investigated["contact"])
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200
    assert len(many) <= len(few) + 1  # the tickets' total is counted once there are more than a page
