"""The disputes dashboard (console/disputes/dashboard.py): its numbers on a known dataset in two
currencies, its charts, and who may see it."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.disputes import dashboard
from tests import factories

pytestmark = pytest.mark.django_db

DAY = 86400


def _dispute(status, amount, currency, *, reason="fraudulent", age_days=0.01, due_in_days=None):
    created = int(time.time() - age_days * DAY)
    due = int(time.time() + due_in_days * DAY) if due_in_days is not None else created + 7 * DAY
    return factories.DisputeFactory(status=status, amount=amount, currency=currency, reason=reason, created=created,
                                    evidence_details={"due_by": due, "has_evidence": False, "past_due": False,
                                                      "submission_count": 0})


@pytest.fixture
def known():
    """Open: ¥5,000 due in 2 days, ¥3,000 under review, a ¥2,000 inquiry due in 10 days, $42.00 due
    in 3 days. Decided (opened 40 days ago): fraudulent won 1 lost 2, product not received won 1; one
    won 120 days ago (outside). Payments: 4 forty days ago, 10 this month, a failed one, one 100 days
    ago. Refunds: requested by customer ¥1,000 ×2 and $5.00, duplicate ¥700; a failed one and an
    old one left out."""
    objects = [
        _dispute("needs_response", 5000, "jpy", due_in_days=2),
        _dispute("under_review", 3000, "jpy", due_in_days=-1),
        _dispute("warning_needs_response", 2000, "jpy", reason="general", due_in_days=10),
        _dispute("needs_response", 4200, "usd", due_in_days=3),
        _dispute("won", 1000, "jpy", age_days=40),
        _dispute("lost", 1000, "jpy", age_days=40),
        _dispute("lost", 1500, "usd", age_days=40),
        _dispute("won", 900, "usd", reason="product_not_received", age_days=40),
        _dispute("won", 900, "usd", reason="product_not_received", age_days=120),
    ]
    now = time.time()
    objects += [factories.ChargeFactory(created=int(now - 40 * DAY)) for _ in range(4)]
    objects += [factories.ChargeFactory(created=int(now - 2 * DAY)) for _ in range(10)]
    objects += [factories.ChargeFactory(created=int(now - 2 * DAY), status="failed"),
                factories.ChargeFactory(created=int(now - 100 * DAY))]
    objects += [
        factories.RefundFactory(amount=1000, currency="jpy", reason="requested_by_customer"),
        factories.RefundFactory(amount=1000, currency="jpy", reason="requested_by_customer"),
        factories.RefundFactory(amount=500, currency="usd", reason="requested_by_customer"),
        factories.RefundFactory(amount=700, currency="jpy", reason="duplicate"),
        factories.RefundFactory(amount=9999, currency="jpy", reason="duplicate", status="failed"),
        factories.RefundFactory(amount=8888, currency="usd", reason="fraudulent", created=int(now - 100 * DAY)),
    ]
    factories.mirror(*objects)


def test_the_numbers_on_a_known_dataset(known):
    data = dashboard.insight()
    by_currency = {c.currency: c for c in data.at_risk}
    assert (by_currency["jpy"].open_count, by_currency["jpy"].at_risk) == (3, 10000)
    assert (by_currency["jpy"].due_count, by_currency["jpy"].due_amount) == (1, 5000)
    assert (by_currency["usd"].open_count, by_currency["usd"].at_risk) == (1, 4200)
    assert (by_currency["usd"].due_count, by_currency["usd"].due_amount) == (1, 4200)
    assert (data.open_count, data.due_count) == (4, 2)
    outcomes = {o.reason: (o.won, o.lost) for o in data.outcomes}
    assert outcomes == {"fraudulent": (1, 2), "product_not_received": (1, 0)}
    assert (data.won, data.decided) == (2, 4)
    # Three 30-day periods, oldest first; inquiries and failed payments left out.
    assert [(p.disputes, p.charges) for p in data.periods] == [(0, 0), (4, 4), (3, 10)]
    assert data.per_thousand == 500
    refunds = {r.reason: (r.count, r.amounts) for r in data.refunds}
    assert refunds == {"requested_by_customer": (3, {"jpy": 2000, "usd": 500}), "duplicate": (1, {"jpy": 700})}


@pytest.mark.parametrize("role", ["finance", "admin_user"])
def test_finance_and_admin_read_the_dashboard(request, as_user, known, role):
    response = as_user(request.getfixturevalue(role)).get("/disputes/insight/")
    assert response.status_code == 200
    html = response.content.decode()
    # The figures, said beside the bars.
    assert "3 open · ¥10,000 at risk" in html and "1 open · $42.00 at risk" in html
    assert "1 due · ¥5,000" in html and "1 due · $42.00" in html
    assert "33% won (1 of 3)" in html and "100% won (1 of 1)" in html
    assert "1,000 (4 of 4 payments)" in html and "Last 30 days: 300 (3 of 10 payments)" in html
    assert "30–60 days ago" in html and "60–90 days ago" in html
    assert "3 · ¥2,000 · $5.00" in html and "1 · ¥700" in html
    assert ">500<" in html and ">50%<" in html  # the headline rate and win rate
    # Accessible charts: each SVG names itself and says its values in words.
    assert html.count('role="img"') == 5
    assert '<title id="chart-wins-title">' in html and "Fraudulent: 33% won (1 of 3)" in html
    assert "<script" not in html.split("<main", 1)[1]  # no script needed
    assert '<a href="/disputes/insight/" aria-current="page">At a glance</a>' in html  # a tab beside the queue's


def test_agents_are_refused_and_anonymous_sent_to_log_in(client, as_user, agent, no_role):
    assert client.get("/disputes/insight/").status_code == 302
    assert as_user(agent).get("/disputes/insight/").status_code == 403
    assert "/disputes/insight/" not in as_user(agent).get("/disputes/").content.decode()  # no tab to a 403
    assert as_user(no_role).get("/disputes/insight/").status_code == 403


def test_an_empty_shop_says_so(as_user, finance):
    html = as_user(finance).get("/disputes/insight/").content.decode()
    assert "No open disputes." in html and "No refunds in the last 90 days." in html
    assert "No payments in the last 90 days." in html and "No dispute opened in the last 90 days" in html


def test_htmx_gets_the_fragment(as_user, finance, known):
    response = as_user(finance).get("/disputes/insight/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<html" not in response.content and b"dispute-insight" in response.content


def test_few_queries_whatever_the_size(as_user, finance, known):
    client = as_user(finance)
    client.get("/disputes/insight/")
    with CaptureQueriesContext(connection) as few:
        client.get("/disputes/insight/")
    factories.mirror(*[_dispute("needs_response", 100, "eur", due_in_days=1) for _ in range(20)],
                     *[factories.RefundFactory(currency="eur", reason="duplicate") for _ in range(20)])
    with CaptureQueriesContext(connection) as many:
        client.get("/disputes/insight/")
    assert len(many) == len(few)
    with CaptureQueriesContext(connection) as own:
        dashboard.insight()
    assert len(own) == 5
