"""console.confirm: a confirmation does exactly what its preview said, once. Only the signed
confirmation a preview showed is taken — not posted fields, not another person's, another
charge's or an expired one — and typed amounts are read strictly (console.forms)."""

from __future__ import annotations

import time
import uuid
from unittest import mock

import pytest

from audit.models import AuditEntry
from console.forms import MinorUnitsField
from tests import factories
from tests.console.test_panel import live_charge  # noqa: F401
from tests.helpers import HX, sealed
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def refund_url(live_charge):  # noqa: F811
    contact, charge = live_charge
    return f"/customers/{contact.pk}/charges/{charge['id']}/refund"


def preview(client, base, amount="12.50"):
    response = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": amount,
                                               "reason": "requested_by_customer"}, **HX)
    assert response.status_code == 200, response.content
    return sealed(response)


def test_the_confirm_step_refunds_what_was_previewed_and_ignores_posted_fields(client, agent, refund_url, gw):
    client.force_login(agent)
    confirmation = preview(client, refund_url, "12.50")
    # The probe: fields posted beside (or instead of) the confirmation change nothing.
    response = client.post(refund_url + "/confirm", {"confirmation": confirmation, "amount_minor": "5000",
                                                     "amount": "50", "token": uuid.uuid4().hex}, **HX)
    assert response.status_code == 200 and b"Refunded $12.50" in response.content
    [sent] = gw.sent("POST", "/v1/refunds")
    assert sent["params"]["amount"] == "1250"


@pytest.mark.parametrize("posted", [
    {"reason": "requested_by_customer"},  # `POST reason=...` alone once refunded the whole remainder
    {"amount_minor": "-1", "token": uuid.uuid4().hex},
    {"confirmation": ""},
    {"confirmation": "eyJub3QiOiJzaWduZWQifQ:1vXyZ:forged"},
])
def test_anything_but_a_previewed_confirmation_is_refused(client, agent, refund_url, gw, posted):
    client.force_login(agent)
    response = client.post(refund_url + "/confirm", posted, **HX)
    assert response.status_code == 400 and b"not one Paydesk showed" in response.content
    assert gw.sent("POST", "/v1/refunds") == [] and not AuditEntry.objects.exists()


def test_an_altered_confirmation_is_refused(client, agent, refund_url, gw):
    client.force_login(agent)
    confirmation = preview(client, refund_url)
    altered = confirmation[:-3] + ("AAA" if not confirmation.endswith("AAA") else "BBB")
    assert client.post(refund_url + "/confirm", {"confirmation": altered}, **HX).status_code == 400
    assert gw.sent("POST", "/v1/refunds") == []


def test_another_persons_or_another_charges_confirmation_is_refused(client, agent, refund_url, gw, live_charge):  # noqa: F811
    client.force_login(agent)
    confirmation = preview(client, refund_url)
    colleague = factories.UserFactory(username="kenji", role="agent")
    client.force_login(colleague)
    response = client.post(refund_url + "/confirm", {"confirmation": confirmation}, **HX)
    assert response.status_code == 400 and b"made for something else" in response.content
    client.force_login(agent)
    other = factories.ChargeFactory(customer=live_charge[1]["customer"], amount=9000)
    factories.mirror(other)
    elsewhere = f"/customers/{live_charge[0].pk}/charges/{other['id']}/refund/confirm"
    assert client.post(elsewhere, {"confirmation": confirmation}, **HX).status_code == 400
    assert gw.sent("POST", "/v1/refunds") == []


def test_a_confirmation_older_than_fifteen_minutes_is_reviewed_again(client, agent, refund_url, gw):
    client.force_login(agent)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 16 * 60):
        confirmation = preview(client, refund_url)
    response = client.post(refund_url + "/confirm", {"confirmation": confirmation}, **HX)
    assert response.status_code == 400 and b"more than 15 minutes old" in response.content
    assert gw.sent("POST", "/v1/refunds") == []


@pytest.mark.parametrize("typed", ["Infinity", "sNaN", "NaN", "1e999999", "-5", "0", "1e3", "²", "12.345", "abc",
                                   "99999999999999999999", " ", "1.2.3", "¥50"])
def test_hostile_amounts_are_a_field_error_never_a_500(client, agent, refund_url, gw, typed):
    client.force_login(agent)
    response = client.post(refund_url + "/preview", {"token": uuid.uuid4().hex, "amount": typed,
                                                     "reason": "requested_by_customer"}, **HX)
    if typed == " ":  # blank: everything that is left
        assert response.status_code == 200 and b"Refund $50.00 of $50.00" in response.content
    else:
        assert response.status_code == 400, (typed, response.content)
    assert gw.sent("POST", "/v1/refunds") == []


@pytest.mark.parametrize("typed, minor", [("12.50", 1250), ("1,250", 125000), ("１２．５", 1250), (" 7 ", 700)])
def test_amounts_typed_as_people_type_them(typed, minor):
    assert MinorUnitsField(currency="usd").clean(typed) == minor
    assert MinorUnitsField(currency="jpy").clean("２，５００") == 2500  # a Japanese keyboard


def test_a_failed_charge_offers_nothing_to_refund(client, agent, live_charge, localstripe):  # noqa: F811
    contact, charge = live_charge
    failed = factories.ChargeFactory(customer=charge["customer"], amount=3200, currency="jpy", status="failed",
                                     paid=False, captured=False, amount_captured=0)
    factories.mirror(failed)
    client.force_login(agent)
    form = client.get(f"/customers/{contact.pk}/charges/{failed['id']}/refund", **HX)
    assert form.status_code == 200 and b"Nothing of this charge can be refunded" in form.content
    assert b"Up to" not in form.content
    panel = client.get(f"/customers/{contact.pk}/panel", **HX).content.decode()
    assert f"/charges/{failed['id']}/refund" not in panel  # no Refund… button on it
