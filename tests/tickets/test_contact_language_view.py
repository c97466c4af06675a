"""The requester card's "Replies in": an agent sets the language replies, macros and portal
links are written in for this customer (or lets what they write decide). Every role that
works tickets may; a signed-in person without a role may not; anonymous visitors log in."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from tests.helpers import HX
from tickets.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(agent):
    from tests.factories import ContactFactory, TicketFactory

    return TicketFactory(requester=ContactFactory(name="Emma Walker"))


def _url(ticket):
    return reverse("contact_language", args=[ticket.requester_id])


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_a_role_that_works_tickets_sets_the_customers_language(request, client, role, ticket):
    client.force_login(request.getfixturevalue(role))
    page = client.get(reverse("ticket", args=[ticket.number])).content.decode()
    assert "Replies in" in page and "As they write (English)" in page
    response = client.post(_url(ticket), {"language": "ja", "ticket": ticket.number}, **HX)
    assert response.status_code == 200
    assert "Replies to this customer are now written in 日本語." in response.content.decode()
    contact = Contact.objects.get(pk=ticket.requester_id)
    assert contact.language == "ja"
    entry = AuditEntry.objects.get(action="contact.update")
    assert entry.details["language"] == {"from": "", "to": "ja"} and entry.details["source"] == "agent"
    # Blank lets what the customer writes decide again.
    client.post(_url(ticket), {"language": "", "ticket": ticket.number}, **HX)
    assert Contact.objects.get(pk=ticket.requester_id).language == ""


def test_in_japanese_for_a_japanese_agent(client, agent, ticket):
    client.force_login(agent)
    response = client.post(_url(ticket), {"language": "en", "ticket": ticket.number}, HTTP_ACCEPT_LANGUAGE="ja", **HX)
    assert "この顧客への返信は English で書かれます。" in response.content.decode()


def test_a_language_not_in_the_list_is_refused_and_nothing_changes(client, agent, ticket):
    client.force_login(agent)
    response = client.post(_url(ticket), {"language": "fr", "ticket": ticket.number}, **HX)
    assert response.status_code == 400
    assert Contact.objects.get(pk=ticket.requester_id).language == ""
    assert not AuditEntry.objects.filter(action="contact.update").exists()


def test_no_role_is_refused(client, no_role, ticket):
    client.force_login(no_role)
    assert client.post(_url(ticket), {"language": "ja"}, **HX).status_code == 403
    assert Contact.objects.get(pk=ticket.requester_id).language == ""


def test_anonymous_is_sent_to_log_in(client, ticket):
    response = client.post(_url(ticket), {"language": "ja"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Contact.objects.get(pk=ticket.requester_id).language == ""
