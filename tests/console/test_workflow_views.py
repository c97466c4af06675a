"""The workflow pages (console/workflows/views.py): the list and its actions, the editor's save,
import and export, "Test with a past event" and "Test against history". Admins only: agents and
finance are refused, anonymous visitors sent to log in."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from html import unescape
import time

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from console.workflows import actions, selectors
from console.workflows.models import Workflow, WorkflowRun, WorkflowVersion
from console.workflows.templates import CHARGEBACK_TICKET, TEMPLATES
from payments.models import Refund
from tests import factories
from tests.console.test_workflow_editor import EDITOR, form_data
from tests.helpers import HX, deliver

pytestmark = pytest.mark.django_db

# Seed 001's fraud-warning rule as a shop selling in dollars only writes it: the editor's tests
# read its one threshold (the template's own also has a yen path).
FRAUD_WARNING = {
    "trigger": {"stripe": "radar.early_fraud_warning.created"},
    "steps": [
        {"fetch": "charge"},
        {"branch": [
            {"if": {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}},
             "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
            {"else": [{"action": "notify", "params": {"team": "finance",
                                                      "text": "Fraud warning on {{ charge.id }} ({{ charge.amount }})"}}]},
        ]},
    ],
}
NOW = int(time.time())


@pytest.fixture
def admin(admin_user, as_user):
    return as_user(admin_user)


@pytest.fixture
def fraud(admin_user):
    return actions.save_workflow(actor=admin_user, name="Early fraud warnings", definition=FRAUD_WARNING).workflow


def _fraud_warning(amount: int, currency: str = "usd", *, days_ago: float = 1) -> tuple[dict, dict]:
    """A charge and an early fraud warning on it, stored and applied as the webhook does."""
    created = int(NOW - days_ago * 86400)
    charge = factories.ChargeFactory(amount=amount, currency=currency, created=created - 60)
    deliver("charge.succeeded", charge, created=created - 60)
    warning = factories.EarlyFraudWarningFactory(charge=charge["id"], created=created)
    payload = deliver("radar.early_fraud_warning.created", warning, created=created)
    return charge, payload


# --- who may -----------------------------------------------------------------------------------------

ENDPOINTS = [  # (method, path with {pk}, data, what the admin gets)
    ("get", "/workflows/", None, 200),
    ("get", "/workflows/new", None, 200),
    ("get", "/workflows/{pk}/", None, 200),
    ("get", "/workflows/{pk}/export", None, 200),
    ("post", "/workflows/editor", {"op": "add-step:steps:fetch"}, 200),
    ("post", "/workflows/test", {}, 400),
    ("post", "/workflows/backtest", {"days": "7"}, 400),
    ("post", "/workflows/import", {}, 400),
    ("post", "/workflows/install", {"template": "chargeback-ticket"}, 302),
    ("post", "/workflows/{pk}/activate", {}, 302),
    ("post", "/workflows/{pk}/deactivate", {}, 302),
    ("post", "/workflows/{pk}/duplicate", {}, 302),
]


@pytest.mark.parametrize("method, path, data, status", ENDPOINTS, ids=[f"{m} {p}" for m, p, _d, _s in ENDPOINTS])
def test_admins_only(client, as_user, admin_user, agent, finance, fraud, method, path, data, status):
    url = path.format(pk=fraud.pk)
    send = lambda c: getattr(c, method)(url, data or {})  # noqa: E731
    anonymous = send(client)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/?next=")
    for wrong in (agent, finance):
        assert send(as_user(wrong)).status_code == 403
    assert send(as_user(admin_user)).status_code == status
    if method == "post":
        assert as_user(admin_user).get(url).status_code == 405  # writes are POSTs


def test_the_nav_shows_workflows_to_admins_only(as_user, admin_user, agent):
    assert b'href="/workflows/"' in as_user(admin_user).get("/").content
    assert b'href="/workflows/"' not in as_user(agent).get("/").content


# --- the list ------------------------------------------------------------------------------------------


def _run(workflow: Workflow, status: str, *, days_ago: float, key: str) -> WorkflowRun:
    run = WorkflowRun.objects.create(workflow=workflow, version=workflow.versions.first(), event_key=key,
                                     trigger="stripe:x", status=status)
    WorkflowRun.objects.filter(pk=run.pk).update(created=timezone.now() - dt.timedelta(days=days_ago))
    return run


def test_the_list_says_trigger_version_last_run_runs_and_failures(admin, admin_user, fraud, django_assert_num_queries):
    actions.save_workflow(actor=admin_user, name=fraud.name, definition=FRAUD_WARNING, workflow=fraud)
    actions.activate_workflow(actor=admin_user, workflow=fraud, version=1)
    morning = actions.save_workflow(actor=admin_user, name="Morning digest", definition={
        "trigger": {"schedule": "09:00"}, "steps": [{"action": "notify", "params": {"team": "finance", "text": "Hi"}}]})
    tickets = actions.save_workflow(actor=admin_user, name="New tickets", definition={
        "trigger": {"ticket": "ticket.created"}, "steps": [{"action": "tag_ticket", "params": {"tags": ["new"]}}]})
    for n, (status, days) in enumerate([("succeeded", 1), ("failed", 2), ("failed", 3), ("succeeded", 10),
                                        ("failed", 12)]):
        _run(fraud, status, days_ago=days, key=f"k{n}")
    with django_assert_num_queries(1):
        rows = {w.name: w for w in selectors.workflow_rows()}
    assert (rows[fraud.name].runs_recent, rows[fraud.name].failures_recent) == (3, 2)
    assert rows[fraud.name].newest_number == 2 and rows[fraud.name].active_version.number == 1
    assert (rows["Morning digest"].runs_recent, rows["Morning digest"].last_run) == (0, None)

    page = admin.get("/workflows/")
    html = page.content.decode()
    assert "Stripe: radar.early_fraud_warning.created" in html
    assert "Every day at 09:00" in html and "Ticket created" in html
    assert "v1 active" in html and "v2 newest" in html
    assert "1 day ago" in html  # the last run
    row = html[html.index(f'href="/workflows/{fraud.pk}/"'):]
    row = row[:row.index("</tr>")]
    assert f'<a href="/workflows/runs/?workflow={fraud.pk}">3</a>' in row  # to the run history
    assert f'href="/workflows/runs/?workflow={fraud.pk}&amp;status=failed">2</a>' in row
    assert f'action="/workflows/{fraud.pk}/deactivate"' in row and f'action="/workflows/{morning.workflow_id}/activate"' in html
    assert f'href="/workflows/{tickets.workflow_id}/export"' in html
    for name, _definition in TEMPLATES.values():
        assert str(name) in html.replace("&#x27;", "'")


def test_a_template_is_copied_in_one_click_and_opened(admin, admin_user):
    page = admin.post("/workflows/install", {"template": "fraud-warning-refund-or-notify"})
    workflow = Workflow.objects.get()
    assert page.status_code == 302 and page["Location"] == f"/workflows/{workflow.pk}/"
    assert workflow.status == "inactive" and workflow.versions.get().definition == TEMPLATES[
        "fraud-warning-refund-or-notify"][1]
    editor = admin.get(page["Location"]).content.decode()
    assert "is a new, inactive workflow" in editor and 'value="charge.amount"' in editor
    refused = admin.post("/workflows/install", {"template": "<script>"})
    assert refused.status_code == 400 and b"is not a template" in refused.content and Workflow.objects.count() == 1


def test_activate_deactivate_duplicate_export(admin, admin_user, fraud):
    assert admin.post(f"/workflows/{fraud.pk}/activate", {"back": "edit"})["Location"] == f"/workflows/{fraud.pk}/"
    fraud.refresh_from_db()
    assert fraud.status == "active" and fraud.trigger == "stripe:radar.early_fraud_warning.created"
    assert admin.post(f"/workflows/{fraud.pk}/deactivate")["Location"] == "/workflows/"
    fraud.refresh_from_db()
    assert fraud.status == "inactive"
    copy = admin.post(f"/workflows/{fraud.pk}/duplicate")
    duplicate = Workflow.objects.exclude(pk=fraud.pk).get()
    assert copy["Location"] == f"/workflows/{duplicate.pk}/" and duplicate.name == "Copy of Early fraud warnings"
    download = admin.get(f"/workflows/{fraud.pk}/export")
    assert download["Content-Disposition"] == 'attachment; filename="early-fraud-warnings.json"'
    assert json.loads(download.content) == {"paydesk_workflow": 1, "name": fraud.name, "definition": FRAUD_WARNING}
    assert admin.post("/workflows/999999/activate").status_code == 404
    assert {e.action for e in AuditEntry.objects.all()} >= {"workflow.activate", "workflow.deactivate", "workflow.save"}


def test_activating_a_workflow_that_no_longer_validates_says_why(admin, fraud):
    WorkflowVersion.objects.filter(workflow=fraud).update(definition={**FRAUD_WARNING, "steps": [
        {"action": "notify", "params": {"team": "finance", "text": "{{ charge.vanished_field }}"}}]})
    page = admin.post(f"/workflows/{fraud.pk}/activate", follow=True)
    assert "was not activated" in page.content.decode() and "{{ charge.vanished_field }} is not available here." in page.content.decode()
    fraud.refresh_from_db()
    assert fraud.status == "inactive"
    editor = admin.get(f"/workflows/{fraud.pk}/").content.decode()  # the editor shows it where it is
    assert "{{ charge.vanished_field }} is not available here." in editor


# --- import ---------------------------------------------------------------------------------------------


def _upload(admin, content: bytes, name: str = "workflow.json"):
    upload = io.BytesIO(content)
    upload.name = name
    return admin.post("/workflows/import", {"file": upload})


def test_an_export_imports_as_a_new_inactive_workflow(admin, fraud):
    exported = admin.get(f"/workflows/{fraud.pk}/export").content
    page = _upload(admin, exported)
    imported = Workflow.objects.exclude(pk=fraud.pk).get()
    assert page.status_code == 302 and page["Location"] == f"/workflows/{imported.pk}/"
    assert imported.status == "inactive" and imported.versions.get().definition == FRAUD_WARNING


@pytest.mark.parametrize("content, said, status", [
    (json.dumps({"paydesk_workflow": 1, "name": "Rockets", "definition": {**CHARGEBACK_TICKET, "steps": [
        {"action": "launch_rockets", "params": {}}]}}).encode(),
     "Step 1: “launch_rockets” is not an action a workflow can take.", 400),
    (json.dumps({"paydesk_workflow": 1, "name": "Gone", "definition": {**FRAUD_WARNING, "conditions": {
        "ref": "early_fraud_warning.no_such_field", "op": "is_set"}}}).encode(),
     "early_fraud_warning.no_such_field is not available here.", 400),
    (b'{"paydesk_workflow": 1, "name": "x", "definition": ', "This file is not JSON", 400),
    (b"\xff\xfe\x00garbage", "This file is not JSON", 400),
    (b"[" * 100_000, "This file is not JSON", 400),
    (json.dumps({"paydesk_workflow": 1, "name": "nul\u0000", "definition": CHARGEBACK_TICKET}).encode(), "NUL", 400),
    (b'{"paydesk_workflow": 1, "name": "\\ud800", "definition": {}}', "This file is not JSON", 400),
    (json.dumps({"paydesk_workflow": 1, "name": "<script>alert(1)</script>", "definition": None}).encode(),
     "A workflow is an object with a trigger and steps.", 400),
    (json.dumps({"not": "an export"}).encode(), "This is not a Paydesk workflow export", 400),
    (b" " * (600 * 1024), "This file is too large", 413),
])
def test_a_bad_import_says_why_and_saves_nothing(admin, content, said, status):
    page = _upload(admin, content)
    assert page.status_code == status
    assert said in page.content.decode()
    assert b"<script>alert(1)</script>" not in page.content
    assert not Workflow.objects.exists() and not AuditEntry.objects.filter(action="workflow.import").exists()


def test_an_import_without_a_file(admin):
    page = admin.post("/workflows/import", {})
    assert page.status_code == 400 and b"Choose a JSON file exported from Paydesk." in page.content


# --- save -----------------------------------------------------------------------------------------------


def test_save_makes_a_new_version_and_opens_it(admin, fraud):
    page = admin.get(f"/workflows/{fraud.pk}/")
    form = form_data(page, name="Fraud warnings, by amount")
    form["steps.1.branch.0.if.0.amount"] = "20"
    saved = admin.post(EDITOR, {**form, "op": "save"}, **HX)
    assert saved.status_code == 204 and saved["HX-Redirect"] == f"/workflows/{fraud.pk}/"
    fraud.refresh_from_db()
    newest = fraud.versions.order_by("-number").first()
    assert (fraud.name, newest.number) == ("Fraud warnings, by amount", 2)
    assert newest.definition["steps"][1]["branch"][0]["if"] == {"all": [
        {"ref": "charge.amount", "op": "lt", "value": {"amount": "20", "currency": "usd"}}]}
    after = admin.get(saved["HX-Redirect"]).content.decode()
    assert "Saved “Fraud warnings, by amount” as version 2." in after


def test_a_new_workflow_is_saved_as_version_one_without_htmx(admin):
    page = admin.get("/workflows/new")
    form = form_data(page, name="Morning", trigger__kind="schedule", trigger__schedule="09:00")
    page = admin.post(EDITOR, {**form, "op": "add-step:steps:action"}, **HX)
    form = form_data(page, steps__0__action="notify")
    page = admin.post(EDITOR, {**form, "op": "refresh"}, **HX)
    form = form_data(page, steps__0__params__team="", steps__0__params__text="Good morning")
    form["steps.0.params.user"] = ""
    refused = admin.post(EDITOR, {**form, "op": "save"})
    assert refused.status_code == 400 and "Step 1: say who is notified (a person or a team)." in refused.content.decode()
    assert "Not saved." in refused.content.decode() and not Workflow.objects.exists()
    factories.TeamFactory(slug="finance", name="Finance")
    page = admin.post(EDITOR, {**form, "op": "refresh"}, **HX)
    saved = admin.post(EDITOR, {**form_data(page, steps__0__params__team="finance"), "op": "save"})
    workflow = Workflow.objects.get()
    assert saved.status_code == 302 and saved["Location"] == f"/workflows/{workflow.pk}/"
    assert workflow.versions.get().definition == {"trigger": {"schedule": "09:00"}, "steps": [
        {"action": "notify", "params": {"team": "finance", "text": "Good morning"}}]}


def test_save_without_a_name_is_refused(admin):
    page = admin.get("/workflows/new")
    form = form_data(page, trigger__stripe="charge.refunded")
    page = admin.post(EDITOR, {**form, "op": "add-step:steps:action"}, **HX)
    refused = admin.post(EDITOR, {**form_data(page, steps__0__action="add_note", steps__0__params__text="x",
                                              name="  "), "op": "save"}, **HX)
    assert refused.status_code == 400 and "Give the workflow a name." in refused.content.decode()
    assert not Workflow.objects.exists()


# --- test with a past event -------------------------------------------------------------------------


def test_a_past_event_shows_the_run_step_by_step_with_the_rendered_notification(admin, fraud):
    charge, payload = _fraud_warning(2200)
    page = admin.get(f"/workflows/{fraud.pk}/")
    assert f'<option value="{payload["id"]}"' in page.content.decode()
    result = admin.post("/workflows/test", {**form_data(page), "test_event": payload["id"]}, **HX)
    assert result.status_code == 200
    html = result.content.decode()
    assert "Matched" in html
    assert f"Fetch charge {charge['id']}" in html
    assert "Branch: took “all other cases”" in html
    assert f"Fraud warning on {charge['id']} ($22.00)" in html  # the notification as it would be sent
    assert "Notify" in html and "finance" in html
    assert not Refund.objects.exists()
    # A small charge takes the refund path.
    small, warning = _fraud_warning(1200)
    html = admin.post("/workflows/test", {**form_data(page), "test_event": warning["id"]}, **HX).content.decode()
    assert "Branch: took path 1" in html and "Refund" in html and "Fraudulent" in html
    assert "all that is left of the charge" in html


def test_a_past_event_in_another_currency_says_the_comparison_fails(admin, fraud):
    _charge, payload = _fraud_warning(1500, "jpy")
    page = admin.get(f"/workflows/{fraud.pk}/")
    html = unescape(admin.post("/workflows/test", {**form_data(page), "test_event": payload["id"]}, **HX).content.decode())
    assert "Would fail" in html and "charge.amount is in JPY; it can't be compared with an amount in USD." in html


def test_testing_needs_a_valid_draft_and_an_event_of_its_trigger(admin, fraud):
    _charge, payload = _fraud_warning(1200)
    page = admin.get(f"/workflows/{fraud.pk}/")
    other = factories.event("charge.succeeded", factories.ChargeFactory())
    from payments.events import store_event

    store_event(other)
    wrong = admin.post("/workflows/test", {**form_data(page), "test_event": other["id"]}, **HX)
    assert wrong.status_code == 400 and "Choose a stored radar.early_fraud_warning.created event" in wrong.content.decode()
    broken = admin.post("/workflows/test", {**form_data(page, steps__0__fetch="invoice"), "test_event": payload["id"]}, **HX)
    assert broken.status_code == 400 and "Fix the workflow first" in broken.content.decode()
    assert broken["X-Paydesk-Fragment"] == "1"


def test_a_ticket_trigger_is_tested_with_a_ticket(admin):
    ticket = factories.TicketFactory(subject="Where is my refund?")
    factories.MessageFactory(ticket=ticket, kind="inbound", body_text="I want a refund please")
    page = admin.get("/workflows/new")
    form = form_data(page, trigger__kind="ticket", trigger__ticket="message.received")
    page = admin.post(EDITOR, {**form, "op": "add-step:steps:action"}, **HX)
    form = form_data(page, steps__0__action="add_note")
    page = admin.post(EDITOR, {**form, "op": "add-cond:conditions"}, **HX)
    form = form_data(page, steps__0__params__text="{{ contact.name }} wrote: {{ message.text }}",
                     conditions__0__ref="message.text", conditions__0__op="contains", conditions__0__value="refund")
    page = admin.post(EDITOR, {**form, "op": "refresh"}, **HX)
    assert re.search(rf'<option value="{ticket.pk}"( selected)?>#{ticket.number} · Where is my refund\?', page.content.decode())
    html = admin.post("/workflows/test", {**form_data(page), "test_ticket": str(ticket.pk)}, **HX).content.decode()
    assert "Matched" in html and "wrote: I want a refund please" in html


# --- test against history ------------------------------------------------------------------------------


def test_the_backtest_totals_and_lists_each_event(admin, fraud):
    small, _p = _fraud_warning(1200, days_ago=2)
    large, _p = _fraud_warning(2200, days_ago=5)
    _fraud_warning(900, days_ago=45)  # before the window
    _fraud_warning(1500, "jpy", days_ago=3)
    page = admin.get(f"/workflows/{fraud.pk}/")
    result = admin.post("/workflows/backtest", {**form_data(page), "days": "30"}, **HX)
    assert result.status_code == 200
    html = result.content.decode()
    stats = dict(re.findall(r'<span class="stat-label">([^<]+)</span><span class="stat-value">([^<]+)</span>', html))
    assert stats == {"Events": "3", "Matched": "3", "Would fail": "1", "Tickets it would create": "0", "Refunds": "1",
                     "Notifications": "1"}
    assert "$12.00" in html  # the refunds' sum in its currency
    assert html.count('<tr>') == 1 + 3  # the head, and each event that matched or failed
    assert f"Fraud warning on {large['id']} ($22.00)" in html
    assert "charge.amount is in JPY; it can&#x27;t be compared with an amount in USD." in html
    assert not Refund.objects.exists()


@pytest.mark.parametrize("days", ["0", "91", "", "²", "1e3", "-5"])
def test_the_backtest_takes_1_to_90_days(admin, fraud, days):
    page = admin.get(f"/workflows/{fraud.pk}/")
    refused = admin.post("/workflows/backtest", {**form_data(page), "days": days}, **HX)
    assert refused.status_code == 400 and "from 1 to 90" in refused.content.decode()


def test_a_long_backtest_lists_the_first_hundred_and_says_so(admin, fraud, monkeypatch):
    from console.workflows import backtest as module
    from console.workflows import views

    monkeypatch.setattr(views, "BACKTEST_LISTED", 2)
    for amount in (2000, 2100, 2200):
        _fraud_warning(amount)
    page = admin.get(f"/workflows/{fraud.pk}/")
    html = admin.post("/workflows/backtest", {**form_data(page), "days": "7"}, **HX).content.decode()
    assert "Showing the first 2 events that matched or failed. The totals above count every event." in html
    assert module.MAX_LISTED == 500


def test_a_ticket_workflow_is_backtested_on_the_tickets_kept(admin):
    factories.TicketFactory(subject="Where is my parcel")
    page = admin.get("/workflows/new")
    form = form_data(page, trigger__kind="ticket", trigger__ticket="ticket.created")
    page = admin.post(EDITOR, {**form, "op": "add-step:steps:action"}, **HX)
    form = form_data(page, steps__0__action="tag_ticket", steps__0__params__tags="new")
    editor = admin.post(EDITOR, {**form, "op": "refresh"}, **HX).content.decode()
    assert "Run the backtest" in editor
    report = admin.post("/workflows/backtest", {**form, "days": "30"}, **HX)
    assert report.status_code == 200 and "ticket.created:" in report.content.decode()


def test_a_scheduled_workflow_cannot_be_backtested(admin):
    page = admin.get("/workflows/new")
    form = form_data(page, trigger__kind="schedule", trigger__schedule="09:00")
    page = admin.post(EDITOR, {**form, "op": "add-step:steps:action"}, **HX)
    form = form_data(page, steps__0__action="notify", steps__0__params__user="admin", steps__0__params__text="Hi")
    refused = admin.post("/workflows/backtest", {**form, "days": "30"}, **HX)
    assert refused.status_code == 400 and "no past events" in refused.content.decode()
    editor = admin.post(EDITOR, {**form, "op": "refresh"}, **HX).content.decode()
    assert "Run the backtest" not in editor  # the editor says so before anyone tries



