"""tickets.actions.tickets: permission inside each action, SLA times, state rules, macros,
bulk changes all-or-nothing, an audit entry per change, and the signal console listens to."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from tests import factories
from tests.helpers import committed
from tickets import actions
from tickets.models import Message, Ticket
from tickets.signals import ticket_created

pytestmark = pytest.mark.django_db


@pytest.fixture
def nobody(db):
    return factories.UserFactory(username="norole")


def audit(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


# --- create -------------------------------------------------------------------------------


def test_create_ticket_sets_number_sla_and_announces_it(agent, customer):
    seen = []
    ticket_created.connect(lambda sender, ticket, actor, **kw: seen.append((ticket.pk, actor)), weak=False,
                           dispatch_uid="test.created")
    try:
        with committed():
            ticket = actions.create_ticket(actor=agent, requester=customer, subject="Phone call: refund",
                                           priority="urgent", channel="phone", tags=["Refund", "VIP Customer"],
                                           note="Called at 10:00")
            assert seen == []  # announced once committed, never inside the transaction
    finally:
        ticket_created.disconnect(dispatch_uid="test.created")

    assert ticket.number == ticket.pk
    ticket.refresh_from_db()
    assert ticket.first_response_due == ticket.created + dt.timedelta(hours=1)
    assert ticket.resolution_due == ticket.created + dt.timedelta(hours=4)
    assert ticket.sla_due == ticket.first_response_due
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["refund", "vip-customer"]
    assert ticket.messages.get().kind == "note"
    assert seen == [(ticket.pk, agent)]
    entry = audit("ticket.create")[0]
    assert entry.actor == agent and entry.target == f"ticket:{ticket.number}" and entry.details["priority"] == "urgent"


def test_create_ticket_refuses_bad_input_and_missing_permission(agent, nobody, customer):
    with pytest.raises(actions.ActionError):
        actions.create_ticket(actor=agent, requester=customer, subject="  ")
    with pytest.raises(actions.ActionError):
        actions.create_ticket(actor=agent, requester=customer, subject="x", priority="asap")
    with pytest.raises(PermissionDenied):
        actions.create_ticket(actor=nobody, requester=customer, subject="x")
    assert not Ticket.objects.exists() and not audit("ticket.create")


# --- status, priority, assignment, tags --------------------------------------------------


def test_solving_clears_the_sla_and_a_closed_ticket_stays_closed(agent, ticket):
    actions.set_status(actor=agent, ticket=ticket, status="solved")
    ticket.refresh_from_db()
    assert ticket.solved_at and ticket.sla_due is None

    actions.set_status(actor=agent, ticket=ticket, status="closed")
    with pytest.raises(actions.TicketClosed):
        actions.set_status(actor=agent, ticket=ticket, status="open")
    with pytest.raises(actions.ActionError):
        actions.set_status(actor=agent, ticket=ticket, status="archived")
    assert Ticket.objects.get(pk=ticket.pk).status == "closed"
    assert [e.details["status"] for e in reversed(audit("ticket.status"))] == [
        {"from": "open", "to": "solved"}, {"from": "solved", "to": "closed"},
    ]


def test_a_stale_page_cannot_change_the_status(agent, ticket):
    version = Ticket.objects.get(pk=ticket.pk).version
    actions.add_note(actor=agent, ticket=ticket, body="looking")

    with pytest.raises(actions.StaleTicket):
        actions.set_status(actor=agent, ticket=ticket, status="solved", expected_version=version)
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_priority_moves_the_due_times(agent, ticket):
    actions.set_priority(actor=agent, ticket=ticket, priority="high")

    ticket.refresh_from_db()
    assert ticket.first_response_due == ticket.created + dt.timedelta(hours=4)
    assert ticket.resolution_due == ticket.created + dt.timedelta(hours=24)
    assert ticket.sla_due == ticket.first_response_due


def test_assign_to_an_agent_and_a_team(agent, finance, ticket):
    team = factories.TeamFactory(name="Finance")

    actions.assign(actor=agent, ticket=ticket, assignee=finance, team=team.pk)
    actions.assign(actor=agent, ticket=ticket, team=None)  # the assignee stays

    ticket.refresh_from_db()
    assert ticket.assignee == finance and ticket.team is None
    first, second = reversed(audit("ticket.assign"))
    assert first.details == {"assignee": {"from": None, "to": finance.pk}, "team": {"from": None, "to": team.pk}}
    assert second.details == {"team": {"from": team.pk, "to": None}}


def test_only_people_who_work_tickets_can_be_assigned(agent, nobody, ticket):
    with pytest.raises(actions.ActionError, match="cannot work tickets"):
        actions.assign(actor=agent, ticket=ticket, assignee=nobody)
    with pytest.raises(PermissionDenied):
        actions.assign(actor=nobody, ticket=ticket, assignee=agent)
    assert Ticket.objects.get(pk=ticket.pk).assignee is None


def test_tags_replace_add_and_remove(agent, ticket):
    actions.set_tags(actor=agent, ticket=ticket, tags=["Refund", "refund", "日本語"])
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["refund", "日本語"]

    actions.set_tags(actor=agent, ticket=ticket, add=["dispute"], remove=["refund"])
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["dispute", "日本語"]

    with pytest.raises(actions.ActionError):
        actions.set_tags(actor=agent, ticket=ticket, tags=["!!!"])
    assert len(audit("ticket.tags")) == 2


# --- macros -------------------------------------------------------------------------------------


def test_a_macro_replies_with_placeholders_filled_and_applies_its_changes(agent, ticket, committed):
    team = factories.TeamFactory(name="Billing")
    macro = factories.MacroFactory(
        name="Refund issued",
        body="Hi {{ contact.first_name }}, we refunded ticket #{{ ticket.number }}. {{ unknown.thing }} — {{ agent.first_name }}",
        set_status="solved", set_team=team, add_tags=["refund"],
    )
    agent.first_name = "Aki"
    agent.save()

    with committed():
        actions.apply_macro(actor=agent, ticket=ticket, macro=macro)

    ticket.refresh_from_db()
    reply = Message.objects.get(kind="outbound")
    assert reply.body_text == f"Hi Mika, we refunded ticket #{ticket.number}. {{{{ unknown.thing }}}} — Aki"
    assert (ticket.status, ticket.team) == ("solved", team)
    assert list(ticket.tags.values_list("name", flat=True)) == ["refund"]
    assert len(mail.outbox) == 1
    assert {"ticket.reply", "ticket.tags", "ticket.assign", "ticket.status", "ticket.macro"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )


def test_a_macro_with_an_edited_body_as_a_note(agent, ticket):
    macro = factories.MacroFactory(name="Escalate", body="Escalating", set_priority="urgent")

    actions.apply_macro(actor=agent, ticket=ticket, macro=macro.pk, body="Escalating: VIP", as_note=True)

    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    assert Message.objects.get(kind="note").body_text == "Escalating: VIP"


def test_a_macro_is_all_or_nothing(agent, admin_user, ticket):
    actions.set_status(actor=admin_user, ticket=ticket, status="closed")
    macro = factories.MacroFactory(name="Reply and tag", body="Thanks", add_tags=["thanked"])

    with pytest.raises(actions.TicketClosed):
        actions.apply_macro(actor=agent, ticket=ticket, macro=macro)
    assert not ticket.tags.exists() and not Message.objects.filter(kind="outbound").exists()

    macro.active = False
    macro.save()
    with pytest.raises(actions.ActionError):
        actions.apply_macro(actor=agent, ticket=ticket, macro=macro.pk)


# --- bulk ------------------------------------------------------------------------------------


def test_bulk_assign_tag_and_solve(agent, customer):
    tickets = [factories.TicketFactory(requester=customer) for _ in range(3)]
    team = factories.TeamFactory(name="Support")

    assert actions.bulk_assign(actor=agent, tickets=tickets, assignee=agent, team=team) == 3
    assert actions.bulk_set_tags(actor=agent, tickets=[t.pk for t in tickets], add=["bulk"]) == 3
    assert actions.bulk_set_status(actor=agent, tickets=tickets, status="solved") == 3

    rows = Ticket.objects.filter(pk__in=[t.pk for t in tickets])
    assert set(rows.values_list("assignee", "team", "status")) == {(agent.pk, team.pk, "solved")}
    assert rows.filter(tags__name="bulk").count() == 3
    assert len(audit("ticket.assign")) == 3 and len(audit("ticket.status")) == 3


def test_bulk_is_all_or_nothing(agent, admin_user, customer):
    open_ticket = factories.TicketFactory(requester=customer)
    closed = factories.TicketFactory(requester=customer, status="closed")

    with pytest.raises(actions.TicketClosed):
        actions.bulk_set_status(actor=agent, tickets=[open_ticket, closed], status="pending")

    assert Ticket.objects.get(pk=open_ticket.pk).status == "open"
    assert not audit("ticket.status")
    with pytest.raises(actions.ActionError):
        actions.bulk_assign(actor=agent, tickets=list(range(1, 502)), assignee=None)
