"""The assist card beside a ticket (console/assist/views.py) and the draft's buttons (tickets'
use and discard): who sees and does what, and that each suggestion opens the usual confirmed
form with its fields filled in."""

from __future__ import annotations

import time
from html import unescape

import pytest

from tests import factories, helpers
from tickets.actions import receive_message
from tickets.models import ReplyDraft

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
NOW = int(time.time())


@pytest.fixture
def asked():
    """Ken asked for a refund of the $42.00 he paid two days ago; his contact is his Stripe customer."""
    customer = factories.CustomerFactory(name="Ken Mori", email="ken.mori@example.com")
    charge = factories.ChargeFactory(customer=customer["id"], amount=4200, currency="usd", created=NOW - 2 * 86400,
                                     description="Order KR-10454: Gyokuro gift box")
    factories.mirror(customer, charge)
    with helpers.committed():
        first = receive_message(channel="email", sender="ken.mori@example.com", subject="Hi", body_text="hello").message
    factories.IdentityFactory(contact=first.ticket.requester, kind="stripe_customer", value=customer["id"])
    with helpers.committed():
        message = receive_message(channel="email", sender="ken.mori@example.com", subject="Refund please",
                                  body_text="The gift box ($42.00) arrived broken, I'd like a refund.").message
    return {"ticket": message.ticket, "charge": charge, "draft": ReplyDraft.objects.get(message=message)}


def test_agents_and_finance_see_the_reading_the_draft_and_the_suggestions(as_user, agent, finance, asked):
    url = f"/assist/tickets/{asked['ticket'].number}/"
    page = unescape(as_user(agent).get(url, **HX).content.decode())
    assert "Refund request" in page and asked["charge"]["id"] in page
    assert "same amount ($42.00)" in page and "2 days before the message" in page
    assert "Amount: $42.00" in page
    assert "Hi Ken Mori," in page and "Use this draft" in page
    refund_form = f"/customers/{asked['ticket'].requester_id}/charges/{asked['charge']['id']}/refund?"
    assert refund_form in page and "reason=requested_by_customer" in page
    assert "Refund request" in unescape(as_user(finance).get(url, **HX).content.decode())


def test_the_suggested_refund_opens_the_usual_form_filled_in(as_user, agent, asked):
    form = as_user(agent).get(f"/customers/{asked['ticket'].requester_id}/charges/{asked['charge']['id']}/refund",
                              {"ticket": asked["ticket"].pk, "reason": "duplicate"}, **HX).content.decode()
    assert '<option value="duplicate" selected>' in form


def test_a_person_without_a_role_and_an_anonymous_one_get_nothing(client, as_user, no_role, asked):
    url = f"/assist/tickets/{asked['ticket'].number}/"
    assert as_user(no_role).get(url).status_code == 403
    client.logout()
    assert client.get(url)["Location"].startswith("/login/")
    draft = asked["draft"]
    assert client.post(f"/tickets/{asked['ticket'].number}/drafts/{draft.pk}/discard/").status_code == 302
    draft.refresh_from_db()
    assert draft.status == "open"


def test_use_fills_the_composer_and_discard_sets_the_draft_aside(as_user, agent, no_role, asked):
    ticket, draft = asked["ticket"], asked["draft"]
    composer = as_user(agent).get(f"/tickets/{ticket.number}/drafts/{draft.pk}/use/", **HX).content.decode()
    assert f'name="from_draft" value="{draft.pk}"' in composer and "Hi Ken Mori," in unescape(composer)
    assert as_user(no_role).post(f"/tickets/{ticket.number}/drafts/{draft.pk}/discard/", **HX).status_code == 403
    response = as_user(agent).post(f"/tickets/{ticket.number}/drafts/{draft.pk}/discard/", **HX)
    assert response.status_code == 200 and f'hx-get="/assist/tickets/{ticket.number}/"' in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "discarded" and draft.closed_by == agent
    assert as_user(agent).get(f"/tickets/{ticket.number}/drafts/{draft.pk}/use/", **HX).status_code == 404


def test_the_ticket_page_embeds_the_card(as_user, agent, asked):
    page = as_user(agent).get(f"/tickets/{asked['ticket'].number}/").content.decode()
    assert f'hx-get="/assist/tickets/{asked["ticket"].number}/"' in page
