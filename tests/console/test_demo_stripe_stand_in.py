"""The demo's Stripe stand-in (console/demo/localstripe_server.py) announces what a write to a
dispute changed, as Stripe does: a signed `charge.dispute.updated` with its previous attributes,
a `charge.dispute.closed`; a replayed request (same idempotency key) announces nothing again.
And it corrects what localstripe says of a customer's currency."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from console.demo.seed import register_webhook
from tests.payments.test_dispute_actions import tell
from tests.payments.test_stripe_actions import gateway_server, gw, ls, make_customer, make_subscription  # noqa: F401

SECRET = "whsec_stand_in_test"
EVENTS = ["charge.dispute.updated", "charge.dispute.closed"]


@pytest.fixture
def hooks(localstripe):
    """Deliveries localstripe makes to a local endpoint: (payload, Stripe-Signature) pairs."""
    received: list[tuple[bytes, str]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((body, self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    register_webhook(localstripe.url, "stand-in-test", url, SECRET, events=EVENTS)
    yield received
    register_webhook(localstripe.url, "stand-in-test", url, SECRET, events=[])  # no more deliveries
    server.shutdown()


def _wait(received, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    for body, signature in received:
        stripe.Webhook.construct_event(body, signature, SECRET)  # raises unless validly signed
    return [json.loads(body) for body, _signature in received]


def _post(localstripe, path: str, data: dict, key: str) -> requests.Response:
    return requests.post(f"{localstripe.url}{path}", data=data, timeout=10,
                         headers={"Authorization": f"Bearer {localstripe.key}", "Idempotency-Key": key})


def test_an_evidence_update_is_announced_with_what_it_changed(localstripe, hooks):
    dispute = tell(localstripe, amount=3200, currency="usd")
    answer = _post(localstripe, f"/v1/disputes/{dispute['id']}",
                   {"evidence[customer_name]": "Misaki Sato", "submit": "true"}, key="k-update")
    assert answer.status_code == 200 and answer.json()["status"] == "under_review"
    replay = _post(localstripe, f"/v1/disputes/{dispute['id']}",
                   {"evidence[customer_name]": "Misaki Sato", "submit": "true"}, key="k-update")
    assert replay.headers.get("Idempotent-Replayed") == "true"

    [event] = _wait(hooks, 1)
    time.sleep(1.5)  # a replay would have been announced by now (the sender waits 1 s)
    assert len(hooks) == 1
    assert event["type"] == "charge.dispute.updated" and event["api_version"] == stripe.api_version
    assert event["data"]["object"]["id"] == dispute["id"]
    assert event["data"]["object"]["evidence"]["customer_name"] == "Misaki Sato"
    previous = event["data"]["previous_attributes"]
    assert previous["status"] == "needs_response" and previous["evidence"]["customer_name"] is None
    assert previous["evidence_details"]["submission_count"] == 0


def test_accepting_is_announced_as_closed_and_a_refused_write_announces_nothing(localstripe, hooks):
    dispute = tell(localstripe, amount=3200, currency="usd")
    assert _post(localstripe, f"/v1/disputes/{dispute['id']}/close", {}, key="k-close").status_code == 200
    refused = _post(localstripe, f"/v1/disputes/{dispute['id']}", {"evidence[customer_name]": "x"}, key="k-late")
    assert refused.status_code == 400

    [event] = _wait(hooks, 1)
    time.sleep(1.5)
    assert len(hooks) == 1
    assert event["type"] == "charge.dispute.closed" and event["data"]["object"]["status"] == "lost"


def test_a_customer_s_currency_is_their_subscription_s_not_localstripe_s_euro(gw, ls):
    """localstripe 1.15 says "eur" for every card customer; Stripe says the currency of their
    recurring billing, null until there is some."""
    customer = make_customer(ls, mirror=False)
    assert ls.v1.customers.retrieve(customer["id"]).currency is None
    make_subscription(ls, customer, amount=3200)
    assert ls.v1.customers.retrieve(customer["id"]).currency == "jpy"
