"""The panel's cancel, metadata and billing-portal flows (console/views/panel_actions.py), over HTTP:
cancel and metadata against localstripe through the recording gateway, portal links against
the gateway's recorded billing_portal.session answer (localstripe has no billing portal)."""

from __future__ import annotations

import time
import uuid

import pytest

from audit.models import AuditEntry
from payments.mirror import upsert_fetched
from payments.models import Customer, Subscription
from tests import factories
from tests.helpers import HX, confirm_through_preview, sealed
# The gateway records what Stripe would receive and answers billing_portal.sessions itself.
from tests.payments.test_stripe_actions import gateway_server, gw, make_customer, make_subscription  # noqa: F401

pytestmark = pytest.mark.django_db


def _link(customer_id: str, *, email: str = "misaki.sato@example.jp"):
    contact = factories.IdentityFactory(kind="stripe_customer", value=customer_id).contact
    factories.IdentityFactory(contact=contact, kind="email", value=email)
    return contact


@pytest.fixture
def ls(localstripe):
    return localstripe.client()


@pytest.fixture
def live_sub(gw, ls):
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    upsert_fetched([sub], int(time.time()) - 60)
    return _link(customer["id"]), customer, sub


@pytest.fixture
def mirrored():
    """A contact with a mirrored customer and subscription, for the role checks (no Stripe call)."""
    customer = factories.CustomerFactory(name="Mika Tanaka", preferred_locales=["ja-JP"])
    sub = factories.SubscriptionFactory(customer=customer["id"], status="active")
    factories.mirror(customer, sub)
    return _link(customer["id"]), customer, sub


def _urls(contact, sub) -> dict[str, str]:
    pk = contact.pk
    return {
        "cancel": f"/customers/{pk}/subscriptions/{sub['id']}/cancel",
        "metadata": f"/customers/{pk}/metadata",
        "portal": f"/customers/{pk}/portal-link",
    }


# --- roles -----------------------------------------------------------------------------------


def test_agent_gets_each_form(client, agent, mirrored):
    contact, customer, sub = mirrored
    client.force_login(agent)
    urls = _urls(contact, sub)
    cancel = client.get(urls["cancel"], **HX)
    assert cancel.status_code == 200 and b'name="when"' in cancel.content and b"Too expensive" in cancel.content
    metadata = client.get(urls["metadata"], **HX)
    assert metadata.status_code == 200 and f'value="{customer["id"]}"'.encode() in metadata.content
    portal = client.get(urls["portal"], **HX)
    assert portal.status_code == 200 and sub["id"].encode() in portal.content
    assert b"No ticket: the link is shown here to copy" in portal.content
    # The panel offers the three actions.
    panel = client.get(f"/customers/{contact.pk}/panel", **HX).content.decode()
    assert urls["cancel"] in panel and urls["metadata"] in panel and urls["portal"] in panel


@pytest.mark.parametrize("role", ["nobody", "finance"])
def test_roles_without_the_permission_are_refused(client, mirrored, finance, role):
    contact, _, sub = mirrored
    user = finance if role == "finance" else factories.UserFactory(username="nobody")
    client.force_login(user)
    for base in _urls(contact, sub).values():
        assert client.get(base, **HX).status_code == 403, base
        for step in ("/preview", "/confirm"):
            assert client.post(base + step, {"token": uuid.uuid4().hex}, **HX).status_code == 403, base + step
    assert AuditEntry.objects.count() == 0
    # Finance sees the panel, without the buttons it can't use.
    if role == "finance":
        panel = client.get(f"/customers/{contact.pk}/panel", **HX).content.decode()
        assert "/cancel" not in panel and "/metadata" not in panel and "/portal-link" not in panel


def test_anonymous_goes_to_login(client, mirrored):
    contact, _, sub = mirrored
    for base in _urls(contact, sub).values():
        response = client.get(base)
        assert response.status_code == 302 and response["Location"] == f"/login/?next={base}"
        assert client.post(base + "/confirm", {"token": uuid.uuid4().hex}).status_code == 302


def test_another_customers_subscription_or_ticket_is_404(client, agent, mirrored):
    contact, _, _ = mirrored
    other = factories.SubscriptionFactory(status="active")
    factories.mirror(other)
    client.force_login(agent)
    assert client.get(f"/customers/{contact.pk}/subscriptions/{other['id']}/cancel").status_code == 404
    foreign = factories.TicketFactory()
    assert client.get(f"/customers/{contact.pk}/portal-link?ticket={foreign.pk}").status_code == 404
    assert client.get(f"/customers/{contact.pk}/metadata", {"customer": "cus_notyours"}).status_code == 404


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_now_with_prorated_refund_form_preview_confirm(client, agent, live_sub, gw, ls):
    contact, customer, sub = live_sub
    ticket = factories.TicketFactory(requester=contact)
    client.force_login(agent)
    base = _urls(contact, sub)["cancel"]
    token = uuid.uuid4().hex
    data = {"token": token, "ticket": str(ticket.pk), "when": "now", "refund": "on",
            "feedback": "too_expensive", "comment": "Moving abroad"}
    preview = client.post(base + "/preview", data, **HX)
    assert preview.status_code == 200, preview.content
    text = preview.content.decode()
    assert f"Cancel Misaki Sato&#x27;s subscription {sub['id']} (Pro plan) now and refund ¥" in text
    assert "of the ¥3,000 paid on invoice" in text
    confirm = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    assert confirm.status_code == 200, confirm.content
    assert confirm["HX-Trigger"] == "paydesk:panel-refresh"
    body = confirm.content.decode()
    assert f"Subscription {sub['id']} is canceled. Refunded ¥" in body
    [sent] = gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")
    assert sent["params"]["cancellation_details[feedback]"] == "too_expensive"
    assert sent["idempotency_key"] == f"paydesk:cancel:{sub['id']}:{token}"
    assert Subscription.objects.get(pk=sub["id"]).status == "canceled"
    [entry] = AuditEntry.objects.filter(action="subscription.cancel")
    assert entry.details["ticket"] == f"#{ticket.number}" and entry.details["refund_amount"] > 0
    assert AuditEntry.objects.filter(action="charge.refund").count() == 1
    # Again: already canceled, a clear 400, nothing sent.
    again = client.post(base + "/preview", {**data, "token": uuid.uuid4().hex}, **HX)
    assert again.status_code == 400 and b"already canceled" in again.content


def test_cancel_at_period_end(client, agent, live_sub, gw):
    contact, _, sub = live_sub
    client.force_login(agent)
    base = _urls(contact, sub)["cancel"]
    data = {"token": uuid.uuid4().hex, "when": "period_end", "feedback": "unused"}
    preview = client.post(base + "/preview", data, **HX)
    assert preview.status_code == 200 and b"at the end of the current period" in preview.content
    confirm = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    assert confirm.status_code == 200, confirm.content
    assert b"will cancel at the end of its period" in confirm.content
    assert Subscription.objects.get(pk=sub["id"]).cancel_at_period_end is True
    # A refund with a cancellation at the period's end is refused before Stripe.
    refused = client.post(base + "/preview", {**data, "refund": "on"}, **HX)
    assert refused.status_code == 400 and b"no unused time to refund" in refused.content


def test_cancel_stripe_500_is_a_502(client, agent, live_sub, gw):
    contact, _, sub = live_sub
    client.force_login(agent)
    gw.fault("DELETE", f"/v1/subscriptions/{sub['id']}", status=500)
    response = confirm_through_preview(client, _urls(contact, sub)["cancel"], {"token": uuid.uuid4().hex, "when": "now"})
    assert response.status_code == 502 and b"Stripe had an internal error" in response.content
    assert "HX-Trigger" not in response and not AuditEntry.objects.filter(action="subscription.cancel").exists()


def test_cancel_kept_when_the_refund_fails_says_so(client, agent, live_sub, gw):
    contact, _, sub = live_sub
    client.force_login(agent)
    gw.fault("POST", "/v1/refunds", status=500)
    data = {"token": uuid.uuid4().hex, "when": "now", "refund": "on"}
    response = confirm_through_preview(client, _urls(contact, sub)["cancel"], data)
    assert response.status_code == 200 and response["HX-Trigger"] == "paydesk:panel-refresh"
    assert f"Subscription {sub['id']} is canceled, but the refund of".encode() in response.content
    assert b"flash-error" in response.content


def test_cancel_confirmed_twice_cancels_and_refunds_once(client, agent, live_sub, gw, ls):
    contact, customer, sub = live_sub
    client.force_login(agent)
    base = _urls(contact, sub)["cancel"]
    data = {"token": uuid.uuid4().hex, "when": "now", "refund": "on", "feedback": "too_expensive"}
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    first = client.post(base + "/confirm", confirmation, **HX)
    second = client.post(base + "/confirm", confirmation, **HX)  # a double click, or a retry
    assert first.status_code == second.status_code == 200, second.content
    assert f"Subscription {sub['id']} is canceled. Refunded ¥".encode() in first.content
    text = second.content.decode()
    assert f"This confirmation already canceled subscription {sub['id']}; nothing was sent to Stripe again." in text
    assert "for the unused time" in text and "was made then" in text and "flash-error" not in text
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1 and len(gw.sent("POST", "/v1/refunds")) == 1
    assert AuditEntry.objects.filter(action="subscription.cancel").count() == 1
    assert AuditEntry.objects.filter(action="charge.refund").count() == 1


def test_cancel_confirmed_again_after_the_refund_failed_makes_the_refund(client, agent, live_sub, gw, ls):
    contact, customer, sub = live_sub
    client.force_login(agent)
    base = _urls(contact, sub)["cancel"]
    data = {"token": uuid.uuid4().hex, "when": "now", "refund": "on"}
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    gw.fault("POST", "/v1/refunds", status=500)
    failed = client.post(base + "/confirm", confirmation, **HX)
    assert failed.status_code == 200 and b"flash-error" in failed.content and b"Confirm again to retry the refund" in failed.content
    retry = client.post(base + "/confirm", confirmation, **HX)
    assert retry.status_code == 200, retry.content
    assert b"This confirmation already canceled" in retry.content and b"Refunded \xc2\xa5" in retry.content
    [charge] = ls.v1.charges.list({"customer": customer["id"]}).data
    assert len(ls.v1.refunds.list({"charge": charge.id}).data) == 1
    assert len(gw.sent("DELETE", f"/v1/subscriptions/{sub['id']}")) == 1
    assert AuditEntry.objects.filter(action="charge.refund").count() == 1


# --- metadata --------------------------------------------------------------------------------


def test_metadata_tier_vip(client, agent, live_sub, gw, ls):
    contact, customer, sub = live_sub
    ls.v1.customers.update(customer["id"], {"metadata": {"Tier": "Gold"}})
    client.force_login(agent)
    base = _urls(contact, sub)["metadata"]
    token = uuid.uuid4().hex
    data = {"token": token, "customer": customer["id"], "key": "Tier", "value": "VIP"}
    preview = client.post(base + "/preview", data, **HX)
    assert preview.status_code == 200
    assert "set Tier to “VIP” (was “Gold”)" in preview.content.decode()
    confirm = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    assert confirm.status_code == 200, confirm.content
    assert confirm["HX-Trigger"] == "paydesk:panel-refresh" and b"Tier=VIP" in confirm.content
    [sent] = gw.sent("POST", f"/v1/customers/{customer['id']}")
    assert sent["params"] == {"metadata[Tier]": "VIP"} and sent["idempotency_key"].endswith(token)
    assert Customer.objects.get(pk=customer["id"]).data["metadata"]["Tier"] == "VIP"
    assert AuditEntry.objects.filter(action="customer.update_metadata").count() == 1
    same = client.post(base + "/preview", {**data, "token": uuid.uuid4().hex}, **HX)
    assert same.status_code == 400 and b"Nothing to change" in same.content
    bad = client.post(base + "/preview", {**data, "key": "a[b]"}, **HX)
    assert bad.status_code == 400 and b"square brackets" in bad.content


def test_metadata_confirmed_twice_is_applied_once(client, agent, live_sub, gw):
    contact, customer, sub = live_sub
    client.force_login(agent)
    base = _urls(contact, sub)["metadata"]
    data = {"token": uuid.uuid4().hex, "customer": customer["id"], "key": "Tier", "value": "VIP"}
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    first = client.post(base + "/confirm", confirmation, **HX)
    second = client.post(base + "/confirm", confirmation, **HX)
    assert first.status_code == second.status_code == 200, second.content
    assert b"This confirmation already updated the metadata" in second.content and b"Tier=VIP" in second.content
    assert len(gw.sent("POST", f"/v1/customers/{customer['id']}")) == 1
    assert AuditEntry.objects.filter(action="customer.update_metadata").count() == 1


# --- billing portal --------------------------------------------------------------------------


def test_portal_link_sent_as_a_reply_in_the_customers_locale(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    ticket = factories.TicketFactory(requester=contact, channel="email")
    client.force_login(agent)
    form = client.get(_urls(contact, sub)["portal"] + f"?ticket={ticket.pk}", **HX)
    assert f"reply on ticket #{ticket.number}".encode() in form.content
    base = _urls(contact, sub)["portal"]
    data = {"token": uuid.uuid4().hex, "ticket": str(ticket.pk), "customer": customer["id"],
            "flow": "subscription_cancel", "subscription": sub["id"], "coupon": "STAY20"}
    preview = client.post(base + "/preview", data, **HX)
    assert preview.status_code == 200, preview.content
    assert "in Japanese, offering coupon STAY20" in preview.content.decode()
    confirm = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    assert confirm.status_code == 200, confirm.content
    assert f"sent on ticket #{ticket.number} by Email".encode() in confirm.content
    [sent] = gw.sent("POST", "/v1/billing_portal/sessions")
    assert sent["params"]["locale"] == "ja"
    assert sent["params"]["flow_data[subscription_cancel][retention][coupon_offer][coupon]"] == "STAY20"
    [reply] = ticket.messages.filter(kind="outbound")
    assert "https://billing.stripe.com/p/session/" in reply.body_text and reply.recipient == "misaki.sato@example.jp"
    # The agent's page shows no link (it went to the customer); the audit log never holds it.
    assert b"billing.stripe.com" not in confirm.content
    [entry] = AuditEntry.objects.filter(action="billing_portal.session.create")
    assert "billing.stripe.com" not in str(entry.details) and entry.details["ticket"] == f"#{ticket.number}"


def test_portal_link_confirmed_twice_is_sent_once(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    ticket = factories.TicketFactory(requester=contact, channel="email")
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "ticket": str(ticket.pk), "customer": customer["id"], "flow": "payment_method_update"}
    base = _urls(contact, sub)["portal"]
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    first = client.post(base + "/confirm", confirmation, **HX)
    second = client.post(base + "/confirm", confirmation, **HX)
    assert first.status_code == second.status_code == 200, second.content
    assert f"This confirmation already sent this link on ticket #{ticket.number}; nothing was sent again.".encode() in second.content
    assert ticket.messages.filter(kind="outbound").count() == 1
    assert AuditEntry.objects.filter(action="billing_portal.session.create").count() == 1
    assert b"billing.stripe.com" not in second.content


def test_portal_link_not_sent_the_first_time_is_not_sent_by_a_retry(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    ticket = factories.TicketFactory(requester=contact, status="closed")
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "ticket": str(ticket.pk), "customer": customer["id"], "flow": ""}
    base = _urls(contact, sub)["portal"]
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    first = client.post(base + "/confirm", confirmation, **HX)
    assert b"created but not sent" in first.content
    ticket.status = "open"
    ticket.save(update_fields=["status"])
    second = client.post(base + "/confirm", confirmation, **HX)
    assert second.status_code == 200
    assert b"already created a link that was not sent" in second.content
    assert b"https://billing.stripe.com/p/session/" in second.content
    assert not ticket.messages.filter(kind="outbound").exists()


def test_portal_link_without_a_ticket_confirmed_twice_shows_the_same_link(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "customer": customer["id"], "flow": "payment_method_update"}
    base = _urls(contact, sub)["portal"]
    confirmation = {"confirmation": sealed(client.post(base + "/preview", data, **HX))}
    first = client.post(base + "/confirm", confirmation, **HX).content.decode()
    second = client.post(base + "/confirm", confirmation, **HX).content.decode()
    url = first.split('readonly value="')[1].split('"')[0]
    assert url.startswith("https://billing.stripe.com/p/session/") and url in second
    assert "This confirmation already created this link. Copy it to the customer:" in second
    assert AuditEntry.objects.filter(action="billing_portal.session.create").count() == 1


def test_portal_link_without_a_ticket_is_shown_to_copy(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "customer": customer["id"], "flow": "payment_method_update"}
    response = confirm_through_preview(client, _urls(contact, sub)["portal"], data)
    assert response.status_code == 200, response.content
    assert b"Copy it to the customer" in response.content and b"https://billing.stripe.com/p/session/" in response.content
    assert gw.sent("POST", "/v1/billing_portal/sessions")[0]["params"]["locale"] == "ja"


def test_portal_bad_input_and_stripe_error(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    client.force_login(agent)
    base = _urls(contact, sub)["portal"]
    bad = client.post(base + "/preview", {"token": uuid.uuid4().hex, "customer": customer["id"],
                                          "flow": "payment_method_update", "coupon": "STAY20"}, **HX)
    # A coupon typed in the form only goes with the cancel flow: the payment-method link ignores it.
    assert bad.status_code == 200 and b"offering coupon" not in bad.content
    missing = client.post(base + "/preview", {"token": uuid.uuid4().hex, "customer": customer["id"],
                                              "flow": "subscription_update"}, **HX)
    assert missing.status_code == 400 and b"Pick the subscription" in missing.content
    gw.fault("POST", "/v1/billing_portal/sessions", status=503)
    failed = confirm_through_preview(client, base, {"token": uuid.uuid4().hex, "customer": customer["id"],
                                                    "flow": "payment_method_update"})
    assert failed.status_code == 502 and b"HTTP 503" in failed.content
    assert not AuditEntry.objects.filter(action="billing_portal.session.create").exists()


def test_portal_link_on_a_closed_ticket_is_shown_instead(client, agent, gw, mirrored):
    contact, customer, sub = mirrored
    ticket = factories.TicketFactory(requester=contact, status="closed")
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "ticket": str(ticket.pk), "customer": customer["id"], "flow": ""}
    response = confirm_through_preview(client, _urls(contact, sub)["portal"], data)
    assert response.status_code == 200
    assert b"created but not sent" in response.content and b"is closed" in response.content
    assert b"https://billing.stripe.com/p/session/" in response.content
    assert not ticket.messages.filter(kind="outbound").exists()


# --- straight to localstripe, as in `make demo` (no gateway dropping what 1.15 refused) ----------


def test_refund_and_cancel_with_feedback_straight_to_localstripe(client, agent, localstripe, ls, settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": None}
    customer = make_customer(ls)
    sub = make_subscription(ls, customer)
    upsert_fetched([sub], int(time.time()) - 60)
    contact = _link(customer["id"])
    [charge] = [c.to_dict() for c in ls.v1.charges.list({"customer": customer["id"]}).data]
    upsert_fetched([charge], int(time.time()) - 60)
    client.force_login(agent)
    refund = confirm_through_preview(client, f"/customers/{contact.pk}/charges/{charge['id']}/refund",
                                     {"token": uuid.uuid4().hex, "amount": "500", "reason": "duplicate"})
    assert refund.status_code == 200, refund.content
    [kept] = ls.v1.refunds.list({"charge": charge["id"]}).data
    assert kept.reason == "duplicate" and kept.amount == 500
    cancel = confirm_through_preview(client, _urls(contact, sub)["cancel"], {
        "token": uuid.uuid4().hex, "when": "now", "feedback": "too_complex", "comment": "Too many steps"})
    assert cancel.status_code == 200, cancel.content
    details = Subscription.objects.get(pk=sub["id"]).data["cancellation_details"]
    assert details["feedback"] == "too_complex" and details["comment"] == "Too many steps"
