"""The ticket page: the conversation, replies and notes (with the stale-reply warning),
properties edited in place, macros, presence, retrying a failed push.

Tickets arrive the way production receives them (tickets.actions.receive_message); every
check is made for an agent, the roles the role table lets in, a user without a tickets role
and anonymous visitors.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail

from audit.models import AuditEntry
from tickets import actions
from tickets.models import Message, Ticket
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def visitor(db):
    return factories.UserFactory(username="visitor")


def inbound(sender="Hana Sato <hana@example.jp>", subject="Where is my order?", body="It has been a week.",
            message_id=None, channel="email", **kw) -> Message:
    message_id = message_id or f"{factories.stripe_id('m')}@mail.example"
    return actions.receive_message(channel=channel, sender=sender, subject=subject, body_text=body,
                                   channel_message_id=message_id, **kw).message


@pytest.fixture
def ticket(db) -> Ticket:
    return inbound().ticket


def page(client, ticket, **extra):
    return client.get(f"/tickets/{ticket.number}/", **extra)


def version_of(ticket) -> int:
    return Ticket.objects.get(pk=ticket.pk).version


def reply(client, ticket, body, *, kind="reply", version=None, **data):
    version = version_of(ticket) if version is None else version
    return client.post(f"/tickets/{ticket.number}/reply/", {"kind": kind, "body": body, "version": version, **data},
                       **HX)


# --- the page -------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, ticket):
    response = page(client, ticket)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_user_without_a_tickets_role_is_refused(client, ticket, visitor):
    client.force_login(visitor)
    assert page(client, ticket).status_code == 403
    assert reply(client, ticket, "hi").status_code == 403
    assert not Message.objects.filter(kind="outbound").exists()


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_ticket_roles_see_the_conversation(client, ticket, role, request):
    client.force_login(request.getfixturevalue(role))
    response = page(client, ticket)
    assert response.status_code == 200
    assert "It has been a week." in response.content.decode()


def test_every_ticket_endpoint_refuses_a_user_without_a_tickets_role(client, ticket, visitor):
    message = Message.objects.get(ticket=ticket)
    client.force_login(visitor)
    n = ticket.number
    for method, url in [("get", f"/tickets/{n}/"), ("get", f"/tickets/{n}/macro/"),
                        ("post", f"/tickets/{n}/reply/"), ("post", f"/tickets/{n}/update/"),
                        ("post", f"/tickets/{n}/tags/"), ("post", f"/tickets/{n}/presence/"),
                        ("post", f"/tickets/messages/{message.pk}/retry/")]:
        assert getattr(client, method)(url, **HX).status_code == 403, url


def test_missing_ticket_is_404(client, agent):
    client.force_login(agent)
    assert client.get("/tickets/424242/").status_code == 404


def test_customer_agent_and_note_messages_look_different(client, ticket, agent):
    actions.reply(actor=agent, ticket=ticket, body="We are on it.")
    actions.add_note(actor=agent, ticket=ticket, body="Carrier says Tuesday.")
    line = inbound(channel="line", sender="U" + "b" * 32, sender_name="Yuki", body="こんにちは").ticket
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    assert re.search(r'class="msg msg-inbound[^"]*".*It has been a week', html, re.S)
    assert re.search(r'class="msg msg-outbound[^"]*".*We are on it', html, re.S)
    assert re.search(r'class="msg msg-note[^"]*".*Internal note.*Carrier says Tuesday', html, re.S)
    assert 'class="channel channel-email"' in html
    line_html = page(client, line).content.decode()
    assert 'class="channel channel-line"' in line_html
    actions.reply(actor=agent, ticket=line, body="ありがとうございます。")
    line_html = page(client, line).content.decode()
    # A LINE user id means nothing to an agent: the thread names Yuki, and says no "to U…".
    assert "Yuki" in line_html and '<span class="muted small">U' not in line_html
    assert "to U" + "b" * 32 not in line_html


def test_customer_html_is_shown_cleaned(client, agent):
    message = inbound(body_html='<p>Hi <b>there</b></p><script>alert(1)</script><img src="https://t.example/p.gif">')
    client.force_login(agent)
    html = page(client, message.ticket).content.decode()
    assert "<p>Hi <b>there</b></p>" in html
    assert "alert(1)" not in html and "t.example/p.gif" not in html


def test_page_has_the_keyboard_overlay_and_shortcut_targets(client, ticket, agent):
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    assert '<dialog id="shortcuts"' in html
    for key in ("j", "k", "r", "n", "e", "?"):
        assert f"<kbd>{key}</kbd>" in html
    assert 'data-shortcut="solve"' in html
    assert 'src="/static/inbox.js"' in html


class _WithoutPanel:
    """The console's URLconf without the customer panel (console/views/panel.py now serves it)."""
    from console.urls import urlpatterns as _all

    urlpatterns = [p for p in _all if getattr(p, "name", None) != "customer_panel"]


def test_customer_panel_slot_is_calm_until_the_console_serves_it(client, ticket, agent, settings):
    settings.ROOT_URLCONF = _WithoutPanel
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    assert 'id="customer-panel"' in html
    assert f'hx-get="/customers/{ticket.requester_id}/panel"' not in html  # no request to a 404
    assert "will show here" in html


def _panel(request, pk):
    from django.http import HttpResponse

    return HttpResponse(f"panel {pk}")


def _with_panel():
    """The console's URLconf plus the customer panel the timeline issue adds."""
    from django.urls import path

    from console.urls import urlpatterns

    return [*urlpatterns, path("customers/<int:pk>/panel", _panel)]


urlpatterns = _with_panel()


def test_customer_panel_slot_loads_by_url_once_it_exists(client, ticket, agent, settings):
    settings.ROOT_URLCONF = __name__
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    # The ticket goes along, so the panel's actions can answer on it (a billing-portal link).
    assert f'hx-get="/customers/{ticket.requester_id}/panel?ticket={ticket.pk}"' in html


def test_page_queries_do_not_grow_with_the_conversation(client, agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def ticket_with(n):
        first = inbound(sender=f"anon{n}@example.com")  # a contact without a name
        for i in range(n):
            actions.add_note(actor=agent, ticket=first.ticket, body=f"note {i}")
            inbound(sender=f"anon{n}@example.com", body=f"again {i}", in_reply_to=first.channel_message_id,
                    attachments=[actions.IncomingAttachment(f"photo{i}.jpg", b"x" * 10, "image/jpeg")])
        return first.ticket

    short, long = ticket_with(1), ticket_with(15)
    client.force_login(agent)
    page(client, short)
    counts = []
    for t in (short, long):
        with CaptureQueriesContext(connection) as queries:
            response = page(client, t)
        assert response.content.decode().count('class="msg msg-') == Message.objects.filter(ticket=t).count()
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- replies and notes ------------------------------------------------------------------------


def test_agent_replies_by_email(client, ticket, agent, committed):
    client.force_login(agent)
    with committed():
        response = reply(client, ticket, "Your parcel left today.")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="thread">')
    assert "Reply queued for sending." in html
    assert 'id="props" class="card props-card" hx-swap-oob="true"' in html
    sent = Message.objects.get(ticket=ticket, kind="outbound")
    assert (sent.author, sent.body_text, sent.delivery_status) == (agent, "Your parcel left today.", "sent")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["hana@example.jp"]
    assert AuditEntry.objects.filter(action="ticket.reply", actor=agent).exists()


def test_reply_and_solve_in_one_go(client, ticket, agent):
    client.force_login(agent)
    reply(client, ticket, "Refunded, sorry!", status="solved")
    ticket.refresh_from_db()
    assert ticket.status == "solved" and ticket.first_responded_at is not None


def test_internal_note_is_not_sent(client, ticket, agent, committed):
    client.force_login(agent)
    with committed():
        response = reply(client, ticket, "VIP, be gentle.", kind="note")
    assert "Note added." in response.content.decode()
    note = Message.objects.get(ticket=ticket, kind="note")
    assert note.author == agent and note.delivery_status == ""
    assert mail.outbox == []


def test_an_empty_reply_keeps_the_box_and_says_why(client, ticket, agent):
    client.force_login(agent)
    html = reply(client, ticket, "   ").content.decode()
    assert "A reply needs some text." in html
    assert not Message.objects.filter(kind="outbound").exists()


def test_a_reply_to_a_closed_ticket_is_refused_and_the_draft_kept(client, ticket, agent):
    actions.set_status(actor=agent, ticket=ticket, status="closed")
    client.force_login(agent)
    html = reply(client, ticket, "Hello again").content.decode()
    assert "is closed" in html
    assert ">Hello again</textarea>" in html
    assert not Message.objects.filter(kind="outbound").exists()


def test_a_stale_reply_warns_and_sends_only_when_asked(client, ticket, agent):
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    loaded_version = int(re.search(r'name="version" value="(\d+)"', html).group(1))
    seen = re.search(r'name="seen" value="([^"]+)"', html).group(1)
    # Meanwhile the customer writes again, on the same thread.
    first = Message.objects.get(ticket=ticket)
    inbound(body="Actually, it arrived damaged.", in_reply_to=first.channel_message_id)

    response = reply(client, ticket, "Your parcel left today.", version=loaded_version, seen=seen)
    html = response.content.decode()
    assert "This ticket changed since you opened it." in html
    assert "Actually, it arrived damaged." in html  # what changed, in the warning and the thread
    assert "Send anyway" in html
    assert ">Your parcel left today.</textarea>" in html  # the draft is kept
    assert not Message.objects.filter(kind="outbound").exists()

    new_version = int(re.search(r'name="version" value="(\d+)"', html).group(1))
    assert new_version == version_of(ticket) != loaded_version
    response = reply(client, ticket, "Sorry to hear that, a new one is on its way.", version=new_version)
    assert "Reply queued" in response.content.decode()
    assert Message.objects.filter(kind="outbound").count() == 1


def test_own_edits_do_not_make_the_page_stale(client, ticket, agent):
    """In-place edits answer with the new version, which the composer then sends."""
    client.force_login(agent)
    response = client.post(f"/tickets/{ticket.number}/update/", {"field": "priority", "value": "high"}, **HX)
    html = response.content.decode()
    assert 'id="ticket-state" hidden hx-swap-oob="true"' in html
    version = int(re.search(r'name="version" value="(\d+)"', html).group(1))
    assert "Reply queued" in reply(client, ticket, "On it.", version=version).content.decode()


def test_a_reply_without_htmx_redirects_back(client, ticket, agent):
    client.force_login(agent)
    response = client.post(f"/tickets/{ticket.number}/reply/", {"kind": "reply", "body": "Hi", "version": ticket.version})
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.number}/"


def test_bad_kind_or_status_is_400(client, ticket, agent):
    client.force_login(agent)
    assert reply(client, ticket, "x", kind="shout").status_code == 400
    assert reply(client, ticket, "x", status="exploded").status_code == 400


# --- macros --------------------------------------------------------------------------------------------


def test_macro_fills_the_box_and_applies_its_changes_on_send(client, agent):
    ticket = inbound(sender="Mika Tanaka <mika@example.com>").ticket
    actions.update_contact(actor=agent, contact=ticket.requester, name="Mika Tanaka")
    macro = factories.MacroFactory(name="Shipping delay", body="Hi {{ contact.first_name }}, about #{{ ticket.number }}.",
                                   add_tags=["shipping"], set_status="pending")
    client.force_login(agent)
    html = client.get(f"/tickets/{ticket.number}/macro/?macro={macro.pk}", **HX).content.decode()
    assert f">Hi Mika, about #{ticket.number}.</textarea>" in html
    assert "sets status pending" in html and "adds shipping" in html

    reply(client, ticket, f"Hi Mika, about #{ticket.number}. Edited.", macro=macro.pk)
    ticket.refresh_from_db()
    assert ticket.status == "pending"
    assert list(ticket.tags.values_list("name", flat=True)) == ["shipping"]
    assert Message.objects.get(ticket=ticket, kind="outbound").body_text.endswith("Edited.")
    assert AuditEntry.objects.filter(action="ticket.macro", actor=agent).exists()


# --- properties in place --------------------------------------------------------------------------------


def test_status_priority_assignee_and_team_in_place(client, ticket, agent):
    team = factories.TeamFactory(name="Billing", slug="billing")
    client.force_login(agent)
    url = f"/tickets/{ticket.number}/update/"
    for field, value in [("priority", "urgent"), ("assignee", str(agent.pk)), ("team", str(team.pk)),
                         ("status", "pending")]:
        response = client.post(url, {"field": field, "value": value}, **HX)
        assert response.status_code == 200
        assert response.content.decode().lstrip().startswith('<section id="props"')
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.assignee, ticket.team, ticket.status) == ("urgent", agent, team, "pending")
    client.post(url, {"field": "assignee", "value": ""}, **HX)
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert AuditEntry.objects.filter(action="ticket.assign", actor=agent).count() == 3


def test_solve_button_and_reopen(client, ticket, agent):
    client.force_login(agent)
    url = f"/tickets/{ticket.number}/update/"
    html = client.post(url, {"field": "status", "value": "solved", "from": "unassigned"}, **HX).content.decode()
    assert 'id="head-actions" class="head-actions" hx-swap-oob="true"' in html
    # The navigation counts follow, with the list the agent came from still highlighted.
    assert 'id="inbox-nav" hx-swap-oob="true"' in html
    assert re.search(r'aria-current="page"><span>Unassigned</span><span class="count"[^>]*>0</span>', html)
    assert "Reopen" in html and 'data-shortcut="solve"' not in html
    client.post(url, {"field": "status", "value": "open"}, **HX)
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_in_place_errors_are_shown(client, ticket, agent):
    client.force_login(agent)
    actions.set_status(actor=agent, ticket=ticket, status="closed")
    html = client.post(f"/tickets/{ticket.number}/update/", {"field": "status", "value": "open"}, **HX).content.decode()
    assert "cannot be reopened" in html
    html = client.post(f"/tickets/{ticket.number}/update/", {"field": "team", "value": "999"}, **HX).content.decode()
    assert "No such team." in html
    assert client.post(f"/tickets/{ticket.number}/update/", {"field": "subject", "value": "x"}, **HX).status_code == 400


def test_tags_added_and_removed_in_place(client, ticket, agent):
    client.force_login(agent)
    url = f"/tickets/{ticket.number}/tags/"
    html = client.post(url, {"add": "VIP, refund"}, **HX).content.decode()
    assert re.search(r'<span class="tag">vip<button', html) and re.search(r'<span class="tag">refund<button', html)
    client.post(url, {"remove": "vip"}, **HX)
    assert list(ticket.tags.values_list("name", flat=True)) == ["refund"]


def test_visitor_cannot_edit_and_anonymous_is_sent_to_login(client, ticket, visitor):
    url = f"/tickets/{ticket.number}/update/"
    assert client.post(url, {"field": "status", "value": "solved"}).status_code == 302
    client.force_login(visitor)
    assert client.post(url, {"field": "status", "value": "solved"}, **HX).status_code == 403
    assert client.post(f"/tickets/{ticket.number}/tags/", {"add": "x"}, **HX).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "open" and not ticket.tags.exists()


# --- presence -------------------------------------------------------------------------------------------


def test_two_agents_on_one_ticket_see_each_other(client, ticket, agent):
    from django.test import Client

    ken = factories.UserFactory(username="ken", role="agent", first_name="Ken", last_name="Ito")
    other = Client()
    other.force_login(ken)
    client.force_login(agent)
    assert "is viewing" not in page(client, ticket).content.decode()  # alone so far
    assert "is viewing" in page(other, ticket).content.decode()  # Ken sees the agent
    html = client.post(f"/tickets/{ticket.number}/presence/", {"version": ticket.version}, **HX).content.decode()
    assert "Ken Ito is viewing" in html
    # Ken starts typing; then leaves.
    other.post(f"/tickets/{ticket.number}/presence/", {"version": ticket.version, "composing": "1"}, **HX)
    html = client.post(f"/tickets/{ticket.number}/presence/", {"version": ticket.version}, **HX).content.decode()
    assert "Ken Ito is replying" in html
    assert other.post(f"/tickets/{ticket.number}/presence/", {"leave": "1"}).status_code == 204
    html = client.post(f"/tickets/{ticket.number}/presence/", {"version": ticket.version}, **HX).content.decode()
    assert "Ken Ito" not in html


def test_presence_says_when_the_ticket_changed(client, ticket, agent):
    client.force_login(agent)
    before = ticket.version
    inbound(body="One more thing", in_reply_to=Message.objects.get(ticket=ticket).channel_message_id)
    html = client.post(f"/tickets/{ticket.number}/presence/", {"version": before}, **HX).content.decode()
    assert "Updated since you opened it" in html
    # "Show" brings the conversation and the new version.
    html = client.get(f"/tickets/{ticket.number}/", HTTP_HX_TARGET="conversation", **HX).content.decode()
    assert html.lstrip().startswith('<ol id="conversation"') and "One more thing" in html
    assert f'name="version" value="{version_of(ticket)}"' in html


def test_presence_needs_a_tickets_role(client, ticket, visitor):
    assert client.post(f"/tickets/{ticket.number}/presence/").status_code == 302
    client.force_login(visitor)
    assert client.post(f"/tickets/{ticket.number}/presence/", **HX).status_code == 403


# --- a failed LINE push -----------------------------------------------------------------------------------


def test_failed_push_shows_and_can_be_retried(client, agent, line_api, committed):
    ticket = inbound(channel="line", sender="U" + "c" * 32, body="Hello").ticket
    line_api.fail_next(400, "The user blocked the account")
    with committed():
        actions.reply(actor=agent, ticket=ticket, body="Hi from support")
    sent = Message.objects.get(ticket=ticket, kind="outbound")
    assert sent.delivery_status == "failed"
    client.force_login(agent)
    html = page(client, ticket).content.decode()
    assert "Not delivered" in html and f'hx-post="/tickets/messages/{sent.pk}/retry/"' in html
    with committed():
        html = client.post(f"/tickets/messages/{sent.pk}/retry/", **HX).content.decode()
    assert html.lstrip().startswith(f'<li class="msg msg-outbound')
    sent.refresh_from_db()
    assert sent.delivery_status == "sent"
    assert AuditEntry.objects.filter(action="message.retry", actor=agent).exists()


def test_retry_refused_for_visitor(client, agent, visitor):
    message = inbound()
    client.force_login(visitor)
    assert client.post(f"/tickets/messages/{message.pk}/retry/", **HX).status_code == 403


# --- malformed input: the normal page, or a clear refusal ---------------------------------------

@pytest.mark.parametrize("origin", ["team-<x>", "team-a b", "team-ü", "team-", "team-x/../y", "items"])
def test_an_unknown_origin_view_falls_back_to_my_tickets(client, ticket, agent, visitor, origin):
    """?from= names the inbox view the agent came from; one the inbox's URL can't take is ignored."""
    assert page(client, ticket, data={"from": origin})["Location"].startswith("/login/")
    client.force_login(visitor)
    assert client.get(f"/tickets/{ticket.number}/", {"from": origin}).status_code == 403
    client.force_login(agent)
    response = client.get(f"/tickets/{ticket.number}/", {"from": origin})
    assert response.status_code == 200 and 'href="/tickets/mine/"' in response.content.decode()
    tagged = client.post(f"/tickets/{ticket.number}/tags/?from={origin}", {"add": "late", "from": origin}, **HX)
    assert tagged.status_code == 200 and "late" in tagged.content.decode()
    assert client.post(f"/tickets/{ticket.number}/tags/", {"add": "later", "from": origin}).status_code == 302


def test_a_known_team_origin_is_kept(client, ticket, agent):
    factories.TeamFactory(name="Billing", slug="billing")
    client.force_login(agent)
    html = client.get(f"/tickets/{ticket.number}/", {"from": "team-billing"}).content.decode()
    assert 'href="/tickets/team-billing/"' in html


@pytest.mark.parametrize("seen", ["2024-02-30T00:00:00", "0001-01-01T00:00:00+14:00", "²⁰²⁴", "x" * 500])
def test_a_stale_reply_with_an_impossible_seen_time_still_warns(client, ticket, agent, visitor, seen):
    client.force_login(agent)
    loaded_version = version_of(ticket)
    actions.add_note(actor=agent, ticket=ticket, body="Someone else was here.")
    response = reply(client, ticket, "Your parcel left today.", version=loaded_version, seen=seen)
    assert response.status_code == 200
    assert not Message.objects.filter(kind="outbound").exists()  # stale: nothing was sent
    client.force_login(visitor)
    assert reply(client, ticket, "hi", seen=seen).status_code == 403
    client.logout()
    assert reply(client, ticket, "hi", seen=seen)["Location"].startswith("/login/")
