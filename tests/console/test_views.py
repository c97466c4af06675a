"""The console shell: home, the top-bar search, healthz, login, the error pages."""

import pytest

from payments.events import store_event
from payments.actions import events as actions
from tests import factories

pytestmark = pytest.mark.django_db


def seed():
    customer = factories.CustomerFactory(id="cus_Haruto01", name="Haruto Sato", email="haruto@example.jp")
    charge = factories.ChargeFactory(id="ch_home0001", customer=customer["id"], amount=129800, currency="jpy")
    dispute = factories.DisputeFactory(id="dp_home0001", charge=charge["id"], amount=129800, currency="jpy")
    factories.mirror(customer, charge, dispute)
    payload = factories.event("charge.succeeded", {}, event_id="evt_home_failed")
    payload["data"], payload["related_object"] = {}, {"id": "ch_x", "type": "charge"}
    store_event(payload)
    actions.record_event_failure("evt_home_failed", "EventNotApplicable: thin event", final=True)


# --- home ---------------------------------------------------------------------------------


def test_home_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_home_for_agent_shows_counts_payments_and_disputes_but_no_sync(as_user, agent):
    seed()
    response = as_user(agent).get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Disputes needing a response" in body
    assert "¥129,800" in body
    assert 'href="/stripe/disputes/dp_home0001/"' in body
    assert "Failed events" not in body  # agents don't watch the sync
    assert 'href="/sync/"' not in body  # and it is not in their navigation
    assert 'href="/admin/"' not in body


def test_home_for_finance_shows_failed_events(as_user, finance):
    seed()
    response = as_user(finance).get("/")
    overview = response.context["overview"]
    assert overview["failed_events"] == 1
    assert overview["open_dispute_count"] == 1
    assert [v["currency"] for v in overview["volume"]] == ["jpy"]
    body = response.content.decode()
    assert 'href="/sync/"' in body and 'href="/stripe/events/"' in body
    assert 'href="/admin/"' not in body


def test_home_for_admin_links_django_admin(as_user, admin_user):
    body = as_user(admin_user).get("/").content.decode()
    assert 'href="/admin/"' in body


def test_home_without_role_shows_nothing_of_stripe(as_user, no_role):
    seed()
    response = as_user(no_role).get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "¥129,800" not in body and "Customers" not in body


# --- the top-bar search --------------------------------------------------------------------


@pytest.mark.parametrize(
    "q, where",
    [
        ("cus_Haruto01", "/stripe/customers/cus_Haruto01/"),
        (" ch_home0001 ", "/stripe/payments/ch_home0001/"),
        ("dp_home0001", "/stripe/disputes/dp_home0001/"),
        ("ch_unknown", "/stripe/payments/?q=ch_unknown"),  # not mirrored: the list says so
        ("", "/stripe/customers/"),
    ],
)
def test_search_sends_ids_to_objects(as_user, agent, q, where):
    seed()
    response = as_user(agent).get("/search/", {"q": q})
    assert response.status_code == 302
    assert response["Location"] == where


@pytest.mark.parametrize("q", ["haruto@example.jp", "Haruto Sato", "in_house & co"])
def test_search_lists_words_and_addresses_on_the_results_page(as_user, agent, q):
    """Words are searched everywhere (console/search.py), not sent to the customers list."""
    seed()
    response = as_user(agent).get("/search/", {"q": q})
    assert response.status_code == 200 and "search-results" in response.content.decode()


def test_search_event_id_for_finance_opens_the_event(as_user, finance):
    seed()
    response = as_user(finance).get("/search/", {"q": "evt_home_failed"})
    assert response["Location"] == "/stripe/events/evt_home_failed/"


def test_search_event_id_for_agent_does_not_open_the_event_log(as_user, agent):
    seed()
    response = as_user(agent).get("/search/", {"q": "evt_home_failed"})
    assert response["Location"] == "/stripe/customers/?q=evt_home_failed"


def test_search_is_refused_to_someone_who_may_see_nothing(as_user, no_role):
    seed()
    assert as_user(no_role).get("/search/", {"q": "ch_home0001"}).status_code == 403


def test_search_anonymous_is_sent_to_login(client):
    response = client.get("/search/", {"q": "cus_Haruto01"})
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/search/")


# --- healthz, login, errors --------------------------------------------------------------


def test_healthz_is_public_and_says_nothing_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_login_page_and_login(client, finance):
    page = client.get("/login/?next=/sync/")
    assert page.status_code == 200
    assert b'name="next" value="/sync/"' in page.content
    bad = client.post("/login/", {"username": "finance", "password": "wrong", "next": "/sync/"})
    assert bad.status_code == 200 and b"didn't match" in bad.content
    good = client.post("/login/", {"username": "finance", "password": "correct horse battery", "next": "/sync/"})
    assert good.status_code == 302 and good["Location"] == "/sync/"
    assert client.get("/sync/").status_code == 200


def test_logout_needs_post(as_user, agent):
    client = as_user(agent)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_403_page_is_the_console_shell(as_user, agent):
    response = as_user(agent).get("/sync/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "You don't have access to this page" in body
    assert 'class="sidebar"' in body


def test_404_page_is_the_console_shell(as_user, agent):
    response = as_user(agent).get("/stripe/payments/ch_nope/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Nothing here" in body
    assert "No payment ch_nope in the mirror" in body
