"""Django admin's console pages (console/admin.py): the failed logins django-axes counts, and
lifting a lockout, which only the admin role may do and which is audited
(console.actions.unlock_login)."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from audit.models import AuditEntry
from console import actions
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/admin/axes/accessattempt/"
PASSWORD = "correct horse battery"


@pytest.fixture
def locked_out(settings):
    """Keiko locked out from two addresses; Aiko with one failure."""
    settings.AXES_FAILURE_LIMIT = 2
    factories.UserFactory(username="keiko", role="agent")
    for address in ("203.0.113.9", "198.51.100.7"):
        client = Client(REMOTE_ADDR=address)
        for _ in range(2):
            client.post("/login/", {"username": "keiko", "password": "nope"})
    Client().post("/login/", {"username": "aiko", "password": "nope"})
    assert Client(REMOTE_ADDR="203.0.113.9").post("/login/", {"username": "keiko", "password": PASSWORD}).status_code == 429
    return AccessAttempt.objects.filter(username="keiko")


def unlock(client, attempts):
    return client.post(URL, {"action": "unlock", ACTION_CHECKBOX_NAME: [a.pk for a in attempts]}, follow=True)


def test_admin_lists_the_attempts_and_unlocks_with_an_audit_row(client, admin_user, locked_out):
    client.force_login(admin_user)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "keiko" in html and "203.0.113.9" in html and "aiko" in html
    assert "Unlock the selected usernames" in html and "Delete selected" not in html
    done = unlock(client, locked_out[:1])
    assert done.status_code == 200 and "Unlocked keiko: they may log in again." in done.content.decode()
    assert not AccessAttempt.objects.filter(username="keiko").exists()  # from every address
    assert AccessAttempt.objects.filter(username="aiko").exists()
    entry = AuditEntry.objects.get(action="login.unlock")
    assert (entry.actor, entry.target) == (admin_user, "login:keiko")
    # Two failures from each address, and the right password tried while locked out.
    assert entry.details["failures"] == 5 and entry.details["addresses"] == ["198.51.100.7", "203.0.113.9"]
    response = Client(REMOTE_ADDR="203.0.113.9").post("/login/", {"username": "keiko", "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["agent", "finance"])
def test_other_roles_are_sent_to_the_admin_login_and_unlock_nothing(client, request, role, locked_out):
    client.force_login(request.getfixturevalue(role))
    assert client.get(URL)["Location"].startswith("/admin/login/")
    assert unlock(client, locked_out).redirect_chain[0][0].startswith("/admin/login/")
    assert AccessAttempt.objects.filter(username="keiko").count() == 2
    assert not AuditEntry.objects.filter(action="login.unlock").exists()


def test_anonymous_is_sent_to_log_in(client, locked_out):
    assert client.get(URL)["Location"].startswith("/login/")
    client.post(URL, {"action": "unlock", ACTION_CHECKBOX_NAME: [locked_out[0].pk]})
    assert AccessAttempt.objects.filter(username="keiko").count() == 2


def test_unlock_login_refuses_those_without_the_permission(agent, admin_user, locked_out):
    with pytest.raises(PermissionDenied):
        actions.unlock_login(actor=agent, username="keiko")
    with pytest.raises(PermissionDenied):
        actions.unlock_login(actor=None, username="keiko")
    for bad in ("", "  ", "a\x00b", "x" * 300, None):
        with pytest.raises(ValidationError):
            actions.unlock_login(actor=admin_user, username=bad)
    assert AccessAttempt.objects.filter(username="keiko").count() == 2
    assert actions.unlock_login(actor=admin_user, username="nobody") == 0
    assert not AuditEntry.objects.exists()
