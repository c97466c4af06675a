"""The mirror pages: lists, one object, the event log, an event, sync health and replay.

Each page is checked for the right role, a wrong role and an anonymous visitor. Data goes
into the mirror the way the app writes it (upsert of fetched objects, stored events).
"""

import datetime as dt
import json
import re
import time

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from payments.actions import events as actions
from payments.events import store_event
from payments.models import Charge, SyncCursor, WebhookEvent
from tests import factories

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def shop():
    """A customer with a USD and a JPY payment, a refund, a dispute and an event."""
    customer = factories.CustomerFactory(id="cus_MikaTanaka01", name="Mika Tanaka", email="mika.tanaka@example.jp")
    usd = factories.ChargeFactory(id="ch_usd0001", customer=customer["id"], amount=4200, amount_refunded=1000,
                                  billing_details={"email": "mika.tanaka@example.jp"})
    jpy = factories.ChargeFactory(id="ch_jpy0001", customer=customer["id"], amount=1000, currency="jpy",
                                  created=int(time.time()) - 60)
    refund = factories.RefundFactory(id="re_usd0001", charge=usd["id"], amount=1000)
    dispute = factories.DisputeFactory(id="dp_jpy0001", charge=jpy["id"], amount=1000, currency="jpy")
    factories.mirror(customer, usd, jpy, refund, dispute)
    store_event(factories.event("charge.succeeded", usd, event_id="evt_usd0001"))
    return {"customer": customer, "usd": usd, "jpy": jpy, "refund": refund, "dispute": dispute}


def failed_event(event_id="evt_failed0001"):
    """A thin event the mirror cannot apply without an API key: parked as failed."""
    payload = factories.event("charge.succeeded", {}, event_id=event_id)
    payload["data"] = {}
    payload["related_object"] = {"id": "ch_thin0001", "type": "charge"}
    store_event(payload)
    actions.record_event_failure(event_id, "EventNotApplicable: thin event and no STRIPE_API_KEY", final=True)
    return event_id


def text(response) -> str:
    return response.content.decode()


# --- lists ---------------------------------------------------------------------------------


def test_list_anonymous_is_sent_to_login(client):
    response = client.get("/stripe/payments/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=/stripe/payments/")


def test_list_without_role_is_403(as_user, no_role):
    shop()
    response = as_user(no_role).get("/stripe/payments/")
    assert response.status_code == 403
    assert "ch_usd0001" not in text(response)


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_payments_list_shows_money_right_for_every_role(as_user, request, role):
    shop()
    response = as_user(request.getfixturevalue(role)).get("/stripe/payments/")
    assert response.status_code == 200
    body = text(response)
    assert "$42.00" in body and "¥1,000" in body
    assert "¥10.00" not in body  # JPY has no minor unit
    assert "Partially refunded" in body  # a charge with a refund says so, as Stripe does
    assert "Mika Tanaka" in body  # the customer by name, not only by id
    assert 'href="/stripe/payments/ch_usd0001/"' in body


def test_unknown_list_is_404(as_user, agent):
    assert as_user(agent).get("/stripe/nothing-here/").status_code == 404


@pytest.mark.parametrize(
    "q, shown, hidden",
    [
        ("cus_MikaTanaka01", "cus_MikaTanaka01", "cus_Other0001"),
        ("cus_Mika", "cus_MikaTanaka01", "cus_Other0001"),  # an id prefix
        ("mika.tanaka@", "cus_MikaTanaka01", "cus_Other0001"),  # email, stored lower-case
        ("MIKA.TANAKA@EXAMPLE.JP", "cus_MikaTanaka01", "cus_Other0001"),
        ("tanaka", "cus_MikaTanaka01", "cus_Other0001"),  # part of a name
        ("Kenji", "cus_Other0001", "cus_MikaTanaka01"),
    ],
)
def test_customer_search_by_id_email_name(as_user, agent, q, shown, hidden):
    shop()
    factories.mirror(factories.CustomerFactory(id="cus_Other0001", name="Kenji Sato", email="kenji@example.com"))
    body = text(as_user(agent).get("/stripe/customers/", {"q": q}))
    assert shown in body
    assert hidden not in body


def test_payments_search_by_customer_id_lists_their_payments(as_user, agent):
    shop()
    factories.mirror(factories.ChargeFactory(id="ch_someoneelse", customer="cus_Other0001"))
    body = text(as_user(agent).get("/stripe/payments/", {"q": "cus_MikaTanaka01"}))
    assert "ch_usd0001" in body and "ch_jpy0001" in body
    assert "ch_someoneelse" not in body


def test_status_filter(as_user, agent):
    shop()
    factories.mirror(factories.ChargeFactory(id="ch_failed0001", status="failed", paid=False))
    body = text(as_user(agent).get("/stripe/payments/", {"status": "failed"}))
    assert "ch_failed0001" in body
    assert "ch_usd0001" not in body
    # An unknown status is ignored rather than matching nothing.
    assert "ch_usd0001" in text(as_user(agent).get("/stripe/payments/", {"status": "bogus"}))


def test_empty_filter_says_so(as_user, agent):
    body = text(as_user(agent).get("/stripe/payments/", {"q": "nobody@example.com"}))
    assert "No payments match this filter" in body


def test_keyset_pagination_with_htmx_infinite_scroll(as_user, agent):
    now = int(time.time())
    # 55 charges, two of them in the same second: the cursor must break the tie by id.
    charges = [factories.ChargeFactory(id=f"ch_page{n:03d}", created=now - n) for n in range(54)]
    charges.append(factories.ChargeFactory(id="ch_page053b", created=now - 53))
    factories.mirror(*charges)
    client = as_user(agent)
    first = client.get("/stripe/payments/")
    body = text(first)
    assert len(set(re.findall(r'href="/stripe/payments/(ch_page\w+)/"', body))) == 50
    assert 'hx-trigger="revealed"' in body
    assert first["Vary"] and "HX-Request" in first["Vary"]
    cursor = first.context["cursor"]
    assert cursor
    second = client.get("/stripe/payments/", {"after": cursor}, HTTP_HX_REQUEST="true")
    rows = text(second)
    assert "<html" not in rows  # only the next rows
    seen_first = {c["id"] for c in charges if f'href="/stripe/payments/{c["id"]}/"' in body}
    seen_second = {c["id"] for c in charges if f'href="/stripe/payments/{c["id"]}/"' in rows}
    assert len(seen_second) == 5
    assert seen_first.isdisjoint(seen_second)
    assert seen_first | seen_second == {c["id"] for c in charges}
    assert 'hx-trigger="revealed"' not in rows  # the last page


def test_htmx_filter_returns_the_table_only(as_user, agent):
    shop()
    response = as_user(agent).get(
        "/stripe/payments/", {"q": "ch_jpy"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="mirror-table"
    )
    body = text(response)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="mirror-table"')
    assert "ch_jpy0001" in body and "ch_usd0001" not in body


def test_a_bad_cursor_is_an_empty_page_not_an_error(as_user, agent):
    shop()
    response = as_user(agent).get("/stripe/payments/", {"after": "not-a-date|x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "ch_usd0001" not in text(response)


def _b64(value) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# Cursors that decode to dates that don't exist or can't be moved to UTC, and the old format.
IMPOSSIBLE_CURSORS = [
    "2024-02-30T00:00:00|ch_usd0001", "0001-01-01T00:00:00+14:00|ch_usd0001", "9999-12-31T23:59:59-12:00|x",
    _b64(["2024-02-30T00:00:00", "ch_usd0001"]), _b64(["0001-01-01T00:00:00+14:00", "ch_usd0001"]),
    _b64(["9999-12-31T23:59:59-12:00", "ch_usd0001"]), _b64([None, "ch_usd0001"]), _b64(["2024-01-01", 5]),
]


@pytest.mark.parametrize("path", ["/stripe/payments/", "/stripe/customers/", "/stripe/refunds/", "/stripe/events/"])
@pytest.mark.parametrize("after", IMPOSSIBLE_CURSORS)
def test_a_cursor_naming_an_impossible_date_is_an_empty_page(as_user, finance, path, after):
    shop()
    client = as_user(finance)
    for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(path, {"after": after}, **extra)
        assert response.status_code == 200
        assert "ch_usd0001" not in text(response)


@pytest.mark.parametrize("after", IMPOSSIBLE_CURSORS[:2])
def test_a_cursor_list_still_refuses_the_wrong_role_and_anonymous(as_user, client, agent, no_role, after):
    assert client.get("/stripe/payments/", {"after": after})["Location"].startswith(LOGIN)
    assert as_user(no_role).get("/stripe/payments/", {"after": after}).status_code == 403
    assert as_user(agent).get("/stripe/events/", {"after": after}).status_code == 403


# --- one object ----------------------------------------------------------------------------


def test_object_anonymous_is_sent_to_login(client):
    response = client.get("/stripe/payments/ch_usd0001/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_object_without_role_is_403(as_user, no_role):
    shop()
    assert as_user(no_role).get("/stripe/payments/ch_usd0001/").status_code == 403


def test_charge_page_for_finance_shows_facts_related_events_and_raw_json(as_user, finance):
    shop()
    response = as_user(finance).get("/stripe/payments/ch_usd0001/")
    assert response.status_code == 200
    body = text(response)
    assert "$42.00" in body and "$10.00" in body  # amount and refunded
    assert 'href="/stripe/customers/cus_MikaTanaka01/"' in body
    assert 'href="/stripe/refunds/re_usd0001/"' in body  # the charge's refunds
    assert 'href="/stripe/events/evt_usd0001/"' in body  # finance sees events
    assert "Raw Stripe object" in body
    assert "&quot;id&quot;: &quot;ch_usd0001&quot;" in body  # pretty, escaped JSON


def test_charge_page_for_agent_has_no_event_log(as_user, agent):
    shop()
    body = text(as_user(agent).get("/stripe/payments/ch_usd0001/"))
    assert "$42.00" in body
    assert "evt_usd0001" not in body


def test_customer_page_lists_their_payments(as_user, agent):
    shop()
    body = text(as_user(agent).get("/stripe/customers/cus_MikaTanaka01/"))
    assert "Mika Tanaka" in body
    assert 'href="/stripe/payments/ch_usd0001/"' in body and 'href="/stripe/payments/ch_jpy0001/"' in body
    assert "¥1,000" in body
    # The way to the person: the search sends a linked customer to their timeline and tickets.
    assert 'href="/search/?q=cus_MikaTanaka01">Customer timeline and tickets' in body
    # The payment page (console's) links the customer, and says when no contact is linked to them yet.
    charge = text(as_user(agent).get("/stripe/payments/ch_jpy0001/"))
    assert 'href="/stripe/customers/cus_MikaTanaka01/"' in charge and "not linked to a contact yet" in charge


def test_subscription_page_names_its_plan(as_user, agent):
    product = factories.RESOURCES["product"] | {"id": "prod_Coffee", "name": "Coffee subscription"}
    price = factories.RESOURCES["price"] | {
        "id": "price_Coffee", "product": "prod_Coffee", "unit_amount": 1800, "currency": "jpy",
        "recurring": {"interval": "month"},
    }
    sub = factories.SubscriptionFactory(
        id="sub_coffee01", customer="cus_MikaTanaka01",
        items={"object": "list", "data": [{"id": "si_1", "price": {"id": "price_Coffee"}, "quantity": 2}]},
    )
    old_style = factories.SubscriptionFactory(
        id="sub_plan01", customer="cus_MikaTanaka01",
        items={"object": "list", "data": [{"id": "si_2", "plan": {"id": "price_Coffee"}, "quantity": 1}]},
    )
    factories.mirror(factories.CustomerFactory(id="cus_MikaTanaka01"), product, price, sub, old_style)
    client = as_user(agent)
    body = text(client.get("/stripe/subscriptions/sub_coffee01/"))
    assert "Coffee subscription" in body
    assert "¥1,800" in body
    # The list names the plan too (read from the JSON inside the database), old API shape included.
    listing = client.get("/stripe/subscriptions/")
    assert [r.plan for r in listing.context["rows"]] == ["Coffee subscription", "Coffee subscription"]
    # And so does the customer's page.
    assert "Coffee subscription" in text(client.get("/stripe/customers/cus_MikaTanaka01/"))


@pytest.mark.parametrize("path", ["/stripe/payments/ch_missing/", "/stripe/customers/ch_usd0001/"])
def test_unknown_object_or_wrong_list_is_404(as_user, agent, path):
    shop()
    assert as_user(agent).get(path).status_code == 404


# --- event log and one event ----------------------------------------------------------------


# Keys named like dict methods: the template engine looks d["items"] up before d.items().
METHOD_KEYS = {"items": "3", "keys": "k", "values": "v", "get": "g", "order_id": "KR-10538"}


def metadata_shop():
    customer = factories.CustomerFactory(id="cus_Items01", metadata=METHOD_KEYS)
    charge = factories.ChargeFactory(id="ch_Items01", customer=customer["id"], metadata=METHOD_KEYS)
    intent = factories.PaymentIntentFactory(id="pi_Items01", customer=customer["id"], metadata={"items": "1"})
    factories.mirror(customer, charge, intent)


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
@pytest.mark.parametrize("path", ["/stripe/payments/ch_Items01/", "/stripe/payment-intents/pi_Items01/",
                                  "/stripe/customers/cus_Items01/"])
def test_metadata_keys_named_like_dict_methods_are_shown(as_user, request, role, path):
    metadata_shop()
    response = as_user(request.getfixturevalue(role)).get(path)
    assert response.status_code == 200
    shown = {"items": "1"} if "/pi_" in path else METHOD_KEYS
    for key, value in shown.items():
        assert f'<dt class="mono">{key}</dt><dd>{value}</dd>' in text(response)


def test_metadata_page_refuses_the_wrong_role_and_anonymous(as_user, client, no_role):
    metadata_shop()
    assert client.get("/stripe/payments/ch_Items01/")["Location"].startswith(LOGIN)
    assert as_user(no_role).get("/stripe/payments/ch_Items01/").status_code == 403


def test_event_log_anonymous_is_sent_to_login(client):
    response = client.get("/stripe/events/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_event_log_is_403_for_agent(as_user, agent):
    shop()
    response = as_user(agent).get("/stripe/events/")
    assert response.status_code == 403
    assert "evt_usd0001" not in text(response)


def test_event_log_for_finance_filters_by_status_and_object(as_user, finance):
    shop()
    failed = failed_event()
    client = as_user(finance)
    body = text(client.get("/stripe/events/"))
    assert "evt_usd0001" in body and failed in body
    only_failed = text(client.get("/stripe/events/", {"status": "failed"}))
    assert failed in only_failed and "evt_usd0001" not in only_failed
    assert "thin event and no STRIPE_API_KEY" in only_failed  # the error is readable
    by_object = text(client.get("/stripe/events/", {"q": "ch_usd0001"}))
    assert "evt_usd0001" in by_object and failed not in by_object


def test_event_log_pages_by_keyset(as_user, admin_user):
    now = int(time.time())
    for n in range(52):
        store_event(factories.event("customer.updated", factories.CustomerFactory(), created=now - n,
                                    event_id=f"evt_page{n:03d}"))
    client = as_user(admin_user)
    first = client.get("/stripe/events/")
    assert first.status_code == 200
    assert text(first).count('href="/stripe/events/evt_page') == 50
    second = client.get("/stripe/events/", {"after": first.context["cursor"]}, HTTP_HX_REQUEST="true")
    assert text(second).count('href="/stripe/events/evt_page') == 2


def test_event_detail(as_user, finance, agent, client):
    shop()
    response = as_user(finance).get("/stripe/events/evt_usd0001/")
    assert response.status_code == 200
    body = text(response)
    assert "charge.succeeded" in body
    assert 'href="/stripe/payments/ch_usd0001/"' in body
    assert "&quot;object&quot;: &quot;event&quot;" in body
    assert as_user(finance).get("/stripe/events/evt_nope/").status_code == 404
    client.logout()
    assert as_user(agent).get("/stripe/events/evt_usd0001/").status_code == 403


# --- sync health and replay -------------------------------------------------------------------


def test_sync_health_anonymous_is_sent_to_login(client):
    response = client.get("/sync/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_sync_health_is_403_for_agent(as_user, agent):
    response = as_user(agent).get("/sync/")
    assert response.status_code == 403
    assert "Replay" not in text(response)


@pytest.mark.parametrize("role", ["finance", "admin_user"])
def test_sync_health_shows_status_lag_cursors_and_failed(as_user, request, role):
    shop()
    failed = failed_event()
    now = timezone.now()
    SyncCursor.objects.create(name="backfill:charge", count=1234, started_at=now - dt.timedelta(hours=3),
                              finished_at=now - dt.timedelta(hours=2))
    SyncCursor.objects.create(name="reconcile", count=7, started_at=now - dt.timedelta(minutes=6),
                              finished_at=now - dt.timedelta(minutes=5))
    response = as_user(request.getfixturevalue(role)).get("/sync/")
    assert response.status_code == 200
    body = text(response)
    health = response.context["health"]
    assert health.counts_by_status == {"pending": 1, "failed": 1}
    assert health.last_backfill.name == "backfill:charge"
    assert health.last_reconcile.name == "reconcile"
    assert "1,234" in body and "backfill:charge" in body
    assert "2\xa0hours ago" in body or "2 hours ago" in body
    assert failed in body
    assert "Replay all 1 failed" in body


def test_sync_health_htmx_poll_returns_the_fragment(as_user, finance):
    response = as_user(finance).get("/sync/", HTTP_HX_REQUEST="true")
    body = text(response)
    assert body.lstrip().startswith('<div id="health"')
    assert "<html" not in body


def test_replay_anonymous_is_sent_to_login(client):
    failed = failed_event()
    response = client.post("/sync/replay/", {"event": failed})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not AuditEntry.objects.exists()


def test_replay_is_403_for_agent_and_changes_nothing(as_user, agent):
    failed = failed_event()
    response = as_user(agent).post("/sync/replay/", {"event": failed})
    assert response.status_code == 403
    assert WebhookEvent.objects.get(pk=failed).status == WebhookEvent.Status.FAILED
    assert not AuditEntry.objects.exists()


def test_replay_needs_post(as_user, finance):
    assert as_user(finance).get("/sync/replay/").status_code == 405


def test_finance_replays_a_failed_event_audited(as_user, finance, eager_tasks, django_capture_on_commit_callbacks):
    # The event failed because its object was thin; now the object is whole, the replay applies it.
    charge = factories.ChargeFactory(id="ch_replay0001", amount=5000)
    store_event(factories.event("charge.succeeded", charge, event_id="evt_replay0001"))
    actions.record_event_failure("evt_replay0001", "OperationalError: database went away", final=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(finance).post("/sync/replay/", {"event": "evt_replay0001"})
    assert response.status_code == 302 and response["Location"] == "/sync/"
    assert WebhookEvent.objects.get(pk="evt_replay0001").status == WebhookEvent.Status.APPLIED
    assert Charge.objects.get(pk="ch_replay0001").amount == 5000
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target) == (finance, "stripe_event.replay", "evt_replay0001")


def test_failed_follow_up_is_shown_and_retried_by_finance_not_agents(as_user, finance, agent, client, committed):
    from payments.models import PendingAnnouncement
    from payments.signals import stripe_event_applied

    def broken(sender, **kwargs):
        raise RuntimeError("timeline bug")

    payload = factories.event("customer.created", factories.CustomerFactory(name="Sora Abe"), event_id="evt_follow01")
    stripe_event_applied.connect(broken, dispatch_uid="test_views.broken")
    try:
        with committed():
            store_event(payload)
            actions.apply_event(payload["id"])
    finally:
        stripe_event_applied.disconnect(dispatch_uid="test_views.broken")
    page = as_user(finance).get("/sync/").content.decode()
    assert "Follow-up that failed" in page and "evt_follow01" in page and "RuntimeError: timeline bug" in page
    assert as_user(agent).post("/sync/retry-follow-up/", {"event": "evt_follow01"}).status_code == 403
    client.logout()
    assert client.post("/sync/retry-follow-up/", {"event": "evt_follow01"}).status_code == 302  # to the login
    with committed():
        response = as_user(finance).post("/sync/retry-follow-up/", {"event": "evt_follow01"})
    assert response.status_code == 302 and response["Location"] == "/sync/"
    assert not PendingAnnouncement.objects.filter(event_id="evt_follow01").exists()
    assert AuditEntry.objects.get(action="stripe_event.reannounce").actor == finance
    assert "Follow-up that failed" not in as_user(finance).get("/sync/").content.decode()


def test_replay_all_touches_only_failed_events(as_user, admin_user, eager_tasks, django_capture_on_commit_callbacks):
    shop()  # evt_usd0001 stays pending: "replay all failed" must not touch it
    failed_event("evt_failed_a")
    failed_event("evt_failed_b")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(admin_user).post("/sync/replay/")
    assert response.status_code == 302
    assert set(AuditEntry.objects.values_list("target", flat=True)) == {"evt_failed_a", "evt_failed_b"}
    # Still failed (the object is still thin, no API key), with one more attempt each.
    assert set(WebhookEvent.objects.filter(status="failed").values_list("id", flat=True)) == {"evt_failed_a", "evt_failed_b"}
    assert WebhookEvent.objects.get(pk="evt_usd0001").status == WebhookEvent.Status.PENDING


def test_replay_of_an_event_that_is_not_failed_does_nothing(as_user, finance):
    shop()
    response = as_user(finance).post("/sync/replay/", {"event": "evt_usd0001"}, follow=True)
    assert "no failed events to replay" in text(response)
    assert not AuditEntry.objects.exists()


def test_stripe_values_are_escaped(as_user, agent):
    # Names, emails and descriptions come from shoppers: they are text, never markup.
    customer = factories.CustomerFactory(id="cus_evil0001", name='<img src=x onerror="alert(1)">',
                                         email="evil@example.com")
    charge = factories.ChargeFactory(id="ch_evil0001", customer=customer["id"], description="<script>x</script>")
    factories.mirror(customer, charge)
    client = as_user(agent)
    for path in ("/stripe/customers/", "/stripe/payments/", "/stripe/payments/ch_evil0001/",
                 "/stripe/customers/cus_evil0001/"):
        body = text(client.get(path))
        assert "<img src=x" not in body and "<script>x" not in body, path
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text(client.get("/stripe/customers/"))
