"""The tickets domain in Japanese: labels (statuses, priorities, channels, message kinds), the
inbox's fixed views, and refusals, read under translation.override("ja") with the compiled
catalogue; English stays the default."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from tests import factories
from tickets import actions, selectors
from tickets.models import Channel, Identity, Message, Ticket

pytestmark = pytest.mark.django_db


def test_labels_in_japanese():
    with translation.override("ja"):
        assert [str(label) for label in Ticket.Status.labels] == ["対応中", "保留中", "解決済み", "クローズ"]
        assert [str(label) for label in Ticket.Priority.labels] == ["低", "通常", "高", "緊急"]
        assert str(Channel.EMAIL.label) == "メール"
        assert str(Message.Kind.NOTE.label) == "社内メモ"
        assert str(Message.Delivery.FAILED.label) == "送信失敗"
        assert str(Identity.Kind.STRIPE_CUSTOMER.label) == "Stripe の顧客"
        assert str(Ticket._meta.verbose_name) == "チケット"
        assert str(Ticket._meta.get_field("assignee").verbose_name) == "担当者"
    assert str(Ticket.Status.OPEN.label) == "Open"


def test_inbox_views_in_japanese():
    with translation.override("ja"):
        labels = [str(selectors.resolve_view(key, []).label) for key in ("mine", "unassigned", "all")]
    assert labels == ["自分のチケット", "未割り当て", "すべてのチケット"]


def test_refusals_in_the_agents_language(agent):
    ticket = factories.TicketFactory(status="closed")
    with translation.override("ja"), pytest.raises(ValidationError) as refused:
        actions.reply(actor=agent, ticket=ticket, body="Hello")
    [text] = refused.value.messages
    assert text.startswith(f"チケット #{ticket.number} はクローズされています。") and "closed" not in text
    with translation.override("ja"), pytest.raises(ValidationError) as empty:
        actions.add_note(actor=agent, ticket=ticket, body=" ")
    assert empty.value.messages == ["社内メモの本文を入力してください。"]
    with pytest.raises(ValidationError, match="A note needs some text."):
        actions.add_note(actor=agent, ticket=ticket, body=" ")


def test_no_recipient_in_japanese(agent):
    contact = factories.ContactFactory(name="Mika")
    ticket = factories.TicketFactory(requester=contact, channel="line")
    with translation.override("ja"), pytest.raises(ValidationError) as refused:
        actions.reply(actor=agent, ticket=ticket, body="こんにちは")
    assert refused.value.messages == ["Mika には返信先の LINE アカウントがありません。先に紐付けてください。"]
