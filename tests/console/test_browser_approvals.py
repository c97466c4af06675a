"""In a real browser: an agent over their refund limit asks finance from the ticket's panel;
finance approves in one click from /approvals/ (the money-terms preview of exactly what was
asked, then "Refund now"); the agent sees the bell's count, reads the notification, and finds
the refund in the ticket's thread, the ticket back with them. The refund goes to localstripe
over HTTP; nothing is mocked. Screenshots go to screenshots/ (not in git)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.models import RefundApproval
from payments.mirror import upsert_fetched
from tickets import actions as ticket_actions
from tests import factories
from tests.helpers import chromium_tab, sign_in
from tests.payments.test_stripe_actions import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture
def over_the_limit(localstripe, settings, eager_tasks):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 2_000, "*": 0}, "finance": None}
    ls = localstripe.client()
    customer = make_customer(ls, mirror=False)  # Misaki Sato, a Visa card on file
    charge = ls.v1.charges.create({"amount": 5000, "currency": "jpy", "customer": customer["id"],
                                   "description": "Order KR-10538: Uji matcha 30g ×2"}).to_dict()
    upsert_fetched([customer, charge], int(time.time()) - 60)
    ticket = ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="The whole order arrived crushed",
        body_text="Both tins in order KR-10538 arrived crushed. Could you refund ¥3,000 of it?",
        channel_message_id="browser-approval-1@mail.example",
    ).message.ticket
    factories.IdentityFactory(contact=ticket.requester, kind="stripe_customer", value=customer["id"])
    factories.TeamFactory(name="Finance", slug="finance")
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    factories.UserFactory(username="ken", role="finance", first_name="Ken", last_name="Ito")
    return {"ticket": ticket, "charge": charge}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(1440, 900, console_errors=False) as tab:  # the limit's refusal answers 400, as designed
        yield tab


def test_agent_asks_finance_approves_in_one_click_agent_is_told_and_sees_the_refund(live_server, page,
                                                                                     over_the_limit):
    from playwright.sync_api import expect

    SHOTS.mkdir(exist_ok=True)
    ticket, charge = over_the_limit["ticket"], over_the_limit["charge"]

    # Aiko sees her own limit before typing, is refused above it, and hands it to finance.
    sign_in(page, live_server.url, "aiko", f"/tickets/{ticket.number}/")
    row = page.locator(f"#charge-{charge['id']}")
    row.get_by_role("button", name="Refund…").click()
    form = row.locator("form.cpanel-refund")
    expect(form).to_contain_text("¥2,000")  # her limit, on the form
    form.locator("input[name=amount]").fill("3000")
    form.locator("input[name=note]").fill("Both tins crushed; photo in the thread")
    form.get_by_role("button", name="Review refund").click()
    row.get_by_role("button", name="Ask finance to refund it").click()
    expect(row.locator(".cpanel-result")).to_contain_text("Asked finance")
    assert RefundApproval.objects.filter(status="open", amount=3000).count() == 1
    page.context.clear_cookies()

    # Ken (finance): the request with its amount, reason and note; Approve goes straight to the preview.
    sign_in(page, live_server.url, "ken", "/approvals/")
    request_row = page.locator("table.approvals tbody tr").first
    expect(request_row).to_contain_text("¥3,000")
    expect(request_row).to_contain_text("Both tins crushed; photo in the thread")
    expect(request_row).to_contain_text("Aiko Mori")
    page.screenshot(path=str(SHOTS / "approvals.png"))
    request_row.get_by_role("button", name="Approve…").click()
    preview = request_row.locator("form").filter(has_text="Refund now")
    expect(preview).to_contain_text("Refund ¥3,000 of ¥5,000 to Misaki Sato")
    page.screenshot(path=str(SHOTS / "approvals-preview.png"))
    preview.get_by_role("button", name="Refund now").click()
    expect(page.locator(f"#approval-action-{RefundApproval.objects.get().pk}")).to_contain_text("Refunded ¥3,000")
    approval = RefundApproval.objects.get()
    assert approval.status == "approved" and approval.refunded == 3000
    page.context.clear_cookies()

    # Aiko: the bell counts one; the notification leads to the ticket, whose thread shows the refund.
    sign_in(page, live_server.url, "aiko", "/")
    bell = page.locator("a.bell")
    expect(bell.locator(".bell-count")).to_have_text("1")
    bell.click()
    note = page.locator("table.notifications tr.unread").first
    expect(note).to_contain_text("¥3,000")
    note.locator("a").click()
    page.wait_for_url(f"**/tickets/{ticket.number}/")
    expect(page.locator("#conversation .system-event").filter(has_text="refunded ¥3,000")).to_have_count(1)
    page.screenshot(path=str(SHOTS / "approval-back-with-agent.png"))
    ticket.refresh_from_db()
    assert ticket.assignee.username == "aiko"
    assert "refund-approval" not in set(ticket.tags.values_list("name", flat=True))
    assert page.errors == [] and page.csp == []
