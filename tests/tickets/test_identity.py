"""Seed 003 done right: one person is one contact whatever channel they write from.

The scenarios of the seed (email first then LINE linked; LINE first then email; LINE
unlinked then a new LINE message; merge then undo) through the channels and the actions."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEntry
from tests import factories
from tickets import actions, email_in
from tickets.identity import normalise
from tickets.models import Contact, ContactMerge, Identity, Message, Ticket

from .conftest import eml

pytestmark = pytest.mark.django_db


def line_message(user: str, text: str = "LINEから失礼します") -> actions.Received:
    # What the LINE webhook task does for a message event (tested end to end in test_line.py).
    return actions.receive_message(channel="line", sender=user, body_text=text,
                                   channel_message_id=factories.stripe_id("lm"))


def email_from(address: str, subject: str = "Question about my order") -> actions.Received:
    return actions.receive_message(channel="email", sender=address, subject=subject, body_text="Hello",
                                   channel_message_id=factories.stripe_id("mid") + "@mail.example")


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("Hana.Sato@Example.COM", "hana.sato@example.com"),
    ('  "Hana Sato" <hana.sato@example.com> ', "hana.sato@example.com"),
    ("user@bücher.example", "user@xn--bcher-kva.example"),
])
def test_emails_normalise_to_one_form(raw, expected):
    assert normalise("email", raw) == expected


@pytest.mark.parametrize("kind, raw", [
    ("email", "not-an-address"), ("email", ""), ("line", "U123"), ("line", "u" + "a" * 32),
    ("stripe_customer", "ch_123"), ("phone", "12"), ("fax", "1"),
])
def test_malformed_identities_are_refused(kind, raw):
    with pytest.raises(ValidationError):
        normalise(kind, raw)


def test_the_same_address_in_any_case_resolves_to_one_contact():
    a = email_from("Hana.Sato@Example.com")
    b = email_from("hana.sato@example.com")

    assert a.message.contact_id == b.message.contact_id
    assert Identity.objects.filter(kind="email").count() == 1


# --- scenario 1: email first, then LINE is linked ---------------------------------------------


def test_email_first_then_the_line_user_is_linked_before_writing(agent):
    hana = email_from("hana@example.jp").message.contact
    user = factories.line_user_id()

    result = actions.link_identity(actor=agent, contact=hana, kind="line", value=user)
    assert result.created and result.merge is None

    later = line_message(user)
    assert later.message.contact == hana and later.message.ticket.requester == hana
    assert Contact.objects.count() == 1
    assert AuditEntry.objects.filter(action="identity.link", actor=agent, target=f"contact:{hana.pk}").exists()


def test_email_first_then_line_first_writes_then_the_link_merges_the_two(agent):
    hana = email_from("hana@example.jp").message.contact
    user = factories.line_user_id()
    stranger = line_message(user).message.contact  # the seed's problem: two "customers"
    assert stranger != hana

    result = actions.link_identity(actor=agent, contact=hana, kind="line", value=user)

    assert result.merge is not None and result.identity.contact_id == hana.pk
    assert set(Ticket.objects.values_list("requester", flat=True)) == {hana.pk}
    assert set(Message.objects.filter(kind="inbound").values_list("contact", flat=True)) == {hana.pk}
    assert set(Identity.objects.values_list("kind", "contact")) == {("email", hana.pk), ("line", hana.pk)}
    stranger.refresh_from_db()
    assert stranger.merged_into_id == hana.pk
    # The next LINE message continues the LINE ticket, now on the one contact.
    again = line_message(user, "まだですか？")
    assert again.message.ticket.requester == hana and not again.ticket_created


# --- scenario 2: LINE first, then email -----------------------------------------------------


def test_line_first_then_the_shop_links_the_email_and_mail_lands_on_the_same_contact(client):
    user = factories.line_user_id()
    line_contact = line_message(user).message.contact

    response = client.post("/api/contacts/link", {
        "contact": {"kind": "line", "value": user},
        "identity": {"kind": "email", "value": "Ken.Sato@Example.jp"},
    }, content_type="application/json", HTTP_AUTHORIZATION="Bearer tickets-api-token-for-tests-90ab")
    assert response.status_code == 200
    assert response.json()["contact"] == line_contact.pk

    mail = email_from("ken.sato@example.jp")
    assert mail.message.contact == line_contact
    assert mail.ticket_created  # a new email conversation, on the same person
    assert Contact.objects.count() == 1


# --- scenario 3: unlink, then a new LINE message --------------------------------------------


def test_unlinked_line_user_writing_again_starts_a_new_contact(agent):
    hana = email_from("hana@example.jp").message.contact
    user = factories.line_user_id()
    actions.link_identity(actor=agent, contact=hana, kind="line", value=user)
    first = line_message(user)
    assert first.message.contact == hana

    ident = Identity.objects.get(kind="line", value=user)
    actions.unlink_identity(actor=agent, identity=ident, reason="customer disconnected LINE")

    later = line_message(user, "別のアカウントです")
    assert later.message.contact != hana and later.ticket_created
    assert later.message.ticket.requester == later.message.contact
    assert Identity.objects.get(kind="line", value=user).contact == later.message.contact
    # Hana keeps her history; her LINE ticket no longer has anyone to push to.
    assert first.message.ticket.requester == hana
    with pytest.raises(actions.NoRecipient):
        actions.reply(actor=agent, ticket=first.message.ticket, body="Hello?")
    entry = AuditEntry.objects.get(action="identity.unlink")
    assert entry.details["value"] == user and entry.actor == agent
    # The shopper may connect another LINE account to the same person.
    other = factories.line_user_id()
    assert actions.link_identity(actor=agent, contact=hana, kind="line", value=other).created


# --- scenario 4: merge, then undo ------------------------------------------------------------


def test_merge_then_undo_restores_everything(agent):
    a = email_from("aiko@example.org").message.contact
    b_received = email_from("aiko.tanaka@work.example")
    b = b_received.message.contact
    actions.link_identity(actor=agent, contact=b, kind="phone", value="+81 90-1234-5678")
    b.refresh_from_db()
    b_name = b.name

    merge = actions.contact_merge(actor=agent, survivor=a, merged=b, reason="same person")
    assert merge.moved["tickets"] == [b_received.message.ticket_id]
    assert Ticket.objects.filter(requester=a).count() == 2
    assert Identity.objects.filter(contact=a).count() == 3

    actions.undo_merge(actor=agent, merge=merge)

    assert list(Ticket.objects.filter(requester=b).values_list("pk", flat=True)) == [b_received.message.ticket_id]
    assert Message.objects.get(pk=b_received.message.pk).contact == b
    assert set(Identity.objects.filter(contact=b).values_list("value", flat=True)) == {
        "aiko.tanaka@work.example", "+819012345678",
    }
    assert list(Identity.objects.filter(contact=a).values_list("value", flat=True)) == ["aiko@example.org"]
    b.refresh_from_db()
    assert b.merged_into is None and b.name == b_name
    merge.refresh_from_db()
    assert merge.undone_at and merge.undone_by == agent
    assert list(AuditEntry.objects.filter(action__startswith="contact.merge").values_list("action", flat=True)) == [
        "contact.merge_undo", "contact.merge",
    ]
    with pytest.raises(actions.UndoRefused):
        actions.undo_merge(actor=agent, merge=merge)


def test_undo_is_refused_once_the_surviving_contact_changed(agent):
    a = email_from("a@example.org").message.contact
    b = email_from("b@example.org").message.contact
    merge = actions.contact_merge(actor=agent, survivor=a, merged=b)

    email_from("b@example.org", "another question")  # b's address writes again: now a's conversation

    with pytest.raises(actions.UndoRefused, match="has changed since the merge"):
        actions.undo_merge(actor=agent, merge=merge)
    assert Identity.objects.get(value="b@example.org").contact == a
    assert ContactMerge.objects.get().undone_at is None


def test_a_merged_contact_without_a_name_takes_the_merged_ones_and_gives_it_back(agent):
    nameless = actions.resolve_contact("line", factories.line_user_id())[0]
    named = email_from("Kenji Mori <kenji@example.net>").message.contact
    named_name = Contact.objects.get(pk=named.pk).name

    merge = actions.contact_merge(actor=agent, survivor=nameless, merged=named)
    assert Contact.objects.get(pk=nameless.pk).name == named_name
    actions.undo_merge(actor=agent, merge=merge)
    assert Contact.objects.get(pk=nameless.pk).name == ""


def test_bad_merges_are_refused_and_write_nothing(agent, finance):
    a = email_from("a@example.org").message.contact
    b = email_from("b@example.org").message.contact

    with pytest.raises(actions.ActionError):
        actions.contact_merge(actor=agent, survivor=a, merged=a)
    with pytest.raises(PermissionDenied):
        actions.contact_merge(actor=finance, survivor=a, merged=b)
    actions.contact_merge(actor=agent, survivor=a, merged=b)
    with pytest.raises(actions.ActionError, match="already merged"):
        actions.contact_merge(actor=agent, survivor=b, merged=a)
    assert ContactMerge.objects.count() == 1


def test_linking_an_identity_the_contact_already_has_changes_nothing(agent):
    a = email_from("a@example.org").message.contact
    version = Contact.objects.get(pk=a.pk).version

    result = actions.link_identity(actor=agent, contact=a, kind="email", value="A@Example.org")

    assert not result.created and result.merge is None
    assert Contact.objects.get(pk=a.pk).version == version


def test_a_real_eml_sender_links_to_a_line_user_across_channels(agent):
    """The seed's case with real mail: Hana wrote by email, then by LINE; the agent links."""
    mail = email_in.receive_bytes(eml("01-plain.eml")).email
    user = factories.line_user_id()
    line_message(user, "メールも送りました")

    actions.link_identity(actor=agent, contact=mail.message.contact, kind="line", value=user)

    contact = Contact.objects.get(merged_into__isnull=True)
    assert contact.name == "Hana Sato"
    assert sorted(contact.tickets.values_list("channel", flat=True)) == ["email", "line"]
