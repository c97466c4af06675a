"""Deadline reminders (console/disputes/reminders.py, beat task console.disputes.tasks.remind_due_disputes):
a finance ticket per dispute due within 72 hours without submitted evidence, or the linked ticket
escalated; once per dispute, however many beats run, one after another or at the same time."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from audit.models import AuditEntry
from console.disputes import reminders
from console.disputes.actions import link_dispute_ticket
from console.disputes.models import DisputeCase
from console.disputes.tasks import remind_due_disputes
from tests import factories
from tests.helpers import in_threads
from tickets.models import Message, Ticket

NOW = int(time.time())


def due(hours, status="needs_response", **evidence):
    customer = factories.CustomerFactory(name="Mika Tanaka")
    charge = factories.ChargeFactory(customer=customer["id"], description="Matcha set")
    d = factories.DisputeFactory(charge=charge["id"], status=status, amount=4200, evidence_details={
        "due_by": NOW + int(hours * 3600), "has_evidence": False, "past_due": False, "submission_count": 0,
        **evidence})
    factories.mirror(customer, charge, d)
    return d


@pytest.mark.django_db
def test_a_finance_ticket_for_each_dispute_due_within_72_hours_without_submitted_evidence():
    finance_team = factories.TeamFactory(name="Finance", slug=django_settings.CONSOLE_FINANCE_TEAM)
    soon = due(10)
    inquiry = due(60, status="warning_needs_response", has_evidence=True)
    due(100)  # not yet
    due(5, submission_count=1)  # evidence submitted
    due(5, status="under_review")

    assert remind_due_disputes() == 2
    ticket = DisputeCase.objects.get(dispute_id=soon["id"]).ticket
    assert ticket.team == finance_team and ticket.priority == "urgent" and soon["id"] in ticket.subject
    assert ticket.requester.identities.filter(kind="stripe_customer").exists()
    note = Message.objects.get(ticket=ticket, kind="note").body_text
    assert "$42.00" in note and "Fraudulent" in note and "Matcha set" in note and "hours left" in note
    other = DisputeCase.objects.get(dispute_id=inquiry["id"]).ticket
    assert other.priority == "high" and other.subject.startswith("Inquiry")
    assert "inquiry" in Message.objects.get(ticket=other, kind="note").body_text
    assert AuditEntry.objects.filter(action="dispute.link_ticket", actor__username="disputes").count() == 2
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_a_second_beat_makes_nothing_more():
    due(10)
    due(30)
    assert remind_due_disputes() == 2
    assert remind_due_disputes() == 0
    assert Ticket.objects.count() == 2 and Message.objects.filter(kind="note").count() == 2


@pytest.mark.django_db
def test_a_linked_open_ticket_is_escalated_instead(finance):
    d = due(20)
    ticket = factories.TicketFactory(priority="normal")
    link_dispute_ticket(actor=finance, dispute_id=d["id"], ticket=ticket)
    assert remind_due_disputes() == 1
    ticket.refresh_from_db()
    assert ticket.priority == "urgent" and Ticket.objects.count() == 1
    assert d["id"] in Message.objects.get(ticket=ticket, kind="note").body_text
    assert remind_due_disputes() == 0 and Message.objects.filter(ticket=ticket, kind="note").count() == 1


@pytest.mark.django_db
def test_a_dispute_without_a_mirrored_charge_waits_for_a_later_beat():
    d = factories.DisputeFactory(evidence_details={"due_by": NOW + 3600, "has_evidence": False, "submission_count": 0})
    factories.mirror(d)
    assert remind_due_disputes() == 0
    assert DisputeCase.objects.get(dispute_id=d["id"]).reminded_at is None
    charge = factories.ChargeFactory(id=d["charge"], customer=factories.stripe_id("cus"))
    factories.mirror(charge)
    assert remind_due_disputes() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_beats_remind_once():
    made = [due(10) for _ in range(3)]
    results = in_threads(4, lambda i: reminders.remind_due_disputes())
    assert sum(results) == 3
    assert Ticket.objects.count() == 3
    assert DisputeCase.objects.filter(dispute_id__in=[d["id"] for d in made], ticket__isnull=False).count() == 3
