"""Django admin for tickets data fixes: admin role only, searchable by email, LINE id and ticket
number, and every change (edits, links, unlinks, merges, undo) made through tickets.actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from tests import factories
from tickets import actions, email_in
from tickets.models import Contact, ContactMerge, Identity, InboundEmail, Message, Team, Ticket

from .conftest import eml

pytestmark = pytest.mark.django_db

MODELS = ["team", "macro", "contact", "identity", "contactmerge", "ticket", "message", "lineevent", "inboundemail"]


@pytest.fixture
def seeded(agent):
    email = actions.receive_message(channel="email", sender="Yui Nakamura <yui@example.jp>", subject="Refund please",
                                    body_text="Hello", channel_message_id="adm-1@example.jp")
    user = factories.line_user_id()
    line = actions.receive_message(channel="line", sender=user, body_text="返金の件", channel_message_id="9001")
    factories.MacroFactory(name="Thanks")
    factories.TeamFactory(name="Support")
    return email.message.ticket, line.message.ticket, user


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_anonymous_is_sent_to_login(client):
    response = client.get("/admin/tickets/ticket/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("role", ["agent", "finance"])
def test_agent_and_finance_get_the_admin_login(client, request, role, seeded):
    client.force_login(request.getfixturevalue(role))
    for model in ("ticket", "contact", "identity", "inboundemail"):
        response = client.get(f"/admin/tickets/{model}/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("model", MODELS)
def test_admin_changelists_and_pages_open(admin_client, seeded, model):
    assert admin_client.get(f"/admin/tickets/{model}/").status_code == 200
    assert f'href="/admin/tickets/{model}/"'.encode() in admin_client.get("/admin/").content


def test_ticket_and_contact_pages_open(admin_client, seeded):
    email_ticket, _, _ = seeded
    assert admin_client.get(f"/admin/tickets/ticket/{email_ticket.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/tickets/contact/{email_ticket.requester_id}/change/").status_code == 200


def _rows(response) -> str:
    return response.content.decode()


def test_search_tickets_by_number_email_and_line_id(admin_client, seeded):
    email_ticket, line_ticket, user = seeded

    by_number = _rows(admin_client.get("/admin/tickets/ticket/", {"q": f"#{email_ticket.number}"}))
    by_email = _rows(admin_client.get("/admin/tickets/ticket/", {"q": "YUI@example.jp"}))
    by_line = _rows(admin_client.get("/admin/tickets/ticket/", {"q": user}))

    assert "Refund please" in by_number and "返金の件" not in by_number
    assert "Refund please" in by_email and "返金の件" not in by_email
    assert "返金の件" in by_line and "Refund please" not in by_line


def test_search_contacts_identities_and_messages(admin_client, seeded):
    _, line_ticket, user = seeded
    contacts = _rows(admin_client.get("/admin/tickets/contact/", {"q": "yui@example.jp"}))
    identities = _rows(admin_client.get("/admin/tickets/identity/", {"q": user}))
    messages = _rows(admin_client.get("/admin/tickets/message/", {"q": str(line_ticket.number)}))

    assert "Yui Nakamura" in contacts
    assert user in identities and "yui@example.jp" not in identities
    assert f"#{line_ticket.number}" in messages


def test_editing_a_ticket_goes_through_the_actions(admin_client, admin_user, seeded, agent):
    ticket, _, _ = seeded
    team = Team.objects.get(name="Support")

    response = admin_client.post(f"/admin/tickets/ticket/{ticket.pk}/change/", {
        "subject": ticket.subject, "status": "pending", "priority": "urgent", "assignee": agent.pk,
        "team": team.pk, "tags": [],
        "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "1", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.team) == ("pending", "urgent", agent, team)
    assert ticket.resolution_due == ticket.created + __import__("datetime").timedelta(hours=4)
    logged = set(AuditEntry.objects.filter(actor=admin_user).values_list("action", flat=True))
    assert {"ticket.status", "ticket.priority", "ticket.assign"} <= logged


def test_an_edit_an_action_refuses_changes_nothing_and_says_why(admin_client, admin_user, seeded):
    ticket, _, _ = seeded
    actions.set_status(actor=admin_user, ticket=ticket, status="closed")

    response = admin_client.post(f"/admin/tickets/ticket/{ticket.pk}/change/", {
        "subject": "Renamed", "status": "open", "priority": "normal", "tags": [],
        "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "1", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
    }, follow=True)

    assert "is closed and cannot be reopened" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.subject == "Refund please"  # the rename rolled back too


def test_adding_an_identity_another_contact_has_merges_them(admin_client, admin_user, seeded):
    email_ticket, line_ticket, user = seeded
    yui = email_ticket.requester

    response = admin_client.post("/admin/tickets/identity/add/", {
        "contact": yui.pk, "kind": "line", "identity_value": f" {user} ",
    }, follow=True)

    assert response.status_code == 200
    assert "merged into" in response.content.decode()
    merge = ContactMerge.objects.get()
    assert merge.survivor == yui and merge.actor == admin_user and merge.reason == "admin"
    assert Ticket.objects.get(pk=line_ticket.pk).requester == yui
    assert AuditEntry.objects.filter(action="contact.merge", actor=admin_user).exists()


def test_adding_a_malformed_identity_shows_the_error(admin_client, seeded):
    email_ticket, _, _ = seeded
    response = admin_client.post("/admin/tickets/identity/add/", {
        "contact": email_ticket.requester_id, "kind": "line", "identity_value": "not-a-line-id",
    })
    assert response.status_code == 200
    assert "is not a LINE user id" in response.content.decode()
    assert Identity.objects.filter(kind="line").count() == 1


def test_deleting_and_bulk_unlinking_identities_unlink_them(admin_client, admin_user, seeded):
    email_ticket, _, user = seeded
    line_ident = Identity.objects.get(kind="line")
    email_ident = Identity.objects.get(kind="email")

    response = admin_client.post(f"/admin/tickets/identity/{line_ident.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    admin_client.post("/admin/tickets/identity/", {
        "action": "unlink_selected", ACTION_CHECKBOX_NAME: [email_ident.pk],
    })

    assert not Identity.objects.exists()
    unlinked = AuditEntry.objects.filter(action="identity.unlink", actor=admin_user)
    assert sorted(e.details["value"] for e in unlinked) == sorted([user, "yui@example.jp"])


def test_merge_contacts_and_undo_from_the_admin(admin_client, admin_user, seeded):
    email_ticket, line_ticket, _ = seeded
    contacts = [email_ticket.requester_id, line_ticket.requester_id]

    admin_client.post("/admin/tickets/contact/", {"action": "merge_into_first", ACTION_CHECKBOX_NAME: contacts})
    merge = ContactMerge.objects.get()
    assert merge.survivor_id == min(contacts, key=lambda pk: Contact.objects.get(pk=pk).created)
    assert Contact.objects.filter(merged_into__isnull=True).count() == 1

    response = admin_client.post("/admin/tickets/contactmerge/", {
        "action": "undo_selected", ACTION_CHECKBOX_NAME: [merge.pk],
    }, follow=True)
    assert "1 merge undone" in response.content.decode()
    assert Contact.objects.filter(merged_into__isnull=True).count() == 2
    assert AuditEntry.objects.filter(action="contact.merge_undo", actor=admin_user).exists()


def test_renaming_a_contact_and_adding_a_team_are_audited(admin_client, admin_user, seeded, agent):
    email_ticket, _, _ = seeded
    contact = email_ticket.requester

    admin_client.post(f"/admin/tickets/contact/{contact.pk}/change/", {
        "name": "Yui N.", "identities-TOTAL_FORMS": "0", "identities-INITIAL_FORMS": "1",
        "identities-MIN_NUM_FORMS": "0", "identities-MAX_NUM_FORMS": "1000",
    })
    admin_client.post("/admin/tickets/team/add/", {"name": "Finance", "slug": "finance", "members": [agent.pk]})

    assert Contact.objects.get(pk=contact.pk).name == "Yui N."
    assert list(Team.objects.get(slug="finance").members.all()) == [agent]
    logged = set(AuditEntry.objects.filter(actor=admin_user).values_list("action", flat=True))
    assert {"contact.update", "team.create"} <= logged


def test_retry_failed_reply_from_the_admin(admin_client, admin_user, seeded, settings, committed):
    from tests.tickets.test_email_out import RefusingBackend  # noqa: F401  (the backend path below)

    email_ticket, _, _ = seeded
    settings.EMAIL_BACKEND = "tests.tickets.test_email_out.RefusingBackend"
    with committed():
        message = actions.reply(actor=admin_user, ticket=email_ticket, body="Hello")
    assert Message.objects.get(pk=message.pk).delivery_status == "failed"

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with committed():
        admin_client.post("/admin/tickets/message/", {"action": "retry_selected", ACTION_CHECKBOX_NAME: [message.pk]})
    assert Message.objects.get(pk=message.pk).delivery_status == "sent"


# --- inbound emails: read-only, with what became of them; "process again" through the action ------


def test_inbound_emails_show_their_status_reason_and_message(admin_client):
    email_in.receive_bytes(eml("14-from-without-domain.eml"))
    processed = email_in.receive_bytes(eml("05-utf-8.eml")).email

    listing = admin_client.get("/admin/tickets/inboundemail/").content.decode()
    page = admin_client.get(f"/admin/tickets/inboundemail/{processed.pk}/change/").content.decode()

    assert "its From (Mail Delivery Subsystem &lt;MAILER-DAEMON&gt;) is not an email address" in listing
    assert "Returned mail: see transcript for details" in listing
    assert f"message {processed.message_id} on #{processed.message.ticket.number}" in listing
    assert "返金の状況を教えてください" in page and "Content-Transfer-Encoding: quoted-printable" in page  # the raw
    assert 'name="_save"' not in page  # read-only


def test_process_again_after_a_fix_goes_through_the_action(admin_client, admin_user, settings, committed):
    processed = email_in.receive_bytes(eml("05-utf-8.eml")).email
    # Mail from an address that was the support address until the configuration was fixed.
    settings.TICKETS_EMAIL_FROM = "Paydesk Support <hana.sato@example.com>"
    ignored = email_in.receive_bytes(eml("01-plain.eml")).email
    assert ignored.status == "ignored" and ignored.last_error == "it is from the support address itself"
    settings.TICKETS_EMAIL_FROM = "Paydesk Support <support@paydesk.test>"

    with committed():
        response = admin_client.post("/admin/tickets/inboundemail/", {
            "action": "process_again", ACTION_CHECKBOX_NAME: [ignored.pk, processed.pk],
        }, follow=True)

    html = response.content.decode()
    assert "1 email queued to be processed again" in html
    assert f"already became message {processed.message_id}" in html
    ignored.refresh_from_db()
    assert ignored.status == "processed" and ignored.message.sender == "hana.sato@example.com"
    entry = AuditEntry.objects.get(action="inbound_email.reprocess")
    assert (entry.actor, entry.target) == (admin_user, f"inbound_email:{ignored.pk}")
    assert entry.details == {"status": "ignored", "reason": "it is from the support address itself"}


def test_only_the_admin_role_sees_inbound_emails(client, agent):
    email_in.receive_bytes(eml("14-from-without-domain.eml"))
    assert client.get("/admin/tickets/inboundemail/")["Location"].startswith("/login/?next=")
    client.force_login(agent)
    assert client.get("/admin/tickets/inboundemail/")["Location"].startswith("/admin/login/?next=")
    with pytest.raises(PermissionDenied):
        actions.reprocess_inbound_email(actor=agent, email=InboundEmail.objects.get())


@pytest.mark.parametrize("q", ["²", "#²", "٣", "#１２", "#99999999999999999999999", "#-1"])
def test_search_by_a_number_that_is_not_ascii_digits_finds_nothing_and_does_not_fail(client, admin_client, seeded,
                                                                                     agent, q):
    for model in ("ticket", "message"):
        response = admin_client.get(f"/admin/tickets/{model}/", {"q": q})
        assert response.status_code == 200 and response.context["cl"].result_count == 0
    client.force_login(agent)
    assert client.get("/admin/tickets/ticket/", {"q": q})["Location"].startswith("/admin/login/")
    client.logout()
    assert client.get("/admin/tickets/ticket/", {"q": q})["Location"].startswith("/login/")
