"""People in the console (console/people): admins add people (who set their own password from
an emailed link), change role and teams, deactivate (sessions end, open tickets unassigned) and
reactivate; every change audited; agents, finance and anonymous visitors can't."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from audit.models import AuditAction, AuditEntry
from tests import factories, helpers

pytestmark = pytest.mark.django_db


def test_only_admins_see_and_change_people(client, as_user, agent, finance, admin_user):
    assert as_user(admin_user).get("/people/").status_code == 200
    for person in (agent, finance):
        assert as_user(person).get("/people/").status_code == 403
        assert as_user(person).post("/people/new", {"username": "x"}).status_code == 403
        assert as_user(person).post(f"/people/{agent.pk}/deactivate").status_code == 403
    client.logout()
    assert client.get("/people/")["Location"].startswith("/login/")
    assert "/people/" in as_user(admin_user).get("/").content.decode()  # in the admin's menu
    assert "/people/" not in as_user(agent).get("/").content.decode()


def test_an_admin_adds_a_person_who_sets_a_password_and_signs_in(client, as_user, admin_user):
    team = factories.TeamFactory(name="Japan", slug="japan")
    with helpers.committed():
        response = as_user(admin_user).post("/people/new", {
            "username": "haruka", "first_name": "Haruka", "last_name": "Kimura", "email": "haruka@example.jp",
            "role": "agent", "teams": [str(team.pk)], "language": "ja"})
    haruka = get_user_model().objects.get(username="haruka")
    assert response.status_code == 302 and response["Location"] == f"/people/{haruka.pk}/"
    assert not haruka.has_usable_password() and haruka.groups.get().name == "agent"
    assert list(team.members.all()) == [haruka]
    assert AuditEntry.objects.filter(action=AuditAction.PERSON_CREATE, actor=admin_user).exists()
    [email] = mail.outbox
    assert email.to == ["haruka@example.jp"] and "Paydesk" in email.subject and "パスワード" in email.body
    link = re.search(r"https?://[^\s]+/account/password/[^\s]+/", email.body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client.logout()
    form_page = client.get("/" + path, follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0] if form_page.redirect_chain else "/" + path,
                       {"new_password1": "A-long-passphrase-2026", "new_password2": "A-long-passphrase-2026"})
    assert done.status_code == 302
    signed_in = client.post("/login/", {"username": "haruka", "password": "A-long-passphrase-2026"})
    assert signed_in.status_code == 302 and client.get("/").status_code == 200


def test_a_taken_username_or_a_missing_role_is_refused_nothing_made(as_user, admin_user, agent):
    response = as_user(admin_user).post("/people/new", {"username": agent.username.upper(), "email": "x@example.com",
                                                        "role": "agent"})
    assert response.status_code == 400 and "is taken" in response.content.decode()
    response = as_user(admin_user).post("/people/new", {"username": "new1", "email": "x@example.com",
                                                        "role": "workflow"})
    assert response.status_code == 400
    assert not get_user_model().objects.filter(username="new1").exists() and not mail.outbox


def test_role_and_teams_change_audited_and_an_admin_keeps_their_own_role(as_user, admin_user, agent):
    team = factories.TeamFactory(name="Billing", slug="billing")
    response = as_user(admin_user).post(f"/people/{agent.pk}/", {"email": "agent@example.com", "first_name": "Aiko",
                                                                 "last_name": "", "role": "finance",
                                                                 "teams": [str(team.pk)]})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.groups.get().name == "finance" and list(team.members.all()) == [agent]
    entry = AuditEntry.objects.get(action=AuditAction.PERSON_UPDATE)
    assert entry.details["changed"]["role"] == {"from": "agent", "to": "finance"}
    response = as_user(admin_user).post(f"/people/{admin_user.pk}/", {"email": "a@example.com", "first_name": "",
                                                                      "last_name": "", "role": "agent"})
    assert response.status_code == 400 and admin_user.groups.filter(name="admin").exists()


def test_deactivating_ends_sessions_and_returns_open_tickets_to_the_queue(as_user, admin_user, agent):
    from django.test import Client

    agent_client = Client()  # the agent's own browser, beside the admin's
    agent_client.force_login(agent)
    assert agent_client.get("/").status_code == 200
    open_ticket = factories.TicketFactory(assignee=agent)
    solved = factories.TicketFactory(assignee=agent, status="solved")
    response = as_user(admin_user).post(f"/people/{agent.pk}/deactivate", follow=True)
    assert "1 open ticket went back to the queue" in response.content.decode()
    agent.refresh_from_db()
    open_ticket.refresh_from_db()
    solved.refresh_from_db()
    assert not agent.is_active and open_ticket.assignee is None and solved.assignee == agent
    assert agent_client.get("/")["Location"].startswith("/login/")  # the session ended
    entry = AuditEntry.objects.get(action=AuditAction.PERSON_DEACTIVATE)
    assert entry.details["sessions_ended"] >= 1 and entry.details["tickets_unassigned"] == 1
    assert as_user(admin_user).post(f"/people/{agent.pk}/reactivate").status_code == 302
    agent.refresh_from_db()
    assert agent.is_active


def test_an_admin_cannot_deactivate_themselves_and_a_password_link_is_sent(as_user, admin_user, agent):
    response = as_user(admin_user).post(f"/people/{admin_user.pk}/deactivate", follow=True)
    assert "You can't deactivate yourself." in unescape(response.content.decode())
    admin_user.refresh_from_db()
    assert admin_user.is_active
    agent.email = "aiko@example.com"
    agent.save()
    with helpers.committed():
        as_user(admin_user).post(f"/people/{agent.pk}/password-link")
    assert [m.to for m in mail.outbox] == [["aiko@example.com"]]
    assert AuditEntry.objects.filter(action=AuditAction.PERSON_PASSWORD_LINK).exists()
    assert as_user(admin_user).get("/people/999999/").status_code == 404
