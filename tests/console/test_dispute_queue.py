"""The dispute queue's reads (console/disputes/selectors.py): the order of the three groups, the
filters (hostile values ignored), the header's counts and amount at risk per currency, the
rows' columns, the early-fraud-warning rows, and a page's query count that does not grow."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from console.disputes import selectors
from console.disputes.actions import assign_disputes, link_dispute_ticket
from console.models import TimelineEntry
from tests import factories

pytestmark = pytest.mark.django_db

NOW = int(time.time())
HOUR = 3600


def dispute(status="needs_response", *, due_in=None, created=None, amount=4200, currency="usd", reason="fraudulent",
            charge=None, evidence=None, **kw):
    created = created or NOW - 86400
    details = {"due_by": NOW + due_in if due_in is not None else created + 7 * 86400, "has_evidence": False,
               "past_due": False, "submission_count": 0, **(evidence or {})}
    return factories.DisputeFactory(status=status, created=created, amount=amount, currency=currency, reason=reason,
                                    charge=charge or factories.stripe_id("ch"), evidence_details=details, **kw)


def ids(queue) -> list[str]:
    return [r["id"] for r in queue.rows]


def filters(**query) -> selectors.Filters:
    q = QueryDict(mutable=True)
    for k, v in query.items():
        q[k] = v
    return selectors.parse_filters(q)


def test_needing_a_response_first_by_deadline_then_under_review_then_closed_newest_first():
    later = dispute(due_in=5 * 86400)
    soon = dispute("warning_needs_response", due_in=10 * HOUR)
    soonest = dispute(due_in=2 * HOUR)
    review_old = dispute("under_review", created=NOW - 9 * 86400)
    review_new = dispute("warning_under_review", created=NOW - 2 * 86400)
    won = dispute("won", created=NOW - 30 * 86400)
    lost = dispute("lost", created=NOW - 3 * 86400)
    prevented = dispute("prevented", created=NOW - 10 * 86400)
    inquiry_closed = dispute("warning_closed", created=NOW - 20 * 86400)
    factories.mirror(later, soon, soonest, review_old, review_new, won, lost, prevented, inquiry_closed)

    queue = selectors.dispute_queue(selectors.Filters())
    assert ids(queue) == [soonest["id"], soon["id"], later["id"], review_new["id"], review_old["id"], lost["id"],
                          prevented["id"], inquiry_closed["id"], won["id"]]
    assert queue.counts == {"respond": 3, "review": 2, "closed": 4}
    inquiry = next(r for r in queue.rows if r["id"] == soon["id"])
    assert inquiry["inquiry"] and inquiry["status_label"] == "Inquiry: needs response"


def test_pages_cut_across_the_groups_without_repeating_or_skipping():
    made = [dispute(due_in=(i + 1) * HOUR) for i in range(4)] + [
        dispute("under_review", created=NOW - i * 60) for i in range(3)] + [
        dispute("won", created=NOW - 1000 - i) for i in range(4)]
    factories.mirror(*made)
    pages = [selectors.dispute_queue(selectors.Filters(), page, page_size=3) for page in (1, 2, 3, 4)]
    assert [len(p.rows) for p in pages] == [3, 3, 3, 2]
    assert [p.has_more for p in pages] == [True, True, True, False]
    seen = [i for p in pages for i in ids(p)]
    assert seen == [d["id"] for d in made]


def test_the_amount_at_risk_per_currency_counts_needing_response_and_under_review_only():
    factories.mirror(
        dispute(amount=4200, currency="usd"), dispute("under_review", amount=1000, currency="usd"),
        dispute("warning_needs_response", amount=3000, currency="jpy"), dispute("lost", amount=99999, currency="usd"),
        dispute("won", amount=5000, currency="jpy"),
    )
    queue = selectors.dispute_queue(selectors.Filters())
    risk = {r["currency"]: (r["amount"], r["count"], r["money"]) for r in queue.at_risk}
    assert risk == {"usd": (5200, 2, "$52.00"), "jpy": (3000, 1, "¥3,000")}


def test_filters_by_group_reason_deadline_and_agentic_payment(finance):
    fraud = dispute(reason="fraudulent", due_in=20 * HOUR)
    late = dispute(reason="product_not_received", due_in=6 * 86400)
    review = dispute("under_review", reason="fraudulent")
    charge = factories.ChargeFactory()
    agentic = dispute("won", reason="duplicate", charge=charge["id"])
    factories.mirror(fraud, late, review, agentic, charge)
    TimelineEntry.objects.create(occurred_at="2026-01-01T00:00:00Z", kind="payment_succeeded",
                                 source=charge["id"], object_id=charge["id"], title="Payment", agent_purchase=True)

    assert ids(selectors.dispute_queue(filters(group="review"))) == [review["id"]]
    assert set(ids(selectors.dispute_queue(filters(reason="fraudulent")))) == {fraud["id"], review["id"]}
    assert ids(selectors.dispute_queue(filters(due="1"))) == [fraud["id"]]
    assert ids(selectors.dispute_queue(filters(due="7"))) == [fraud["id"], late["id"]]
    queue = selectors.dispute_queue(filters(agentic="1"))
    assert ids(queue) == [agentic["id"]] and queue.rows[0]["agentic"]
    # The group filter narrows the rows; the header still counts every group under the other filters.
    assert selectors.dispute_queue(filters(group="closed", reason="fraudulent")).counts == {
        "respond": 1, "review": 1, "closed": 0}


def test_filters_by_assignee_me_nobody_and_username(finance, admin_user):
    a, b, c = dispute(), dispute(), dispute()
    factories.mirror(a, b, c)
    assign_disputes(actor=finance, dispute_ids=[a["id"]], assignee=finance)
    assign_disputes(actor=finance, dispute_ids=[b["id"]], assignee=admin_user)
    assert ids(selectors.dispute_queue(filters(assignee="me"), user=finance)) == [a["id"]]
    assert ids(selectors.dispute_queue(filters(assignee="nobody"), user=finance)) == [c["id"]]
    assert ids(selectors.dispute_queue(filters(assignee="admin"), user=finance)) == [b["id"]]
    assert ids(selectors.dispute_queue(filters(assignee="no-such-person"), user=finance)) == []


@pytest.mark.parametrize("query", [
    {"group": "everything"}, {"reason": "'; DROP TABLE payments_dispute; --"}, {"due": "-1"}, {"due": "²"},
    {"due": "99999999999999999999999.1"}, {"due": "Infinity"}, {"due": "１２"}, {"agentic": "\u202e"},
    {"assignee": "x" * 5000}, {"assignee": "a\x1fb"}, {"page": "0"}, {"page": "-3"}, {"page": "1e9"},
])
def test_hostile_filter_values_are_ignored(query):
    factories.mirror(dispute())
    f = filters(**query)
    assert f.group in ("", *selectors.GROUPS) and f.reason in ("", *selectors.REASONS)
    assert f.due_days is None or 0 <= f.due_days <= selectors.MAX_DUE_DAYS
    assert selectors.parse_page(query.get("page", "")) == 1
    selectors.dispute_queue(f, 1)


def test_a_row_says_card_code_customer_order_evidence_assignee_and_ticket(finance):
    customer = factories.CustomerFactory(name="Mika Tanaka")
    charge = factories.ChargeFactory(customer=customer["id"], description="Sencha 200g", metadata={"order_id": "A-1042"},
                                     created=NOW - 5 * 86400)
    d = dispute(charge=charge["id"], evidence={"has_evidence": True}, payment_method_details={
        "type": "card", "card": {"brand": "mastercard", "network_reason_code": "4837", "case_type": "chargeback"}})
    submitted = dispute(evidence={"has_evidence": True, "submission_count": 1})
    factories.mirror(customer, charge, d, submitted)
    identity = factories.IdentityFactory(kind="stripe_customer", value=customer["id"])
    ticket = factories.TicketFactory(requester=identity.contact)
    assign_disputes(actor=finance, dispute_ids=[d["id"]], assignee=finance)
    link_dispute_ticket(actor=finance, dispute_id=d["id"], ticket=ticket)

    rows = {r["id"]: r for r in selectors.dispute_queue(selectors.Filters()).rows}
    row = rows[d["id"]]
    assert (row["brand"], row["network_reason_code"]) == ("mastercard", "4837")
    assert row["reason_label"] == "Fraudulent" and row["money"] == "$42.00"
    assert row["contact_id"] == identity.contact_id and row["customer_name"] == "Mika Tanaka"
    assert row["order"] == "Sencha 200g · order_id: A-1042"
    assert row["charge_created"].timestamp() == charge["created"]
    assert row["evidence"] == "draft" and rows[submitted["id"]]["evidence"] == "submitted"
    assert row["assignee"] == finance and row["ticket"].number == ticket.number
    assert rows[submitted["id"]]["evidence"] == "submitted"


def test_an_order_named_in_the_description_is_not_said_twice_and_a_missing_code_is_no_code():
    assert selectors.order_text({"description": "Order KR-10760: Hojicha 100g",
                                 "metadata": {"order_id": "KR-10760"}}) == "Order KR-10760: Hojicha 100g"
    charge = factories.ChargeFactory(description="Order KR-1: Sencha", metadata={"order_id": "KR-1"})
    d = dispute(charge=charge["id"], payment_method_details={
        "type": "card", "card": {"brand": "jcb", "network_reason_code": None, "case_type": "chargeback"}})
    factories.mirror(charge, d)
    [row] = selectors.dispute_queue(selectors.Filters()).rows
    assert row["order"] == "Order KR-1: Sencha"
    assert (row["brand"], row["network_reason_code"]) == ("jcb", "")  # JSON null, on SQLite as on PostgreSQL


def test_a_page_reads_in_a_fixed_number_of_queries(finance):
    def make(n):
        objs = []
        for _ in range(n):
            customer = factories.CustomerFactory()
            charge = factories.ChargeFactory(customer=customer["id"])
            objs += [customer, charge, dispute(charge=charge["id"])]
            factories.IdentityFactory(kind="stripe_customer", value=customer["id"])
        factories.mirror(*objs)
        assign_disputes(actor=finance, dispute_ids=[o["id"] for o in objs if o["id"].startswith("dp_")][:n],
                        assignee=finance)

    make(3)
    with CaptureQueriesContext(connection) as few:
        selectors.dispute_queue(selectors.Filters())
    make(20)
    with CaptureQueriesContext(connection) as many:
        assert len(selectors.dispute_queue(selectors.Filters()).rows) == 23
    assert len(many) == len(few) <= 10


# --- early fraud warnings ----------------------------------------------------------------------


def test_fraud_warnings_say_amount_customer_and_whether_a_dispute_followed():
    customer = factories.CustomerFactory(name="Ken Sato")
    refundable = factories.ChargeFactory(customer=customer["id"], amount=3000, currency="jpy")
    disputed = factories.ChargeFactory(customer=customer["id"], disputed=True)
    refunded = factories.ChargeFactory(customer=customer["id"], amount_refunded=4200, refunded=True)
    w1 = factories.EarlyFraudWarningFactory(charge=refundable["id"], created=NOW - 10)
    w2 = factories.EarlyFraudWarningFactory(charge=disputed["id"], created=NOW - 20)
    w3 = factories.EarlyFraudWarningFactory(charge=refunded["id"], created=NOW - 30)
    d = dispute(charge=disputed["id"])
    factories.mirror(customer, refundable, disputed, refunded, w1, w2, w3, d)
    identity = factories.IdentityFactory(kind="stripe_customer", value=customer["id"])

    rows = selectors.fraud_warnings().rows
    assert [r["id"] for r in rows] == [w1["id"], w2["id"], w3["id"]]
    first, second, third = rows
    assert first["money"] == "¥3,000" and first["contact_id"] == identity.contact_id
    assert first["customer_name"] == "Ken Sato"
    assert first["can_refund"] and first["refundable"] == 3000 and not first["dispute_id"]
    assert second["dispute_id"] == d["id"] and not second["can_refund"]
    assert not third["can_refund"] and not third["dispute_id"]
