"""POST /api/contacts/link and /api/contacts/unlink: the shop's LINE-connect integration."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEntry
from tests import factories
from tickets import actions
from tickets.models import Contact, ContactMerge, Identity

from .conftest import API_TOKEN

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_TOKEN}"}


def post(client, path, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **headers)


def test_link_creates_the_contact_when_nobody_has_the_email(client):
    user = factories.line_user_id()

    response = post(client, "/api/contacts/link", {
        "contact": {"kind": "email", "value": "new@example.jp"}, "identity": {"kind": "line", "value": user},
        "name": "New Customer",
    }, **AUTH)

    assert response.status_code == 200
    body = response.json()
    contact = Contact.objects.get()
    assert body == {"contact": contact.pk, "identity": {"kind": "line", "value": user}, "created": True, "merge": None}
    assert contact.name == "New Customer"
    assert set(contact.identities.values_list("kind", "value")) == {("email", "new@example.jp"), ("line", user)}
    entry = AuditEntry.objects.get(action="identity.link")
    assert entry.actor is None and entry.details["reason"] == "api"


def test_link_of_an_identity_held_by_another_contact_merges(client):
    user = factories.line_user_id()
    line_contact = actions.resolve_contact("line", user)[0]
    email_contact = actions.resolve_contact("email", "hana@example.jp")[0]

    response = post(client, "/api/contacts/link", {
        "contact": {"kind": "email", "value": "hana@example.jp"}, "identity": {"kind": "line", "value": user},
    }, **AUTH)

    assert response.status_code == 200
    merge = ContactMerge.objects.get()
    assert response.json()["merge"] == merge.pk
    assert (merge.survivor, merge.merged) == (email_contact, line_contact)


def test_unlink_removes_the_identity(client):
    user = factories.line_user_id()
    contact = actions.resolve_contact("line", user)[0]

    response = post(client, "/api/contacts/unlink", {"kind": "line", "value": user}, **AUTH)
    missing = post(client, "/api/contacts/unlink", {"kind": "line", "value": user}, **AUTH)

    assert response.status_code == 200
    assert response.json() == {"contact": contact.pk, "unlinked": {"kind": "line", "value": user}}
    assert not Identity.objects.exists()
    assert missing.status_code == 404


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": API_TOKEN}])
def test_without_the_token_nothing_happens(client, headers):
    response = post(client, "/api/contacts/link", {
        "contact": {"kind": "email", "value": "x@example.jp"}, "identity": {"kind": "line", "value": factories.line_user_id()},
    }, **headers)

    assert response.status_code == 401
    assert not Contact.objects.exists()


def test_the_api_is_off_without_a_configured_token(client, settings):
    settings.TICKETS_API_TOKEN = ""

    response = post(client, "/api/contacts/unlink", {"kind": "line", "value": factories.line_user_id()},
                    HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 404


@pytest.mark.parametrize("body, error", [
    (b"{nope", "Expecting property name"),
    (b"[1]", "expected a JSON object"),
    ({"contact": {"kind": "email"}, "identity": {"kind": "line", "value": "U1"}}, "contact must be"),
    ({"contact": {"kind": "fax", "value": "1"}, "identity": {"kind": "line", "value": "U1"}}, "contact.kind must be"),
    ({"contact": {"kind": "email", "value": "x@example.jp"}, "identity": {"kind": "line", "value": "U1"}},
     "is not a LINE user id"),
    ({"contact": {"kind": "email", "value": "not mail"}, "identity": {"kind": "line", "value": "U" + "a" * 32}},
     "is not a valid email address"),
])
def test_malformed_requests_are_400_and_write_nothing(client, body, error):
    response = post(client, "/api/contacts/link", body, **AUTH)

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not Contact.objects.exists() and not AuditEntry.objects.exists()


def test_only_post(client):
    assert client.get("/api/contacts/link", **AUTH).status_code == 405
