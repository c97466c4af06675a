"""Fixtures for the tickets tests: settings for the channels, eager Celery, and the stand-in
for the LINE Messaging API that the demo uses too (console.demo.line_api), recording every call."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.demo.line_api import LineApiStandIn
from tests import helpers

EML = Path(__file__).resolve().parent / "eml"
LINE_SECRET = "line-channel-secret-for-tests-5c1e"
LINE_ACCESS_TOKEN = "line-access-token-for-tests"
API_TOKEN = "tickets-api-token-for-tests-90ab"
ATTACHMENT_LIMIT = 20_000


@pytest.fixture(autouse=True)
def tickets_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TICKETS_EMAIL_FROM = "Paydesk Support <support@paydesk.test>"
    settings.TICKETS_EMAIL_DOMAIN = "paydesk.test"
    settings.TICKETS_ATTACHMENT_MAX_BYTES = ATTACHMENT_LIMIT
    settings.TICKETS_API_TOKEN = API_TOKEN
    settings.LINE_CHANNEL_SECRET = LINE_SECRET
    settings.LINE_CHANNEL_ACCESS_TOKEN = LINE_ACCESS_TOKEN
    settings.TICKETS_DELIVERY_MAX_RETRIES = 2
    # The role fixtures hash a password per user; the real hasher costs ~0.5 s each on CI.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def customer(db):
    """A contact who wrote by email (the tickets actions' tests work on her)."""
    from tickets import actions

    contact, _, _ = actions.resolve_contact("email", "Mika Ito <mika@example.jp>", name="Mika Ito")
    return contact


@pytest.fixture
def ticket(customer):
    from tickets import actions

    return actions.receive_message(channel="email", sender="mika@example.jp", subject="Charged twice",
                                   body_text="Please help", channel_message_id="act-1@example.jp").message.ticket


@pytest.fixture
def eager():
    """Tasks run in the test process when their on_commit fires (with capture_on_commit)."""
    with helpers.eager_tasks():
        yield


@pytest.fixture(scope="session")
def line_api_server():
    """The LINE API stand-in the demo uses too (console.demo.line_api), checking the test token."""
    server = LineApiStandIn(access_token=LINE_ACCESS_TOKEN).start()
    yield server
    server.close()


@pytest.fixture
def line_api(line_api_server, settings):
    line_api_server.reset()
    settings.LINE_API_BASE = line_api_server.url
    yield line_api_server
    line_api_server.reset()


def eml(name: str) -> bytes:
    return (EML / name).read_bytes()
