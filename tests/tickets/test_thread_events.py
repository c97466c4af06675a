"""The ticket's thread tells the whole story: refunds, cancellations, metadata, portal links,
hand-overs to finance, merges and a workflow's steps on the ticket show as compact lines among
the messages, in time order, worded in the reader's language. Read from the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from audit.log import record
from audit.models import AuditAction, AuditEntry
from tickets import actions, selectors
from tickets.models import Message, Team
from tests import factories

pytestmark = pytest.mark.django_db


def inbound(body="I was charged twice.", sender="Aiko Mori <aiko@example.jp>", **kw) -> Message:
    return actions.receive_message(channel="email", sender=sender, subject="Charged twice", body_text=body,
                                   channel_message_id=f"{factories.stripe_id('m')}@mail.example", **kw).message


@pytest.fixture
def ticket(db):
    return inbound().ticket


def refund_row(actor, ticket, *, amount=2500, currency="jpy", charge="ch_3QxAbCdEfGhIjK9Lm"):
    return record(actor=actor, action=AuditAction.CHARGE_REFUND, target=charge, refund="re_1", amount=amount,
                  currency=currency, reason="requested_by_customer", note="", ticket=f"#{ticket.number}",
                  idempotency_key="k")


def at(entry: AuditEntry, when: dt.datetime) -> None:
    AuditEntry.objects.filter(pk=entry.pk).update(created=when)


def test_a_refund_on_the_ticket_is_a_line_between_the_messages(ticket, agent):
    agent.first_name, agent.last_name = "Aiko", "Tanaka"
    agent.save()
    first = ticket.messages.get()
    entry = refund_row(agent, ticket)
    at(entry, first.created + dt.timedelta(minutes=1))
    later = actions.add_note(actor=agent, ticket=ticket, body="Refunded, told her.")
    Message.objects.filter(pk=later.pk).update(created=first.created + dt.timedelta(minutes=2))

    with translation.override("en"):
        items = selectors.thread(ticket)
    assert [getattr(i, "is_event", False) for i in items] == [False, True, False]
    assert items[1].text == "Aiko Tanaka refunded ¥2,500 of ch_3QxA…9Lm"


def test_money_follows_the_readers_language(ticket, agent):
    refund_row(agent, ticket, amount=1000, currency="usd")
    with translation.override("en"):
        assert "$10.00" in selectors.thread_events(ticket)[0].text
    with translation.override("ja"):
        assert "US$10.00" in selectors.thread_events(ticket)[0].text


def test_stripe_actions_about_another_ticket_stay_off_this_thread(ticket, agent):
    other = inbound(sender="someone@example.com").ticket
    refund_row(agent, other)
    assert selectors.thread_events(ticket) == []
    assert len(selectors.thread_events(other)) == 1


def test_cancellation_metadata_portal_and_handover_are_each_worded(ticket, agent):
    ref = f"#{ticket.number}"
    record(actor=agent, action=AuditAction.SUBSCRIPTION_CANCEL, target="sub_1", at_period_end=False,
           refund_amount=1200, currency="jpy", ticket=ref)
    record(actor=agent, action=AuditAction.CUSTOMER_UPDATE_METADATA, target="cus_1", set={"vip": "yes"},
           removed=["old"], ticket=ref)
    record(actor=agent, action=AuditAction.PORTAL_SESSION_CREATE, target="cus_1", session="bps_1", ticket=ref)
    record(actor=agent, action=AuditAction.REFUND_APPROVAL_REQUESTED, target="ch_9", amount=90000,
           currency="jpy", ticket=ref, token="t")
    with translation.override("en"):
        texts = [e.text for e in selectors.thread_events(ticket)]
    name = agent.get_full_name() or agent.username
    assert texts == [
        f"{name} cancelled sub_1 and refunded ¥1,200",
        f"{name} changed the metadata of cus_1 (old, vip)",
        f"{name} created a billing-portal link for cus_1",
        f"Asked finance to refund ¥90,000 of ch_9 — {name}",
    ]


def test_finance_approving_a_request_is_one_line_not_two(ticket, agent, finance):
    agent.first_name, finance.first_name = "Aiko", "Ken"
    agent.last_name = finance.last_name = ""
    agent.save()
    finance.save()
    ref = f"#{ticket.number}"
    record(actor=agent, action=AuditAction.REFUND_APPROVAL_REQUESTED, target="ch_9", amount=2500, currency="jpy",
           ticket=ref, token="t")
    record(actor=finance, action=AuditAction.CHARGE_REFUND, target="ch_9", refund="re_9", amount=2500,
           currency="jpy", ticket=ref, idempotency_key="k")
    record(actor=finance, action=AuditAction.REFUND_APPROVAL_CLOSED, target="ch_9", approval=1, status="approved",
           refund="re_9", amount=2500, currency="jpy", decline_reason="", ticket=ref)
    with translation.override("en"):
        texts = [e.text for e in selectors.thread_events(ticket)]
    assert texts == ["Asked finance to refund ¥2,500 of ch_9 — Aiko", "Finance approved: refunded ¥2,500 — Ken"]


def test_finance_declining_a_request_says_why(ticket, finance):
    finance.first_name, finance.last_name = "Ken", ""
    finance.save()
    record(actor=finance, action=AuditAction.REFUND_APPROVAL_CLOSED, target="ch_9", approval=1, status="declined",
           refund="", amount=None, currency="jpy", decline_reason="Outside the 30-day window", ticket=f"#{ticket.number}")
    with translation.override("en"):
        (event,) = selectors.thread_events(ticket)
    assert event.text == "Finance declined: Outside the 30-day window — Ken"


def test_a_change_at_stripe_by_a_workflow_run_names_the_workflow_and_links_the_run(ticket, settings):
    from audit.log import acting_as

    bot = factories.UserFactory(username=settings.WORKFLOWS_SERVICE_USER, first_name="Workflows", last_name="",
                                role="workflow")
    ref = f"#{ticket.number}"
    with acting_as(workflow={"run": 41, "name": "Refund double charges"}):
        record(actor=bot, action=AuditAction.CHARGE_REFUND, target="ch_3QxAbCdEfGhIjK9Lm", refund="re_1",
               amount=2500, currency="jpy", ticket=ref, idempotency_key="k")
        record(actor=bot, action=AuditAction.CUSTOMER_UPDATE_METADATA, target="cus_1", set={"vip": "yes"},
               removed=[], ticket=ref)
    record(actor=bot, action=AuditAction.PORTAL_SESSION_CREATE, target="cus_1", session="bps_1", ticket=ref)
    with translation.override("en"):
        events = selectors.thread_events(ticket)
    assert [e.text for e in events] == [
        "Refunded ¥2,500 of ch_3QxA…9Lm — by workflow “Refund double charges”",
        "Changed the metadata of cus_1 (vip) — by workflow “Refund double charges”",
        "Workflows created a billing-portal link for cus_1",  # a row written outside a run: as before
    ]
    assert [e.url for e in events] == ["/workflows/runs/41/", "/workflows/runs/41/", ""]


def test_acting_as_adds_its_details_to_every_row_inside_and_no_others(agent):
    from audit.log import acting_as

    with acting_as(workflow={"run": 3, "name": "W"}):
        inside = record(actor=agent, action=AuditAction.TICKET_TAGS, target="ticket:1", tags={"from": [], "to": []})
    outside = record(actor=agent, action=AuditAction.TICKET_TAGS, target="ticket:1", tags={"from": [], "to": []})
    assert inside.details["workflow"] == {"run": 3, "name": "W"} and "workflow" not in outside.details


def test_a_persons_housekeeping_is_not_repeated_in_the_thread(ticket, agent):
    actions.set_status(actor=agent, ticket=ticket, status="pending")
    actions.set_tags(actor=agent, ticket=ticket, add=["vip"])
    assert selectors.thread_events(ticket) == []


def test_a_workflows_steps_on_the_ticket_are_one_line(ticket, settings):
    bot = factories.UserFactory(username=settings.WORKFLOWS_SERVICE_USER, first_name="Workflows", last_name="",
                                role="workflow")
    billing = Team.objects.create(name="Billing", slug="billing")
    actions.set_tags(actor=bot, ticket=ticket, add=["refund"])
    actions.assign(actor=bot, ticket=ticket, team=billing)
    with translation.override("en"):
        events = selectors.thread_events(ticket)
    assert [e.text for e in events] == ["Workflows tagged refund, moved to Billing"]


def test_a_merge_into_the_requester_shows(ticket, agent):
    record(actor=agent, action=AuditAction.CONTACT_MERGE, target=f"contact:{ticket.requester_id}", merged=99,
           merge=1, tickets=2)
    with translation.override("en"):
        (event,) = selectors.thread_events(ticket)
    assert "merged another contact into the requester (2 tickets moved)" in event.text


def test_events_cost_the_same_queries_however_many(ticket, agent):
    def count():
        with CaptureQueriesContext(connection) as queries:
            selectors.thread_events(ticket)
        return len(queries)

    refund_row(agent, ticket)
    one = count()
    for _ in range(20):
        refund_row(agent, ticket)
    assert count() == one == 1


# --- the page -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_ticket_roles_see_the_event_in_the_thread(client, ticket, agent, role, request):
    refund_row(agent, ticket)
    client.force_login(request.getfixturevalue(role))
    html = client.get(f"/tickets/{ticket.number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'class="system-event"' in html and "refunded ¥2,500 of ch_3QxA…9Lm" in html


def test_the_conversation_refresh_carries_the_events(client, ticket, agent):
    refund_row(agent, ticket)
    client.force_login(agent)
    response = client.get(f"/tickets/{ticket.number}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="conversation")
    assert response.status_code == 200 and 'class="system-event"' in response.content.decode()


def test_a_user_without_a_tickets_role_sees_no_thread(client, ticket, agent, no_role):
    refund_row(agent, ticket)
    client.force_login(no_role)
    assert client.get(f"/tickets/{ticket.number}/").status_code == 403


def test_anonymous_is_sent_to_login(client, ticket):
    response = client.get(f"/tickets/{ticket.number}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
