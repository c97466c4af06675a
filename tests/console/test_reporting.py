"""console.reporting.SecretsFilter: Django's error reports, the DEBUG page included, never show
a configured secret: not in the frames of our code, not in the SDKs' frames below it, not in
the settings, not in posted passwords."""

from __future__ import annotations

import json

import pytest
import stripe
from django.test import Client

from tests import factories
from tests.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

LINE_SECRET = "line-channel-secret-for-reporting-8d2f"
API_TOKEN = "tickets-api-token-for-reporting-3b7a"
STRIPE_KEY = "sk_test_reporting_key_5f0e9c1a"
ANYMAIL_SECRET = "inbound:anymail-password-for-reporting-77"
BROKER_PASSWORD = "broker-password-for-reporting-19"
PASSWORD = "correct horse battery"


class Boom(Exception):
    pass


def boom(*args, **kwargs):
    raise Boom("something broke deep inside")


@pytest.fixture
def debug(settings):
    """DEBUG on, every secret configured; a client that gets the 500 page instead of raising."""
    settings.DEBUG = True
    settings.LINE_CHANNEL_SECRET = LINE_SECRET
    settings.TICKETS_API_TOKEN = API_TOKEN
    settings.STRIPE_API_KEY = STRIPE_KEY
    settings.ANYMAIL = {"WEBHOOK_SECRET": ANYMAIL_SECRET}
    settings.TICKETS_INBOUND_EMAIL_ESPS = ["postmark"]
    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@127.0.0.1:6379/11"
    return Client(raise_request_exception=False)


SECRETS = (WEBHOOK_SECRET, OLD_WEBHOOK_SECRET, LINE_SECRET, API_TOKEN, STRIPE_KEY, ANYMAIL_SECRET,
           ANYMAIL_SECRET.partition(":")[2], BROKER_PASSWORD, PASSWORD)


def shown(response) -> list[str]:
    """The secrets a 500 page shows (it must be Django's debug page, with its frames)."""
    assert response.status_code == 500
    page = response.content.decode()
    assert "Traceback" in page and "Local vars" in page and "something broke deep inside" in page
    return [secret for secret in SECRETS if secret in page]


def test_stripe_webhook_secrets_in_the_sdks_frames(debug, monkeypatch):
    body, header = factories.signed(factories.event("charge.succeeded", factories.ChargeFactory()), WEBHOOK_SECRET)
    monkeypatch.setattr(stripe.WebhookSignature, "_compute_signature", boom)
    response = debug.generic("POST", "/stripe/webhook/", body, content_type="application/json",
                             HTTP_STRIPE_SIGNATURE=header)
    assert shown(response) == []


def test_stripe_api_key_in_the_sdks_frames(debug, monkeypatch, agent):
    from payments import stripe_api

    stripe_api._client.cache_clear()
    monkeypatch.setattr(stripe.StripeClient, "__init__", boom)
    monkeypatch.setattr("console.views.shell.selectors.overview", lambda user: stripe_api.client())
    debug.force_login(agent)
    assert shown(debug.get("/")) == []
    stripe_api._client.cache_clear()


def test_line_channel_secret(debug, monkeypatch):
    body = factories.line_payload(factories.line_event())
    signature = factories.line_signature(body, LINE_SECRET)
    monkeypatch.setattr("tickets.line.hmac.new", boom)  # inside the signature check, the secret in hand
    response = debug.post("/line/webhook/", body, content_type="application/json", HTTP_X_LINE_SIGNATURE=signature)
    assert shown(response) == []


def test_contacts_api_token(debug, monkeypatch):
    monkeypatch.setattr("tickets.api.link_identity_to", boom)
    body = {"contact": {"kind": "email", "value": "a@example.jp"}, "identity": {"kind": "line", "value": "U" + "a" * 32}}
    response = debug.post("/api/contacts/link", json.dumps(body), content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")
    assert shown(response) == []


def test_anymail_basic_auth(debug, monkeypatch):
    import base64

    monkeypatch.setattr("anymail.webhooks.postmark.PostmarkInboundWebhookView.parse_events", boom)
    auth = base64.b64encode(ANYMAIL_SECRET.encode()).decode()
    response = debug.post("/anymail/postmark/inbound/", "{}", content_type="application/json",
                          HTTP_AUTHORIZATION=f"Basic {auth}")
    assert shown(response) == []


def test_posted_password_and_broker_url(debug, monkeypatch):
    factories.UserFactory(username="keiko", role="agent")
    monkeypatch.setattr("django.contrib.auth.backends.ModelBackend.authenticate", boom)
    response = debug.post("/login/", {"username": "keiko", "password": PASSWORD})
    assert shown(response) == []


def test_short_or_unset_secrets_hide_nothing_else(settings):
    from console.reporting import configured_secrets

    settings.SECRET_KEY, settings.TICKETS_API_TOKEN, settings.LINE_CHANNEL_SECRET = "x", "", ""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/11"
    assert "x" not in configured_secrets() and "" not in configured_secrets()
