"""In a real browser (Playwright + Debian Chromium): an agent logs in, opens Unassigned,
replies to an email ticket, adds a note and solves it, mostly from the keyboard. A second
agent opening the same ticket sees the first one there.

Screenshots of the inbox and the ticket page go to screenshots/ (not in git) for a person
to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail

from tickets import actions
from tickets.models import Message, Ticket
from tests import factories
from tests.helpers import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def log_in(browser, live_server, username):
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    page.set_default_timeout(15_000)
    # What the Content-Security-Policy blocked (an inline script or handler, an eval), and errors.
    page.blocked = watch_csp(page)
    page.on("pageerror", lambda exc: page.blocked.append(str(exc)))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{live_server.url}/")
    return page


@pytest.fixture
def inbox(db, admin_user):
    support = actions.save_team(actor=admin_user, team=factories.TeamFactory.build(name="Support", slug="support"))
    aiko = factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    ken = factories.UserFactory(username="ken", role="agent", first_name="Ken", last_name="Ito")
    factories.MacroFactory(name="Shipping delay", body="Hi {{ contact.first_name }}, your parcel is on its way.")
    tickets = []
    for n, (who, subject, priority) in enumerate([
        ("Hana Sato <hana@example.jp>", "Where is my order #4417?", "urgent"),
        ("Jordan Lee <jordan@example.org>", "Charged twice for one subscription", "high"),
        ("Sofia Rossi <sofia@example.it>", "Can I change my delivery address?", "normal"),
        ("mika@example.com", "Invoice for my company", "low"),
    ]):
        name = who.split(" <")[0] if "<" in who else ""
        ticket = actions.receive_message(
            channel="email", sender=who, sender_name=name, subject=subject,
            body_text=f"Hello,\n\n{subject} I wrote last week and have not heard back.\n\nThanks,\n{name or 'Mika'}",
            channel_message_id=f"browser-{n}@mail.example",
        ).message.ticket
        actions.set_priority(actor=aiko, ticket=ticket, priority=priority)
        tickets.append(ticket)
    actions.set_tags(actor=aiko, ticket=tickets[1], add=["billing"])
    actions.assign(actor=aiko, ticket=tickets[2], assignee=ken, team=support)
    actions.receive_message(channel="line", sender="U" + "e" * 32, sender_name="Yuki Kato",
                            body_text="こんにちは！注文した商品がまだ届いていません。", channel_message_id="browser-line-1")
    return {"aiko": aiko, "ken": ken, "first": tickets[0]}


def test_agent_replies_notes_and_solves_from_unassigned(browser, live_server, inbox, eager):
    SHOTS.mkdir(exist_ok=True)
    ticket = inbox["first"]
    page = log_in(browser, live_server, "aiko")

    page.click(".sidebar a:has-text('Inbox')")
    page.wait_for_url("**/tickets/mine/")
    page.click(".sidebar a:has-text('Unassigned')")
    page.wait_for_url("**/tickets/unassigned/")
    rows = page.locator("tr[data-ticket-url]")
    assert rows.count() == 4  # Ken's ticket is assigned, so not here
    assert "Where is my order #4417?" in rows.first.inner_text()  # urgent: the soonest deadline
    page.keyboard.press("j")
    assert "is-current" in rows.first.get_attribute("class")
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)

    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tickets/{ticket.number}/**")
    assert page.locator("h1").inner_text() == "Where is my order #4417?"

    # A second agent opens the same ticket and sees Aiko there.
    other = log_in(browser, live_server, "ken")
    other.goto(f"{live_server.url}/tickets/{ticket.number}/")
    assert "Aiko Mori is viewing" in other.locator("#presence").inner_text()

    # Reply (r), by email.
    page.keyboard.press("r")
    page.keyboard.type("Hi Hana, your parcel left our warehouse today. Tracking follows.")
    # The presence heartbeat now says she is replying (inbox.js adds it to the request).
    composing = page.evaluate("""() => {
        const detail = {elt: document.getElementById("presence"), parameters: {}};
        document.dispatchEvent(new CustomEvent("htmx:configRequest", {detail}));
        return detail.parameters.composing;
    }""")
    assert composing == "1"
    page.click("#composer button.primary")
    page.wait_for_selector("text=Reply queued for sending.")
    assert page.locator(".msg-outbound").count() == 1

    # Internal note (n).
    page.locator("#composer textarea").blur()
    page.keyboard.press("n")
    page.keyboard.type("Carrier confirmed pickup at 14:10.")
    page.click("#composer button.primary")
    page.wait_for_selector("text=Note added.")
    assert "Carrier confirmed pickup" in page.locator(".msg-note").inner_text()

    # Solve (e), once the note's swaps have settled (on a loaded machine "e" could land while
    # the head's buttons were being replaced, and click a detached one).
    page.locator("#composer textarea").blur()
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("[data-shortcut=solve]:not([disabled])")
    page.keyboard.press("e")
    # Solving goes on to the view's next ticket (Aiko keeps the default setting, "next").
    page.wait_for_url(lambda url: f"/tickets/{ticket.number}/" not in url and "from=unassigned" in url)
    assert page.locator(".flash").inner_text() == f"Solved #{ticket.number}."

    # The keyboard help.
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    page.screenshot(path=str(SHOTS / "ticket.png"), full_page=True)
    other.screenshot(path=str(SHOTS / "ticket-presence.png"))

    assert page.blocked == [] and other.blocked == []
    ticket.refresh_from_db()
    assert ticket.status == "solved"
    sent = Message.objects.get(ticket=ticket, kind="outbound")
    assert sent.author == inbox["aiko"] and sent.delivery_status == "sent"
    assert Message.objects.get(ticket=ticket, kind="note", author=inbox["aiko"])
    assert [m.to for m in mail.outbox] == [["hana@example.jp"]]
    assert mail.outbox[0].message()["In-Reply-To"] == "<browser-0@mail.example>"  # threads in her mail client
    assert Ticket.objects.filter(status="solved").count() == 1
