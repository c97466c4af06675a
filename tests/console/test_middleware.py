"""console/middleware.py: refusals answered with a fragment are marked so the page swaps them in
place (with DEBUG on, django-htmx's script would otherwise replace the whole page with them)."""

import uuid

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def refund_url():
    customer = factories.CustomerFactory()
    charge = factories.ChargeFactory(customer=customer["id"], amount=5000)
    factories.mirror(customer, charge)
    contact = factories.IdentityFactory(kind="stripe_customer", value=customer["id"]).contact
    return f"/customers/{contact.pk}/charges/{charge['id']}/refund/preview"


def test_a_refused_htmx_form_is_marked_as_a_fragment(client, agent, refund_url):
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "amount": "twelve", "reason": "requested_by_customer"}
    refused = client.post(refund_url, data, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and b"is not an amount" in refused.content
    assert refused["X-Paydesk-Fragment"] == "1"


def test_whole_pages_and_plain_requests_are_not_marked(client, agent, refund_url):
    client.force_login(agent)
    # The settings page refuses an unknown zone with the whole page, even to htmx.
    page = client.post("/account/", {"time_zone": "Nowhere/Atlantis"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 400 and "X-Paydesk-Fragment" not in page
    plain = client.post(refund_url, {"token": uuid.uuid4().hex, "amount": "twelve"})  # not htmx
    assert plain.status_code == 400 and "X-Paydesk-Fragment" not in plain
    ok = client.get("/account/", HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "X-Paydesk-Fragment" not in ok
