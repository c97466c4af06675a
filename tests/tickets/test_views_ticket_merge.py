"""The "Merge into…" card on the ticket page, the preview in plain words, the confirmation
(once: a second one is answered calmly, nothing moves twice), the banners with Undo on both
tickets, HTMX and plain. Agents and admins merge; finance and people without a role are
refused; anonymous visitors are sent to log in."""

from __future__ import annotations

import pytest

from tickets import actions
from tickets.models import Message, Ticket, TicketMerge

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def email(subject, body, msgid, **kw):
    return actions.receive_message(channel="email", sender="Mika Ito <mika@example.jp>", subject=subject,
                                   body_text=body, channel_message_id=msgid, **kw).message.ticket


@pytest.fixture
def pair(db, agent):
    survivor = email("Double charge", "I was charged twice", "vs-1@example.jp")
    merged = email("Refund please", "Please refund one", "vm-1@example.jp")
    email(f"Re: Refund please {merged.token}", "Any news?", "vm-2@example.jp")
    email("Gift card", "Another question", "vu-1@example.jp")  # a third of hers: also a candidate
    actions.set_tags(actor=agent, ticket=merged, tags=["refund"])
    return Ticket.objects.get(pk=survivor.pk), Ticket.objects.get(pk=merged.pk)


def test_the_card_lists_the_requesters_other_open_tickets_then_previews(client, agent, pair):
    survivor, merged = pair
    client.force_login(agent)

    page = client.get(f"/tickets/{merged.number}/").content.decode()
    assert "Merge into another ticket…" in page

    html = client.get(f"/tickets/{merged.number}/merge/", **HX).content.decode()
    assert html.lstrip().startswith('<section id="merge-card"')
    assert f"#{survivor.number}" in html and "Double charge" in html
    assert f"?into={merged.number}" not in html  # not itself

    html = client.get(f"/tickets/{merged.number}/merge/?into={survivor.number}", **HX).content.decode()
    assert (f"#{merged.number} “Refund please” will be closed and its 2 messages moved into "
            f"#{survivor.number} “Double charge”.") in html
    assert "Tags added: refund." in html and "You can undo this." in html
    assert not TicketMerge.objects.exists()  # a preview changes nothing


def test_merge_then_banners_thread_event_and_undo_htmx(client, agent, pair):
    survivor, merged = pair
    client.force_login(agent)
    data = {"into": survivor.number, "survivor_version": survivor.version, "merged_version": merged.version}

    response = client.post(f"/tickets/{merged.number}/merge/", data, **HX)
    assert response.status_code == 204 and response["HX-Redirect"] == f"/tickets/{survivor.number}/"
    merge = TicketMerge.objects.get()

    page = client.get(f"/tickets/{survivor.number}/").content.decode()
    assert f"Merged #{merged.number} into #{survivor.number}: 2 messages moved." in page  # the flash
    assert f"merged #{merged.number} into this ticket (2 messages moved)" in page  # the thread event
    assert f'action="/tickets/ticket-merges/{merge.pk}/undo/"' in page
    assert "Please refund one" in page

    page = client.get(f"/tickets/{merged.number}/").content.decode()
    assert "Merged into" in page and f'href="/tickets/{survivor.number}/"' in page
    assert "Merge into another ticket…" not in page  # closed: nothing more to merge

    # The same confirmation again (double click): calm, and nothing moves twice.
    again = client.post(f"/tickets/{merged.number}/merge/", data, **HX)
    assert again.status_code == 204 and again["HX-Redirect"] == f"/tickets/{survivor.number}/"
    assert TicketMerge.objects.count() == 1
    assert "was already merged into" in client.get(f"/tickets/{survivor.number}/").content.decode()

    response = client.post(f"/tickets/ticket-merges/{merge.pk}/undo/", {"ticket": survivor.number}, **HX)
    assert response["HX-Redirect"] == f"/tickets/{survivor.number}/"
    merged.refresh_from_db()
    assert merged.status == "open" and merged.merged_into_id is None
    assert Message.objects.filter(ticket=merged).count() == 2
    page = client.get(f"/tickets/{survivor.number}/").content.decode()
    assert "Undid the merge" in page

    twice = client.post(f"/tickets/ticket-merges/{merge.pk}/undo/", {"ticket": survivor.number})
    assert twice.status_code == 302
    assert "already undone" in client.get(f"/tickets/{survivor.number}/").content.decode()


def test_merge_without_htmx(client, admin_user, pair):
    survivor, merged = pair
    client.force_login(admin_user)

    page = client.get(f"/tickets/{merged.number}/merge/?into={survivor.number}").content.decode()
    assert "<html" in page and "will be closed" in page

    response = client.post(f"/tickets/{merged.number}/merge/", {"into": survivor.number})
    assert response.status_code == 302 and response["Location"] == f"/tickets/{survivor.number}/"
    assert Ticket.objects.get(pk=merged.pk).merged_into_id == survivor.pk


def test_a_bad_choice_is_explained_not_merged(client, agent, pair):
    survivor, merged = pair
    other = actions.receive_message(channel="email", sender="someone@example.com", subject="Not hers",
                                    body_text="x", channel_message_id="o-1@example.com").message.ticket
    client.force_login(agent)

    for into in (str(other.number), "abc", "99999999999999999999999", str(merged.number)):
        html = client.get(f"/tickets/{merged.number}/merge/?into={into}", **HX).content.decode()
        assert "Choose one of this requester&#x27;s open tickets." in html
    html = client.post(f"/tickets/{merged.number}/merge/", {"into": other.number}, **HX).content.decode()
    assert "same requester" in html
    html = client.post(f"/tickets/{merged.number}/merge/", {"into": survivor.number, "merged_version": "0"},
                       **HX).content.decode()
    assert "changed since you opened it" in html and "will be closed" in html
    assert not TicketMerge.objects.exists()


@pytest.mark.parametrize("who", ["finance", "no_role"])
def test_wrong_roles_are_refused(client, request, pair, who):
    survivor, merged = pair
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/tickets/{merged.number}/merge/").status_code == 403
    assert client.post(f"/tickets/{merged.number}/merge/", {"into": survivor.number}).status_code == 403
    assert not TicketMerge.objects.exists()


def test_finance_sees_no_merge_control_and_cannot_undo(client, finance, agent, pair):
    survivor, merged = pair
    merge = actions.merge_tickets(actor=agent, survivor=survivor, merged=merged)
    client.force_login(finance)
    page = client.get(f"/tickets/{survivor.number}/").content.decode()
    assert "Merge into another ticket…" not in page and "/undo/" not in page
    assert client.post(f"/tickets/ticket-merges/{merge.pk}/undo/").status_code == 403
    assert TicketMerge.objects.get().undone_at is None


def test_anonymous_is_sent_to_log_in(client, pair):
    survivor, merged = pair
    response = client.get(f"/tickets/{merged.number}/merge/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.post(f"/tickets/{merged.number}/merge/", {"into": survivor.number})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not TicketMerge.objects.exists()
