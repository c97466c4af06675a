"""tests.factories.TicketFactory opens tickets by the actions' own rules (number, SLA, status),
so a rule changed in tickets.actions changes the tickets every test builds."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_factory_ticket_is_numbered_and_timed_like_one_an_agent_opens(settings):
    settings.TICKETS_SLA = {**settings.TICKETS_SLA, "urgent": (dt.timedelta(minutes=30), dt.timedelta(hours=2))}

    ticket = factories.TicketFactory(priority="urgent", tags=["VIP Customer"])

    ticket.refresh_from_db()
    assert ticket.number == ticket.pk
    assert ticket.first_response_due == ticket.created + dt.timedelta(minutes=30)
    assert ticket.resolution_due == ticket.created + dt.timedelta(hours=2)
    assert ticket.sla_due == ticket.first_response_due
    assert list(ticket.tags.values_list("name", flat=True)) == ["vip-customer"]
    assert AuditEntry.objects.get().target == f"ticket:{ticket.number}"


def test_a_factory_ticket_in_another_status_follows_the_status_rules():
    solved = factories.TicketFactory(status="solved")
    overdue = factories.TicketFactory(sla_due=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc))

    solved.refresh_from_db()
    overdue.refresh_from_db()
    assert solved.status == "solved" and solved.solved_at is not None and solved.sla_due is None
    assert overdue.sla_due == dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)  # a test's own deadline
