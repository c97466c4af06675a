"""The console in a real browser: finance logs in, scrolls the payments list (HTMX loads the
next page), filters it, opens a charge, searches from the top bar, and replays a failed event
from the sync-health page. Debian's Chromium through Playwright; pytest-django's live_server."""

import re
import time
from pathlib import Path

import pytest

from console.celery import app as celery_app
from audit.models import AuditEntry
from payments.actions import events as actions
from payments.events import store_event
from payments.models import SyncCursor
from tests import factories
from tests.helpers import watch_csp

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console(live_server, settings):
    """A seeded console: 60 payments, a customer, a failed event, a reconcile run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (scripts/chromium.sh installs it)")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    now = int(time.time())
    customer = factories.CustomerFactory(id="cus_BrowserMika", name="Mika Tanaka", email="mika@example.jp")
    charges = [factories.ChargeFactory(id=f"ch_usd{n:04d}", amount=1000 + n, created=now - 600 - n * 60)
               for n in range(59)]
    jpy = factories.ChargeFactory(id="ch_jpyBrowser1", customer=customer["id"], amount=1000, currency="jpy",
                                  amount_refunded=400, created=now - 60)
    refund = factories.RefundFactory(id="re_jpyBrowser1", charge=jpy["id"], amount=400, currency="jpy")
    factories.mirror(customer, jpy, refund, *charges)
    store_event(factories.event("charge.refunded", jpy, event_id="evt_jpyBrowser1"))
    thin = factories.event("charge.updated", {}, event_id="evt_thinBrowser1")
    thin["data"], thin["related_object"] = {}, {"id": "ch_usd0001", "type": "charge"}
    store_event(thin)
    actions.record_event_failure("evt_thinBrowser1", "EventNotApplicable: thin event and no STRIPE_API_KEY", final=True)
    SyncCursor.objects.create(name="reconcile", count=3)
    factories.UserFactory(username="keiko", first_name="Keiko", role="finance")
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the live server's replay runs in-process
    yield live_server.url
    celery_app.conf.task_always_eager = old


def test_finance_walks_the_console(console, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM is used only outside it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        errors_csp = watch_csp(page)  # what the Content-Security-Policy blocked, with the element

        # Every page needs a login; the login brings you back.
        page.goto(f"{console}/stripe/payments/")
        expect(page).to_have_url(f"{console}/login/?next=/stripe/payments/")
        page.fill("input[name=username]", "keiko")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        expect(page).to_have_url(f"{console}/stripe/payments/")
        expect(page.locator("h1")).to_have_text("Payments")

        # Keyset pages: 50 rows, then HTMX loads the other 10 when the last row comes into view.
        rows = page.locator("#mirror-table tbody tr:not(.more)")
        expect(rows).to_have_count(50)
        page.locator("tr.more").scroll_into_view_if_needed()
        expect(rows).to_have_count(60)
        expect(page.locator("tr.more")).to_have_count(0)

        # The filter swaps the table in place and keeps the URL shareable.
        page.fill("form.filters input[name=q]", "ch_jpy")
        expect(rows).to_have_count(1)
        expect(page).to_have_url(re.compile(r"/stripe/payments/\?q=ch_jpy(&status=)?$"))
        expect(rows.first).to_contain_text("¥1,000")
        expect(rows.first).to_contain_text("Partially refunded")

        # The charge: facts, its refund, its events, the raw object.
        page.click("a.mono[href='/stripe/payments/ch_jpyBrowser1/']")
        expect(page.locator("h1")).to_contain_text("¥1,000")
        expect(page.locator("a.mono[href='/stripe/refunds/re_jpyBrowser1/']")).to_be_visible()
        expect(page.locator("a[href='/stripe/events/evt_jpyBrowser1/']")).to_be_visible()
        page.click("details.raw summary")
        expect(page.locator("details.raw pre")).to_contain_text('"id": "ch_jpyBrowser1"')

        # The top bar: a Stripe id goes straight to the object.
        page.fill("header .search input[name=q]", "cus_BrowserMika")
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{console}/stripe/customers/cus_BrowserMika/")
        expect(page.locator("h1")).to_have_text("Mika Tanaka")

        # Sync health: the failed event, and its replay.
        page.click("nav.sidebar >> text=Sync health")
        expect(page).to_have_url(f"{console}/sync/")
        failed = page.locator("tr", has_text="evt_thinBrowser1")
        expect(failed).to_contain_text("thin event and no STRIPE_API_KEY")
        expect(page.locator("text=reconcile").first).to_be_visible()
        failed.locator("button", has_text="Replay").click()
        expect(page.locator(".flash")).to_contain_text("Queued 1 failed event for replay.")
        browser.close()

    assert not errors, errors
    assert not errors_csp, errors_csp
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")
    entry = AuditEntry.objects.get(action="stripe_event.replay")
    assert (entry.actor.username, entry.target) == ("keiko", "evt_thinBrowser1")
