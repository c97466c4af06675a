"""In a real browser at 1440×900: the Stripe panel beside a ticket is in view without
scrolling, a charge's "Refund…" opens its form right under that charge (in view), and the
refund made there shows in the ticket's thread as a compact system event. The refund goes to
localstripe over HTTP. Screenshots go to /tmp/h7_*.png for a person to look at."""

from __future__ import annotations

import time

import pytest

from payments.mirror import upsert_fetched
from tickets import actions as ticket_actions
from tests import factories
from tests.helpers import chromium_tab
from tests.payments.test_stripe_actions import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
WIDTH, HEIGHT = 1440, 900


@pytest.fixture
def ticket_with_charges(localstripe, settings, eager_tasks):
    """Misaki's ticket, a few messages long, and two ¥ charges of her Stripe customer."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 10_000, "*": 0}}
    ls = localstripe.client()
    customer = make_customer(ls, mirror=False)  # Misaki Sato, a Visa card on file
    charges = [ls.v1.charges.create({"amount": amount, "currency": "jpy", "customer": customer["id"],
                                     "description": f"Order KR-{n}: Uji matcha 30g ×2"}).to_dict()
               for n, amount in ((10537, 3200), (10538, 5000))]
    upsert_fetched([customer, *charges], int(time.time()) - 60)
    message = ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="One tin arrived crushed",
        body_text="Hello, one of the two matcha tins in order KR-10538 arrived crushed. Can you refund it?",
        channel_message_id="browser-thread-1@mail.example",
    ).message
    ticket = message.ticket
    ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="Re: One tin arrived crushed",
        body_text="Here is a photo of the tin.\nThe lid is bent and the powder spilled.",
        channel_message_id="browser-thread-2@mail.example", in_reply_to=message.channel_message_id)
    factories.IdentityFactory(contact=ticket.requester, kind="stripe_customer", value=customer["id"])
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    return {"ticket": ticket, "charges": charges}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(WIDTH, HEIGHT, console_errors=False) as tab:
        yield tab


def in_viewport(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= HEIGHT


def test_panel_in_view_refund_opens_in_place_and_shows_in_the_thread(live_server, page, ticket_with_charges):
    from playwright.sync_api import expect

    ticket, charges = ticket_with_charges["ticket"], ticket_with_charges["charges"]
    page.goto(f"{live_server.url}/login/?next=/tickets/{ticket.number}/")
    page.fill("input[name=username]", "aiko")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"**/tickets/{ticket.number}/")

    # Without scrolling, the panel's first charge row is on screen.
    first = page.locator("#customer-panel .cpanel-list li[id^=charge-]").first
    expect(first).to_be_visible()
    assert page.evaluate("window.scrollY") == 0
    assert in_viewport(first), first.bounding_box()
    page.screenshot(path="/tmp/h7_ticket_first_view.png")

    # "Refund…" on the ¥5,000 charge opens its form right under that row, in view.
    row = page.locator(f"#charge-{charges[1]['id']}")
    row.get_by_role("button", name="Refund…").click()
    form = row.locator("form.cpanel-refund")
    expect(form).to_contain_text("Up to ¥5,000 can be refunded.")
    assert in_viewport(form.locator("input[name=amount]")), form.bounding_box()
    page.screenshot(path="/tmp/h7_refund_form_open.png")

    form.locator("input[name=amount]").fill("2500")
    form.get_by_role("button", name="Review refund").click()
    preview = row.locator("form.cpanel-refund")
    expect(preview).to_contain_text("Refund ¥2,500 of ¥5,000")
    preview.get_by_role("button", name="Refund now").click()
    expect(row.locator(".cpanel-result")).to_contain_text("Refunded ¥2,500")

    # The thread says so, between the messages, without reloading the page.
    event = page.locator("#conversation .system-event")
    expect(event).to_have_count(1)
    expect(event).to_contain_text("Aiko Mori refunded ¥2,500 of ch_")
    expect(row).to_contain_text("Refunded ¥2,500 · ¥2,500 left")
    page.screenshot(path="/tmp/h7_after_refund.png")
    page.screenshot(path="/tmp/h7_after_refund_full.png", full_page=True)

    # And it stays there on a fresh load.
    page.reload()
    expect(page.locator("#conversation .system-event")).to_contain_text("refunded ¥2,500")
    assert page.errors == [] and page.csp == []
