"""/contacts/: every contact (LINE-only ones too), newest first, with their channels, last
message and open tickets; filtered by channel; keyset pages; each row opens the customer page."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests import factories
from tickets import actions
from tickets.models import Contact
from tickets.selectors import contacts_page

pytestmark = pytest.mark.django_db

LINE_ID = "U" + "e" * 28 + "7a1b"


@pytest.fixture
def contacts(db):
    email = actions.receive_message(channel="email", sender="Hana Sato <hana@example.jp>", sender_name="Hana Sato",
                                    subject="Order 4417", body_text="Where is it?",
                                    channel_message_id="m-4417@mail.example").message.contact
    line = actions.receive_message(channel="line", sender=LINE_ID, body_text="届いていません",
                                   channel_message_id="line-1").message.contact
    return email, line


def test_an_agent_sees_every_contact_with_channels_and_open_tickets(as_user, agent, contacts):
    email, line = contacts
    response = as_user(agent).get("/contacts/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Hana Sato" in page and "LINE user ·7a1b" in page
    assert f'href="/customers/{email.pk}/"' in page and f'href="/customers/{line.pk}/"' in page
    assert "Contact %s" % line.pk not in page
    rows = response.context["rows"]
    assert [r.pk for r in rows] == [line.pk, email.pk]  # newest first
    assert rows[0].channels == ["line"] and rows[0].open_tickets == 1 and rows[0].last_message_at is not None


def test_the_channel_filter(as_user, finance, contacts):
    email, line = contacts
    response = as_user(finance).get("/contacts/?channel=line")
    assert response.status_code == 200
    assert [r.pk for r in response.context["rows"]] == [line.pk]
    assert [r.pk for r in as_user(finance).get("/contacts/?channel=email").context["rows"]] == [email.pk]
    # An unknown channel is no filter.
    assert len(as_user(finance).get("/contacts/?channel=fax").context["rows"]) == 2


def test_admin_sees_it_and_the_sidebar_links_it(as_user, admin_user, contacts):
    response = as_user(admin_user).get("/contacts/")
    assert response.status_code == 200
    assert ("contacts", "Contacts", "/contacts/") in [tuple(map(str, item)) for item in response.context["shell_nav"]]


def test_no_role_is_refused_and_anonymous_sent_to_login(as_user, no_role, client, contacts):
    assert client.get("/contacts/").status_code == 302
    assert as_user(no_role).get("/contacts/").status_code == 403


def test_merged_contacts_are_left_out_and_pages_follow_on(db):
    now = timezone.now()
    made = [factories.ContactFactory(name=f"Person {i}") for i in range(5)]
    Contact.objects.filter(pk=made[2].pk).update(merged_into=made[0])
    Contact.objects.update(created=now)  # one stamp for all: the id breaks the tie
    first = contacts_page(size=2)
    second = contacts_page(after=first.cursor, size=2)
    assert [r.pk for r in first.rows] == [made[4].pk, made[3].pk]
    assert [r.pk for r in second.rows] == [made[1].pk, made[0].pk]
    assert second.cursor == ""
