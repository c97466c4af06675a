"""The home page puts the person's own work first: their tickets, what is near or past its SLA
in their views, and (finance, admins) the refunds waiting for an approval."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests import factories
from tickets.models import Tag, Ticket

pytestmark = pytest.mark.django_db


def ticket(subject: str, **fields) -> Ticket:
    t = factories.TicketFactory(subject=subject)
    Ticket.objects.filter(pk=t.pk).update(**fields)
    t.refresh_from_db()
    return t


def test_an_agent_sees_their_tickets_and_the_ones_near_their_sla(as_user, agent, finance):
    now = timezone.now()
    mine = ticket("Parcel never came", assignee=agent, sla_due=now + dt.timedelta(days=2))
    late = ticket("Charged twice", assignee=None, sla_due=now - dt.timedelta(minutes=30))
    soon = ticket("Wrong size", assignee=agent, sla_due=now + dt.timedelta(minutes=20))
    ticket("Someone else's", assignee=finance, sla_due=now - dt.timedelta(hours=2))
    ticket("Far off", assignee=None, sla_due=now + dt.timedelta(hours=5))
    ticket("Solved already", assignee=agent, status="solved", sla_due=None)

    response = as_user(agent).get("/")

    assert response.status_code == 200
    queue = response.context["queue"]
    assert {t.pk for t in queue["mine"]} == {mine.pk, soon.pk}
    assert [t.pk for t in queue["sla"]] == [late.pk, soon.pk]
    assert queue["approvals"] is None  # agents do not approve refunds
    page = response.content.decode()
    assert "Your tickets" in page and "Near or past SLA" in page and "Approvals waiting" not in page
    assert page.index("Your tickets") < page.index("stats")  # before the shop's Stripe figures


def test_finance_sees_the_approvals_waiting(as_user, finance):
    asking = ticket("Refund above the limit")
    asking.tags.add(Tag.objects.get_or_create(name="refund-approval")[0])
    done = ticket("Approved already", status="solved")
    done.tags.add(Tag.objects.get(name="refund-approval"))

    response = as_user(finance).get("/")

    assert response.status_code == 200
    approvals = response.context["queue"]["approvals"]
    assert approvals["count"] == 1 and [t.pk for t in approvals["rows"]] == [asking.pk]
    assert response.context["queue"]["approvals_url"] == "/approvals/"
    assert "Approvals waiting" in response.content.decode()


def test_admin_sees_approvals_too(as_user, admin_user):
    response = as_user(admin_user).get("/")
    assert response.status_code == 200 and response.context["queue"]["approvals"] == {"count": 0, "rows": []}


def test_without_a_role_there_is_no_queue_and_anonymous_is_sent_to_login(as_user, no_role, client):
    assert client.get("/").status_code == 302
    response = as_user(no_role).get("/")
    assert response.status_code == 200 and response.context["queue"] == {}
    assert "Your tickets" not in response.content.decode()
