"""In a real browser, from the top bar's search box: a ticket number opens the ticket, a phone
typed another way than it was stored finds its customer, and a two-character Japanese word
finds the message it is in, highlighted; arrow keys move through the results. Screenshots
go to screenshots/ (not in git)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickets import actions as ticket_actions
from tests import factories
from tests.helpers import chromium_tab, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture
def shop(settings, eager_tasks):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True
    crushed = ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="One tin arrived crushed",
        body_text="Hello, one of the two matcha tins in order KR-10538 arrived crushed.",
        channel_message_id="browser-search-1@mail.example").message.ticket
    twice = ticket_actions.receive_message(
        channel="email", sender="佐藤 健 <ken.sato@example.jp>", subject="請求について",
        body_text="こんにちは。同じ注文で二重に請求されているようです。確認をお願いします。",
        channel_message_id="browser-search-2@mail.example").message.ticket
    factories.IdentityFactory(contact=twice.requester, kind="phone", value="+819086288424")
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    return {"crushed": crushed, "twice": twice}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(1440, 900) as tab:
        yield tab


def search(page, words: str):
    box = page.locator(".topbar form.search input[name=q]")
    box.fill(words)
    box.press("Enter")


def test_a_ticket_number_a_phone_and_a_japanese_word(live_server, page, shop):
    from playwright.sync_api import expect

    SHOTS.mkdir(exist_ok=True)
    crushed, twice = shop["crushed"], shop["twice"]
    sign_in(page, live_server.url, "aiko")

    # A ticket number, bare or with its #, is the ticket.
    search(page, str(crushed.number))
    page.wait_for_url(f"**/tickets/{crushed.number}/")
    expect(page.locator("h1")).to_contain_text("One tin arrived crushed")
    search(page, f"#{twice.number}")
    page.wait_for_url(f"**/tickets/{twice.number}/")

    # A phone typed the national way finds the customer stored in E.164.
    search(page, "090-8628-8424")
    page.wait_for_url("**/search/?q=*")
    contacts = page.locator(".search-group.search-contacts")
    expect(contacts).to_contain_text("佐藤 健")
    expect(contacts.locator("mark")).to_have_count(1)

    # Two Japanese characters find the message they are in, highlighted.
    search(page, "二重")
    messages = page.locator(".search-group.search-messages")
    expect(messages).to_contain_text(f"#{twice.number} 請求について")
    expect(messages.locator(".search-snippet mark")).to_have_text("二重")
    expect(page.locator(".topbar form.search input[name=q]")).to_have_value("二重")  # what was searched stays
    page.screenshot(path=str(SHOTS / "search-japanese.png"))

    # Arrow down from the box to the first result, Enter follows it.
    page.locator(".topbar form.search input[name=q]").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("a.search-hit").first).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tickets/{twice.number}/**")

    # Nothing found says what was searched.
    search(page, "dripper")
    expect(page.locator(".search-empty")).to_contain_text("Nothing matches “dripper”")
    assert page.errors == [] and page.csp == []
