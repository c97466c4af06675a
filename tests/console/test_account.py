"""Your settings (console/account.py): each person picks the time zone the console shows
dates in. Every role may change their own; nobody changes another's; a bad zone saves nothing."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from console import actions
from audit.models import AuditEntry
from console.models import UserPreference
from tests.conftest import ROLE_FIXTURES

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("account"))
    assert response.status_code == 302 and response["Location"] == "/login/?next=/account/"
    response = client.post(reverse("account"), {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302 and not UserPreference.objects.exists()


@pytest.mark.parametrize("role", [*ROLE_FIXTURES, "no_role"])
def test_everyone_signed_in_sets_their_own_zone(request, client, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    page = client.get(reverse("account"))
    assert page.status_code == 200 and "The console's default (UTC)" in page.content.decode()
    response = client.post(reverse("account"), {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert UserPreference.objects.get(user=user).time_zone == "Asia/Tokyo"
    audit = AuditEntry.objects.get(action="user.time_zone")
    assert audit.actor == user and audit.details == {"time_zone": "Asia/Tokyo", "previous": ""}
    # The next page reads dates in the new zone at once (the session's cached zone was replaced).
    html = client.get(reverse("account")).content.decode()
    assert "<option selected>Asia/Tokyo</option>" in html and "Dates are now shown in Asia/Tokyo." in html


def test_unknown_zone_is_a_400_and_saves_nothing(client, agent):
    client.force_login(agent)
    response = client.post(reverse("account"), {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert "is not a time zone" in response.content.decode()
    assert not UserPreference.objects.exists() and not AuditEntry.objects.exists()


def test_blank_goes_back_to_the_default(client, agent):
    UserPreference.objects.create(user=agent, time_zone="Europe/Berlin")
    client.force_login(agent)
    client.post(reverse("account"), {"time_zone": ""})
    assert UserPreference.objects.get(user=agent).time_zone == ""
    assert "Dates are now shown in UTC." in client.get(reverse("account")).content.decode()


def test_saving_the_same_zone_writes_no_audit_row(agent):
    actions.set_time_zone(actor=agent, user=agent, name="Asia/Tokyo")
    actions.set_time_zone(actor=agent, user=agent, name="Asia/Tokyo")
    assert AuditEntry.objects.filter(action="user.time_zone").count() == 1


def test_nobody_sets_another_persons_zone(agent, admin_user):
    with pytest.raises(PermissionDenied):
        actions.set_time_zone(actor=admin_user, user=agent, name="Asia/Tokyo")
    assert not UserPreference.objects.exists()


def test_back_to_the_page_you_came_from_but_never_off_site(client, agent):
    client.force_login(agent)
    back = client.post(reverse("account"), {"time_zone": "UTC", "next": "/customers/1/?filter=refunds"})
    assert back["Location"] == "/customers/1/?filter=refunds"
    away = client.post(reverse("account"), {"time_zone": "UTC", "next": "https://evil.example/"})
    assert away["Location"] == reverse("account")
