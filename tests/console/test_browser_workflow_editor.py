"""In a real browser: an admin builds seed 001's early-fraud-warning workflow from scratch in the
editor (trigger → fetch the charge → a branch: under 15 USD refund it as fraudulent, in all
other cases notify finance with the charge's id), tests it with a past event, runs it against
history, saves it and activates it. Every editing step is an HTMX post of the whole form;
nothing is saved until Save. Debian's Chromium through Playwright; pytest-django's live_server."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import requests

from audit.models import AuditEntry
from console.workflows.models import Workflow
from payments.models import Refund
from console.workflows.models import WorkflowRun
from tests import factories
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import chromium_tab, deliver
from tests.payments.test_stripe_actions import make_charge, make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
NOW = int(time.time())
SHOTS = Path(tempfile.gettempdir())  # the run page's picture, to look at after a run


@pytest.fixture
def console(live_server, settings):
    """A finance team, an admin, and two early fraud warnings stored through the webhook's
    store-and-apply path: one on a 12 USD charge, a newer one on a 22 USD charge."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True  # as in `make demo`: django-htmx's debug script must not eat fragments
    factories.TeamFactory(name="Finance", slug="finance")
    factories.UserFactory(username="ayumi", first_name="Ayumi", role="admin")
    seeded = {}
    for name, amount, days_ago in (("small", 1200, 3), ("large", 2200, 1)):
        created = NOW - days_ago * 86400
        charge = factories.ChargeFactory(amount=amount, currency="usd", created=created - 60)
        deliver("charge.succeeded", charge, created=created - 60)
        warning = factories.EarlyFraudWarningFactory(charge=charge["id"], created=created)
        seeded[name] = (charge, deliver("radar.early_fraud_warning.created", warning, created=created))
    return seeded


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM is used between browser steps
    with chromium_tab(1280, 900) as tab:
        yield tab


def _answered(page, path: str, act) -> None:
    """Do `act` (a click, a choice, a key), wait for htmx's answer from `path` and its swap."""
    with page.expect_response(lambda r: r.url.endswith(path) and r.request.method == "POST"):
        act()
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def test_an_admin_builds_tests_backtests_saves_and_activates_the_fraud_warning_workflow(live_server, page, console,
                                                                                       localstripe, eager_tasks):
    from playwright.sync_api import expect

    small_charge, small = console["small"]
    large_charge, large = console["large"]
    editor = lambda act: _answered(page, "/workflows/editor", act)  # noqa: E731

    page.goto(f"{live_server.url}/login/?next=/")
    page.fill("input[name=username]", "ayumi")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{live_server.url}/")
    page.locator("nav.sidebar").get_by_role("link", name="Workflows").click()
    expect(page.locator("h1")).to_have_text("Workflows")
    expect(page.locator(".wf-table")).to_contain_text("No workflows yet.")
    page.get_by_role("link", name="New workflow").click()
    expect(page.locator("h1")).to_have_text("New workflow")
    expect(page.locator("#wf-summary")).to_have_count(0)  # a blank workflow is not reproached

    # The trigger: the Stripe event, then the fetch of its charge.
    name = page.get_by_role("textbox", name="Name")
    name.fill("Early fraud warnings: refund small charges")
    editor(lambda: name.press("Enter"))  # Enter in a field only refreshes the editor: nothing is saved
    expect(page).to_have_url(f"{live_server.url}/workflows/new")
    expect(page.get_by_role("textbox", name="Name")).to_be_focused()
    editor(lambda: page.get_by_label("Stripe event", exact=True).select_option("radar.early_fraud_warning.created"))
    expect(page.locator("#wf-test-event option")).to_have_count(2)  # the stored warnings, to test with
    editor(lambda: page.get_by_role("button", name="Add fetch").click())
    expect(page.locator("select[name='steps.0.fetch']")).to_be_focused()
    editor(lambda: page.locator("select[name='steps.0.fetch']").select_option("charge"))

    # The branch, by keyboard: its first condition's field has the focus, the picker offers the
    # fetched charge's fields, and an amount takes its currency.
    editor(lambda: page.locator(".wf-adds").last.get_by_role("button", name="Add branch").click())
    ref = page.locator("input[name='steps.1.branch.0.if.0.ref']")
    expect(ref).to_be_focused()
    picker = page.locator(f"datalist#{ref.get_attribute('list')} option[value='charge.amount']")
    expect(picker).to_have_count(1)
    page.keyboard.type("charge.amount")
    editor(lambda: page.keyboard.press("Tab"))  # leaving the field shows the inputs its kind takes
    amount = page.locator("input[name='steps.1.branch.0.if.0.amount']")
    expect(amount).to_be_visible()
    editor(lambda: page.locator("select[name='steps.1.branch.0.if.0.op']").select_option("lt"))
    page.locator("input[name='steps.1.branch.0.if.0.amount']").fill("15")
    # Inline validation: a refund path without steps, an amount without its currency.
    path = page.locator("[id='wf-steps.1.branch.0']")
    editor(lambda: path.get_by_role("button", name="Add action").click())
    expect(page.locator("[id='wf-steps.1.branch.0.if.0']")).to_contain_text(
        "Say the currency as a three-letter code, such as USD or JPY.")
    expect(page.locator("#wf-summary")).to_contain_text("things to fix before this workflow can be saved")
    page.locator("input[name='steps.1.branch.0.if.0.currency']").fill("USD")
    editor(lambda: page.locator("select[name='steps.1.branch.0.steps.0.action']").select_option("refund"))
    page.locator("select[name='steps.1.branch.0.steps.0.params.reason']").select_option("fraudulent")

    # All other cases: notify the finance team, with the charge's id in the text.
    other = page.locator("[id='wf-steps.1.branch.1']")
    expect(other).to_contain_text("All other cases")
    editor(lambda: other.get_by_role("button", name="Add action").click())
    editor(lambda: page.locator("select[name='steps.1.branch.1.else.0.action']").select_option("notify"))
    page.locator("select[name='steps.1.branch.1.else.0.params.team']").select_option("finance")
    text = page.locator("textarea[name='steps.1.branch.1.else.0.params.text']")
    text.fill("Fraud warning on")
    page.locator("input[name='insert.steps.1.branch.1.else.0.params.text']").fill("charge.id")
    editor(lambda: page.locator("[id='wf-steps.1.branch.1.else.0.params.text']").get_by_role("button", name="Insert").click())
    expect(text).to_have_value("Fraud warning on {{ charge.id }}")
    text.fill("Fraud warning on {{ charge.id }} ({{ charge.amount }})")
    editor(lambda: page.get_by_role("button", name="Add condition").first.click())  # to the trigger's conditions
    editor(lambda: page.get_by_role("button", name="Remove the condition on empty").click())
    expect(page.locator("#wf-summary")).to_have_count(0)  # nothing left to fix
    assert not Workflow.objects.exists()  # nothing is saved until Save

    # Test with a past event: the newer warning, on 22 USD, takes "all other cases".
    page.locator("#wf-test-event").select_option(large["id"])
    _answered(page, "/workflows/test", lambda: page.get_by_role("button", name="Test", exact=True).click())
    result = page.locator("#wf-result")
    expect(result).to_contain_text(f"Test with {large['id']}")
    expect(result.locator(".wf-result-head .badge")).to_have_text("Matched")
    expect(result).to_contain_text(f"Fetch charge {large_charge['id']}")
    expect(result).to_contain_text("Branch: took “all other cases”")
    expect(result.locator(".wf-message")).to_have_text(f"Fraud warning on {large_charge['id']} ($22.00)")
    # The older one, on 12 USD, would be refunded as fraudulent.
    page.locator("#wf-test-event").select_option(small["id"])
    _answered(page, "/workflows/test", lambda: page.get_by_role("button", name="Test", exact=True).click())
    expect(result).to_contain_text("Branch: took path 1")
    expect(result.locator(".wf-plan-details")).to_contain_text("Fraudulent")

    # Test against history: both warnings of the last 30 days.
    page.locator("#wf-days").fill("30")
    _answered(page, "/workflows/backtest", lambda: page.get_by_role("button", name="Run the backtest").click())
    expect(result).to_contain_text("Test against the last 30 days")
    stats = {label: value for label, value in zip(result.locator(".stat-label").all_inner_texts(),
                                                  result.locator(".stat-value").all_inner_texts())}
    assert stats == {"Events": "2", "Matched": "2", "Would fail": "0", "Tickets it would create": "0",
                     "Refunds": "1", "Notifications": "1"}
    expect(result).to_contain_text("$12.00")
    expect(result.locator(".wf-outcomes tbody tr")).to_have_count(2)
    assert not Refund.objects.exists()

    # Save: version 1, inactive; then activate it.
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    workflow = Workflow.objects.get()
    expect(page).to_have_url(f"{live_server.url}/workflows/{workflow.pk}/")
    expect(page.locator(".flash")).to_contain_text("Saved “Early fraud warnings: refund small charges” as version 1.")
    expect(page.locator(".page-head .badge")).to_have_text("Inactive")
    page.get_by_role("button", name="Activate version 1").click()
    expect(page.locator(".flash")).to_contain_text("is active: version 1 runs on the events that arrive from now on.")
    expect(page.locator(".page-head .badge")).to_have_text("Active")
    page.locator(".crumbs").get_by_role("link", name="Workflows").click()
    row = page.locator(".wf-table tbody tr", has_text="Early fraud warnings: refund small charges")
    expect(row).to_contain_text("Stripe: radar.early_fraud_warning.created")
    expect(row).to_contain_text("v1 active")
    expect(row.get_by_role("button", name="Deactivate")).to_be_visible()
    assert page.errors == [] and page.csp == []

    workflow.refresh_from_db()
    assert workflow.status == "active" and workflow.trigger == "stripe:radar.early_fraud_warning.created"
    assert workflow.active_version.definition == {
        "trigger": {"stripe": "radar.early_fraud_warning.created"},
        "steps": [
            {"fetch": "charge"},
            {"branch": [
                {"if": {"all": [{"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}]},
                 "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
                {"else": [{"action": "notify", "params": {"team": "finance",
                                                          "text": "Fraud warning on {{ charge.id }} ({{ charge.amount }})"}}]},
            ]},
        ],
    }
    assert [e.action for e in AuditEntry.objects.filter(target=f"workflow:{workflow.pk}").order_by("id")] == [
        "workflow.save", "workflow.activate"]

    # Live: Stripe signs a fraud warning on a new 9 USD charge; the workflow refunds it at Stripe.
    ls = localstripe.client()
    customer = make_customer(ls)
    charge = make_charge(ls, customer, amount=900, currency="usd")
    deliver("charge.succeeded", charge)
    payload = factories.event("radar.early_fraud_warning.created", factories.EarlyFraudWarningFactory(charge=charge["id"]))
    body, signature = factories.signed(payload, WEBHOOK_SECRET)
    answer = requests.post(f"{live_server.url}/stripe/webhook/", data=body, timeout=30,
                           headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    assert answer.status_code == 200
    run = WorkflowRun.objects.get(event_key=f"stripe:{payload['id']}")
    assert run.status == "succeeded" and run.version == workflow.active_version, run.steps
    assert [(r.amount, r.reason) for r in ls.v1.refunds.list({"charge": charge["id"]}).data] == [(900, "fraudulent")]
    page.goto(f"{live_server.url}/workflows/runs/{run.pk}/")
    expect(page.locator(".object-title .badge")).to_have_text("Done")
    expect(page.locator("#run-steps")).to_contain_text("Refunded $9.00")
    page.screenshot(path=str(SHOTS / "paydesk-workflow-run.png"), full_page=True)
    assert page.errors == [] and page.csp == []
