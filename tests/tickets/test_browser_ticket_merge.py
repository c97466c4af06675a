"""In a real browser (Playwright + Debian Chromium): an agent opens the second ticket a
customer wrote about the same double charge, chooses "Merge into…", reads the preview,
merges, lands on the surviving ticket with the merge in its thread and an Undo, and undoes it.

Screenshots go to screenshots/ (not in git), and to $MERGE_SHOTS when set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import factories
from tests.helpers import chromium_tab, sign_in
from tickets import actions
from tickets.models import Ticket, TicketMerge

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("MERGE_SHOTS") or Path(__file__).resolve().parents[2] / "screenshots")


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM is used between browser steps
    with chromium_tab(1440, 900) as tab:
        yield tab


def test_merge_from_the_ticket_page_and_undo(page, live_server):
    aiko = factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")

    def write(subject, body, msgid, **kw):
        return actions.receive_message(channel="email", sender="Hana Sato <hana@example.jp>", sender_name="Hana Sato",
                                       subject=subject, body_text=body, channel_message_id=msgid, **kw).message.ticket

    survivor = write("Double charge on my order", "Hello, I was charged twice for order #4417. "
                     "Could you check?", "bm-1@mail.example")
    actions.reply(actor=aiko, ticket=survivor, body="Hi Hana, I'm looking into it now.")
    merged = write("Refund please", "I still see two charges of ¥4,800. Please refund one of them.",
                   "bm-2@mail.example")
    write(f"Re: Refund please {merged.token}", "Here is the receipt number: 1988-2201.", "bm-3@mail.example",
          in_reply_to="bm-2@mail.example")
    actions.set_tags(actor=aiko, ticket=merged, add=["refund"])

    sign_in(page, live_server.url, "aiko")

    page.goto(f"{live_server.url}/tickets/{merged.number}/")
    page.click("text=Merge into another ticket…")
    page.click(f"#merge-card a:has-text('#{survivor.number}')")
    words = page.inner_text("#merge-card .merge-words")
    assert f"#{merged.number} “Refund please” will be closed and its 2 messages moved into #{survivor.number}" in words
    assert "Tags added: refund." in words
    page.click("#merge-card button:has-text('Merge')")
    page.wait_for_url(f"{live_server.url}/tickets/{survivor.number}/")

    assert Ticket.objects.get(pk=merged.pk).merged_into_id == survivor.pk
    assert "Aiko Mori merged" in page.inner_text("#conversation")
    assert page.locator("#merge-banner button:has-text('Undo merge')").is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ticket_merge.png"))

    page.goto(f"{live_server.url}/tickets/{merged.number}/")
    assert "Merged into" in page.inner_text("#merge-banner")
    page.screenshot(path=str(SHOTS / "ticket_merged_away.png"))
    page.click("#merge-banner button:has-text('Undo merge')")
    page.wait_for_selector(".flash-success")
    assert TicketMerge.objects.get().undone_at is not None
    assert Ticket.objects.get(pk=merged.pk).status == "open"
    assert page.errors == [] and page.csp == []
