"""What a customer receives is in the customer's language, whatever the agent reads: a macro's
body, the billing-portal link's reply and the portal's locale. The agent's own messages (what
was sent, what went wrong) stay in the agent's language. Needs the compiled catalogue."""

from __future__ import annotations

import uuid

import pytest
from django.utils import translation

from console import actions as console_actions
from console.receivers import link_stripe_customer
from tests import factories
from tests.helpers import HX, confirm_through_preview
# The gateway records what Stripe would receive and answers billing_portal.sessions itself
# (localstripe has none), as tests/console/test_panel_actions.py's portal tests use it.
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401
from tickets import actions as ticket_actions
from tickets.models import Contact, Identity, Macro, Message

pytestmark = pytest.mark.django_db

MACRO_EN = "Hi {{ contact.first_name }},\n\nYour refund for ticket #{{ ticket.number }} is on its way."
MACRO_JA = "{{ contact.name }} 様\n\nチケット #{{ ticket.number }} の返金手続きを行いました。"


@pytest.fixture
def macro():
    return Macro.objects.create(name="Refund sent", body=MACRO_EN, translations={"ja": MACRO_JA})


def _customer(*, name: str, email: str, language: str = "", preferred_locales: list[str] | None = None):
    """A contact linked to a mirrored Stripe customer, with an email ticket."""
    customer = factories.CustomerFactory(name=name, email=email, preferred_locales=preferred_locales or [])
    factories.mirror(customer)
    contact = factories.ContactFactory(name=name, language=language)
    factories.IdentityFactory(contact=contact, kind="email", value=email)
    factories.IdentityFactory(contact=contact, kind="stripe_customer", value=customer["id"])
    ticket = factories.TicketFactory(requester=contact, channel="email", subject="Refund")
    return contact, customer, ticket


@pytest.fixture
def english_customer():
    return _customer(name="Sam Taylor", email="sam@example.com", language="en")


@pytest.fixture
def japanese_customer():
    return _customer(name="佐藤 美咲", email="misaki@example.jp", language="ja")


# --- macros -------------------------------------------------------------------------------


def test_a_japanese_agent_sends_an_english_customer_the_english_macro(agent, macro, english_customer):
    contact, _, ticket = english_customer
    with translation.override("ja"):
        ticket_actions.apply_macro(actor=agent, ticket=ticket, macro=macro)
    [sent] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert sent.body_text == f"Hi Sam,\n\nYour refund for ticket #{ticket.number} is on its way."


def test_an_english_agent_sends_a_japanese_customer_the_japanese_macro(agent, macro, japanese_customer):
    contact, _, ticket = japanese_customer
    with translation.override("en"):
        ticket_actions.apply_macro(actor=agent, ticket=ticket, macro=macro)
    [sent] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert sent.body_text == f"佐藤 美咲 様\n\nチケット #{ticket.number} の返金手続きを行いました。"


def test_a_customer_whose_language_is_unknown_gets_the_language_they_wrote_in(agent, macro):
    contact = factories.ContactFactory(name="")
    ticket = factories.TicketFactory(requester=contact, channel="email")
    factories.MessageFactory(ticket=ticket, body_text="返金はいつになりますか？")
    assert ticket_actions.render_macro(macro, ticket=ticket, actor=agent).startswith("お客様\n")  # not 「お客様 様」
    factories.MessageFactory(ticket=ticket, body_text="Sorry, can you answer in English?")
    with translation.override("ja"):
        assert ticket_actions.render_macro(macro, ticket=ticket, actor=agent).startswith("Hi there,")


def test_the_composer_of_an_agent_reading_japanese_fills_in_the_english_body(client, agent, macro, english_customer):
    contact, _, ticket = english_customer
    client.force_login(agent)
    response = client.get(f"/tickets/{ticket.number}/macro/?macro={macro.pk}", HTTP_ACCEPT_LANGUAGE="ja", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your refund for ticket" in html and "返金手続き" not in html


# --- the billing-portal link ------------------------------------------------------------------


def test_a_japanese_agent_sends_an_english_customer_an_english_portal_link(gw, agent, english_customer):
    contact, customer, ticket = english_customer
    with translation.override("ja"):
        outcome = console_actions.send_portal_link(
            actor=agent, ticket=ticket, customer_id=customer["id"], flow="payment_method_update",
            subscription_id="", coupon="", locale=None, token=uuid.uuid4().hex)
    [sent] = gw.sent("POST", "/v1/billing_portal/sessions")
    assert sent["params"]["locale"] == "en"
    [reply] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert reply.body_text.startswith("Here is a secure link to update your payment method:\nhttps://billing.stripe.com/")
    assert "Don't share it" in reply.body_text and "リンク" not in reply.body_text
    # What the agent reads is in the agent's language.
    assert outcome.message == f"カスタマーポータルのリンクをチケット #{ticket.number} にメールで送信しました。"


def test_an_english_agent_sends_a_japanese_customer_a_japanese_portal_link(gw, agent, japanese_customer):
    contact, customer, ticket = japanese_customer
    with translation.override("en"):
        outcome = console_actions.send_portal_link(
            actor=agent, ticket=ticket, customer_id=customer["id"], flow="subscription_cancel",
            subscription_id="sub_123", coupon="", locale=None, token=uuid.uuid4().hex)
    [sent] = gw.sent("POST", "/v1/billing_portal/sessions")
    assert sent["params"]["locale"] == "ja"
    [reply] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert reply.body_text.startswith(
        "サブスクリプションを解約するための安全なリンクをお送りします。\nhttps://billing.stripe.com/")
    assert "他の人には共有しないでください" in reply.body_text and "secure link" not in reply.body_text
    assert outcome.message == f"Billing-portal link sent on ticket #{ticket.number} by Email."


def test_stripes_preferred_locale_is_kept_when_the_caller_knows_it(gw, agent):
    contact, customer, ticket = _customer(name="Chloé Martin", email="chloe@example.fr", language="fr",
                                          preferred_locales=["fr-FR"])
    with translation.override("ja"):
        console_actions.send_portal_link(
            actor=agent, ticket=ticket, customer_id=customer["id"], flow="", subscription_id="", coupon="",
            locale="fr-FR", token=uuid.uuid4().hex)
    assert gw.sent("POST", "/v1/billing_portal/sessions")[0]["params"]["locale"] == "fr"
    # Paydesk has no French: the reply is in the default language.
    [reply] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert reply.body_text.startswith("Here is a secure link to manage your billing:")


def test_without_a_ticket_the_link_opens_in_the_linked_contacts_language(gw, agent, english_customer):
    contact, customer, _ = english_customer
    with translation.override("ja"):
        outcome = console_actions.send_portal_link(
            actor=agent, ticket=None, customer_id=customer["id"], flow="", subscription_id="", coupon="",
            locale=None, token=uuid.uuid4().hex)
    assert gw.sent("POST", "/v1/billing_portal/sessions")[0]["params"]["locale"] == "en"
    assert outcome.message == "カスタマーポータルのリンクを作成しました。コピーして顧客に伝えてください。"


def test_through_the_panel_an_agent_reading_japanese_sends_the_english_link(client, gw, agent, english_customer):
    contact, customer, ticket = english_customer
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "ticket": str(ticket.pk), "customer": customer["id"],
            "flow": "payment_method_update"}
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    response = confirm_through_preview(client, f"/customers/{contact.pk}/portal-link", data)
    assert response.status_code == 200, response.content
    assert gw.sent("POST", "/v1/billing_portal/sessions")[0]["params"]["locale"] == "en"
    [reply] = Message.objects.filter(ticket=ticket, kind="outbound")
    assert reply.body_text.startswith("Here is a secure link to update your payment method:")


# --- Stripe says which language the customer reads -----------------------------------------------


def test_linking_a_stripe_customer_takes_its_preferred_locale():
    customer = factories.CustomerFactory(email="aoi@example.jp", preferred_locales=["ja-JP", "en"])
    link_stripe_customer(sender=None, event={"type": "customer.created"}, obj=customer, kind="customer")
    contact = Identity.objects.get(kind="stripe_customer", value=customer["id"]).contact
    assert contact.language == "ja"
    # A later guess from what they write does not replace it.
    ticket_actions.receive_message(channel="email", sender="aoi@example.jp", body_text="Hello",
                                   channel_message_id="aoi-1@example.jp")
    assert Contact.objects.get(pk=contact.pk).language == "ja"


def test_a_stripe_customer_without_preferred_locales_leaves_it_unknown():
    customer = factories.CustomerFactory(email="jo@example.com")
    link_stripe_customer(sender=None, event={"type": "customer.created"}, obj=customer, kind="customer")
    assert Identity.objects.get(kind="stripe_customer", value=customer["id"]).contact.language == ""
