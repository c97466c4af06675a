"""In a real browser at 1440×900: an admin writes a macro in the console's editor (a tag chosen
from the existing ones, the customer's name inserted with the placeholder picker, the live
preview filled on a real ticket), then an agent applies it on that ticket and sends it: the
reply shows the customer's name, and the macro's use count is 1. The editor's picture goes to
/tmp/h/shots/macro_editor.png for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories
from tests.helpers import chromium_tab, sign_in
from tickets import actions as ticket_actions
from tickets.models import Macro, Tag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1440, 900
SHOT = Path("/tmp/h/shots/macro_editor.png")


@pytest.fixture
def desk(live_server, settings, eager_tasks):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True
    for name in ("refund", "shipping", "subscription"):
        Tag.objects.create(name=name)
    factories.TeamFactory(name="Japan", slug="japan")
    factories.TeamFactory(name="Billing", slug="billing")
    factories.UserFactory(username="ayumi", role="admin", first_name="Ayumi", last_name="Kato")
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    japanese = ticket_actions.receive_message(
        channel="email", sender="佐藤 美咲 <misaki.sato@example.jp>", subject="返金について",
        body_text="先週、茶器セットを返品しました。返金はもう手続きされていますでしょうか。",
        channel_message_id="browser-macro-0@mail.example",
    ).message.ticket
    message = ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.com>", subject="Where is my refund?",
        body_text="Hello, I sent the tea set back last week. Has my refund been issued?",
        channel_message_id="browser-macro-1@mail.example",
    ).message
    return {"ticket": message.ticket, "japanese": japanese}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(WIDTH, HEIGHT) as tab:
        yield tab


def test_an_admin_writes_a_macro_an_agent_sends_it(live_server, page, desk):
    from playwright.sync_api import expect

    ticket = desk["ticket"]
    sign_in(page, live_server.url, "ayumi", "/macros/")
    page.get_by_role("link", name="New macro").click()
    page.wait_for_url("**/macros/new")

    page.fill("input[name=name]", "Refund on its way")
    english = page.locator("textarea[name=body_en]")
    english.click()
    page.keyboard.type("Hi ")
    page.locator(".macro-picker").get_by_role("button", name="Customer's name").click()
    page.keyboard.type(", your refund for ticket #")
    page.locator(".macro-picker").get_by_role("button", name="Ticket number").click()
    page.keyboard.type(" is on its way. It shows on your statement within 5–10 business days.\n\nBest regards,\n")
    page.locator(".macro-picker").get_by_role("button", name="Your name").click()
    assert english.input_value().startswith("Hi {{ contact.name }}, your refund for ticket #{{ ticket.number }}")
    page.locator("textarea[name=body_ja]").fill(
        "{{ contact.name }} 様\n\n返金のお手続きが完了いたしました。通常5〜10営業日ほどでご利用明細に反映されます。\n\n{{ agent.name }}")
    page.locator("input[name=tags][value=refund]").check()
    page.locator("select[name=set_status]").select_option("solved")

    # The live preview: the real ticket's customer, in their language, placeholders filled.
    preview = page.locator("#macro-preview")
    expect(preview).to_contain_text(f"Hi Misaki Sato, your refund for ticket #{ticket.number} is on its way.")
    expect(preview).to_contain_text("Ayumi Kato")
    expect(preview).to_contain_text("English text")
    # On a Japanese customer's ticket, the Japanese text is the one they would get.
    page.locator("#preview-ticket").select_option(str(desk["japanese"].pk))
    expect(preview).to_contain_text("佐藤 美咲 様")
    expect(preview).to_contain_text("Japanese text")
    page.evaluate("window.scrollTo(0, 0)")
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT))

    page.get_by_role("button", name="Create macro").click()
    page.wait_for_url("**/macros/*/")
    macro = Macro.objects.get(name="Refund on its way")
    assert macro.add_tags == ["refund"] and macro.set_status == "solved" and macro.translations["ja"].startswith(
        "{{ contact.name }} 様")

    # The agent applies it on the ticket and sends it.
    page.context.clear_cookies()
    sign_in(page, live_server.url, "aiko", f"/tickets/{ticket.number}/")
    page.locator("select[name=macro]").select_option(label="Refund on its way")
    body = page.locator("#composer-body textarea[name=body]")
    expect(body).to_have_value(
        f"Hi Misaki Sato, your refund for ticket #{ticket.number} is on its way. It shows on your statement within "
        f"5–10 business days.\n\nBest regards,\nAiko Mori")
    assert Macro.objects.get(pk=macro.pk).use_count == 0  # filled in, not yet sent
    page.locator(".composer-foot button.primary").click()
    expect(page.locator("#conversation")).to_contain_text(f"Hi Misaki Sato, your refund for ticket #{ticket.number}")
    macro.refresh_from_db()
    assert macro.use_count == 1 and macro.last_used_at is not None
    ticket.refresh_from_db()
    assert ticket.status == "solved" and list(ticket.tags.values_list("name", flat=True)) == ["refund"]

    # The agent's read-only list says it was used once.
    page.goto(f"{live_server.url}/macros/")
    row = page.locator(".macro-table tbody tr", has_text="Refund on its way")
    expect(row.locator("td.num")).to_have_text("1")
    page.screenshot(path=str(SHOT.with_name("macro_list.png")))
    assert page.errors == [] and page.csp == []
