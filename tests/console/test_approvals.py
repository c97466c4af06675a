"""Finance's refund approvals (console/views/approvals.py, console.actions.close_refund_approval):
an agent over their limit asks, finance approves through the pre-filled refund flow (against
localstripe through the recording gateway) or declines with a reason, and the loop closes on the
ticket: a note, the tag gone, the ticket back with the agent, the agent notified."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEntry
from console import actions as console_actions
from console.models import Notification, RefundApproval
from tests import factories
from tests.console.test_panel import live_charge  # noqa: F401
from tests.helpers import HX, committed, sealed
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401

pytestmark = pytest.mark.django_db

TAG = "refund-approval"


@pytest.fixture
def limits(settings):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"usd": 1000, "*": 0}, "finance": None}


@pytest.fixture
def finance_team(db):
    from tickets.models import Team

    return Team.objects.create(name="Finance", slug="finance")


@pytest.fixture
def asked(live_charge, limits, finance_team, client, agent, gw):  # noqa: F811
    """The agent, over their $10.00 limit, asked finance for $25.00 of a $50.00 charge through the panel."""
    contact, charge = live_charge
    ticket = factories.TicketFactory(requester=contact)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    client.force_login(agent)
    refused = client.post(base + "/preview", {"token": uuid.uuid4().hex, "amount": "25.00",
                                              "reason": "requested_by_customer", "note": "Box lost by the carrier",
                                              "ticket": str(ticket.pk)}, **HX)
    assert refused.status_code == 400
    with committed():
        handed = client.post(base + "/ask-finance", {"handover": sealed(refused, "handover")}, **HX)
    assert handed.status_code == 200, handed.content
    client.logout()
    [approval] = RefundApproval.objects.all()
    return {"contact": contact, "charge": charge, "ticket": ticket, "approval": approval}


def _asked_directly(agent, finance_team, *, amount=2500, note="Box lost"):
    """A request made by the action itself (no Stripe call): for the decline and the roles."""
    ticket = factories.TicketFactory()
    factories.mirror(factories.ChargeFactory(id="ch_approval", amount=5000))
    console_actions.request_refund_approval(
        actor=agent, ticket=ticket, charge_id="ch_approval", amount=amount, currency="usd",
        reason="duplicate", note=note, refusal="Refunds above $10.00 need finance", token=uuid.uuid4().hex)
    return ticket, RefundApproval.objects.get(ticket=ticket)


def _tags(ticket):
    return set(ticket.tags.values_list("name", flat=True))


# --- the loop, end to end ------------------------------------------------------------------------


def test_agent_asks_finance_approves_and_the_loop_closes_on_the_ticket(client, agent, finance, asked, gw):
    ticket, approval, charge = asked["ticket"], asked["approval"], asked["charge"]
    assert approval.status == "open" and approval.amount == 2500 and approval.requested_by == agent
    assert approval.note == "Box lost by the carrier" and approval.token
    ticket.refresh_from_db()
    assert ticket.team.slug == "finance" and TAG in _tags(ticket)

    client.force_login(finance)
    page = client.get("/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "$25.00" in html and f'href="/stripe/payments/{charge["id"]}/"' in html
    assert "Box lost by the carrier" in html and f"#{ticket.number}" in html
    assert (agent.get_full_name() or agent.username) in html
    assert "Approvals (1)" in html  # the navigation's count

    # Approve: the normal refund form, filled from the request, then previewed in money terms.
    form = client.get(f"/approvals/{approval.pk}/refund?amount=25.00&reason=requested_by_customer"
                      "&note=Box+lost+by+the+carrier", **HX)
    assert form.status_code == 200
    assert 'value="25.00"' in form.content.decode() and 'value="Box lost by the carrier"' in form.content.decode()
    data = {"token": uuid.uuid4().hex, "amount": "25.00", "reason": "requested_by_customer",
            "note": "Box lost by the carrier"}
    preview = client.post(f"/approvals/{approval.pk}/refund/preview", data, **HX)
    assert preview.status_code == 200, preview.content
    assert "Refund $25.00 of $50.00" in preview.content.decode()
    with committed():
        done = client.post(f"/approvals/{approval.pk}/refund/confirm", {"confirmation": sealed(preview)}, **HX)
    assert done.status_code == 200, done.content
    assert "Refunded $25.00" in done.content.decode()
    assert len(gw.sent("POST", "/v1/refunds")) == 1

    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == finance and approval.refund_id.startswith("re_")
    assert approval.refunded == 2500
    ticket.refresh_from_db()
    note = ticket.messages.filter(kind="note").order_by("-id").first()
    assert note.body_text.startswith("Finance (") and f"refunded $25.00 of {charge['id']}" in note.body_text
    assert TAG not in _tags(ticket)
    assert ticket.assignee == agent and ticket.team is None  # back where it was before finance
    [told] = Notification.objects.filter(recipient=agent)
    assert told.link == f"/tickets/{ticket.number}/" and "$25.00" in told.text
    assert AuditEntry.objects.filter(action="refund.approval_closed", target=charge["id"]).count() == 1
    # The queue is empty; the link says no count.
    after = client.get("/approvals/").content.decode()
    assert "No refund is waiting for finance." in after and "Approvals (" not in after


def test_approve_posts_what_was_asked_straight_to_the_money_terms_preview(client, finance, asked, gw):
    """One click: the list's Approve form carries the request's amount, reason and note to the
    preview; "Change amount…" still opens the form for another amount."""
    import re

    approval = asked["approval"]
    client.force_login(finance)
    html = client.get("/approvals/").content.decode()
    form = re.search(rf'<form method="post" action="/approvals/{approval.pk}/refund/preview".*?</form>', html, re.S)
    assert form, html
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["amount"] == "25.00" and fields["note"] == "Box lost by the carrier"
    assert fields["reason"] == "requested_by_customer" and len(fields["token"]) == 32
    assert f'/approvals/{approval.pk}/refund?amount=25.00' in html  # Change amount…
    preview = client.post(f"/approvals/{approval.pk}/refund/preview", fields, **HX)
    assert preview.status_code == 200, preview.content
    assert "Refund $25.00 of $50.00" in preview.content.decode()
    with committed():
        done = client.post(f"/approvals/{approval.pk}/refund/confirm", {"confirmation": sealed(preview)}, **HX)
    assert "Refunded $25.00" in done.content.decode()
    assert len(gw.sent("POST", "/v1/refunds")) == 1


def test_approving_twice_refunds_once_and_notes_once(client, finance, asked, gw):
    approval = asked["approval"]
    client.force_login(finance)
    data = {"token": uuid.uuid4().hex, "amount": "25.00", "reason": "requested_by_customer", "note": ""}
    # Two previews open at once (two tabs, two people): each carries its own form token.
    first = client.post(f"/approvals/{approval.pk}/refund/preview", data, **HX)
    second = client.post(f"/approvals/{approval.pk}/refund/preview", {**data, "token": uuid.uuid4().hex}, **HX)
    assert first.status_code == second.status_code == 200
    with committed():
        one = client.post(f"/approvals/{approval.pk}/refund/confirm", {"confirmation": sealed(first)}, **HX)
        two = client.post(f"/approvals/{approval.pk}/refund/confirm", {"confirmation": sealed(second)}, **HX)
    assert one.status_code == 200 and two.status_code == 200, two.content
    assert "nothing was refunded again" in two.content.decode() and "already closed" in two.content.decode()
    assert len(gw.sent("POST", "/v1/refunds")) == 1
    ticket = asked["ticket"]
    assert ticket.messages.filter(kind="note", body_text__startswith="Finance (").count() == 1
    assert AuditEntry.objects.filter(action="refund.approval_closed").count() == 1
    # A preview made now is refused: the request is closed.
    late = client.post(f"/approvals/{approval.pk}/refund/preview", data, **HX)
    assert late.status_code == 400 and b"already closed" in late.content


def test_a_preview_confirmed_after_a_decline_refunds_nothing(client, finance, asked, gw):
    approval = asked["approval"]
    client.force_login(finance)
    preview = client.post(f"/approvals/{approval.pk}/refund/preview",
                          {"token": uuid.uuid4().hex, "amount": "25.00", "reason": "duplicate"}, **HX)
    assert preview.status_code == 200
    console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="Changed my mind")
    late = client.post(f"/approvals/{approval.pk}/refund/confirm", {"confirmation": sealed(preview)}, **HX)
    assert late.status_code == 400 and b"was declined; nothing was refunded" in late.content
    assert gw.sent("POST", "/v1/refunds") == []


def test_the_refund_form_shows_the_agents_own_limit(client, agent, finance, asked):
    contact, charge = asked["contact"], asked["charge"]
    url = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    client.force_login(agent)
    assert "Your limit: $10.00 per charge." in client.get(url, **HX).content.decode()
    client.force_login(finance)  # no limit: nothing to say
    assert "Your limit" not in client.get(url, **HX).content.decode()


# --- declining -----------------------------------------------------------------------------------


def test_finance_declines_with_a_reason(client, agent, finance, finance_team):
    ticket, approval = _asked_directly(agent, finance_team)
    client.force_login(finance)
    blank = client.post(f"/approvals/{approval.pk}/decline", {"reason": "  "})
    assert blank.status_code == 400 and b"Say why the refund is declined." in blank.content
    with committed():
        response = client.post(f"/approvals/{approval.pk}/decline", {"reason": "The parcel was delivered"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    approval.refresh_from_db()
    assert approval.status == "declined" and approval.decline_reason == "The parcel was delivered"
    ticket.refresh_from_db()
    note = ticket.messages.filter(kind="note").order_by("-id").first()
    assert "declined the refund of ch_approval: The parcel was delivered" in note.body_text
    assert TAG not in _tags(ticket) and ticket.assignee == agent
    [told] = Notification.objects.filter(recipient=agent)
    assert "The parcel was delivered" in told.text and told.link == f"/tickets/{ticket.number}/"
    # Declining again changes nothing.
    again = client.post(f"/approvals/{approval.pk}/decline", {"reason": "Twice"})
    assert again.status_code == 302
    assert ticket.messages.filter(kind="note", body_text__contains="declined").count() == 1
    assert Notification.objects.filter(recipient=agent).count() == 1
    # A declined request can't be approved by a preview.
    preview = client.post(f"/approvals/{approval.pk}/refund/preview",
                          {"token": uuid.uuid4().hex, "amount": "25.00", "reason": "duplicate"}, **HX)
    assert preview.status_code == 400 and b"already closed" in preview.content


def test_the_ticket_stays_with_finance_when_configured(agent, finance, finance_team, settings):
    settings.CONSOLE_APPROVAL_RETURN = "finance"
    ticket, approval = _asked_directly(agent, finance_team)
    closed = console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="No")
    assert not closed.replayed
    ticket.refresh_from_db()
    assert ticket.team == finance_team and ticket.assignee is None and TAG not in _tags(ticket)
    assert Notification.objects.filter(recipient=agent).count() == 1  # still told


def test_close_action_refuses_agents_and_a_blank_reason_and_closes_once(agent, finance, finance_team):
    ticket, approval = _asked_directly(agent, finance_team)
    with pytest.raises(PermissionDenied):
        console_actions.close_refund_approval(actor=agent, approval=approval, decline_reason="mine")
    with pytest.raises(ValidationError):
        console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="")
    first = console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="Policy")
    second = console_actions.close_refund_approval(actor=finance, approval=approval, decline_reason="Policy")
    assert not first.replayed and second.replayed
    assert ticket.messages.filter(kind="note", body_text__contains="declined").count() == 1
    assert AuditEntry.objects.filter(action="refund.approval_closed").count() == 1


# --- who may --------------------------------------------------------------------------------------


def test_finance_and_admin_see_the_queue(as_user, agent, finance, admin_user, finance_team):
    _asked_directly(agent, finance_team, note="For the admin too")
    for person in (finance, admin_user):
        page = as_user(person).get("/approvals/")
        assert page.status_code == 200 and b"For the admin too" in page.content
        fragment = as_user(person).get("/approvals/", **HX)
        assert fragment.status_code == 200 and b"<html" not in fragment.content and b"For the admin too" in fragment.content


def test_agents_and_people_without_a_role_are_refused(as_user, agent, no_role, finance_team):
    ticket, approval = _asked_directly(agent, finance_team)
    client = as_user(agent)
    assert client.get("/approvals/").status_code == 403
    assert client.get(f"/approvals/{approval.pk}/refund", **HX).status_code == 403
    assert client.post(f"/approvals/{approval.pk}/decline", {"reason": "mine"}).status_code == 403
    assert "/approvals/" not in client.get("/notifications/").content.decode()  # no link for agents
    approval.refresh_from_db()
    assert approval.status == "open"
    assert as_user(no_role).get("/approvals/").status_code == 403


def test_anonymous_visitors_go_to_the_login(client, agent, finance_team):
    _ticket, approval = _asked_directly(agent, finance_team)
    for url in ("/approvals/", f"/approvals/{approval.pk}/refund"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    response = client.post(f"/approvals/{approval.pk}/decline", {"reason": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    approval.refresh_from_db()
    assert approval.status == "open"
