"""A customer's message read on arrival (console/assist/triage.py, tasks.py): intent, entities,
the charge it is about (the right one among several), kept on the message; the draft for the
ticket, in the customer's language, stating only what the mirror holds; the workflows its
arrival starts see message.intent."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from console.assist import triage
from console.assist.entities import extract
from tests import factories, helpers
from tickets.actions import receive_message, reply
from tickets.models import MessageTriage, ReplyDraft

pytestmark = pytest.mark.django_db
NOW = int(time.time())
DAY = 86400


def customer_with_charges(email="misaki.sato@example.jp", name="Misaki Sato"):
    customer = factories.CustomerFactory(name=name, email=email)
    older = factories.ChargeFactory(customer=customer["id"], amount=4200, currency="usd", created=NOW - 40 * DAY,
                                    description="Order KR-10001: Sencha 200g")
    other = factories.ChargeFactory(customer=customer["id"], amount=1800, currency="usd", created=NOW - 3 * DAY,
                                    description="Order KR-10456: Drip bags")
    target = factories.ChargeFactory(customer=customer["id"], amount=4200, currency="usd", created=NOW - 2 * DAY,
                                     description="Order KR-10454: Gyokuro gift box")
    factories.mirror(customer, older, other, target)
    return customer, {"older": older, "other": other, "target": target}


def arrive(email, subject, body):
    with helpers.committed():
        message = receive_message(channel="email", sender=email, subject=subject, body_text=body).message
    return message


def test_a_refund_request_is_read_linked_to_the_right_charge_and_drafted_in_english():
    customer, charges = customer_with_charges()
    first = arrive("misaki.sato@example.jp", "hello", "hi")  # makes the contact; link it to Stripe
    factories.IdentityFactory(contact=first.ticket.requester, kind="stripe_customer", value=customer["id"])
    message = arrive("misaki.sato@example.jp", "Refund please",
                     "Hi, the gift box I paid $42.00 for two days ago arrived broken. Can I get my money back?")

    t = MessageTriage.objects.get(message=message)
    assert t.intent == "refund_request" and t.confidence > 0.25
    assert {"kind": "money", "value": {"amount": 4200, "currency": "usd"}}.items() <= t.entities[0].items() or any(
        e["kind"] == "money" and e["value"] == {"amount": 4200, "currency": "usd"} for e in t.entities)
    assert t.linked["charge"] == charges["target"]["id"]  # same amount, and the recent one of the two
    codes = [r["code"] for r in t.links[0]["reason"]]
    assert "same_amount" in codes and "days_before" in codes

    draft = ReplyDraft.objects.get(message=message, status="open")
    assert draft.language == "en" and draft.body.startswith("Hi Misaki Sato,")
    assert "$42.00" in draft.body and "Gyokuro gift box" in draft.body
    assert {f["id"] for f in draft.facts} == {charges["target"]["id"]}
    assert any(s["action"] == "refund" and s["id"] == charges["target"]["id"] for s in draft.suggestions)


def test_a_japanese_message_gets_a_japanese_draft_and_a_draft_asks_when_nothing_matches():
    message = arrive("taro@example.jp", "返金について", "先月の注文の返金をお願いします。２０００円でした。")
    t = MessageTriage.objects.get(message=message)
    assert t.intent == "refund_request" and t.language == "ja"
    assert any(e["kind"] == "money" and e["value"] == {"amount": 2000, "currency": "jpy"} for e in t.entities)
    draft = ReplyDraft.objects.get(message=message)
    assert draft.language == "ja" and "様" in draft.body.splitlines()[0] or draft.body.startswith("お客様")
    assert "ご注文番号" in draft.body and draft.facts == []
    assert draft.missing  # the agent is told what was not found


def test_a_reply_from_the_draft_closes_it_as_sent_and_no_second_draft_is_made(agent):
    message = arrive("ken@example.com", "receipt", "Could you send me a receipt for my last order please?")
    draft = ReplyDraft.objects.get(message=message)
    with helpers.committed():
        reply(actor=agent, ticket=message.ticket, body=draft.body + "\n\nAiko", from_draft=draft.pk)
    draft.refresh_from_db()
    assert draft.status == "sent" and draft.closed_by == agent
    assert triage.draft_reply(message.ticket_id) is None  # answered: nothing to draft again


@pytest.mark.parametrize("intent", ["refund_request", "double_charge", "charged_after_cancel", "payment_failed",
                                    "refund_status", "dispute_threat", "invoice_request", "cancel_subscription",
                                    "update_payment_method", "other"])
@pytest.mark.parametrize("language", ["en", "ja"])
def test_no_draft_states_an_amount_or_date_the_mirror_does_not_hold(intent, language):
    """Grounding: every amount and date in a draft is one of its facts (each from the mirror)."""
    from console.assist import drafts, linking
    from console.assist.selectors import history

    customer, charges = customer_with_charges()
    sub = factories.SubscriptionFactory(customer=customer["id"], status="canceled", canceled_at=NOW - 5 * DAY)
    refund = factories.RefundFactory(charge=charges["target"]["id"], amount=4200, currency="usd", status="succeeded",
                                     created=NOW - DAY)
    factories.mirror(sub, refund)
    contact = factories.IdentityFactory(kind="stripe_customer", value=customer["id"]).contact
    from django.utils import timezone

    h = history(contact.pk, until=timezone.now())
    found = [e.__dict__ for e in extract("$42.00 yesterday", now=timezone.now(), tz="UTC")]
    links = linking.link(intent, found, h, at=timezone.now())
    draft = drafts.write(intent=intent, language=language, name="Misaki Sato", links=links, h=h)
    facts = " ".join(f["text"] for f in draft.facts)
    for entity in extract(draft.body, now=timezone.now(), tz="UTC"):
        if entity.kind in ("money", "date"):
            assert entity.text in facts or re.sub(r"\s", "", entity.text) in facts, (entity, draft.body)


# --- grounding, as a property: any history, any intent, any language --------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from console.assist import drafts, linking  # noqa: E402
from console.assist.classifier import INTENTS  # noqa: E402
from console.assist.selectors import History  # noqa: E402

_AT = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.timezone.utc)


@st.composite
def histories(draw):
    charges = []
    for n in range(draw(st.integers(0, 6))):
        currency = draw(st.sampled_from(["usd", "jpy"]))
        amount = draw(st.integers(50, 50000))
        refunded = draw(st.sampled_from([0, amount, amount // 2]))
        charges.append({
            "id": f"ch_prop{n:04d}", "created": _AT - dt.timedelta(days=draw(st.integers(0, 300)), minutes=n),
            "amount": amount, "currency": currency, "status": draw(st.sampled_from(["succeeded", "failed"])),
            "paid": True, "amount_refunded": refunded, "refunded": refunded == amount, "disputed": False,
            "invoice": "", "description": draw(st.sampled_from(["", "Order KR-10454: Sencha"])), "metadata": {},
            "failure_code": draw(st.sampled_from(["", "card_declined", "expired_card"])), "failure_message": "",
            "last4": draw(st.sampled_from(["", "4242"])), "brand": "visa",
            "receipt_url": draw(st.sampled_from(["", "https://pay.stripe.com/receipts/x"]))})
    refunds = [{"id": f"re_prop{n:04d}", "charge": c["id"], "amount": c["amount_refunded"], "currency": c["currency"],
                "status": draw(st.sampled_from(["succeeded", "pending", "failed"])), "reason": "",
                "created": c["created"] + dt.timedelta(days=1)} for n, c in enumerate(charges) if c["amount_refunded"]]
    subscriptions = [{"id": "sub_prop", "status": draw(st.sampled_from(["active", "canceled", "past_due"])),
                      "created": _AT - dt.timedelta(days=200),
                      "canceled_at": draw(st.sampled_from([None, _AT - dt.timedelta(days=3)])),
                      "cancel_at_period_end": draw(st.booleans()), "current_period_end": _AT + dt.timedelta(days=20),
                      "ended_at": None, "cancel_at": None, "currency": "usd"}] if draw(st.booleans()) else []
    invoices = [{"id": "in_prop", "number": "KISSA-0042", "status": draw(st.sampled_from(["paid", "open"])),
                 "created": _AT - dt.timedelta(days=5), "charge": charges[0]["id"] if charges else "",
                 "subscription": "sub_prop", "amount_due": 1900, "amount_paid": 1900, "currency": "usd",
                 "next_payment_attempt": draw(st.sampled_from([None, _AT + dt.timedelta(days=3)])),
                 "hosted_invoice_url": "https://invoice.stripe.com/i/x", "invoice_pdf": ""}] if draw(st.booleans()) else []
    return History(customer_ids=["cus_prop"] if draw(st.booleans()) or charges else [], charges=charges,
                   refunds=refunds, subscriptions=subscriptions, invoices=invoices)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=histories(), intent=st.sampled_from(INTENTS), language=st.sampled_from(["en", "ja"]),
       said=st.sampled_from(["", "$42.00 yesterday", "２０００円 先月", "order KR-10454"]))
def test_property_a_draft_states_only_amounts_and_dates_it_took_from_the_mirror(h, intent, language, said):
    found = [e.__dict__ for e in extract(said, now=_AT, tz="UTC")]
    draft = drafts.write(intent=intent, language=language, name="Misaki Sato",
                         links=linking.link(intent, found, h, at=_AT), h=h)
    facts = " ".join(f["text"] for f in draft.facts)
    for entity in extract(draft.body, now=_AT, tz="UTC"):
        if entity.kind in ("money", "date"):
            assert entity.text in facts, (entity, draft.body)
    for fact in draft.facts:  # and every fact names an object the history holds
        assert fact["id"] in {o["id"] for o in h.charges + h.refunds + h.subscriptions + h.invoices}


def test_a_follow_up_is_about_what_the_ticket_is_about():
    with helpers.committed():
        first = receive_message(channel="email", sender="ken.ito@example.com", subject="Kettle",
                                body_text="The kettle arrived broken, I'd like my money back please.",
                                channel_message_id="first@example.com").message
    assert MessageTriage.objects.get(message=first).intent == "refund_request"
    with helpers.committed():
        follow = receive_message(channel="email", sender="ken.ito@example.com", subject="Re: Kettle",
                                 body_text="Here is the photo.", channel_message_id="second@example.com",
                                 in_reply_to="first@example.com").message
    assert follow.ticket_id == first.ticket_id
    reading = MessageTriage.objects.get(message=follow)
    assert reading.intent == "refund_request" and reading.source.endswith("+ticket")
