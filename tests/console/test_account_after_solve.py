"""Your settings: what "Solve" does next on a ticket (go to the view's next ticket, or stay).
Every signed-in person sets their own; nobody sets another's; the choice takes effect at once."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.models import AuditEntry
from console import actions
from console.models import UserPreference
from tests.conftest import ROLE_FIXTURES
from tickets import actions as ticket_actions

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_log_in(client):
    response = client.post(reverse("account"), {"after_solve": "stay"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not UserPreference.objects.exists()


@pytest.mark.parametrize("role", [*ROLE_FIXTURES, "no_role"])
def test_everyone_signed_in_sets_their_own(request, client, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    html = client.get(reverse("account")).content.decode()
    assert 'name="after_solve" value="next" checked' in html  # the default
    response = client.post(reverse("account"), {"after_solve": "stay"})
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert UserPreference.objects.get(user=user).after_solve == "stay"
    audit = AuditEntry.objects.get(action="user.after_solve")
    assert audit.actor == user and audit.details == {"after_solve": "stay", "previous": "next"}
    html = client.get(reverse("account")).content.decode()
    assert 'name="after_solve" value="stay" checked' in html
    assert "After solving a ticket you now stay on it." in html


def test_an_unknown_choice_is_a_400_and_saves_nothing(client, agent):
    client.force_login(agent)
    response = client.post(reverse("account"), {"after_solve": "elsewhere"})
    assert response.status_code == 400 and "Choose one of the options" in response.content.decode()
    assert not AuditEntry.objects.filter(action="user.after_solve").exists()


def test_nobody_sets_anothers(agent, finance):
    with pytest.raises(PermissionDenied):
        actions.set_after_solve(actor=agent, user=finance, value="stay")


def test_the_choice_applies_to_the_next_solve_at_once(client, agent):
    tickets = [ticket_actions.receive_message(channel="email", sender=f"s{n}@example.com", subject="Hi",
                                              body_text="Hello", channel_message_id=f"after-{n}@x").message.ticket
               for n in range(2)]
    client.force_login(agent)
    client.get(reverse("account"))  # the session caches the preferences
    client.post(reverse("account"), {"after_solve": "stay"})
    response = client.post(f"/tickets/{tickets[0].number}/update/",
                           {"field": "status", "value": "solved", "advance": "1", "from": "all"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "HX-Redirect" not in response
    client.post(reverse("account"), {"after_solve": "next"})
    response = client.post(f"/tickets/{tickets[1].number}/update/",
                           {"field": "status", "value": "solved", "advance": "1", "from": "all"},
                           HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == "/tickets/all/"  # no other unsolved ticket is left
