"""payments.samples: Stripe's example objects, events around them, Stripe's signature scheme."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import stripe

from payments import samples
from payments.events import validate_event


def test_vendored_samples_are_stripes_own_objects_with_their_licence():
    """samples.json holds Stripe's example objects, each the resource it is filed under, and
    says where they come from; the MIT licence they are shipped under stands beside it."""
    vendored = samples.resources()
    assert {"charge", "refund", "dispute", "radar.early_fraud_warning", "price", "event",
            "billing_portal.session"} <= set(vendored)
    for name, obj in vendored.items():
        assert obj["object"] == name, name
    raw = json.loads((Path(samples.__file__).with_name("samples.json")).read_text(encoding="utf-8"))
    assert "stripe/openapi" in raw["_source"] and "samples.LICENSE" in raw["_source"]
    licence = Path(samples.__file__).with_name("samples.LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence and "Stripe, Inc." in licence


def test_sample_is_a_fresh_copy_with_fields_on_top():
    first = samples.sample("charge", amount=3200, currency="jpy")
    first["billing_details"]["name"] = "佐藤 美咲"
    second = samples.sample("charge")
    assert first["amount"] == 3200 and first["currency"] == "jpy"
    assert second["billing_details"]["name"] == samples.resources()["charge"]["billing_details"]["name"]


def test_new_ids_look_like_stripes():
    ids = {samples.new_id("evt") for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("evt_") and len(i) == 28 and i[4:].isalnum() for i in ids)


def test_event_is_valid_and_uses_the_mirrors_api_version(settings):
    obj = samples.sample("dispute", id="dp_1TestDispute")
    payload = samples.event("charge.dispute.created", obj, created=1_700_000_000,
                            previous_attributes={"status": "warning_needs_response"})
    assert validate_event(payload) is payload
    assert payload["api_version"] == settings.STRIPE_API_VERSION
    assert payload["data"] == {"object": obj, "previous_attributes": {"status": "warning_needs_response"}}
    assert samples.event("customer.updated", {}, api_version="2017-08-15")["api_version"] == "2017-08-15"


@pytest.mark.parametrize("payload", [{"id": "evt_1", "note": "抹茶 定期便"}, "{}", b'{"a": 1}'])
def test_signature_verifies_with_the_sdk(payload):
    body, header = samples.sign(payload, "whsec_sample_secret")
    assert stripe.WebhookSignature.verify_header(body, header, "whsec_sample_secret", 300)
    if isinstance(payload, dict):
        assert json.loads(body) == payload
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, "whsec_another_secret", 300)


def test_signature_timestamp_is_the_one_given():
    stamp = int(time.time()) - 1000
    body, header = samples.sign({"id": "evt_1"}, "whsec_s", timestamp=stamp)
    assert header.startswith(f"t={stamp},v1=")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, "whsec_s", 300)
