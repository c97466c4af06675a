"""The Stripe panel beside a ticket (console/views/panel.py) and the refund flow started from it."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from payments.actions import refunds
from payments.mirror import upsert_fetched
from payments.stripe_objects import card_label
from tests import factories
from tests.helpers import committed, confirm_through_preview, sealed
# localstripe refuses a refund's `reason` that Stripe accepts: the recording gateway in front of it drops it.
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401

pytestmark = pytest.mark.django_db


def _contact_with_customer(customer_id: str):
    identity = factories.IdentityFactory(kind="stripe_customer", value=customer_id)
    return identity.contact


@pytest.fixture
def stocked():
    """One contact whose Stripe customer has a partly refunded charge, a disputed one, a warning,
    a subscription and an open invoice, plus another customer's charge that must not show."""
    customer = factories.CustomerFactory(name="Mika Tanaka")
    cid = customer["id"]
    partly = factories.ChargeFactory(customer=cid, amount=5000, amount_refunded=1500, description="Annual plan",
                                     payment_method_details={"type": "card", "card": {
                                         "brand": "visa", "last4": "5556", "wallet": {"type": "apple_pay"}}})
    disputed = factories.ChargeFactory(customer=cid, amount=4200, disputed=True)
    now = int(time.time())
    dispute = factories.DisputeFactory(charge=disputed["id"], amount=4200, created=now - 600)
    warning = factories.EarlyFraudWarningFactory(charge=disputed["id"])
    sub = factories.SubscriptionFactory(customer=cid, status="past_due", current_period_end=now + 86400 * 10)
    invoice = factories.InvoiceFactory(customer=cid, status="open", amount_due=2000, amount_paid=0, number="PD-77")
    paid_invoice = factories.InvoiceFactory(customer=cid, status="paid", number="PD-78")
    other = factories.ChargeFactory(amount=9900)
    factories.mirror(customer, partly, disputed, dispute, warning, sub, invoice, paid_invoice, other)
    contact = _contact_with_customer(cid)
    return {"contact": contact, "partly": partly, "disputed": disputed, "dispute": dispute, "warning": warning,
            "sub": sub, "other": other}


def test_panel_shows_the_contacts_stripe_history(client, agent, stocked):
    client.force_login(agent)
    response = client.get(f"/customers/{stocked['contact'].pk}/panel", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the fragment only, for the ticket page's slot
    assert "Mika Tanaka" in html
    # The partly refunded charge: its amount, what was refunded and what is left.
    assert stocked["partly"]["id"] in html and "$50.00" in html
    assert "Refunded $15.00 · $35.00 left" in html
    # The card, named as the payment page and the refund preview name it.
    assert "Apple Pay (Visa ending 5556)" in html
    # The disputed charge: dispute with its evidence deadline, the early fraud warning.
    assert stocked["dispute"]["id"] in html and "Evidence due" in html
    # Stripe's words as the reader says them (payments.stripe_words).
    assert "Unauthorized use of card" in html and "Needs response" in html
    assert stocked["sub"]["id"] in html and "Past due" in html and "Renews" in html
    assert "PD-77" in html and "$20.00" in html
    assert "PD-78" not in html  # paid invoices are not open
    assert stocked["other"]["id"] not in html and "$99.00" not in html
    # The refund link is offered for the refundable charge only (not the disputed one).
    assert f"/charges/{stocked['partly']['id']}/refund" in html
    assert f"/charges/{stocked['disputed']['id']}/refund" not in html


def test_the_panel_and_the_refund_preview_name_the_card_alike(client, stocked):
    """The panel, the refund preview and the payment page all say "Apple Pay (Visa ending 5556)"."""
    boss = factories.UserFactory(username="boss", role="finance", is_superuser=True)  # no limit: no call to Stripe
    charge = dict(stocked["partly"], status="succeeded", captured=True)
    said = refunds.build_refund_plan(charge, actor=boss, amount=1000, currency="usd").describe()
    assert f"'s {card_label(charge)} (charge {charge['id']})" in said
    client.force_login(boss)
    panel = client.get(f"/customers/{stocked['contact'].pk}/panel", HTTP_HX_REQUEST="true").content.decode()
    page = client.get(f"/stripe/payments/{charge['id']}/").content.decode()
    assert card_label(charge) == "Apple Pay (Visa ending 5556)"
    assert card_label(charge) in panel and card_label(charge) in page


def test_panel_full_page_without_htmx(client, finance, stocked):
    client.force_login(finance)
    response = client.get(f"/customers/{stocked['contact'].pk}/panel")
    assert response.status_code == 200
    assert b"<html" in response.content and b"panel.css" in response.content


def test_panel_queries_do_not_grow_with_history(client, agent, stocked):
    client.force_login(agent)
    url = f"/customers/{stocked['contact'].pk}/panel"
    client.get(url, HTTP_HX_REQUEST="true")  # the shell's cached counts are filled by a first request
    with CaptureQueriesContext(connection) as few:
        client.get(url, HTTP_HX_REQUEST="true")
    cid = stocked["partly"]["customer"]
    more = [factories.ChargeFactory(customer=cid) for _ in range(6)]
    more += [factories.SubscriptionFactory(customer=cid) for _ in range(3)]
    more += [factories.DisputeFactory(charge=c["id"]) for c in more[:3]]
    factories.mirror(*more)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert len(many) == len(few)
    assert len(many) <= 15  # session, user, permissions and the panel's own handful (plans: prices, products)


def test_contact_without_stripe_customer(client, agent):
    contact = factories.ContactFactory(name="No Stripe")
    client.force_login(agent)
    response = client.get(f"/customers/{contact.pk}/panel", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"No Stripe customer is linked" in response.content


def test_unknown_contact_is_404(client, agent):
    client.force_login(agent)
    assert client.get("/customers/999999/panel").status_code == 404


def test_user_without_a_role_is_refused(client, stocked):
    nobody = factories.UserFactory(username="nobody")
    client.force_login(nobody)
    pk = stocked["contact"].pk
    charge = stocked["partly"]["id"]
    assert client.get(f"/customers/{pk}/panel").status_code == 403
    assert client.get(f"/customers/{pk}/charges/{charge}/refund").status_code == 403
    assert client.post(f"/customers/{pk}/charges/{charge}/refund/confirm",
                       {"token": uuid.uuid4().hex}).status_code == 403


def test_anonymous_goes_to_login(client, stocked):
    url = f"/customers/{stocked['contact'].pk}/panel"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={url}"


def test_refund_of_another_customers_charge_is_404(client, agent, stocked):
    client.force_login(agent)
    pk = stocked["contact"].pk
    assert client.get(f"/customers/{pk}/charges/{stocked['other']['id']}/refund").status_code == 404


# --- the refund flow against localstripe ---------------------------------------------------------


@pytest.fixture
def live_charge(localstripe, gw):
    ls = localstripe.client()
    customer = ls.v1.customers.create({"name": "Misaki Sato", "email": "misaki.sato@example.jp"})
    pm = ls.v1.payment_methods.create(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    )
    ls.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    customer = ls.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}}).to_dict()
    charge = ls.v1.charges.create({"amount": 5000, "currency": "usd", "customer": customer["id"]}).to_dict()
    upsert_fetched([customer, charge], int(time.time()) - 60)
    contact = _contact_with_customer(customer["id"])
    return contact, charge


def test_refund_form_preview_confirm(client, agent, live_charge, gw):
    contact, charge = live_charge
    ticket = factories.TicketFactory(requester=contact)
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    form = client.get(base + f"?ticket={ticket.pk}", HTTP_HX_REQUEST="true")
    assert form.status_code == 200
    html = form.content.decode()
    assert 'name="token"' in html and "Up to $50.00 can be refunded" in html
    token = uuid.uuid4().hex
    data = {"token": token, "amount": "12.50", "reason": "requested_by_customer", "note": "late", "ticket": str(ticket.pk)}
    preview = client.post(base + "/preview", data, HTTP_HX_REQUEST="true")
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "Refund $12.50 of $50.00 to Misaki Sato&#x27;s" in text and "$37.50 stays captured" in text
    # The preview carries what it says, signed, and nothing else to confirm.
    assert 'name="amount' not in text and 'name="confirmation"' in text
    confirmation = {"confirmation": sealed(preview)}
    confirm = client.post(base + "/confirm", confirmation, HTTP_HX_REQUEST="true")
    assert confirm.status_code == 200, confirm.content
    assert confirm["HX-Trigger"] == "paydesk:panel-refresh"
    assert b"Refunded $12.50" in confirm.content
    [audit] = AuditEntry.objects.filter(action="charge.refund", target=charge["id"])
    assert audit.details["ticket"] == f"#{ticket.number}"  # the ticket the panel sat beside
    sent = gw.sent("POST", "/v1/refunds")
    assert sent[0]["params"]["amount"] == "1250" and sent[0]["params"]["reason"] == "requested_by_customer"
    assert sent[0]["idempotency_key"].endswith(token)
    # The same confirmation again (a double click): nothing refunded twice.
    again = client.post(base + "/confirm", confirmation, HTTP_HX_REQUEST="true")
    assert again.status_code == 200 and b"nothing was refunded again" in again.content
    # The panel now shows the refund.
    panel = client.get(f"/customers/{contact.pk}/panel", HTTP_HX_REQUEST="true").content.decode()
    assert "Refunded $12.50 · $37.50 left" in panel


def test_refund_over_the_limit_is_refused_with_the_message(client, agent, live_charge, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"usd": 1000, "*": 0}}
    contact, charge = live_charge
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    response = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "20"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"flash-error" in response.content
    # What the preview refused can't be confirmed by posting it to the confirm step instead.
    confirm = client.post(base + "/confirm", {"token": uuid.uuid4().hex, "amount_minor": "2000",
                                              "reason": "requested_by_customer"}, HTTP_HX_REQUEST="true")
    assert confirm.status_code == 400 and b"not one Paydesk showed" in confirm.content
    assert "HX-Trigger" not in confirm
    assert not AuditEntry.objects.filter(action="charge.refund").exists()


def test_refunds_split_over_the_limit_are_refused_at_preview(client, agent, live_charge, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"usd": 1000, "*": 0}}
    contact, charge = live_charge
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    first = confirm_through_preview(client, base, {"token": uuid.uuid4().hex, "amount": "6",
                                                   "reason": "requested_by_customer"})
    assert first.status_code == 200, first.content
    preview = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "5"}, HTTP_HX_REQUEST="true")
    assert preview.status_code == 400
    assert ("You have already refunded $6.00 of this charge; refunds above $10.00 per charge need finance — "
            "ask in #finance or assign the ticket to Finance.") in preview.content.decode()
    # Within what is left of the agent's limit on this charge, the preview goes ahead.
    assert client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "4"}, HTTP_HX_REQUEST="true").status_code == 200


def test_refund_above_the_remainder_and_bad_amount(client, agent, live_charge):
    contact, charge = live_charge
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    over = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "60"}, HTTP_HX_REQUEST="true")
    assert over.status_code == 400 and b"can still be" in over.content
    bad = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "1.005"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and b"at most 2 decimals" in bad.content


def test_stripe_error_on_confirm_is_a_502_with_the_message(client, agent, live_charge, gw):
    contact, charge = live_charge
    client.force_login(agent)
    gw.fault("POST", "/v1/refunds", status=500)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    data = {"token": uuid.uuid4().hex, "amount": "10", "reason": "requested_by_customer"}
    response = confirm_through_preview(client, base, data)
    assert response.status_code == 502
    assert b"Stripe had an internal error" in response.content and b"never done twice" in response.content
    assert "HX-Trigger" not in response
    assert not AuditEntry.objects.filter(action="charge.refund").exists()


def test_refund_beside_another_customers_ticket_is_404(client, agent, live_charge):
    contact, charge = live_charge
    foreign = factories.TicketFactory()
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    assert client.get(base + f"?ticket={foreign.pk}", HTTP_HX_REQUEST="true").status_code == 404
    data = {"token": uuid.uuid4().hex, "amount": "1", "reason": "requested_by_customer", "ticket": str(foreign.pk)}
    assert client.post(base + "/preview", data, HTTP_HX_REQUEST="true").status_code == 404
    assert not AuditEntry.objects.filter(action="charge.refund").exists()


def test_subscriptions_say_what_plan_and_when_cancelled(client, agent):
    now = int(time.time())
    customer = factories.CustomerFactory(name="Ren Ito")
    product = factories.RESOURCES["product"] | {"id": "prod_tea", "name": "Tea club", "created": now}
    price = factories.RESOURCES["price"] | {"id": "price_tea", "product": "prod_tea", "unit_amount": 1500,
                                            "currency": "jpy", "recurring": {"interval": "month"}, "created": now}
    items = {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "price": {"id": "price_tea"}}]}
    live = factories.SubscriptionFactory(customer=customer["id"], status="active", items=items,
                                         current_period_end=now + 86400 * 12, created=now - 100)
    gone = factories.SubscriptionFactory(customer=customer["id"], status="canceled", items=items,
                                         current_period_end=now + 86400 * 300, canceled_at=1767225600,
                                         created=now - 200)
    factories.mirror(customer, product, price, live, gone)
    contact = _contact_with_customer(customer["id"])
    client.force_login(agent)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"/customers/{contact.pk}/panel", HTTP_HX_REQUEST="true").content.decode()
    assert html.count("Tea club (¥1,500/month)") == 2
    # A cancelled subscription says when it was cancelled, not the end of a period it won't reach.
    assert "Cancelled Jan 1, 2026" in html and "Ended" not in html
    assert sum("payments_price" in q["sql"] or "payments_product" in q["sql"] for q in queries.captured_queries) == 2


def test_recent_activity_beside_a_ticket_leaves_that_ticket_out(client, agent, stocked):
    from tickets import actions as ticket_actions

    contact = stocked["contact"]
    with committed():
        here = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Refund please", channel="email")
        earlier = ticket_actions.create_ticket(actor=agent, requester=contact, subject="Card declined", channel="line")
    client.force_login(agent)
    html = client.get(f"/customers/{contact.pk}/panel?ticket={here.pk}", HTTP_HX_REQUEST="true").content.decode()
    activity = html[html.index("Recent activity"):]
    assert f"Ticket #{earlier.number}: Card declined" in activity
    assert f"Ticket #{here.number}" not in activity
    assert "Full timeline →" in html
    # Without a ticket (the customer page) the panel has no activity: the timeline is beside it.
    assert "Recent activity" not in client.get(f"/customers/{contact.pk}/panel", HTTP_HX_REQUEST="true").content.decode()


# --- over the limit: ask finance on the ticket ---------------------------------------------------


@pytest.fixture
def over_limit(live_charge, settings):
    from tickets.models import Team

    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"usd": 1000, "*": 0}, "finance": None}
    contact, charge = live_charge
    ticket = factories.TicketFactory(requester=contact)
    Team.objects.create(name="Finance", slug="finance")
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    data = {"token": uuid.uuid4().hex, "amount": "25.00", "reason": "requested_by_customer",
            "note": "Box lost by the carrier", "ticket": str(ticket.pk)}
    return {"contact": contact, "charge": charge, "ticket": ticket, "base": base, "data": data}


def test_agent_over_the_limit_hands_the_refund_to_finance_once(client, agent, over_limit, gw):
    from console.models import TimelineEntry

    o = over_limit
    client.force_login(agent)
    refused = client.post(o["base"] + "/preview", o["data"], HTTP_HX_REQUEST="true")
    assert refused.status_code == 400
    assert b"Ask finance to refund it" in refused.content and b"/refund/ask-finance" in refused.content
    handover = {"handover": sealed(refused, "handover")}
    with committed():
        asked = client.post(o["base"] + "/ask-finance", handover, HTTP_HX_REQUEST="true")
    assert asked.status_code == 200, asked.content
    assert f"Asked finance: a note on ticket #{o['ticket'].number}".encode() in asked.content
    assert asked["HX-Trigger"] == "paydesk:panel-refresh"
    [note] = o["ticket"].messages.filter(kind="note")
    assert f"please refund $25.00 of charge {o['charge']['id']} (requested by customer)" in note.body_text
    assert "Box lost by the carrier" in note.body_text and "need finance" in note.body_text
    o["ticket"].refresh_from_db()
    assert o["ticket"].team.slug == "finance" and "refund-approval" in o["ticket"].tags.values_list("name", flat=True)
    [entry] = AuditEntry.objects.filter(action="refund.approval_requested")
    assert entry.target == o["charge"]["id"] and entry.details["amount"] == 2500
    assert TimelineEntry.objects.get(source=f"audit:{entry.pk}").title == "Refund handed to finance"
    # Nothing went to Stripe; a double click asks once.
    assert gw.sent("POST", "/v1/refunds") == []
    again = client.post(o["base"] + "/ask-finance", handover, HTTP_HX_REQUEST="true")
    assert again.status_code == 200 and b"already asked" in again.content
    assert o["ticket"].messages.filter(kind="note").count() == 1


def test_ask_finance_needs_a_ticket_and_a_refund_over_the_limit(client, agent, finance, over_limit, settings):
    o = over_limit
    client.force_login(agent)
    no_ticket = {**o["data"], "ticket": ""}
    preview = client.post(o["base"] + "/preview", no_ticket, HTTP_HX_REQUEST="true")
    assert preview.status_code == 400 and b"Ask finance to refund it" not in preview.content
    # Only a refusal Paydesk showed can be handed over, as it was shown.
    assert client.post(o["base"] + "/ask-finance", o["data"], HTTP_HX_REQUEST="true").status_code == 400
    handover = {"handover": sealed(client.post(o["base"] + "/preview", o["data"], HTTP_HX_REQUEST="true"), "handover")}
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"usd": 5000}}  # raised meanwhile: the agent refunds it
    small = client.post(o["base"] + "/ask-finance", handover, HTTP_HX_REQUEST="true")
    assert small.status_code == 400 and b"within your limit" in small.content
    client.force_login(finance)  # another person's hand-over
    assert client.post(o["base"] + "/ask-finance", handover, HTTP_HX_REQUEST="true").status_code == 400
    assert not AuditEntry.objects.filter(action="refund.approval_requested").exists()


def test_ask_finance_refuses_the_wrong_role_and_anonymous(client, no_role, over_limit):
    o = over_limit
    anonymous = client.post(o["base"] + "/ask-finance", o["data"])
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    client.force_login(no_role)
    assert client.post(o["base"] + "/ask-finance", o["data"], HTTP_HX_REQUEST="true").status_code == 403
    assert not o["ticket"].messages.exists()
