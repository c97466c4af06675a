"""In a real browser, as finance: open the dispute queue, assign a fraud dispute to yourself,
open it, assemble its evidence from what Paydesk knows (the customer's Japanese email included
as a PDF), edit a field, submit — once, final — and see the submission on the customer's
timeline. Stripe is the stand-in beside localstripe; Debian's Chromium through Playwright."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests

from tests import factories
from tests.helpers import chromium_tab
from tests.payments.test_dispute_actions import tell
from tickets.actions import receive_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery"
SHOTS = Path(tempfile.gettempdir())  # pictures to look at after a run


@pytest.fixture
def fraud_dispute(live_server, localstripe, settings, eager_tasks):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True  # as in `make demo`
    customer = factories.CustomerFactory(name="Misaki Sato", email="misaki.sato@example.jp")
    charge = factories.ChargeFactory(customer=customer["id"], amount=4200, description="Order KR-10538: Uji matcha")
    dispute = tell(localstripe, charge=charge["id"], amount=4200, currency="usd", reason="fraudulent",
                   payment_method_details={"type": "card", "card": {"brand": "visa", "network_reason_code": "10.4"}})
    factories.mirror(customer, charge, dispute)
    message = receive_message(channel="email", sender="misaki.sato@example.jp", subject="注文について",
                              body_text="注文 KR-10538 は私が購入しました。届くのを待っています。").message
    factories.IdentityFactory(contact=message.ticket.requester, kind="stripe_customer", value=customer["id"])
    factories.UserFactory(username="daniel", first_name="Daniel", last_name="Ortiz", role="finance")
    return {"dispute": dispute, "contact": message.ticket.requester}


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM is used between browser steps
    with chromium_tab(1280, 900, console_errors=False) as tab:  # a refused form answers 400, as designed
        yield tab


def test_finance_assigns_assembles_edits_and_submits_once(live_server, page, fraud_dispute, localstripe):
    from playwright.sync_api import expect

    dispute_id = fraud_dispute["dispute"]["id"]
    page.goto(f"{live_server.url}/login/?next=/disputes/")
    page.fill("input[name=username]", "daniel")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/disputes/")

    # The queue: the dispute needs a response; assign it to me.
    link = f'a[title="{dispute_id}"]'  # the amount links to the dispute, its id the link's title
    row = page.locator("table.dispute-queue tbody tr", has=page.locator(link))
    expect(row).to_contain_text("$42.00")
    row.locator("input[type=checkbox]").check()
    page.locator("#dispute-assign select[name=assign_to]").select_option("me")
    page.get_by_role("button", name="Assign selected").click()
    expect(page.locator("table.dispute-queue tbody tr", has=page.locator(link))).to_contain_text("Daniel")
    page.screenshot(path=str(SHOTS / "paydesk-dispute-queue.png"), full_page=True)

    # Its page: assemble, edit one field, attach the conversation, submit (final).
    page.locator(link).click()
    expect(page.locator("h1")).to_contain_text("$42.00")
    expect(page.locator(".facts").first).to_contain_text("Other fraud, card absent")
    page.get_by_role("button", name="Assemble evidence").click()
    name = page.locator("#dispute-action input[name=customer_name]")
    expect(name).to_have_value("Misaki Sato")
    expect(page.locator("#dispute-action")).to_contain_text("The customer's 1 messages with support")
    name.fill("Misaki Sato (account holder since 2024)")
    page.get_by_label("Attach the customer's conversations with support (PDF)").check()
    page.get_by_label("Submit now (final: Stripe takes one submission)").check()
    page.get_by_role("button", name="Review what will be sent").click()
    expect(page.locator("#dispute-action")).to_contain_text("Final")
    page.screenshot(path=str(SHOTS / "paydesk-dispute-preview.png"), full_page=True)
    page.get_by_role("button", name="Submit the evidence").click()
    expect(page.locator("#dispute-action .cpanel-result")).to_be_visible()
    expect(page.locator("#dispute-action .flash-error")).to_have_count(0)

    at_stripe = requests.get(f"{localstripe.url}/v1/disputes/{dispute_id}", timeout=5,
                             headers={"Authorization": f"Bearer {localstripe.key}"}).json()
    assert at_stripe["evidence"]["customer_name"] == "Misaki Sato (account holder since 2024)"
    assert at_stripe["evidence"]["customer_communication"].startswith("file_")
    assert at_stripe["evidence_details"]["submission_count"] == 1

    # The customer's timeline says it.
    page.goto(f"{live_server.url}/customers/{fraud_dispute['contact'].pk}/")
    expect(page.locator("#timeline")).to_contain_text("evidence")
    page.screenshot(path=str(SHOTS / "paydesk-dispute-timeline.png"), full_page=False)
    assert page.csp == []
