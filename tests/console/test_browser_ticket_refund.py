"""In a real browser: an agent opens a customer's ticket, refunds part of a charge from the
Stripe panel beside it (form → preview in money terms → confirm), sees the panel and its
recent activity update, then opens the customer's full timeline and finds the refund there,
linked to the ticket. The refund goes to localstripe over HTTP; nothing is mocked.

Screenshots of the ticket with its panel and of the customer page go to screenshots/ (not
in git) for a person to look at."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from audit.models import AuditEntry
from console.models import TimelineEntry
from payments.mirror import upsert_fetched
from tickets import actions as ticket_actions
from tests import factories
from tests.helpers import chromium_tab
from tests.payments.test_stripe_actions import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def ticket_with_charge(localstripe, settings, eager_tasks):
    """Misaki wrote in about an order; her Stripe customer paid ¥5,000 for it, at localstripe.
    Tasks run eagerly in the server thread, standing in for the worker that writes the timeline."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    # As in `make demo`: DEBUG brings django-htmx's script, which must not eat refusals.
    settings.DEBUG = True
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 10_000, "*": 0}}
    ls = localstripe.client()
    customer = make_customer(ls, mirror=False)  # Misaki Sato, a Visa card on file
    charge = ls.v1.charges.create({"amount": 5000, "currency": "jpy", "customer": customer["id"],
                                   "description": "Order KR-10538: Uji matcha 30g ×2"}).to_dict()
    upsert_fetched([customer, charge], int(time.time()) - 60)  # as the webhook had mirrored them
    ticket = ticket_actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="One tin arrived crushed",
        body_text="Hello, one of the two matcha tins in order KR-10538 arrived crushed. Can you refund it?",
        channel_message_id="browser-refund-1@mail.example",
    ).message.ticket
    factories.IdentityFactory(contact=ticket.requester, kind="stripe_customer", value=customer["id"])
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    return {"ticket": ticket, "charge": charge, "contact": ticket.requester}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM is used between browser steps
    with chromium_tab(1440, 900, console_errors=False) as tab:  # its refusals answer 400, as designed
        yield tab


def test_refund_part_of_a_charge_from_a_ticket_and_see_it_on_the_timeline(live_server, page, ticket_with_charge):
    from playwright.sync_api import expect

    SHOTS.mkdir(exist_ok=True)
    ticket, charge, contact = (ticket_with_charge[k] for k in ("ticket", "charge", "contact"))
    page.goto(f"{live_server.url}/login/?next=/tickets/{ticket.number}/")
    page.fill("input[name=username]", "aiko")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"**/tickets/{ticket.number}/")

    # The panel beside the ticket: the charge, refundable.
    row = page.locator(f"#charge-{charge['id']}")
    expect(row).to_contain_text("¥5,000")
    expect(row.locator(".badge")).to_have_text("paid")
    row.get_by_role("button", name="Refund…").click()

    # The form says what can be refunded; the preview says exactly what will happen.
    form = page.locator("form.cpanel-refund")
    expect(form).to_contain_text("Up to ¥5,000 can be refunded.")
    # A refused amount comes back in place, with its message (a 400 fragment, not a new page).
    form.locator("input[name=amount]").fill("25OO")
    form.get_by_role("button", name="Review refund").click()
    expect(page.locator("form.cpanel-refund .flash-error")).to_contain_text("is not an amount")
    expect(page.locator("#charge-" + charge["id"])).to_be_visible()
    form = page.locator("form.cpanel-refund")
    form.locator("input[name=amount]").fill("2500")
    form.locator("input[name=note]").fill("One tin arrived crushed")
    form.get_by_role("button", name="Review refund").click()
    preview = page.locator("form.cpanel-refund")
    expect(preview).to_contain_text("Refund ¥2,500 of ¥5,000 to Misaki Sato")
    expect(preview).to_contain_text("¥2,500 stays captured")
    page.locator("#customer-panel").screenshot(path=str(SHOTS / "panel-refund-preview.png"))
    preview.get_by_role("button", name="Refund now").click()

    # Done: the result, the panel refreshed from the mirror, the recent activity with who did it.
    expect(page.locator(".cpanel-result")).to_contain_text("Refunded ¥2,500")
    expect(page.locator(f"#charge-{charge['id']}")).to_contain_text("Refunded ¥2,500 · ¥2,500 left")
    expect(page.locator(f"#charge-{charge['id']} .badge")).to_have_text("partly refunded")
    activity = page.locator(".cpanel-activity li[data-kind=action]").first
    expect(activity).to_contain_text("Refund issued by aiko")
    expect(activity).to_contain_text("¥2,500")
    page.locator("#customer-panel").screenshot(path=str(SHOTS / "panel-after-refund.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "ticket-with-panel.png"))  # the viewport, as the agent sees it

    # The full timeline: the refund is there, and its detail names the ticket it was made on.
    page.get_by_role("link", name="Full timeline →").click()
    page.wait_for_url(f"**/customers/{contact.pk}/")
    entry = page.locator(".tl-entry[data-kind=action]").first
    expect(entry).to_contain_text("Refund issued by aiko")
    expect(entry.locator(".tl-amount")).to_have_text("¥2,500")
    entry.locator("summary").click()
    detail = entry.locator(".tl-detail")
    expect(detail).to_contain_text(f"ticket #{ticket.number}")
    expect(detail).to_contain_text("Refund ¥2,500 of ¥5,000")
    # The ticket and the customer's message are on the same timeline.
    expect(page.locator(".tl-entry[data-kind=ticket]")).to_contain_text("One tin arrived crushed")
    page.screenshot(path=str(SHOTS / "customer-timeline.png"))
    page.locator(".chip", has_text="Agent actions").click()
    expect(page.locator(".tl-entry")).to_have_count(1)
    assert page.errors == []
    assert page.csp == []

    audit = AuditEntry.objects.get(action="charge.refund")
    assert audit.details["amount"] == 2500 and audit.details["ticket"] == f"#{ticket.number}"
    assert audit.actor.username == "aiko"
    assert TimelineEntry.objects.get(source=f"audit:{audit.pk}").contact_id == contact.pk


def test_the_panels_action_forms_run_without_csp_violations(live_server, page, ticket_with_charge):
    """The panel's action forms carry no inline code the Content-Security-Policy would block
    (static/console.js and htmx-fragments.js do that work)."""
    from playwright.sync_api import expect

    ticket, charge = ticket_with_charge["ticket"], ticket_with_charge["charge"]
    page.goto(f"{live_server.url}/login/?next=/tickets/{ticket.number}/")
    page.fill("input[name=username]", "aiko")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"**/tickets/{ticket.number}/")
    page.locator(f"#charge-{charge['id']}").get_by_role("button", name="Refund…").click()
    form = page.locator("form.cpanel-refund")
    form.locator("input[name=amount]").fill("2500")
    form.get_by_role("button", name="Review refund").click()
    expect(page.locator("form.cpanel-refund")).to_contain_text("Refund ¥2,500 of ¥5,000")
    # The Cancel button still closes the form (static/console.js).
    page.locator("form.cpanel-refund").get_by_role("button", name="Cancel").click()
    expect(page.locator("form.cpanel-refund")).to_have_count(0)
    assert page.errors == [] and page.csp == []
