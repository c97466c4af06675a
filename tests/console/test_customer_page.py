"""The customer page: header figures, keyset pages, filters, entry detail (why-charged,
agent purchase), money and time zone; who may see it."""

import datetime as dt
import time

import pytest
from django.urls import reverse

from console.models import TimelineEntry, UserPreference
from console.selectors import timeline_page
from tests import factories
from tests.helpers import deliver

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def shop():
    cus = factories.CustomerFactory(email="mika@example.jp", name="Mika", metadata={"Tier": "VIP"})
    deliver("customer.created", cus, created=NOW - 90000)
    from tickets.models import Identity

    contact = Identity.objects.get(value=cus["id"]).contact
    return cus, contact


def bulk_entries(contact, n, start=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)):
    kinds = ["payment_succeeded", "refund", "ticket", "message"]
    # Pairs share a timestamp so the id breaks ties across page boundaries.
    TimelineEntry.objects.bulk_create([
        TimelineEntry(contact=contact, occurred_at=start + dt.timedelta(minutes=i // 2), kind=kinds[i % 4],
                      source=f"bulk:{i}", title=f"e{i}", agent_purchase=i % 10 == 0)
        for i in range(n)
    ])


def test_keyset_pages_are_disjoint_and_complete(shop):
    _, contact = shop
    bulk_entries(contact, 237)
    seen, cursor, pages = [], "", 0
    while True:
        entries, cursor = timeline_page(contact.pk, cursor=cursor, size=50)
        seen += [(e.occurred_at, e.pk) for e in entries]
        pages += 1
        if not cursor:
            break
    assert pages == 5 and len(seen) == len(set(seen)) == TimelineEntry.objects.filter(contact=contact).count()
    assert seen == sorted(seen, reverse=True)


def test_filters_by_kind_group_and_agent_purchase(shop):
    _, contact = shop
    bulk_entries(contact, 40)
    refunds, _ = timeline_page(contact.pk, filter_key="refunds", size=100)
    assert {e.kind for e in refunds} == {"refund"} and len(refunds) == 10
    tickets, _ = timeline_page(contact.pk, filter_key="tickets", size=100)
    assert {e.kind for e in tickets} == {"ticket", "message"} and len(tickets) == 20
    agent, _ = timeline_page(contact.pk, filter_key="agent", size=100)
    assert len(agent) == 4 and all(e.agent_purchase for e in agent)


def test_page_header_money_and_time_zone(client, agent, shop):
    cus, contact = shop
    ch = factories.ChargeFactory(customer=cus["id"], amount=1000, amount_refunded=300, currency="jpy",
                                 created=1767225600)  # 2026-01-01 00:00 UTC
    deliver("charge.succeeded", ch, created=NOW - 100)
    dp = factories.DisputeFactory(charge=ch["id"])
    deliver("charge.dispute.created", dp, created=NOW - 50)
    UserPreference.objects.create(user=agent, time_zone="Asia/Tokyo")
    client.force_login(agent)
    html = client.get(reverse("customer", args=[contact.pk])).content.decode()
    assert "¥1,000" in html and "¥300" in html and "VIP" in html and cus["id"] in html
    assert "Jan 1, 2026, 9:00\u202fAM" in html  # Tokyo is UTC+9 (common.l10n.format_when, in the row's tooltip)
    assert 'hx-trigger="revealed"' not in html  # one page only


def test_infinite_scroll_fragment_and_detail_in_place(client, agent, shop):
    _, contact = shop
    bulk_entries(contact, 60)
    client.force_login(agent)
    page = client.get(reverse("customer", args=[contact.pk])).content.decode()
    assert 'hx-trigger="revealed"' in page
    first, cursor = timeline_page(contact.pk)
    fragment = client.get(reverse("customer_timeline", args=[contact.pk]), {"cursor": cursor},
                          HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and f'id="entry-{first[-1].pk}"' not in fragment and ">e1</span>" in fragment
    detail = client.get(reverse("timeline_entry", args=[contact.pk, first[0].pk]))
    assert detail.status_code == 200
    other = factories.ContactFactory()
    assert client.get(reverse("timeline_entry", args=[other.pk, first[0].pk])).status_code == 404


def test_why_was_i_charged_chain(client, agent, shop):
    cus, contact = shop
    factories.mirror({"id": "prod_tea", "object": "product", "name": "Tea club", "active": True, "created": NOW})
    price = {"id": "price_tea", "object": "price", "product": "prod_tea", "unit_amount": 1500, "currency": "jpy",
             "recurring": {"interval": "month"}, "active": True, "created": NOW}
    factories.mirror(price)
    sub = factories.SubscriptionFactory(customer=cus["id"], currency="jpy", items={"object": "list", "data": [
        {"id": "si_1", "object": "subscription_item", "price": price}]})
    deliver("customer.subscription.created", sub, created=NOW - 80000)
    inv = factories.InvoiceFactory(customer=cus["id"], subscription=sub["id"], currency="jpy", amount_paid=1500,
                                   billing_reason="subscription_cycle",
                                   lines={"object": "list", "data": [{"period": {"start": NOW - 1000, "end": NOW + 86400 * 30}}]})
    deliver("invoice.paid", inv, created=NOW - 900)
    ch = factories.ChargeFactory(customer=cus["id"], amount=1500, currency="jpy", invoice=inv["id"], created=NOW - 900)
    deliver("charge.succeeded", ch, created=NOW - 900)
    # Cancelled after the renewal was charged: the agent sees "after".
    deliver("customer.subscription.deleted", {**sub, "status": "canceled", "canceled_at": NOW - 100}, created=NOW - 100)
    entry = TimelineEntry.objects.get(kind="payment_succeeded")
    client.force_login(agent)
    html = client.get(reverse("timeline_entry", args=[contact.pk, entry.pk])).content.decode()
    assert inv["number"] in html and sub["id"] in html and "Tea club (¥1,500/month)" in html
    # billing_reason subscription_cycle, said as a reader says it.
    assert "Renewal" in html and "<strong>after</strong>" in html


def test_one_off_charge_and_agent_purchase_detail(client, agent, shop):
    cus, contact = shop
    pi = factories.PaymentIntentFactory(customer=cus["id"], shared_payment_granted_token={
        "id": "spt_x", "object": "shared_payment.granted_token",
        "usage_limits": {"currency": "jpy", "max_amount": 5000, "expires_at": 1767225600}})
    ch = factories.ChargeFactory(customer=cus["id"], payment_intent=pi["id"], description="Gift box")
    deliver("payment_intent.succeeded", pi, created=NOW - 70)
    deliver("charge.succeeded", ch, created=NOW - 60)
    entry = TimelineEntry.objects.get(kind="payment_succeeded")
    client.force_login(agent)
    html = client.get(reverse("customer", args=[contact.pk]) + "?filter=agent").content.decode()
    assert "Agent purchase" in html
    detail = client.get(reverse("timeline_entry", args=[contact.pk, entry.pk])).content.decode()
    assert "Gift box" in detail and "spt_x" in detail and "¥5,000" in detail and "Jan 1, 2026, 12:00\u202fAM" in detail


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_every_role_reads_the_page(request, client, role, shop):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("customer", args=[shop[1].pk])).status_code == 200


def test_anonymous_and_no_role(client, shop):
    url = reverse("customer", args=[shop[1].pk])
    assert client.get(url)["Location"].startswith("/login/")
    client.force_login(factories.UserFactory())
    assert client.get(url).status_code == 403


def test_merged_contact_redirects_to_the_survivor(client, agent, shop):
    from tickets import actions as ticket_actions

    survivor = factories.ContactFactory()
    ticket_actions.contact_merge(actor=agent, survivor=survivor, merged=shop[1])
    client.force_login(agent)
    assert client.get(reverse("customer", args=[shop[1].pk]))["Location"] == reverse("customer", args=[survivor.pk])


def test_day_headings_in_the_agents_zone_and_not_repeated_across_pages(client, agent, shop):
    _, contact = shop
    # 60 entries a minute apart from 23:30 UTC on Jan 1: 30 on Jan 1 and 30 on Jan 2 (UTC),
    # but in Tokyo (UTC+9) all 60 fall on Jan 2.
    bulk_entries(contact, 120, start=dt.datetime(2025, 1, 1, 23, 30, tzinfo=dt.timezone.utc))
    client.force_login(agent)
    url = reverse("customer", args=[contact.pk])
    html = client.get(url).content.decode()
    assert html.count('class="tl-day"') == 1 and "Thu, Jan 2, 2025" in html
    _, cursor = timeline_page(contact.pk)
    more = client.get(reverse("customer_timeline", args=[contact.pk]), {"cursor": cursor},
                      HTTP_HX_REQUEST="true").content.decode()
    # The second page goes on with Jan 2 (no heading again), then starts Jan 1.
    assert more.count('class="tl-day"') == 1 and "Wed, Jan 1, 2025" in more
    assert more.index('class="tl-day"') > more.index('class="tl-entry')
    client.post(reverse("account"), {"time_zone": "Asia/Tokyo"})  # replaces the zone the session cached
    html = client.get(url).content.decode()
    assert "Times in Asia/Tokyo" in html and "Thu, Jan 2, 2025" in html and "Wed, Jan 1" not in html


# --- malformed cursors: the normal page, never an error -------------------------------------------

HOSTILE_CURSORS = ["99999999999999999999999.1", "-1.5", "-99999999999999.1", "1.-1", "²³.1", "not-a-cursor!!"]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
def test_a_malformed_cursor_shows_the_first_page(client, agent, shop, cursor):
    _, contact = shop
    bulk_entries(contact, 3)
    client.force_login(agent)
    for url in (reverse("customer", args=[contact.pk]), reverse("customer_timeline", args=[contact.pk])):
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, {"cursor": cursor}, **extra)
            assert response.status_code == 200, (url, extra)
            assert ">e1</span>" in response.content.decode()


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS[:2])
def test_a_malformed_cursor_is_refused_to_the_wrong_role_and_anonymous(client, no_role, shop, cursor):
    _, contact = shop
    url = reverse("customer_timeline", args=[contact.pk])
    assert client.get(url, {"cursor": cursor})["Location"].startswith("/login/")
    client.force_login(no_role)
    assert client.get(url, {"cursor": cursor}).status_code == 403


# --- Stripe metadata with keys named like dict methods ---------------------------------------------

METHOD_KEYS = {"items": "3", "keys": "k", "values": "v", "get": "g"}


@pytest.fixture
def shopper_with_method_keys():
    """Every Stripe dict on the page carries metadata an agent could set: items=3, get=g ..."""
    cus = factories.CustomerFactory(email="ito@example.jp", name="Ito", metadata={**METHOD_KEYS, "Tier": "Gold"})
    deliver("customer.created", cus, created=NOW - 900)
    ch = factories.ChargeFactory(customer=cus["id"], metadata=METHOD_KEYS)
    deliver("charge.succeeded", ch, created=NOW - 800)
    from tickets.models import Identity

    contact = Identity.objects.get(value=cus["id"]).contact
    entry = TimelineEntry.objects.get(contact=contact, kind="payment_succeeded")
    return contact, entry


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_metadata_keys_named_like_dict_methods_break_nothing(client, request, role, shopper_with_method_keys):
    contact, entry = shopper_with_method_keys
    client.force_login(request.getfixturevalue(role))
    page = client.get(reverse("customer", args=[contact.pk]))
    assert page.status_code == 200 and "Gold" in page.content.decode()
    detail = client.get(reverse("timeline_entry", args=[contact.pk, entry.pk]))
    assert detail.status_code == 200 and "Why was I charged?" in detail.content.decode()
    panel = client.get(reverse("customer_panel", args=[contact.pk]), HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "Recent payments" in panel.content.decode()


def test_metadata_pages_refuse_the_wrong_role_and_anonymous(client, no_role, shopper_with_method_keys):
    contact, entry = shopper_with_method_keys
    urls = [reverse("customer", args=[contact.pk]), reverse("timeline_entry", args=[contact.pk, entry.pk])]
    for url in urls:
        assert client.get(url)["Location"].startswith("/login/")
    client.force_login(no_role)
    for url in urls:
        assert client.get(url).status_code == 403


@pytest.mark.parametrize("ticket", ["²", "٣", "99999999999999999999999", "-1", "x"])
def test_the_panels_recent_activity_beside_a_ticket_that_is_no_number(client, agent, no_role, shop, ticket):
    """The panel shows recent activity besides ?ticket=<id> (console.selectors.recent_activity):
    "²" passed str.isdigit() and then int() raised."""
    _, contact = shop
    bulk_entries(contact, 3)
    url = reverse("customer_panel", args=[contact.pk])
    assert client.get(url, {"ticket": ticket})["Location"].startswith("/login/")
    client.force_login(no_role)
    assert client.get(url, {"ticket": ticket}).status_code == 403
    client.force_login(agent)
    response = client.get(url, {"ticket": ticket}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Recent activity" in response.content.decode()


def test_why_charged_says_together_when_the_cancellation_and_the_charge_share_a_second(client, agent, shop):
    """Stripe's whole seconds: neither "before" nor "after", which the timeline (ordering the two
    by arrival) could contradict."""
    cus, contact = shop
    sub = factories.SubscriptionFactory(customer=cus["id"], currency="jpy")
    deliver("customer.subscription.created", sub, created=NOW - 80000)
    inv = factories.InvoiceFactory(customer=cus["id"], subscription=sub["id"], currency="jpy", amount_paid=1500)
    deliver("invoice.paid", inv, created=NOW - 500)
    ch = factories.ChargeFactory(customer=cus["id"], amount=1500, currency="jpy", invoice=inv["id"], created=NOW - 500)
    deliver("charge.succeeded", ch, created=NOW - 500)
    deliver("customer.subscription.deleted", {**sub, "status": "canceled", "canceled_at": NOW - 500}, created=NOW - 500)
    entry = TimelineEntry.objects.get(kind="payment_succeeded")
    client.force_login(agent)
    html = client.get(reverse("timeline_entry", args=[contact.pk, entry.pk])).content.decode()
    assert "<strong>in the same second</strong>" in html
    assert "<strong>before</strong>" not in html and "<strong>after</strong>" not in html
