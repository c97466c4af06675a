"""POST /stripe/webhook/: verification, storing once, and every kind of bad input."""

import json
import time

import pytest
import stripe
from django.db import connection

from payments.models import WebhookEvent
from tests import factories
from tests.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


def charge_event(**kw):
    return factories.event("charge.succeeded", factories.ChargeFactory(**kw))


def test_valid_event_is_stored_pending_and_answered_200(post_event):
    payload = charge_event()
    response = post_event(payload)
    assert response.status_code == 200
    assert response.json()["reason"] == "stored"
    stored = WebhookEvent.objects.get(pk=payload["id"])
    assert stored.type == "charge.succeeded"
    assert stored.object_id == payload["data"]["object"]["id"]
    assert stored.payload["data"]["object"]["amount"] == 4200
    # Nothing was applied in the request: the mirror fills from the worker.
    assert stored.status in (WebhookEvent.Status.PENDING, WebhookEvent.Status.APPLIED)


def test_redelivery_is_200_and_changes_nothing(post_event):
    payload = charge_event()
    assert post_event(payload).status_code == 200
    before = WebhookEvent.objects.values().get(pk=payload["id"])
    second = post_event(payload)
    assert second.status_code == 200
    assert second.json()["reason"] == "duplicate"
    assert WebhookEvent.objects.filter(pk=payload["id"]).count() == 1
    assert WebhookEvent.objects.values().get(pk=payload["id"]) == before


def test_rotated_secret_is_accepted(post_event):
    payload = charge_event()
    assert post_event(payload, secret=OLD_WEBHOOK_SECRET).status_code == 200
    assert WebhookEvent.objects.filter(pk=payload["id"]).exists()


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong_secret", "garbage", "stale", "future"],
)
def test_bad_signature_is_400_and_stores_nothing(client, case):
    payload = charge_event()
    body, header = factories.signed(payload, WEBHOOK_SECRET)
    if case == "missing":
        header = None
    elif case == "wrong_secret":
        body, header = factories.signed(payload, "whsec_not_ours")
    elif case == "garbage":
        header = "t=abc,v1=deadbeef"
    elif case == "stale":
        body, header = factories.signed(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    elif case == "future":
        body, header = factories.signed(payload, WEBHOOK_SECRET, timestamp=int(time.time()) + 310)
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
    response = client.generic("POST", "/stripe/webhook/", body, content_type="application/json", **extra)
    assert response.status_code == 400
    assert response.json()["reason"] == "signature verification failed"
    assert WebhookEvent.objects.count() == 0


def test_tampered_body_is_400(client):
    payload = charge_event()
    body, header = factories.signed(payload, WEBHOOK_SECRET)
    tampered = body.replace(b"4200", b"4201")
    response = client.generic("POST", "/stripe/webhook/", tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_signed_body_that_is_not_json_is_400(post_event):
    response = post_event(b"{not json")
    assert response.status_code == 400
    assert response.json()["reason"] == "body is not JSON"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    "payload, reason",
    [
        ([1, 2, 3], "payload is not a JSON object"),
        ({"object": "charge", "id": "ch_1"}, "payload is not an event (object != 'event')"),
        ({"object": "event", "id": "nope", "type": "charge.succeeded", "created": 1, "data": {}}, "event id is missing or malformed"),
        ({"object": "event", "id": "evt_1", "created": 1, "data": {}}, "event type is missing"),
        ({"object": "event", "id": "evt_1", "type": "x.y", "created": "yesterday", "data": {}}, "event created is missing or not a timestamp"),
        ({"object": "event", "id": "evt_1", "type": "x.y", "created": 1700000000}, "event has no data"),
    ],
)
def test_signed_json_that_is_not_an_event_is_400(post_event, payload, reason):
    response = post_event(json.dumps(payload))
    assert response.status_code == 400
    assert response.json()["reason"] == reason
    assert WebhookEvent.objects.count() == 0


def test_body_over_one_megabyte_is_413(post_event):
    payload = charge_event(description="x" * (1024 * 1024))
    response = post_event(payload)
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_unknown_event_type_is_stored_ignored_and_200(post_event):
    payload = factories.event("issuing_card.created", {"id": "ic_123", "object": "issuing.card"})
    response = post_event(payload)
    assert response.status_code == 200
    stored = WebhookEvent.objects.get(pk=payload["id"])
    assert stored.status == WebhookEvent.Status.IGNORED


def test_get_is_405(client):
    assert client.get("/stripe/webhook/").status_code == 405


def test_database_unavailable_is_503_and_never_200(post_event, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("payments.webhooks.store_event", broken)
    response = post_event(charge_event())
    assert response.status_code == 503
    assert response["Retry-After"]


def test_database_really_down_is_503(post_event, settings):
    """A real refused connection, not a patched function: the endpoint answers 503."""
    payload = charge_event()
    original = connection.settings_dict.copy()
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        response = post_event(payload)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert not WebhookEvent.objects.filter(pk=payload["id"]).exists()


@pytest.mark.django_db  # nothing is stored: no need for the module's committed transactions
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"id": "evt_\xc3\x28"}', b"\x80" * 100])
def test_a_body_that_is_not_utf8_is_400_even_when_signed(client, settings, debug, body):
    """The SDK decodes the body itself: UnicodeDecodeError was a 500 (and, with DEBUG on, a
    page listing the frames that held the webhook secrets)."""
    settings.DEBUG = debug
    stamp = int(time.time())
    header = f"t={stamp},v1=" + stripe.WebhookSignature._compute_signature(
        f"{stamp}.{body.decode('utf-8', 'replace')}", WEBHOOK_SECRET)
    response = client.generic("POST", "/stripe/webhook/", body, content_type="application/json",
                              HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert response.json()["reason"] == "signature verification failed"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("header", [
    "t=²,v1=deadbeef", "t=٣,v1=deadbeef", "t=99999999999999999999999,v1=x", "t=-5,v1=x", "t=,v1=",
    "t=1,v1=" + "ÿ" * 64, "t={now},v1=" + "é" * 64, "t={now}", ",,,", "t={now},v1=\x00",
])
def test_a_malformed_signature_header_is_400(client, header):
    body, _ = factories.signed(charge_event(), WEBHOOK_SECRET)
    header = header.replace("{now}", str(int(time.time())))
    response = client.generic("POST", "/stripe/webhook/", body, content_type="application/json",
                              HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
