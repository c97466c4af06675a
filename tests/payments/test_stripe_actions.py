"""payments.actions (refunds, subscriptions, customers) over real HTTP: the SDK talks to localstripe through a small
recording gateway.

The gateway (a real HTTP server in a thread) sits between the app's StripeClient and
localstripe. It records every request the SDK sent (method, path, form parameters,
Idempotency-Key), so tests assert what Stripe would have received. It also covers what
localstripe lacks:
- billing-portal sessions: answered with the recorded `billing_portal.session` shape from
  payments/samples.json (Stripe's own example), filled in from the request like Stripe does, and, as
  Stripe does, the same answer again for a request with the same Idempotency-Key (another
  request with that key is an idempotency_error);
- parameters localstripe 1.15 rejects with "Unexpected ..." although Stripe accepts them
  (a refund's `reason`, a subscription update's `cancellation_details`): recorded, then
  dropped before forwarding;
- faults: a 500 answer, or an answer held back past the client's timeout.
Disputes, files and fraud warnings go on to the stand-in's own routes beside localstripe
(console/demo/localstripe_server.py), a file upload as the multipart body it came as.
Test data is created with the SDK directly at localstripe.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
import stripe
from django.core.exceptions import PermissionDenied
from django.db import connection

from audit.models import AuditEntry
from payments import errors
from payments.actions import customers, refunds, subscriptions
from payments.mirror import upsert_fetched
from payments.models import Charge, Customer, Refund, Subscription
from tests import factories

pytestmark = pytest.mark.django_db

LIMITS = {"agent": {"usd": 10000, "jpy": 15000, "*": 0}, "finance": None, "admin": None}
# What localstripe 1.15 refuses but Stripe accepts: (method, path prefix, parameter prefix).
UNSUPPORTED = [("POST", "/v1/refunds", "reason"), ("POST", "/v1/subscriptions/", "cancellation_details")]


class Gateway:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.requests: list[dict] = []
        self.faults: list[dict] = []
        self.portal_answers: dict[str, tuple[dict, bytes]] = {}  # Idempotency-Key → (params, answer)
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                gateway.handle(self)

            do_GET = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.portal_answers.clear()

    def fault(self, method: str, path: str, *, status: int | None = None, delay: float = 0.0) -> threading.Event:
        """The next matching request answers `status`, or is held `delay` seconds and then forwarded."""
        done = threading.Event()
        with self.lock:
            self.faults.append({"method": method, "path": path, "status": status, "delay": delay, "done": done})
        return done

    def sent(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path)]

    def handle(self, h: BaseHTTPRequestHandler):
        split = urlsplit(h.path)
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        content_type = h.headers.get("Content-Type") or ""
        multipart = h.command == "POST" and content_type.startswith("multipart/form-data")
        uploads: dict = {}
        if multipart:  # a file upload: its fields, and each file's name and bytes
            pairs, uploads = multipart_fields(raw, content_type)
        else:
            pairs = parse_qsl(raw.decode() if h.command == "POST" else split.query, keep_blank_values=True)
        record = {
            "method": h.command, "path": split.path, "params": dict(pairs), "files": uploads,
            "content_type": content_type, "idempotency_key": h.headers.get("Idempotency-Key"),
        }
        with self.lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f["method"] == h.command and split.path.startswith(f["path"])), None)
            if fault:
                self.faults.remove(fault)
        try:
            if fault and fault["status"]:
                error = {"error": {"type": "api_error", "message": "An unknown error occurred (injected by the test gateway)."}}
                return self.answer(h, fault["status"], json.dumps(error).encode())
            if fault and fault["delay"]:
                time.sleep(fault["delay"])
            if h.command == "POST" and split.path == "/v1/billing_portal/sessions":
                return self.portal(h, record)
            kept = [
                (k, v) for k, v in pairs
                if not any(h.command == m and split.path.startswith(p) and k.startswith(n) for m, p, n in UNSUPPORTED)
            ]
            data = raw if multipart else urlencode(kept).encode() if h.command == "POST" else None
            query = urlencode(kept) if h.command != "POST" else split.query
            headers = {"Authorization": h.headers.get("Authorization", ""),
                       "Content-Type": content_type if multipart else "application/x-www-form-urlencoded"}
            if record["idempotency_key"]:  # the stand-in's own routes (disputes, files) keep answers by key
                headers["Idempotency-Key"] = record["idempotency_key"]
            upstream = requests.request(
                h.command, f"{self.upstream}{split.path}" + (f"?{query}" if query else ""), data=data,
                headers=headers, timeout=10,
            )
            try:
                self.answer(h, upstream.status_code, upstream.content)
            except OSError:
                pass  # the client gave up (a timeout test): the request still reached localstripe
        finally:
            if fault:
                fault["done"].set()

    def portal(self, h, record: dict):
        key = record["idempotency_key"]
        with self.lock:
            kept = self.portal_answers.get(key) if key else None
            if kept is None:
                kept = (record["params"], json.dumps(portal_session(record["params"])).encode())
                if key:
                    self.portal_answers[key] = kept
            elif kept[0] != record["params"]:
                error = {"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be "
                                   "used with the same parameters they were first used with."}}
                return self.answer(h, 400, json.dumps(error).encode())
        return self.answer(h, 200, kept[1])

    @staticmethod
    def answer(h, status: int, payload: bytes):
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("Request-Id", f"req_{uuid.uuid4().hex[:14]}")
        h.end_headers()
        h.wfile.write(payload)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def multipart_fields(raw: bytes, content_type: str) -> tuple[list[tuple[str, str]], dict[str, dict]]:
    """A multipart/form-data body as Stripe reads it: its fields, and its files by field name."""
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw,
                                       policy=email.policy.HTTP)
    fields, uploads = [], {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            uploads[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True),
                             "content_type": part.get_content_type()}
        else:
            fields.append((name, part.get_payload(decode=True).decode()))
    return fields, uploads


def portal_session(params: dict) -> dict:
    """Stripe's recorded billing_portal.session, answering this request."""
    session = json.loads(json.dumps(factories.RESOURCES["billing_portal.session"]))
    secret = uuid.uuid4().hex
    flow = None
    if params.get("flow_data[type]"):
        kind = params["flow_data[type]"]
        flow = {
            "type": kind,
            "after_completion": {
                "type": params.get("flow_data[after_completion][type]", "portal_homepage"),
                "hosted_confirmation": None, "redirect": None,
            },
            "subscription_cancel": None, "subscription_update": None, "subscription_update_confirm": None,
        }
        if flow["after_completion"]["type"] == "redirect":
            flow["after_completion"]["redirect"] = {"return_url": params["flow_data[after_completion][redirect][return_url]"]}
        if kind == "subscription_cancel":
            coupon = params.get("flow_data[subscription_cancel][retention][coupon_offer][coupon]")
            flow["subscription_cancel"] = {
                "subscription": params["flow_data[subscription_cancel][subscription]"],
                "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}} if coupon else None,
            }
        if kind == "subscription_update":
            flow["subscription_update"] = {"subscription": params["flow_data[subscription_update][subscription]"]}
    session.update(
        id=f"bps_{uuid.uuid4().hex[:24]}", customer=params["customer"], created=int(time.time()), livemode=False,
        flow=flow, locale=params.get("locale"), return_url=params.get("return_url"),
        url=f"https://billing.stripe.com/p/session/test_{secret}",
    )
    return session


@pytest.fixture(scope="session")
def gateway_server(localstripe_server):
    gateway = Gateway(localstripe_server.url)
    yield gateway
    gateway.close()


@pytest.fixture
def gw(localstripe, gateway_server, settings):
    """The app's Stripe client goes through the gateway; test data is made at localstripe."""
    gateway_server.reset()
    settings.STRIPE_API_BASE = gateway_server.url
    settings.PAYMENTS_REFUND_LIMITS = LIMITS
    yield gateway_server
    gateway_server.reset()


@pytest.fixture
def ls(localstripe):
    return localstripe.client()


def token() -> str:
    return str(uuid.uuid4())


def make_customer(ls, name="Misaki Sato", card="4242424242424242", mirror=True) -> dict:
    customer = ls.v1.customers.create({"name": name, "email": "misaki.sato@example.jp"})
    pm = ls.v1.payment_methods.create(
        {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    )
    ls.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    customer = ls.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}}).to_dict()
    if mirror:  # as the webhook did, a minute ago (the mirror keeps whole seconds)
        upsert_fetched([customer], int(time.time()) - 60)
    return customer


def make_charge(ls, customer, amount=3200, currency="jpy", capture=True) -> dict:
    return ls.v1.charges.create({"amount": amount, "currency": currency, "customer": customer["id"], "capture": capture}).to_dict()


def twice_at_once(submit) -> list:
    """Two threads call `submit` at the same moment (a double click reaching two workers):
    what each got back, a result or the ActionError it raised."""
    outcomes: list = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        try:
            outcomes.append(submit())
        except errors.ActionError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return outcomes


def ls_refunds(ls, charge_id) -> list[dict]:
    return [r.to_dict() for r in ls.v1.refunds.list({"charge": charge_id}).data]


def audit(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


# --- refunds -------------------------------------------------------------------------------


def test_partial_refund_describes_refunds_mirrors_and_audits(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls))
    plan = refunds.plan_refund(charge["id"], actor=agent, amount=1000, currency="jpy")
    assert plan.describe() == (
        f"Refund ¥1,000 of ¥3,200 to Misaki Sato's payment method (charge {charge['id']}); ¥2,200 stays captured."
    )
    t = token()
    result = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="JPY", reason="requested_by_customer",
                              note="Arrived damaged", ticket_ref="T-1042", idempotency_key=t)
    assert not result.replayed and result.refund["amount"] == 1000

    sent = gw.sent("POST", "/v1/refunds")
    assert len(sent) == 1
    assert sent[0]["idempotency_key"] == f"paydesk:refund:{charge['id']}:{t}"
    assert sent[0]["params"]["amount"] == "1000" and sent[0]["params"]["charge"] == charge["id"]
    assert sent[0]["params"]["reason"] == "requested_by_customer"
    assert sent[0]["params"]["metadata[paydesk_ticket]"] == "T-1042"
    assert sent[0]["params"]["metadata[paydesk_actor]"] == "agent"

    assert [r["amount"] for r in ls_refunds(ls, charge["id"])] == [1000]
    mirrored = Charge.objects.get(pk=charge["id"])
    assert (mirrored.amount_refunded, mirrored.refunded) == (1000, False)
    assert Refund.objects.get(pk=result.refund["id"]).amount == 1000

    [entry] = audit("charge.refund")
    assert entry.actor == agent and entry.target == charge["id"]
    assert entry.details["amount"] == 1000 and entry.details["currency"] == "jpy"
    assert entry.details["ticket"] == "T-1042" and entry.details["refund"] == result.refund["id"]
    assert entry.details["description"].startswith("Refund ¥1,000 of ¥3,200")


def test_full_refund_takes_the_remainder(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls), amount=5000, currency="usd")
    refunds.refund_charge(charge["id"], actor=agent, amount=1500, currency="usd", idempotency_key=token())
    plan = refunds.plan_refund(charge["id"], actor=agent, currency="usd")
    assert plan.amount == 3500
    assert plan.describe().endswith("$15.00 was refunded before; the charge is then fully refunded.")
    result = refunds.refund_charge(charge["id"], actor=agent, currency="usd", idempotency_key=token())
    assert result.refund["amount"] == 3500
    assert sorted(r["amount"] for r in ls_refunds(ls, charge["id"])) == [1500, 3500]
    mirrored = Charge.objects.get(pk=charge["id"])
    assert (mirrored.amount_refunded, mirrored.refunded) == (5000, True)
    with pytest.raises(errors.ActionRefused, match="already fully refunded"):
        refunds.plan_refund(charge["id"], actor=agent, currency="usd")


@pytest.mark.parametrize(
    ("amount", "currency", "code", "message"),
    [
        (2300, "jpy", "above_remainder", "Only ¥2,200 of ¥3,200 can still be refunded (¥1,000 already refunded); ¥2,300 is more"),
        (0, "jpy", "amount", "more than zero"),
        (-500, "jpy", "amount", "more than zero"),
        (500, "usd", "currency", "is in JPY, not USD"),
    ],
)
def test_bad_refunds_are_refused_and_nothing_is_written(gw, ls, agent, amount, currency, code, message):
    charge = make_charge(ls, make_customer(ls))
    ls.v1.refunds.create({"charge": charge["id"], "amount": 1000})
    with pytest.raises(errors.ActionRefused, match=re.escape(message)) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=amount, currency=currency, idempotency_key=token())
    assert caught.value.code == code
    assert gw.sent("POST", "/v1/refunds") == []
    assert [r["amount"] for r in ls_refunds(ls, charge["id"])] == [1000]
    assert Refund.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_disputed_charge_is_refused(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls))
    # localstripe has no disputes: the mirror knows of one from the webhook.
    upsert_fetched([{**charge, "disputed": True}], int(time.time()))
    upsert_fetched([factories.DisputeFactory(charge=charge["id"], amount=3200, currency="jpy")], int(time.time()))
    with pytest.raises(errors.ActionRefused, match="is disputed \\(needs response\\)") as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=token())
    assert caught.value.code == "disputed"
    assert gw.sent("POST", "/v1/refunds") == [] and ls_refunds(ls, charge["id"]) == []


def test_uncaptured_and_failed_charges_are_refused(gw, ls, agent):
    customer = make_customer(ls)
    held = make_charge(ls, customer, capture=False)
    with pytest.raises(errors.ActionRefused, match="only authorized, not captured"):
        refunds.refund_charge(held["id"], actor=agent, currency="jpy", idempotency_key=token())
    declined_customer = make_customer(ls, name="Ken Ito", card="4000000000000341")
    with pytest.raises(stripe.CardError):
        make_charge(ls, declined_customer)
    [failed] = [c for c in ls.v1.charges.list({"customer": declined_customer["id"]}).data]
    with pytest.raises(errors.ActionRefused, match="failed: no money was taken"):
        refunds.refund_charge(failed.id, actor=agent, currency="jpy", idempotency_key=token())
    assert gw.sent("POST", "/v1/refunds") == []


def test_agent_over_the_limit_is_told_to_ask_finance_and_finance_may(gw, ls, agent, finance):
    charge = make_charge(ls, make_customer(ls), amount=25000, currency="usd")
    with pytest.raises(errors.RefundLimitExceeded) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=12000, currency="usd", idempotency_key=token())
    assert caught.value.message == "Refunds above $100.00 need finance — ask in #finance or assign the ticket to Finance."
    assert gw.sent("POST", "/v1/refunds") == []
    # At the limit is allowed; a currency without a limit of its own is finance's.
    assert refunds.plan_refund(charge["id"], actor=agent, amount=10000, currency="usd").amount == 10000
    assert refunds.refund_limit(agent, "chf") == 0 and refunds.refund_limit(finance, "usd") is None

    result = refunds.refund_charge(charge["id"], actor=finance, amount=12000, currency="usd", idempotency_key=token())
    assert result.refund["amount"] == 12000
    [entry] = audit("charge.refund")
    assert entry.actor == finance and entry.details["amount"] == 12000


def test_split_refunds_count_toward_the_agents_limit_on_that_charge(gw, ls, agent, finance, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 10000}, "finance": None}
    charge = make_charge(ls, make_customer(ls), amount=30000)
    refunds.refund_charge(charge["id"], actor=agent, amount=8000, currency="jpy", idempotency_key=token())
    # Someone refunding at Stripe directly is not the agent: it doesn't use their budget.
    ls.v1.refunds.create({"charge": charge["id"], "amount": 5000})
    expected = ("You have already refunded ¥8,000 of this charge; refunds above ¥10,000 per charge need finance — "
                "ask in #finance or assign the ticket to Finance.")
    # The preview says so before anything is confirmed, and the refund itself is refused.
    with pytest.raises(errors.RefundLimitExceeded) as previewed:
        refunds.plan_refund(charge["id"], actor=agent, amount=3000, currency="jpy")
    assert previewed.value.message == expected and previewed.value.already == 8000
    with pytest.raises(errors.RefundLimitExceeded) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=3000, currency="jpy", idempotency_key=token())
    assert caught.value.message == expected and caught.value.limit == 10000
    assert len(gw.sent("POST", "/v1/refunds")) == 1
    # Up to the limit in total is still the agent's to do.
    assert refunds.refund_charge(charge["id"], actor=agent, amount=2000, currency="jpy", idempotency_key=token()).refund["amount"] == 2000
    with pytest.raises(errors.RefundLimitExceeded, match="already refunded ¥10,000 of this charge"):
        refunds.plan_refund(charge["id"], actor=agent, amount=1, currency="jpy")
    assert refunds.refunded_by(agent, charge["id"]) == 10000

    # Another agent has their own budget on the same charge; finance has no limit.
    other = factories.UserFactory(username="agent2", role="agent")
    assert refunds.refund_charge(charge["id"], actor=other, amount=4000, currency="jpy", idempotency_key=token()).refund["amount"] == 4000
    assert refunds.refund_charge(charge["id"], actor=finance, amount=1000, currency="jpy", idempotency_key=token()).refund["amount"] == 1000
    # What the agent did on another charge is another budget.
    second = make_charge(ls, make_customer(ls, name="Ken Ito"), amount=30000)
    assert refunds.plan_refund(second["id"], actor=agent, amount=10000, currency="jpy").amount == 10000
    assert sorted(r["amount"] for r in ls_refunds(ls, charge["id"])) == [1000, 2000, 4000, 5000, 8000]


def test_a_replayed_refund_is_not_refused_by_the_limit_it_used(gw, ls, agent, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 1000}}
    charge = make_charge(ls, make_customer(ls))
    t = token()
    refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    again = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert again.replayed and len(ls_refunds(ls, charge["id"])) == 1


def test_double_submit_with_the_same_token_refunds_once(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls))
    t = token()
    first = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    second = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.refund["id"] == first.refund["id"]
    assert "nothing was refunded again" in second.message
    assert len(ls_refunds(ls, charge["id"])) == 1 and len(gw.sent("POST", "/v1/refunds")) == 1
    assert len(audit("charge.refund")) == 1
    # The same token can't be stretched to another amount.
    with pytest.raises(errors.ActionRefused, match="a different amount needs a new confirmation"):
        refunds.refund_charge(charge["id"], actor=agent, amount=500, currency="jpy", idempotency_key=t)


@pytest.mark.django_db(transaction=True)
def test_two_tabs_within_the_limit_each_cannot_pass_it_together(gw, ls, agent, settings):
    # The probe: one agent (limit ¥10,000 per charge) previews ¥6,000 twice in two tabs and
    # confirms both at the same moment. The limit is checked and spent under the charge's lock.
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 10_000}}
    charge = make_charge(ls, make_customer(ls), amount=20_000)
    gw.fault("POST", "/v1/refunds", delay=0.5)  # the first refund is in flight when the second checks
    outcomes = twice_at_once(
        lambda: refunds.refund_charge(charge["id"], actor=agent, amount=6000, currency="jpy", idempotency_key=token()))
    made = [o for o in outcomes if isinstance(o, refunds.RefundResult)]
    refused = [o for o in outcomes if isinstance(o, errors.RefundLimitExceeded)]
    assert (len(made), len(refused)) == (1, 1), outcomes
    assert "already refunded ¥6,000 of this charge" in refused[0].message
    assert sum(r["amount"] for r in ls_refunds(ls, charge["id"])) == 6000
    assert len(audit("charge.refund")) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_with_the_same_token_refund_once(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls))
    t = token()
    gw.fault("POST", "/v1/refunds", delay=0.5)  # keeps the first submit in flight
    outcomes = twice_at_once(
        lambda: refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t))
    assert len(outcomes) == 2
    made = [o for o in outcomes if isinstance(o, refunds.RefundResult) and not o.replayed]
    others = [o for o in outcomes if o not in made]
    assert len(made) == 1
    assert isinstance(others[0], errors.ActionInProgress) or others[0].replayed
    assert len(ls_refunds(ls, charge["id"])) == 1
    assert len(audit("charge.refund")) == 1


def test_role_without_permission_is_refused_before_stripe(gw, ls, finance, db):
    nobody = factories.UserFactory(username="viewer")
    charge = make_charge(ls, make_customer(ls))
    with pytest.raises(PermissionDenied, match="can't refund charges"):
        refunds.refund_charge(charge["id"], actor=nobody, amount=100, currency="jpy", idempotency_key=token())
    with pytest.raises(PermissionDenied, match="can't cancel subscriptions"):
        subscriptions.cancel_subscription("sub_x", actor=finance, at_period_end=False, idempotency_key=token())
    with pytest.raises(PermissionDenied, match="can't change customer metadata"):
        customers.update_customer_metadata("cus_x", {"Tier": "VIP"}, actor=finance)
    with pytest.raises(PermissionDenied, match="can't create billing-portal links"):
        customers.create_portal_session("cus_x", actor=finance)
    assert gw.requests == [] and AuditEntry.objects.count() == 0


def test_stripe_500_is_a_clear_error_and_nothing_is_half_applied(gw, ls, agent):
    charge = make_charge(ls, make_customer(ls))
    upsert_fetched([charge], int(time.time()) - 60)
    gw.fault("POST", "/v1/refunds", status=500)
    with pytest.raises(errors.StripeActionFailed) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=token())
    assert caught.value.transient and caught.value.http_status == 500
    assert caught.value.message.startswith(f"Stripe had an internal error (HTTP 500) while trying to refund ¥1,000 of charge {charge['id']}.")
    assert "never done twice" in caught.value.message
    assert Charge.objects.get(pk=charge["id"]).amount_refunded == 0
    assert Refund.objects.count() == 0 and AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (429, "rate_limit", "Stripe is limiting requests right now and did not refund ¥1,000"),
        (503, "api_error", "Stripe had an internal error (HTTP 503)"),
    ],
)
def test_other_stripe_failures_are_mapped(gw, ls, agent, status, error, message):
    charge = make_charge(ls, make_customer(ls))
    gw.fault("POST", "/v1/refunds", status=status)
    with pytest.raises(errors.StripeActionFailed) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=token())
    assert caught.value.code == error and caught.value.transient
    assert caught.value.message.startswith(message)
    assert Refund.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_no_api_key_is_a_clear_error(db, agent):
    # The autouse stripe_settings fixture leaves STRIPE_API_KEY empty.
    with pytest.raises(errors.StripeActionFailed, match="Stripe is not configured here \\(no API key\\)") as caught:
        refunds.refund_charge("ch_1", actor=agent, amount=100, currency="usd", idempotency_key=token())
    assert caught.value.code == "authentication" and AuditEntry.objects.count() == 0


def test_unknown_charge_is_a_clear_4xx_error(gw, agent):
    with pytest.raises(errors.StripeActionFailed) as caught:
        refunds.refund_charge("ch_doesnotexist", actor=agent, amount=1000, currency="jpy", idempotency_key=token())
    assert caught.value.http_status == 404 and not caught.value.transient
    assert caught.value.message.startswith("Stripe couldn't read charge ch_doesnotexist: ")
    assert gw.sent("POST", "/v1/refunds") == [] and AuditEntry.objects.count() == 0


def test_timeout_then_retry_with_the_same_token_records_the_refund_once(gw, ls, agent, settings):
    settings.STRIPE_API_TIMEOUT = 0.5
    charge = make_charge(ls, make_customer(ls))
    t = token()
    forwarded = gw.fault("POST", "/v1/refunds", delay=1.5)  # Stripe is slow, the client gives up
    with pytest.raises(errors.StripeActionFailed) as caught:
        refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert caught.value.code == "connection" and caught.value.transient
    assert "network error or timeout" in caught.value.message
    assert Refund.objects.count() == 0 and AuditEntry.objects.count() == 0
    # Stripe did make the refund after all; the retry finds it instead of refunding again.
    assert forwarded.wait(10)
    retry = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert retry.replayed and retry.refund["amount"] == 1000
    assert len(ls_refunds(ls, charge["id"])) == 1
    assert Refund.objects.filter(pk=retry.refund["id"]).exists()
    [entry] = audit("charge.refund")
    assert entry.details["recovered"] is True and entry.details["amount"] == 1000


def test_retry_audits_a_lost_refund_even_when_the_webhook_mirrored_it_first(gw, ls, agent, settings):
    settings.STRIPE_API_TIMEOUT = 0.5
    charge = make_charge(ls, make_customer(ls))
    t = token()
    forwarded = gw.fault("POST", "/v1/refunds", delay=1.5)
    with pytest.raises(errors.StripeActionFailed):
        refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert forwarded.wait(10)
    # Stripe's refund.created reaches the mirror before the agent retries.
    [made] = ls_refunds(ls, charge["id"])
    upsert_fetched([made], int(time.time()))
    assert AuditEntry.objects.count() == 0
    retry = refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert retry.replayed and len(ls_refunds(ls, charge["id"])) == 1
    [entry] = audit("charge.refund")
    assert entry.details["recovered"] is True and entry.details["refund"] == made["id"]
    # Once audited, a further retry adds nothing.
    refunds.refund_charge(charge["id"], actor=agent, amount=1000, currency="jpy", idempotency_key=t)
    assert len(audit("charge.refund")) == 1


# --- subscriptions -------------------------------------------------------------------------


def make_subscription(ls, customer, amount=3000, days_in=10) -> dict:
    product = ls.v1.products.create({"name": "Pro plan"})
    plan = ls.v1.plans.create({"amount": amount, "currency": "jpy", "interval": "month", "product": product.id})
    sub = ls.v1.subscriptions.create(
        {"customer": customer["id"], "items": [{"plan": plan.id}], "backdate_start_date": int(time.time()) - days_in * 86400}
    )
    return sub.to_dict()


def test_cancel_now_with_a_prorated_refund(gw, ls, agent):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    start, end = sub["current_period_start"], sub["current_period_end"]
    as_of = int(time.time())
    expected = 3000 * (end - as_of) // (end - start)
    assert 0 < expected < 3000

    plan = subscriptions.plan_cancel(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True, as_of=as_of)
    assert plan.prorata.refund.amount == expected
    assert plan.describe().startswith(
        f"Cancel Misaki Sato's subscription {sub['id']} (Pro plan) now and refund ¥{expected:,} of the ¥3,000 paid on invoice"
    )

    t = token()
    result = subscriptions.cancel_subscription(
        sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True, feedback="too_expensive",
        comment="Moving abroad", ticket_ref="T-7", idempotency_key=t, as_of=as_of,
    )
    assert result.subscription["status"] == "canceled"
    assert result.refund["amount"] == expected
    [cancel] = gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")
    assert cancel["params"]["cancellation_details[feedback]"] == "too_expensive"
    assert cancel["params"]["cancellation_details[comment]"] == "Moving abroad"
    assert cancel["idempotency_key"] == f"paydesk:cancel:{sub['id']}:{t}"
    assert Subscription.objects.get(pk=sub["id"]).status == "canceled"
    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    assert [r["amount"] for r in ls_refunds(ls, paid_charge.id)] == [expected]
    assert Charge.objects.get(pk=paid_charge.id).amount_refunded == expected
    [entry] = audit("subscription.cancel")
    assert entry.actor == agent and entry.details["refund_amount"] == expected and entry.details["ticket"] == "T-7"
    [refund_entry] = audit("charge.refund")
    assert refund_entry.details["subscription"] == sub["id"] and refund_entry.details["amount"] == expected

    with pytest.raises(errors.ActionRefused, match="already canceled") as caught:
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, idempotency_key=token())
    assert caught.value.code == "already_canceled"


def test_prorated_refund_leaves_out_what_was_refunded_already(gw, ls, agent):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    ls.v1.refunds.create({"charge": paid_charge.id, "amount": 1000})
    start, end = sub["current_period_start"], sub["current_period_end"]
    as_of = int(time.time())
    plan = subscriptions.plan_cancel(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True, as_of=as_of)
    expected = 2000 * (end - as_of) // (end - start)
    assert plan.prorata.refund.amount == expected
    assert f"refund ¥{expected:,} of the ¥2,000 still kept of the ¥3,000 paid on invoice" in plan.describe()


def test_cancel_kept_when_the_prorated_refund_fails(gw, ls, agent):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    gw.fault("POST", "/v1/refunds", status=500)
    with pytest.raises(errors.PartiallyCompleted) as caught:
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True,
                               idempotency_key=token())
    assert caught.value.message.startswith(f"Subscription {sub['id']} is canceled, but the refund of ¥")
    assert "Stripe had an internal error (HTTP 500)" in caught.value.message
    assert caught.value.done.subscription["status"] == "canceled"
    # What happened is mirrored and audited; what did not, isn't.
    assert Subscription.objects.get(pk=sub["id"]).status == "canceled"
    assert len(audit("subscription.cancel")) == 1 and audit("charge.refund") == []
    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    assert ls_refunds(ls, paid_charge.id) == [] and Refund.objects.count() == 0


def test_agent_over_the_limit_cannot_cancel_with_a_refund_either(gw, ls, agent, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 1000}}
    sub = make_subscription(ls, make_customer(ls))
    with pytest.raises(errors.RefundLimitExceeded, match="Refunds above ¥1,000 need finance"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True,
                               idempotency_key=token())
    # Refused before anything was sent: the subscription is untouched.
    assert gw.sent("DELETE", "/v1/subscriptions") == [] and AuditEntry.objects.count() == 0
    assert ls.v1.subscriptions.retrieve(sub["id"]).status == "active"


def test_a_prorated_refund_counts_toward_the_agents_limit_on_that_charge(gw, ls, agent, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 2500}}
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    result = subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True,
                                    idempotency_key=token())
    prorated = result.refund["amount"]
    assert 1500 < prorated <= 2500
    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    with pytest.raises(errors.RefundLimitExceeded) as caught:
        refunds.plan_refund(paid_charge.id, actor=agent, amount=1000, currency="jpy")
    assert caught.value.message.startswith(f"You have already refunded ¥{prorated:,} of this charge; refunds above ¥2,500 per charge")


def test_cancel_at_period_end_and_not_twice(gw, ls, agent):
    sub = make_subscription(ls, make_customer(ls))
    plan = subscriptions.plan_cancel(sub["id"], actor=agent, at_period_end=True)
    assert "at the end of the current period" in plan.describe() and "Nothing is refunded" in plan.describe()
    result = subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=True, feedback="unused", idempotency_key=token())
    assert result.subscription["cancel_at_period_end"] is True and result.subscription["status"] == "active"
    [update] = gw.sent("POST", f"/v1/subscriptions/{sub['id']}")
    assert update["params"]["cancel_at_period_end"] == "true"
    assert update["params"]["cancellation_details[feedback]"] == "unused"
    assert Subscription.objects.get(pk=sub["id"]).cancel_at_period_end is True
    assert len(audit("subscription.cancel")) == 1

    with pytest.raises(errors.ActionRefused, match="already set to cancel"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=True, idempotency_key=token())
    with pytest.raises(errors.ActionRefused, match="no unused time to refund"):
        subscriptions.plan_cancel(sub["id"], actor=agent, at_period_end=True, refund_last_invoice_prorated=True)
    assert len(gw.sent("POST", f"/v1/subscriptions/{sub['id']}")) == 1


# --- the same cancellation confirmed twice ------------------------------------------------------


@pytest.mark.parametrize("at_period_end", [False, True], ids=["now", "at_period_end"])
def test_double_submit_of_a_cancellation_cancels_once(gw, ls, agent, at_period_end):
    sub = make_subscription(ls, make_customer(ls))
    t = token()
    first = subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=at_period_end, feedback="unused", idempotency_key=t)
    second = subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=at_period_end, feedback="unused", idempotency_key=t)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.subscription["id"] == sub["id"] and second.refund is None
    if at_period_end:
        assert second.message == (f"This confirmation already set subscription {sub['id']} to cancel at the end of its "
                                  "period; nothing was sent to Stripe again.")
        assert len(gw.sent("POST", f"/v1/subscriptions/{sub['id']}")) == 1
    else:
        assert second.message == f"This confirmation already canceled subscription {sub['id']}; nothing was sent to Stripe again."
        assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    assert len(audit("subscription.cancel")) == 1
    # The same confirmation can't be stretched to something else...
    with pytest.raises(errors.ActionRefused, match="anything else needs a new confirmation") as reused:
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=not at_period_end, idempotency_key=t)
    assert reused.value.code == "token_reused"
    # ...and another confirmation is refused: it is canceled (or canceling) already.
    with pytest.raises(errors.ActionRefused, match="already (canceled|set to cancel)") as other:
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=at_period_end, idempotency_key=token())
    assert other.value.code == ("already_canceling" if at_period_end else "already_canceled")
    assert len(audit("subscription.cancel")) == 1


def test_double_submit_of_a_cancellation_with_a_prorated_refund_refunds_once(gw, ls, agent):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    t = token()
    kwargs = dict(at_period_end=False, refund_last_invoice_prorated=True, idempotency_key=t, as_of=int(time.time()))
    first = subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    second = subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert second.replayed and second.refund["id"] == first.refund["id"]
    amount = f"¥{first.refund['amount']:,}"
    assert second.message == (
        f"This confirmation already canceled subscription {sub['id']}; nothing was sent to Stripe again. "
        f"Its refund of {amount} for the unused time ({first.refund['id']}) was made then."
    )
    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    assert len(ls_refunds(ls, paid_charge.id)) == 1 and len(gw.sent("POST", "/v1/refunds")) == 1
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    assert len(audit("subscription.cancel")) == 1 and len(audit("charge.refund")) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_cancellation_cancel_once(gw, ls, agent):
    sub = make_subscription(ls, make_customer(ls))
    t = token()
    gw.fault("DELETE", f"/v1/subscriptions/{sub['id']}", delay=0.5)  # keeps the first submit in flight
    outcomes = twice_at_once(lambda: subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, idempotency_key=t))
    made = [o for o in outcomes if isinstance(o, subscriptions.CancelResult) and not o.replayed]
    others = [o for o in outcomes if o not in made]
    assert len(outcomes) == 2 and len(made) == 1
    assert isinstance(others[0], errors.ActionInProgress) or others[0].replayed
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    assert len(audit("subscription.cancel")) == 1


def test_retry_after_a_failed_prorated_refund_makes_it_once(gw, ls, agent):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    t = token()
    kwargs = dict(at_period_end=False, refund_last_invoice_prorated=True, idempotency_key=t, as_of=int(time.time()))
    gw.fault("POST", "/v1/refunds", status=500)
    with pytest.raises(errors.PartiallyCompleted) as caught:
        subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert "Confirm again to retry the refund (it is never made twice)" in caught.value.message
    promised = audit("subscription.cancel")[0].details["refund_amount"]
    assert promised > 0

    retry = subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert retry.replayed and retry.refund["amount"] == promised
    assert retry.message == (
        f"This confirmation already canceled subscription {sub['id']}; nothing was sent to Stripe again. "
        f"Refunded ¥{promised:,} for the unused time ({retry.refund['id']})."
    )
    again = subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert again.refund["id"] == retry.refund["id"] and "was made then" in again.message

    [paid_charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    assert [r["amount"] for r in ls_refunds(ls, paid_charge.id)] == [promised]
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    # The refund's key is the confirmation's: the failed attempt and the retry sent the same one.
    assert {r["idempotency_key"] for r in gw.sent("POST", "/v1/refunds")} == {f"paydesk:prorata:{paid_charge.id}:{t}"}
    assert len(audit("subscription.cancel")) == 1
    [refund_entry] = audit("charge.refund")
    assert refund_entry.details["subscription"] == sub["id"] and refund_entry.details["amount"] == promised


def test_cancellation_whose_answer_never_came_back_is_recorded_by_the_retry(gw, ls, agent, settings):
    settings.STRIPE_API_TIMEOUT = 0.5
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    t = token()
    kwargs = dict(at_period_end=False, refund_last_invoice_prorated=True, idempotency_key=t, as_of=int(time.time()))
    forwarded = gw.fault("DELETE", f"/v1/subscriptions/{sub['id']}", delay=1.5)  # Stripe is slow, the client gives up
    with pytest.raises(errors.StripeActionFailed, match="network error or timeout"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert forwarded.wait(10)  # ...but Stripe canceled it
    assert ls.v1.subscriptions.retrieve(sub["id"]).status == "canceled" and AuditEntry.objects.count() == 0

    retry = subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs)
    assert retry.recovered and not retry.replayed and retry.refund["amount"] > 0
    assert retry.message.startswith(f"Subscription {sub['id']} is canceled. (Stripe had done it on this confirmation's earlier attempt")
    # Nothing was sent to cancel it again; what happened is mirrored and audited once.
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    assert Subscription.objects.get(pk=sub["id"]).status == "canceled"
    [entry] = audit("subscription.cancel")
    assert entry.details["recovered"] is True and entry.details["refund_amount"] == retry.refund["amount"]
    assert len(audit("charge.refund")) == 1
    assert subscriptions.cancel_subscription(sub["id"], actor=agent, **kwargs).replayed
    with pytest.raises(errors.ActionRefused, match="already canceled"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, idempotency_key=token(), as_of=kwargs["as_of"])


def test_cancellation_at_period_end_whose_answer_never_came_back_is_sent_again_with_its_key(gw, ls, agent, settings):
    settings.STRIPE_API_TIMEOUT = 0.5
    sub = make_subscription(ls, make_customer(ls))
    t = token()
    forwarded = gw.fault("POST", f"/v1/subscriptions/{sub['id']}", delay=1.5)
    with pytest.raises(errors.StripeActionFailed, match="network error or timeout"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=True, idempotency_key=t)
    assert forwarded.wait(10)
    retry = subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=True, idempotency_key=t)
    assert retry.recovered and retry.subscription["cancel_at_period_end"] is True
    # The same request with the same key: Stripe answers it from its idempotency record.
    sent = gw.sent("POST", f"/v1/subscriptions/{sub['id']}")
    assert len(sent) == 2 and sent[0]["idempotency_key"] == sent[1]["idempotency_key"] == f"paydesk:cancel:{sub['id']}:{t}"
    assert sent[0]["params"] == sent[1]["params"]
    [entry] = audit("subscription.cancel")
    assert entry.details["recovered"] is True


def test_a_cancellation_canceled_by_someone_else_is_not_taken_for_this_ones(gw, ls, agent):
    sub = make_subscription(ls, make_customer(ls))
    t = token()
    as_of = int(time.time())
    # Another confirmation in Paydesk cancels it; this one, never sent, is then retried.
    subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, idempotency_key=token(), as_of=as_of)
    with pytest.raises(errors.ActionRefused, match="already canceled"):
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, idempotency_key=t, as_of=as_of)
    assert len(audit("subscription.cancel")) == 1


def test_a_first_submit_after_the_customer_canceled_is_refused_not_taken_for_a_lost_answer(gw, ls, agent):
    sub = make_subscription(ls, make_customer(ls))
    as_of = int(time.time())  # the preview is shown...
    ls.v1.subscriptions.cancel(sub["id"])  # ...the customer cancels in the portal...
    with pytest.raises(errors.ActionRefused, match="already canceled"):  # ...then the agent confirms
        subscriptions.cancel_subscription(sub["id"], actor=agent, at_period_end=False, refund_last_invoice_prorated=True,
                               idempotency_key=token(), as_of=as_of)
    assert AuditEntry.objects.count() == 0 and gw.sent("POST", "/v1/refunds") == []


def test_prorated_amount_is_integer_and_rounds_down():
    day = 86400
    assert subscriptions.prorated_amount(3000, 0, 30 * day, 10 * day) == (2000, 20 * day, 30 * day)
    assert subscriptions.prorated_amount(1000, 0, 3 * day, day) == (666, 2 * day, 3 * day)  # 666.67 → 666
    assert subscriptions.prorated_amount(1000, 0, 3 * day, 5 * day) == (0, 0, 3 * day)  # period over
    assert subscriptions.prorated_amount(1000, 10, 10, 5) == (0, 0, 0)


# --- customer metadata ---------------------------------------------------------------------


def test_metadata_set_and_remove(gw, ls, agent):
    customer = make_customer(ls)
    ls.v1.customers.update(customer["id"], {"metadata": {"Tier": "Gold", "Note": "prefers LINE"}})
    plan = customers.plan_metadata_update(customer["id"], {"Tier": "VIP", "Note": ""}, actor=agent)
    assert plan.describe() == (
        f"Change the metadata of Misaki Sato's Stripe customer {customer['id']}: "
        "set Tier to “VIP” (was “Gold”); remove Note (was “prefers LINE”)."
    )
    result = customers.update_customer_metadata(customer["id"], {"Tier": "VIP", "Note": ""}, actor=agent, ticket_ref="T-9")
    [sent] = gw.sent("POST", f"/v1/customers/{customer['id']}")
    # An empty value is how Stripe deletes a key.
    assert sent["params"] == {"metadata[Tier]": "VIP", "metadata[Note]": ""}
    assert result.customer["metadata"]["Tier"] == "VIP"
    # localstripe keeps a deleted key with an empty value; Stripe drops it.
    assert result.customer["metadata"].get("Note", "") == ""
    assert Customer.objects.get(pk=customer["id"]).data["metadata"]["Tier"] == "VIP"
    [entry] = audit("customer.update_metadata")
    assert entry.details["set"] == {"Tier": "VIP"} and entry.details["removed"] == ["Note"]
    assert entry.details["previous"] == {"Tier": "Gold", "Note": "prefers LINE"}


def test_metadata_double_submit_is_applied_once(gw, ls, agent):
    customer = make_customer(ls)
    t = token()
    first = customers.update_customer_metadata(customer["id"], {"Tier": "VIP"}, actor=agent, idempotency_key=t)
    second = customers.update_customer_metadata(customer["id"], {"Tier": "VIP"}, actor=agent, idempotency_key=t)
    assert (first.replayed, second.replayed) == (False, True)
    assert first.message == f"Metadata of {customer['id']} updated: Tier=VIP."
    assert second.message == (f"This confirmation already updated the metadata of {customer['id']} (Tier=VIP); "
                              "nothing was sent again.")
    [sent] = gw.sent("POST", f"/v1/customers/{customer['id']}")
    assert sent["idempotency_key"] == f"paydesk:metadata:{customer['id']}:{t}"
    [entry] = audit("customer.update_metadata")
    assert entry.details["idempotency_key"] == sent["idempotency_key"]
    with pytest.raises(errors.ActionRefused, match="already made another change") as caught:
        customers.update_customer_metadata(customer["id"], {"Tier": "Gold"}, actor=agent, idempotency_key=t)
    assert caught.value.code == "token_reused"
    # A new confirmation of the same change: nothing to change.
    with pytest.raises(errors.ActionRefused, match="Nothing to change"):
        customers.update_customer_metadata(customer["id"], {"Tier": "VIP"}, actor=agent, idempotency_key=token())
    assert len(gw.sent("POST", "/v1/customers")) == 1 and len(audit("customer.update_metadata")) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k" * 41: "x"}, "too long \\(41 characters; Stripe allows 40\\)"),
        ({"Tier": "v" * 501}, "too long \\(501 characters; Stripe allows 500\\)"),
        ({"a[b]": "x"}, "square brackets"),
        ({f"k{i}": "x" for i in range(51)}, "at most 50 metadata keys"),
        ({"Absent": ""}, "Nothing to change"),
    ],
)
def test_metadata_limits_are_checked_before_stripe(gw, ls, agent, changes, message):
    customer = make_customer(ls)
    with pytest.raises(errors.ActionRefused, match=message):
        customers.update_customer_metadata(customer["id"], changes, actor=agent)
    assert gw.sent("POST", "/v1/customers") == [] and AuditEntry.objects.count() == 0


# --- billing portal ------------------------------------------------------------------------


def test_portal_session_cancel_flow_with_retention_coupon(gw, agent):
    upsert_fetched([factories.CustomerFactory(id="cus_portal1", name="Misaki Sato")], int(time.time()))
    result = customers.create_portal_session(
        "cus_portal1", actor=agent, flow="subscription_cancel", subscription_id="sub_123", retention_coupon="STAY20",
        locale="ja_JP", return_url="https://shop.example.jp/account", ticket_ref="T-5", idempotency_key=token(),
    )
    [sent] = gw.sent("POST", "/v1/billing_portal/sessions")
    assert sent["params"] == {
        "customer": "cus_portal1",
        "locale": "ja",
        "return_url": "https://shop.example.jp/account",
        "flow_data[type]": "subscription_cancel",
        "flow_data[subscription_cancel][subscription]": "sub_123",
        "flow_data[subscription_cancel][retention][type]": "coupon_offer",
        "flow_data[subscription_cancel][retention][coupon_offer][coupon]": "STAY20",
        "flow_data[after_completion][type]": "redirect",
        "flow_data[after_completion][redirect][return_url]": "https://shop.example.jp/account",
    }
    assert sent["idempotency_key"].startswith("paydesk:portal:cus_portal1:")
    assert result.url.startswith("https://billing.stripe.com/p/session/")
    assert result.session["object"] == "billing_portal.session"
    assert result.session["flow"]["subscription_cancel"]["retention"]["coupon_offer"]["coupon"] == "STAY20"
    assert result.plan.describe() == (
        "Create a billing-portal link for Misaki Sato (cus_portal1) that opens straight on canceling subscription "
        "sub_123, in Japanese, offering coupon STAY20 before they cancel. Unopened, the link expires after 5 minutes; "
        "once opened it lasts an hour of activity."
    )
    [entry] = audit("billing_portal.session.create")
    assert entry.details["session"] == result.session["id"] and entry.details["coupon"] == "STAY20"
    # The URL opens the customer's billing: it is a credential, never kept in the audit log.
    assert result.url not in json.dumps(entry.details)


@pytest.mark.parametrize(
    ("flow", "subscription", "locale", "expected"),
    [
        ("payment_method_update", None, "pt_BR",
         {"flow_data[type]": "payment_method_update", "flow_data[after_completion][type]": "hosted_confirmation", "locale": "pt-BR"}),
        ("subscription_update", "sub_9", "fr",
         {"flow_data[type]": "subscription_update", "flow_data[subscription_update][subscription]": "sub_9", "locale": "fr"}),
        (None, None, "xx", {"locale": "auto"}),
    ],
)
def test_portal_session_flows(gw, agent, flow, subscription, locale, expected):
    result = customers.create_portal_session("cus_portal2", actor=agent, flow=flow, subscription_id=subscription, locale=locale)
    [sent] = gw.sent("POST", "/v1/billing_portal/sessions")
    assert {k: sent["params"].get(k) for k in expected} == expected
    if flow is None:
        assert not any(k.startswith("flow_data") for k in sent["params"])
    assert (result.session["flow"] or {}).get("type") == flow


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flow": "subscription_update"}, "Pick the subscription"),
        ({"flow": "payment_method_update", "retention_coupon": "STAY20"}, "only be offered on the cancel link"),
        ({"flow": "subscription_pause", "subscription_id": "sub_1"}, "Unknown portal flow"),
        ({"return_url": "javascript:alert(1)"}, "http\\(s\\) URL"),
    ],
)
def test_portal_session_bad_input(gw, agent, kwargs, message):
    with pytest.raises(errors.ActionRefused, match=message):
        customers.create_portal_session("cus_portal3", actor=agent, **kwargs)
    assert gw.requests == []


def test_portal_double_submit_gets_stripes_same_session_and_is_audited_once(gw, agent):
    t = token()
    first = customers.create_portal_session("cus_portal5", actor=agent, flow="payment_method_update", idempotency_key=t)
    second = customers.create_portal_session("cus_portal5", actor=agent, flow="payment_method_update", idempotency_key=t)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.url == first.url and second.session["id"] == first.session["id"]
    sent = gw.sent("POST", "/v1/billing_portal/sessions")
    assert [r["idempotency_key"] for r in sent] == [f"paydesk:portal:cus_portal5:{t}"] * 2
    [entry] = audit("billing_portal.session.create")
    assert entry.details["session"] == first.session["id"]
    # The same confirmation for another link: Stripe refuses a key used with other parameters.
    with pytest.raises(errors.StripeActionFailed, match="already used for a different request"):
        customers.create_portal_session("cus_portal5", actor=agent, flow=None, idempotency_key=t)
    assert len(audit("billing_portal.session.create")) == 1


def test_portal_error_from_stripe_is_mapped(gw, agent):
    gw.fault("POST", "/v1/billing_portal/sessions", status=503)
    with pytest.raises(errors.StripeActionFailed, match="HTTP 503") as caught:
        customers.create_portal_session("cus_portal4", actor=agent, flow="payment_method_update")
    assert caught.value.transient and AuditEntry.objects.count() == 0
