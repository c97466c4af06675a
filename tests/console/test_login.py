"""Logging in, and the lockout after too many failed attempts (django-axes, per username and
address; the page when refused is console/views/login.py)."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture
def keiko(db):
    return factories.UserFactory(username="keiko", role="agent")


def attempt(client, path="/login/", password="wrong password", username="keiko", **extra):
    return client.post(path, {"username": username, "password": password, "next": "/tickets/"}, **extra)


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_after_the_limit_even_the_right_password_is_refused_with_a_clear_page(client, keiko, settings, path):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert attempt(client, path).status_code == 200  # the form again, "didn't match"
    locked = attempt(client, path)
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins for this username from your address" in html
    assert "Try again in 15 minutes, or ask an admin to unlock it." in html
    assert 'name="password"' in html and 'value="/tickets/"' in html  # the login form is still there
    refused = attempt(client, path, password=PASSWORD)
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="keiko").failures_since_start >= 3


def test_the_lockout_is_per_username_and_address(keiko, settings):
    settings.AXES_FAILURE_LIMIT = 2
    factories.UserFactory(username="aiko", role="agent")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(2):
        attempt(attacker)
    assert attempt(attacker, password=PASSWORD).status_code == 429
    # Keiko at her own desk, and another person from the attacker's address, are not locked out.
    assert attempt(Client(REMOTE_ADDR="198.51.100.7"), password=PASSWORD)["Location"] == "/tickets/"
    assert attempt(attacker, username="aiko", password=PASSWORD)["Location"] == "/tickets/"


def test_a_successful_login_forgets_earlier_failures(client, keiko, settings):
    settings.AXES_FAILURE_LIMIT = 3
    attempt(client)
    attempt(client)
    assert attempt(client, password=PASSWORD)["Location"] == "/tickets/"
    client.logout()
    attempt(client)
    attempt(client)
    assert attempt(client, password=PASSWORD)["Location"] == "/tickets/"


def test_the_lockout_page_never_redirects_elsewhere(client, keiko, settings):
    settings.AXES_FAILURE_LIMIT = 1
    response = client.post("/login/?next=https://evil.example/", {"username": "keiko", "password": "nope",
                                                                 "next": "https://evil.example/"})
    assert response.status_code == 429 and "evil.example" not in response.content.decode()


def test_signed_in_people_who_are_refused_the_admin_login_see_the_message(client, keiko, settings):
    settings.AXES_FAILURE_LIMIT = 1
    client.force_login(keiko)
    response = attempt(client, "/admin/login/", username="admin")
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
