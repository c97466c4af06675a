"""tickets/channel_urls.py: anymail's inbound routes answer only for the enabled providers, and
refuse (400) a post their parser can't read, whoever sends it; nothing is stored."""

from __future__ import annotations

import base64

import pytest

from tickets.models import Message

pytestmark = pytest.mark.django_db

AUTH = "anymail:inbound-secret-for-tests"


@pytest.fixture(autouse=True)
def inbound_enabled(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": AUTH}
    settings.TICKETS_INBOUND_EMAIL_ESPS = ["postmark", "sendgrid"]


def post(client, esp: str, body, content_type: str = "application/json", auth: str | None = AUTH):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return client.post(f"/anymail/{esp}/inbound/", body, content_type=content_type, **headers)


@pytest.mark.parametrize("esp, body, content_type", [
    ("postmark", "not json", "application/json"),
    ("postmark", b"\xff\xfe", "application/json"),
    ("postmark", "[1, 2]", "application/json"),
    ("postmark", '{"RawEmail": 5}', "application/json"),
    ("postmark", "amount=1", "application/x-www-form-urlencoded"),
    ("sendgrid", "{}", "application/json"),
])
def test_an_unreadable_post_is_refused_even_with_the_right_credentials(client, esp, body, content_type):
    assert post(client, esp, body, content_type).status_code == 400
    assert post(client, esp, body, content_type, auth="anymail:guessed").status_code == 400
    assert post(client, esp, body, content_type, auth=None).status_code == 400
    assert not Message.objects.exists()


def test_a_provider_not_enabled_answers_404(client):
    assert post(client, "mailgun", "{}").status_code == 404
