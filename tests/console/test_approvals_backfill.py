"""console/0010: refund approvals asked for the old way (an audit row, a note, the tag) before
console.RefundApproval existed become approvals: open when still waiting, approved when the
charge was refunded since by at least the amount, declined when the ticket was dealt with
otherwise; rows that lack what an approval needs are skipped; running it again adds nothing."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.utils import timezone

from audit.log import record
from audit.models import AuditAction, AuditEntry
from console.models import RefundApproval
from payments.models import Refund
from tests import factories
from tickets import actions as ticket_actions
from tickets.models import Team

pytestmark = pytest.mark.django_db
migration = importlib.import_module("console.migrations.0010_backfill_refund_approvals")
ASKED = timezone.now() - dt.timedelta(days=30)


def asked(agent, ticket, *, charge="ch_old1", amount=25000, currency="jpy", token="tok-1", tagged=True, **extra):
    if tagged:
        ticket_actions.set_tags(actor=agent, ticket=ticket, add=["refund-approval"])
    details = {"amount": amount, "currency": currency, "reason": "requested_by_customer", "note": "Broken on arrival",
               "ticket": f"#{ticket.number}", "team": "finance", "token": token, **extra}
    entry = record(actor=agent, action=AuditAction.REFUND_APPROVAL_REQUESTED, target=charge, **details)
    AuditEntry.objects.filter(pk=entry.pk).update(created=ASKED)
    return entry


def refunded(charge: str, amount: int, *, when=ASKED + dt.timedelta(days=1), refund_id="re_old1", status="succeeded"):
    return Refund.objects.create(id=refund_id, charge=charge, amount=amount, currency="jpy", status=status,
                                 created=when, data={"id": refund_id, "object": "refund"})


def run():
    migration.backfill(apps, None)


def test_a_request_still_waiting_becomes_an_open_approval(agent):
    ticket = factories.TicketFactory()
    support = Team.objects.create(name="Support", slug="support")
    ticket_actions.assign(actor=agent, ticket=ticket, team=support)
    finance = Team.objects.create(name="Finance", slug="finance")
    ticket_actions.assign(actor=agent, ticket=ticket, team=finance)
    AuditEntry.objects.filter(action=AuditAction.TICKET_ASSIGN, details__team__to=finance.pk).update(created=ASKED)
    asked(agent, ticket)
    run()
    approval = RefundApproval.objects.get()
    assert (approval.ticket, approval.charge_id, approval.amount, approval.currency) == (ticket, "ch_old1", 25000, "jpy")
    assert (approval.reason, approval.note, approval.requested_by, approval.status) == (
        "requested_by_customer", "Broken on arrival", agent, RefundApproval.Status.OPEN)
    assert approval.requested_at == ASKED and approval.token == "tok-1" and approval.refund_token
    assert approval.previous_team == support  # where the ticket goes back to when finance answers


def test_running_it_again_adds_nothing(agent):
    asked(agent, factories.TicketFactory())
    run()
    run()
    assert RefundApproval.objects.count() == 1


def test_a_request_that_already_has_an_approval_is_left_alone(agent):
    ticket = factories.TicketFactory()
    asked(agent, ticket, token="tok-new")
    RefundApproval.objects.create(ticket=ticket, charge_id="ch_old1", amount=25000, currency="jpy", reason="x",
                                  token="tok-new", refund_token="r", requested_by=agent)
    run()
    assert RefundApproval.objects.get().reason == "x"


def test_refunded_since_by_at_least_the_amount_is_approved(agent, finance):
    ticket = factories.TicketFactory()
    asked(agent, ticket, tagged=False)
    refunded("ch_old1", 10000, refund_id="re_a")
    refunded("ch_old1", 15000, refund_id="re_b", when=ASKED + dt.timedelta(days=2))
    record(actor=finance, action=AuditAction.CHARGE_REFUND, target="ch_old1", refund="re_b", amount=15000,
           currency="jpy", ticket=f"#{ticket.number}")
    run()
    approval = RefundApproval.objects.get()
    assert (approval.status, approval.refund_id, approval.refunded) == (RefundApproval.Status.APPROVED, "re_b", 25000)
    assert approval.decided_by == finance and approval.decided_at == ASKED + dt.timedelta(days=2)


@pytest.mark.parametrize("refund", [
    {"amount": 10000},  # less than asked
    {"amount": 25000, "when": ASKED - dt.timedelta(days=3)},  # before the request
    {"amount": 25000, "status": "failed"},
])
def test_a_smaller_earlier_or_failed_refund_leaves_it_open(agent, refund):
    asked(agent, factories.TicketFactory())
    refunded("ch_old1", **refund)
    run()
    assert RefundApproval.objects.get().status == RefundApproval.Status.OPEN


def test_a_request_dealt_with_on_the_ticket_without_a_refund_is_closed(agent):
    asked(agent, factories.TicketFactory(), tagged=False)
    run()
    approval = RefundApproval.objects.get()
    assert approval.status == RefundApproval.Status.DECLINED and "before refund approvals" in approval.decline_reason


@pytest.mark.parametrize("bad", [
    {"amount": None}, {"amount": "2500"}, {"amount": 0}, {"amount": True}, {"currency": ""}, {"currency": "yen!"},
    {"ref": ""}, {"ref": "#999999"}, {"ref": "workflow run 4"},
])
def test_rows_without_what_an_approval_needs_are_skipped(agent, bad):
    if "ref" in bad:
        bad = {"ticket": bad["ref"]}
        asked(agent, factories.TicketFactory(), **{"extra_ticket": True})
        AuditEntry.objects.filter(action=AuditAction.REFUND_APPROVAL_REQUESTED).update(
            details={"amount": 25000, "currency": "jpy", "reason": "x", "token": "t", **bad})
    else:
        asked(agent, factories.TicketFactory(), **bad)
    run()
    assert not RefundApproval.objects.exists()


def test_a_row_without_a_token_gets_a_stable_one(agent):
    entry = asked(agent, factories.TicketFactory(), token="")
    run()
    run()
    assert RefundApproval.objects.get().token == f"backfill-audit-{entry.pk}"


def test_the_open_ones_are_in_finances_queue(client, agent, finance):
    ticket = factories.TicketFactory()
    asked(agent, ticket, amount=43000)
    run()
    client.force_login(finance)
    html = client.get("/approvals/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"#{ticket.number}" in html and "43,000" in html
