"""The requester card on the ticket page: link, unlink, merge (with a confirmation) and undo,
all through tickets.actions. Seed 003's case: the shopper who wrote by email also writes by
LINE; the agent links the LINE id and the two conversations meet on one contact.

Finance works tickets but may not merge contacts (the role table): linking a new identity
is fine, a link that would merge is refused, and so is undo.
"""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from tickets import actions
from tickets.models import Contact, ContactMerge, Identity, Ticket
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
LINE_ID = "U" + "d" * 32


@pytest.fixture
def visitor(db):
    return factories.UserFactory(username="visitor")


@pytest.fixture
def email_ticket(db) -> Ticket:
    return actions.receive_message(channel="email", sender="Hana Sato <hana@example.jp>", sender_name="Hana Sato",
                                   subject="Order 4417", body_text="Where is it?",
                                   channel_message_id="m-4417@mail.example").message.ticket


@pytest.fixture
def line_ticket(db) -> Ticket:
    return actions.receive_message(channel="line", sender=LINE_ID, body_text="届いていません",
                                   channel_message_id="line-1").message.ticket


def link(client, ticket, kind, value, **data):
    return client.post(f"/tickets/contacts/{ticket.requester_id}/link/",
                       {"kind": kind, "value": value, "ticket": ticket.number, **data}, **HX)


def test_link_a_new_identity(client, email_ticket, agent):
    client.force_login(agent)
    html = link(client, email_ticket, "phone", "+81 90-1234-5678").content.decode()
    assert html.lstrip().startswith('<section id="contact"')
    assert "Linked phone +819012345678." in html
    assert Identity.objects.filter(contact=email_ticket.requester, kind="phone", value="+819012345678").exists()
    assert AuditEntry.objects.filter(action="identity.link", actor=agent).exists()


def test_a_bad_value_is_explained(client, email_ticket, agent):
    client.force_login(agent)
    html = link(client, email_ticket, "line", "not-a-line-id").content.decode()
    assert "is not a LINE user id" in html
    assert email_ticket.requester.identities.count() == 1


def test_linking_someone_elses_identity_asks_then_merges_and_can_be_undone(client, email_ticket, line_ticket, agent):
    """Seed 003: email first, then LINE; the agent links the LINE id to the email contact."""
    client.force_login(agent)
    line_contact = line_ticket.requester
    html = link(client, email_ticket, "line", LINE_ID).content.decode()
    assert "belongs to" in html and "Merge and link" in html
    assert not ContactMerge.objects.exists()  # nothing happens before the confirmation

    html = link(client, email_ticket, "line", LINE_ID, confirm="merge").content.decode()
    assert "tickets and identities moved here" in html
    line_ticket.refresh_from_db()
    assert line_ticket.requester_id == email_ticket.requester_id
    assert Identity.objects.get(kind="line", value=LINE_ID).contact_id == email_ticket.requester_id
    merge = ContactMerge.objects.get()
    assert f'hx-post="/tickets/merges/{merge.pk}/undo/"' in html

    html = client.post(f"/tickets/merges/{merge.pk}/undo/", {"ticket": email_ticket.number}, **HX).content.decode()
    assert "Undid the merge" in html
    line_ticket.refresh_from_db()
    assert line_ticket.requester_id == line_contact.pk
    assert Identity.objects.get(kind="line", value=LINE_ID).contact_id == line_contact.pk
    assert AuditEntry.objects.filter(action="contact.merge_undo", actor=agent).exists()


def test_undo_is_refused_once_the_contact_changed(client, email_ticket, line_ticket, agent):
    client.force_login(agent)
    link(client, email_ticket, "line", LINE_ID, confirm="merge")
    merge = ContactMerge.objects.get()
    link(client, email_ticket, "phone", "+81 90 0000 1111")  # the survivor changed since
    html = client.post(f"/tickets/merges/{merge.pk}/undo/", {"ticket": email_ticket.number}, **HX).content.decode()
    assert "undo is no longer safe" in html
    assert ContactMerge.objects.get().undone_at is None


def test_unlink_then_a_new_message_starts_a_new_contact(client, email_ticket, line_ticket, agent):
    """Seed 003: the shopper disconnects LINE; their next LINE message is someone new to us."""
    client.force_login(agent)
    link(client, email_ticket, "line", LINE_ID, confirm="merge")
    ident = Identity.objects.get(kind="line", value=LINE_ID)
    html = client.post(f"/tickets/identities/{ident.pk}/unlink/", {"ticket": email_ticket.number}, **HX).content.decode()
    assert "Unlinked line user" in html
    assert not Identity.objects.filter(kind="line", value=LINE_ID).exists()
    later = actions.receive_message(channel="line", sender=LINE_ID, body_text="また", channel_message_id="line-2")
    assert later.message.ticket.requester_id != email_ticket.requester_id


def test_finance_links_but_may_not_merge(client, email_ticket, line_ticket, finance):
    client.force_login(finance)
    assert "Linked phone" in link(client, email_ticket, "phone", "+81 90 2222 3333").content.decode()
    html = link(client, email_ticket, "line", LINE_ID).content.decode()
    assert "needs the merge permission" in html and "Merge and link" not in html
    assert link(client, email_ticket, "line", LINE_ID, confirm="merge").status_code == 403
    assert not ContactMerge.objects.exists()


def test_undo_refused_for_finance(client, email_ticket, line_ticket, agent, finance):
    actions.link_identity(actor=agent, contact=email_ticket.requester, kind="line", value=LINE_ID)
    merge = ContactMerge.objects.get()
    client.force_login(finance)
    assert client.post(f"/tickets/merges/{merge.pk}/undo/", **HX).status_code == 403
    assert ContactMerge.objects.get().undone_at is None


def test_admin_may_merge(client, email_ticket, line_ticket, admin_user):
    client.force_login(admin_user)
    link(client, email_ticket, "line", LINE_ID, confirm="merge")
    assert Contact.objects.get(pk=line_ticket.requester_id).merged_into_id == email_ticket.requester_id


def test_visitor_and_anonymous_are_refused(client, email_ticket, visitor):
    ident = email_ticket.requester.identities.get()
    for url in (f"/tickets/contacts/{email_ticket.requester_id}/link/", f"/tickets/identities/{ident.pk}/unlink/"):
        response = client.post(url, {"kind": "phone", "value": "+819011112222"})
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(visitor)
    assert link(client, email_ticket, "phone", "+819011112222").status_code == 403
    assert client.post(f"/tickets/identities/{ident.pk}/unlink/", **HX).status_code == 403
    assert email_ticket.requester.identities.count() == 1


def test_unknown_kind_is_400_and_missing_objects_404(client, email_ticket, agent):
    client.force_login(agent)
    assert link(client, email_ticket, "fax", "123").status_code == 400
    assert client.post("/tickets/contacts/999999/link/", {"kind": "phone", "value": "+8190"}, **HX).status_code == 404
    assert client.post("/tickets/identities/999999/unlink/", **HX).status_code == 404
    assert client.post("/tickets/merges/999999/undo/", **HX).status_code == 404
