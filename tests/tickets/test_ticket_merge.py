"""tickets.actions.merges: merging two tickets of one requester (messages and tags move, the
merged ticket is closed and points at the survivor, both tickets' threads say so), the
refusals, undo putting back exactly what moved, and a customer's later email on the merged
ticket's thread landing on the survivor."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from tests import factories
from tickets import actions, selectors
from tickets.actions import ActionError, StaleTicket, UndoRefused
from tickets.models import Message, Ticket, TicketMerge

pytestmark = pytest.mark.django_db


def email(subject, body, msgid, **kw):
    return actions.receive_message(channel="email", sender="Mika Ito <mika@example.jp>", subject=subject,
                                   body_text=body, channel_message_id=msgid, **kw)


@pytest.fixture
def pair(customer, agent):
    """#survivor "Double charge" (one message) and #merged "Refund please" (two messages, tagged
    refund and vip; the survivor has vip already)."""
    survivor = email("Double charge", "I was charged twice", "s-1@example.jp").message.ticket
    merged = email("Refund please", "Please refund one", "m-1@example.jp").message.ticket
    email(f"Re: Refund please {merged.token}", "Any news?", "m-2@example.jp", in_reply_to="m-1@example.jp")
    actions.set_tags(actor=agent, ticket=survivor, tags=["vip"])
    actions.set_tags(actor=agent, ticket=merged, tags=["refund", "vip"])
    survivor.refresh_from_db()
    merged.refresh_from_db()
    return survivor, merged


def test_merge_moves_messages_and_tags_closes_the_merged_ticket_and_audits(pair, agent):
    survivor, merged = pair
    merged_messages = set(merged.messages.values_list("pk", flat=True))
    before = survivor.version

    record = actions.merge_tickets(actor=agent, survivor=survivor, merged=merged,
                                   survivor_version=survivor.version, merged_version=merged.version)

    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert set(record.moved["messages"]) == merged_messages
    assert set(survivor.messages.values_list("pk", flat=True)) >= merged_messages
    assert not merged.messages.exists()
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["refund", "vip"]
    assert record.moved["tags"] == ["refund"]
    assert record.moved["status"] == "open"
    assert merged.status == "closed" and merged.merged_into_id == survivor.pk and merged.sla_due is None
    assert survivor.version == before + 1 == record.survivor_version
    assert survivor.last_message_at == Message.objects.filter(ticket=survivor).latest("created").created
    rows = AuditEntry.objects.filter(action="ticket.merge").order_by("target")
    assert {r.target for r in rows} == {f"ticket:{survivor.number}", f"ticket:{merged.number}"}
    on_survivor = rows.get(target=f"ticket:{survivor.number}")
    assert on_survivor.details["merged"] == f"#{merged.number}" and on_survivor.details["messages"] == 2
    assert on_survivor.actor == agent


def test_both_threads_show_the_merge_as_a_system_event(pair, agent):
    survivor, merged = pair
    agent.first_name = "Aiko"
    agent.save(update_fields=["first_name"])
    actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)

    events = [e.text for e in selectors.thread_events(survivor)]
    assert f"Aiko merged #{merged.number} into this ticket (2 messages moved)" in events
    assert [e.text for e in selectors.thread_events(merged)] == [f"Aiko merged this ticket into #{survivor.number}"]
    thread = selectors.thread(survivor)
    assert thread[-1].is_event  # after the messages it moved, in time order
    assert [m.pk for m in thread if not getattr(m, "is_event", False)] == list(
        Message.objects.filter(ticket=survivor).order_by("created", "id").values_list("pk", flat=True))


def test_undo_restores_exactly_and_is_refused_twice(pair, agent):
    survivor, merged = pair
    before_messages = set(merged.messages.values_list("pk", flat=True))
    record = actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    # The survivor moves on: the customer writes again there. Undo still works; that stays.
    later = email(f"Re: Double charge {survivor.token}", "Still waiting", "s-2@example.jp",
                  in_reply_to="s-1@example.jp").message
    assert later.ticket_id == survivor.pk

    actions.undo_ticket_merge(actor=agent, merge=record)

    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert set(merged.messages.values_list("pk", flat=True)) == before_messages
    assert Message.objects.get(pk=later.pk).ticket_id == survivor.pk
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["vip"]
    assert sorted(merged.tags.values_list("name", flat=True)) == ["refund", "vip"]
    assert merged.status == "open" and merged.merged_into_id is None and merged.sla_due is not None
    assert TicketMerge.objects.get().undone_by == agent
    assert AuditEntry.objects.filter(action="ticket.merge_undo").count() == 2
    assert "undid the merge into" in selectors.thread_events(merged)[-1].text

    with pytest.raises(UndoRefused, match="already undone"):
        actions.undo_ticket_merge(actor=agent, merge=record)


def test_undo_is_refused_once_the_survivor_was_merged_on(pair, agent):
    survivor, merged = pair
    third = email("Charged again", "A third one", "t-1@example.jp").message.ticket
    first = actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    actions.merge_tickets(actor=agent, survivor=third, merged=survivor)

    with pytest.raises(UndoRefused, match="undo that merge first"):
        actions.undo_ticket_merge(actor=agent, merge=first)
    assert Ticket.objects.get(pk=merged.pk).merged_into_id == survivor.pk


@pytest.mark.parametrize("case", ["same", "other_requester", "already_merged", "closed_survivor"])
def test_refusals(pair, agent, case):
    survivor, merged = pair
    if case == "same":
        survivor = merged
        match = "into itself"
    elif case == "other_requester":
        survivor = factories.TicketFactory(subject="Someone else")
        match = "same requester"
    elif case == "already_merged":
        third = email("Third", "again", "t-1@example.jp").message.ticket
        actions.merge_tickets(actor=agent, survivor=third, merged=merged)
        match = "already merged"
    else:
        actions.set_status(actor=agent, ticket=survivor, status="closed")
        match = "not open"
    moved_before = dict(Message.objects.values_list("pk", "ticket_id"))
    merges_before = TicketMerge.objects.count()

    with pytest.raises(ActionError, match=match):
        actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)

    assert dict(Message.objects.values_list("pk", "ticket_id")) == moved_before
    assert TicketMerge.objects.count() == merges_before


def test_a_second_confirmation_with_the_versions_seen_is_refused_and_moves_nothing_twice(pair, agent):
    survivor, merged = pair
    seen = {"survivor_version": survivor.version, "merged_version": merged.version}
    actions.merge_tickets(actor=agent, survivor=survivor, merged=merged, **seen)

    with pytest.raises(ActionError, match="already merged"):
        actions.merge_tickets(actor=agent, survivor=survivor, merged=merged, **seen)
    assert TicketMerge.objects.count() == 1
    assert AuditEntry.objects.filter(action="ticket.merge").count() == 2  # one per ticket, once


def test_a_stale_page_is_refused(pair, agent):
    survivor, merged = pair
    seen = merged.version
    actions.add_note(actor=agent, ticket=merged, body="Checked Stripe")

    with pytest.raises(StaleTicket):
        actions.merge_tickets(actor=agent, survivor=survivor, merged=merged, merged_version=seen)
    assert not TicketMerge.objects.exists()


def test_who_may_merge(pair, finance, agent):
    survivor, merged = pair
    with pytest.raises(PermissionDenied):
        actions.merge_tickets(actor=finance, survivor=survivor, merged=merged)
    with pytest.raises(PermissionDenied):
        actions.merge_tickets(actor=None, survivor=survivor, merged=merged)
    record = actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    with pytest.raises(PermissionDenied):
        actions.undo_ticket_merge(actor=finance, merge=record)


def test_a_reply_on_the_merged_tickets_thread_lands_on_the_survivor(pair, agent):
    survivor, merged = pair
    actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)

    by_header = email("Re: Refund please", "Thanks!", "m-3@example.jp", in_reply_to="m-2@example.jp")
    by_token = email(f"Re: Refund please {merged.token}", "Hello?", "m-4@example.jp")

    assert by_header.message.ticket_id == survivor.pk and not by_header.ticket_created
    assert by_token.message.ticket_id == survivor.pk and not by_token.ticket_created
    assert Ticket.objects.count() == 2


def test_merged_tickets_leave_the_open_work(pair, agent):
    survivor, merged = pair
    actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    assert list(Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES).values_list("pk", flat=True)) == [survivor.pk]
    assert selectors.merge_candidates(survivor) == []


@pytest.mark.django_db(transaction=True)
def test_two_merges_of_one_ticket_at_once_make_exactly_one():
    """Two agents confirm at the same moment (one into each of two other tickets): both lock the
    rows, one merges, the other finds the ticket merged already (real PostgreSQL, threads)."""
    from tests.helpers import in_threads

    agent = factories.UserFactory(username="agent-race", role="agent")
    merged = email("Refund please", "Please refund", "race-m@example.jp").message.ticket
    targets = [email(f"Other {i}", "hi", f"race-{i}@example.jp").message.ticket for i in range(2)]

    def merge(i):
        try:
            return actions.merge_tickets(actor=agent, survivor=targets[i], merged=merged,
                                         merged_version=merged.version)
        except ActionError as exc:
            return exc

    results = in_threads(2, merge)

    assert sorted(type(r).__name__ for r in results) in (["ActionError", "TicketMerge"], ["StaleTicket", "TicketMerge"])
    assert TicketMerge.objects.count() == 1
    done = TicketMerge.objects.get()
    assert Message.objects.get(channel_message_id="race-m@example.jp").ticket_id == done.survivor_id
    assert AuditEntry.objects.filter(action="ticket.merge").count() == 2
