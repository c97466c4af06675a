"""The workflow editor (console/workflows/editor.py and its endpoint): the form is the state;
each operation posts the whole form and gets the editor back, rebuilt, changed and validated.

The tests post what a browser would: the form's fields as the server rendered them (read back
from the HTML), plus the operation's button."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from console.workflows.definition import check, validate_definition
from console.workflows.editor import Draft, OperationError, apply, build, editor_definition, parse, trigger_words
from console.workflows.models import Workflow
from console.workflows.templates import TEMPLATES
from tests.helpers import HX

pytestmark = pytest.mark.django_db

EDITOR = "/workflows/editor"


class FormReader(HTMLParser):
    """The fields a browser would submit from the editor form (#editor): inputs, checked
    radios, selected options, textareas; not the buttons (the operation is added by the test)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.inside = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._chosen = False
        self._textarea: str | None = None
        self._text = ""
        self.datalists: dict[str, list[str]] = {}
        self._datalist: str | None = None
        self.lists: dict[str, str] = {}  # input name → its datalist id
        self.autofocus: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "editor":
            self.inside = True
        if not self.inside:
            return
        if "autofocus" in a:
            self.autofocus.append(a.get("value") if tag == "button" else a.get("name") or tag)
        if tag == "datalist":
            self._datalist = a["id"]
            self.datalists[self._datalist] = []
        elif tag == "option" and self._datalist:
            self.datalists[self._datalist].append(a.get("value", ""))
        elif tag == "input" and a.get("name"):
            if a.get("list"):
                self.lists[a["name"]] = a["list"]
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._first_option, self._chosen = a.get("name"), None, False
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a and not self._chosen:
                self.fields.append((self._select, a.get("value", "")))
                self._chosen = True
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "datalist":
            self._datalist = None
        elif tag == "select" and self._select:
            if not self._chosen and self._first_option is not None:
                self.fields.append((self._select, self._first_option))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, self._text))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self._text += data


def read_form(response) -> FormReader:
    reader = FormReader()
    reader.feed(response.content.decode())
    return reader


def form_data(response, **changes) -> dict:
    """The form's fields (a dict: the editor's names are unique), with `changes` applied
    (keys with dots spelled with "__")."""
    data = dict(read_form(response).fields)
    for key, value in changes.items():
        data[key.replace("__", ".")] = value
    return data


def post(client, response, op="refresh", **changes):
    """One editing operation, from the editor in `response`."""
    return client.post(EDITOR, {**form_data(response, **changes), "op": op}, **HX)


def draft_of(response) -> dict:
    return parse(dict(read_form(response).fields)).definition


@pytest.fixture
def admin(admin_user, as_user):
    return as_user(admin_user)


# --- the form ⇄ the definition ------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(TEMPLATES))
def test_every_template_survives_the_form(admin, admin_user, slug):
    """A template shown in the editor and posted back is the same workflow (a lone condition
    shown, and kept, as a group of one)."""
    from console.workflows import actions

    version = actions.install_template(actor=admin_user, slug=slug)
    page = admin.get(f"/workflows/{version.workflow_id}/")
    assert page.status_code == 200
    definition = draft_of(page)
    assert definition == editor_definition(TEMPLATES[slug][1])
    assert validate_definition(definition) == []


def test_parse_reads_every_kind_of_node():
    draft = parse({
        "name": " Fraud ", "workflow": "7", "trigger.kind": "stripe", "trigger.stripe": "radar.early_fraud_warning.created",
        "conditions.group": "any", "conditions.0.node": "cond", "conditions.0.ref": "early_fraud_warning.fraud_type",
        "conditions.0.op": "in", "conditions.0.value": "card_never_received, fraudulent_card_application ,",
        "conditions.1.node": "group", "conditions.1.group": "all",
        "conditions.1.0.node": "cond", "conditions.1.0.ref": "early_fraud_warning.actionable", "conditions.1.0.op": "is_set",
        "steps.0.kind": "fetch", "steps.0.fetch": "charge",
        "steps.1.kind": "branch",
        "steps.1.branch.0.kind": "if", "steps.1.branch.0.if.group": "all",
        "steps.1.branch.0.if.0.node": "cond", "steps.1.branch.0.if.0.ref": "charge.amount",
        "steps.1.branch.0.if.0.op": "lt", "steps.1.branch.0.if.0.amount": "15", "steps.1.branch.0.if.0.currency": "USD",
        "steps.1.branch.0.steps.0.kind": "action", "steps.1.branch.0.steps.0.action": "refund",
        "steps.1.branch.0.steps.0.params.reason": "fraudulent",
        "steps.1.branch.0.steps.0.params.amount.amount": "", "steps.1.branch.0.steps.0.params.amount.currency": "",
        "steps.1.branch.1.kind": "else",
        "steps.1.branch.1.else.0.kind": "action", "steps.1.branch.1.else.0.action": "create_ticket",
        "steps.1.branch.1.else.0.params.subject": "Fraud on {{ charge.id }}",
        "steps.1.branch.1.else.0.params.tags": "fraud, , finance", "steps.1.branch.1.else.0.params.team": "",
        "steps.1.branch.1.else.0.extra.flavour": "kept",
    })
    assert (draft.name, draft.workflow_id) == ("Fraud", 7)
    assert draft.definition == {
        "trigger": {"stripe": "radar.early_fraud_warning.created"},
        "conditions": {"any": [
            {"ref": "early_fraud_warning.fraud_type", "op": "in",
             "value": ["card_never_received", "fraudulent_card_application"]},
            {"all": [{"ref": "early_fraud_warning.actionable", "op": "is_set"}]}]},
        "steps": [
            {"fetch": "charge"},
            {"branch": [
                {"if": {"all": [{"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}]},
                 "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]},
                {"else": [{"action": "create_ticket", "params": {"subject": "Fraud on {{ charge.id }}",
                                                                   "tags": ["fraud", "finance"], "flavour": "kept"}}]},
            ]},
        ],
    }


def test_hostile_forms_are_read_without_fuss():
    """Indices far out, names hundreds of dots deep, groups nested past any limit: what can't
    be a node is left out; nothing raises."""
    deep = ".".join(["0"] * 200)
    nested = {"conditions.group": "all"}
    prefix = "conditions"
    for _ in range(30):
        prefix += ".0"
        nested[f"{prefix}.node"] = "group"
    draft = parse({"trigger.kind": "<script>", "steps.999999.kind": "fetch", "steps.00000000001.kind": "fetch",
                   f"steps.{deep}": "x", "steps.5.kind": "launch", **nested, "workflow": "9" * 40})
    assert draft.definition["trigger"] == {"stripe": ""} and draft.definition["steps"] == []
    assert draft.workflow_id is None
    depth, node = 0, draft.definition["conditions"]
    while node["all"]:
        node, depth = node["all"][0], depth + 1
    assert depth <= 13


# --- operations ------------------------------------------------------------------------------------------


def test_apply_refuses_what_is_not_there():
    draft = Draft("x", None, {"trigger": {"schedule": "09:00"}, "steps": []})
    for op in ("remove:steps.3", "up:steps", "add-step:steps.0.branch:action", "add-path:steps.0.branch",
               "add-cond:steps.9.branch.0.if", "insert:steps.0.params.text", "remove:trigger", "add-step:steps:rocket"):
        with pytest.raises(OperationError):
            apply(draft, op)
    assert apply(draft, "refresh") == "" and apply(draft, "nonsense") == ""


def test_an_admin_adds_removes_reorders_and_nests_steps(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, trigger__stripe="radar.early_fraud_warning.created")
    page = post(admin, page, "add-step:steps:action")
    assert page.status_code == 200
    assert read_form(page).autofocus == ["steps.0.action"]  # the new step's first control has the focus
    page = post(admin, page, "add-step:steps:fetch", steps__0__action="add_note")
    page = post(admin, page, "up:steps.1", steps__1__fetch="charge")
    assert [next(iter(s)) for s in draft_of(page)["steps"]] == ["fetch", "action"]
    assert draft_of(page)["steps"][0] == {"fetch": "charge"}
    assert read_form(page).autofocus == ["down:steps.0"]  # the moved step keeps a focused button
    # A branch, then a branch inside its first path, then a step inside that.
    page = post(admin, page, "add-step:steps:branch")
    page = post(admin, page, "add-step:steps.2.branch.0.steps:branch")
    page = post(admin, page, "add-step:steps.2.branch.0.steps.0.branch.1.else:action")
    steps = draft_of(page)["steps"]
    inner = steps[2]["branch"][0]["steps"][0]["branch"]
    assert inner[1] == {"else": [{"action": "", "params": {}}]}
    html = page.content.decode()
    assert 'name="steps.2.branch.0.steps.0.branch.1.else.0.action"' in html
    assert ">3.1.1.2.1<" in html  # a nested step's number, as a test run says it
    # A path goes before "all other cases"; "all other cases" is offered once.
    page = post(admin, page, "add-path:steps.2.branch")
    paths = draft_of(page)["steps"][2]["branch"]
    assert [("else" in p) for p in paths] == [False, False, True]
    assert 'value="add-else:steps.2.branch"' not in page.content.decode()
    # Removing the nested branch and the note.
    page = post(admin, page, "remove:steps.2.branch.0.steps.0")
    page = post(admin, page, "remove:steps.1")
    steps = draft_of(page)["steps"]
    assert [next(iter(s)) for s in steps] == ["fetch", "branch"] and steps[1]["branch"][0]["steps"] == []
    assert not Workflow.objects.exists()  # nothing is saved until Save


def test_conditions_and_groups_are_added_and_removed(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-cond:conditions", trigger__stripe="charge.refunded")
    assert read_form(page).autofocus == ["conditions.0.ref"]
    page = post(admin, page, "add-group:conditions", conditions__0__ref="charge.refunded", conditions__0__op="eq",
                conditions__0__value="true")
    page = post(admin, page, "add-cond:conditions.1", conditions__1__group="any",
                conditions__1__0__ref="charge.currency", conditions__1__0__value="usd")
    assert draft_of(page)["conditions"] == {"all": [
        {"ref": "charge.refunded", "op": "eq", "value": "true"},
        {"any": [{"ref": "charge.currency", "op": "eq", "value": "usd"}, {"ref": "", "op": "eq", "value": ""}]}]}
    page = post(admin, page, "remove:conditions.1.1")
    page = post(admin, page, "remove:conditions.0")
    assert draft_of(page)["conditions"] == {"all": [{"any": [{"ref": "charge.currency", "op": "eq", "value": "usd"}]}]}
    page = post(admin, page, "remove:conditions.0")
    assert "conditions" not in draft_of(page)


def test_a_money_reference_takes_an_amount_and_its_currency(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-cond:conditions", trigger__stripe="payment_intent.succeeded")
    page = post(admin, page, conditions__0__ref="payment_intent.amount", conditions__0__op="gt")
    fields = dict(read_form(page).fields)
    assert "conditions.0.amount" in fields and "conditions.0.currency" in fields and "conditions.0.value" not in fields
    # Without a currency: said beside the condition.
    page = post(admin, page, conditions__0__amount="1,000", conditions__0__currency="")
    html = page.content.decode()
    assert "Say the currency as a three-letter code, such as USD or JPY." in _beside(html, "conditions.0")
    page = post(admin, page, conditions__0__currency="jpy")
    assert draft_of(page)["conditions"] == {"all": [
        {"ref": "payment_intent.amount", "op": "gt", "value": {"amount": "1,000", "currency": "jpy"}}]}
    assert 'value="JPY"' in page.content.decode()
    # A text reference has one value input again.
    page = post(admin, page, conditions__0__ref="payment_intent.description", conditions__0__op="contains")
    fields = dict(read_form(page).fields)
    assert fields["conditions.0.value"] == "1,000" and "conditions.0.amount" not in fields


def test_a_comparison_across_currencies_is_said_where_it_is():
    definition = {"trigger": {"stripe": "radar.early_fraud_warning.created"}, "steps": [
        {"fetch": "charge"},
        {"branch": [{"if": {"all": [{"ref": "charge.currency", "op": "eq", "value": "jpy"},
                                    {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}]},
                     "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]}]}]}
    issues = check(definition)
    assert [(i.path, i.message) for i in issues] == [(
        "steps.1.branch.0.if.1",
        "charge.amount is in JPY here (the conditions say charge.currency is JPY); it can't be compared with an amount "
        "in USD.")]
    # An "any" group pins nothing; the same currency is fine.
    assert check({**definition, "steps": [definition["steps"][0], {"branch": [{
        "if": {"any": [{"ref": "charge.currency", "op": "eq", "value": "jpy"},
                       {"ref": "charge.amount", "op": "lt", "value": {"amount": "15", "currency": "usd"}}]},
        "steps": [{"action": "refund", "params": {"reason": "fraudulent"}}]}]}]}) == []


def _beside(html: str, path: str) -> str:
    """The editor's HTML of one node (from its element, id wf-<path>) up to the next node that
    is not inside it."""
    start = html.index(f'id="wf-{path}"')
    for found in re.finditer(r'id="wf-([^"]+)"', html[start + 1:]):
        other = found.group(1)
        if other != path and not other.startswith(path + "."):
            return html[start:start + 1 + found.start()]
    return html[start:]


def test_mistakes_are_shown_beside_their_node_and_summed_up_at_the_top(admin):
    page = admin.get("/workflows/new")
    assert "things to fix" not in page.content.decode()  # a new workflow doesn't start with reproaches
    page = post(admin, page, "add-step:steps:branch", trigger__stripe="radar.early_fraud_warning.created")
    page = post(admin, page, "add-step:steps:action")
    html = page.content.decode()
    assert "Step 1: each path of a branch needs at least one step." in _beside(html, "steps.0.branch.0")
    assert "Step 2: choose an action." in _beside(html, "steps.1")
    assert "give a value to compare with" not in html  # an empty field reference is said first
    assert "Choose a field to compare." in _beside(html, "steps.0.branch.0.if.0")
    summary = html[html.index('id="wf-summary"'):html.index("</div>", html.index('id="wf-summary"'))]
    assert "things to fix before this workflow can be saved" in summary
    assert 'href="#wf-steps.1"' in summary
    # An unknown reference, and a path after "all other cases" that would never run.
    page = post(admin, page, "add-path:steps.0.branch", steps__0__branch__0__if__0__ref="charge.amount",
                steps__0__branch__0__if__0__value="1")
    html = page.content.decode()
    assert "charge.amount is not available here." in _beside(html, "steps.0.branch.0.if.0")
    form = form_data(page)
    form["steps.0.branch.1.kind"], form["steps.0.branch.2.kind"] = "else", "if"
    page = admin.post(EDITOR, {**form, "op": "refresh"}, **HX)
    html = page.content.decode()
    assert "“all other cases” must come last" in _beside(html, "steps.0.branch.1")
    assert "Never runs" in _beside(html, "steps.0.branch.2")


def test_the_field_picker_offers_a_fetched_object_only_after_the_fetch(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-step:steps:action", trigger__stripe="radar.early_fraud_warning.created")
    page = post(admin, page, "add-step:steps:fetch", steps__0__action="notify")
    page = post(admin, page, "add-step:steps:branch", steps__1__fetch="charge")
    reader = read_form(page)
    before = reader.datalists[reader.lists["insert.steps.0.params.text"]]
    after = reader.datalists[reader.lists["steps.2.branch.0.if.0.ref"]]
    assert "early_fraud_warning.charge" in before and "charge.amount" not in before
    assert {"charge.amount", "charge.outcome.risk_level", "early_fraud_warning.fraud_type"} <= set(after)
    # Derived from Stripe's shapes, not a list kept by hand: everything references.py knows of a charge.
    from console.workflows.references import fields

    assert set(fields("charge")) <= set(after)
    # What a fetch may bring is what the objects known at that point lead to.
    fetch = page.content.decode()
    options = re.findall(r'<option value="([a-z_]+)"', fetch[fetch.index('name="steps.1.fetch"'):fetch.index("</select>", fetch.index('name="steps.1.fetch"'))])
    assert options == ["charge", "payment_intent"]


def test_changed_from_and_to_are_offered_on_updated_events_only(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-cond:conditions", trigger__stripe="customer.subscription.updated")
    assert 'value="changed_from"' in page.content.decode()
    page = post(admin, page, trigger__stripe="customer.subscription.deleted")
    assert 'value="changed_from"' not in page.content.decode()


def test_an_action_change_shows_its_inputs_and_keeps_what_they_share(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-step:steps:action", trigger__ticket="ticket.created", trigger__kind="ticket")
    page = post(admin, page, steps__0__action="notify")
    fields = dict(read_form(page).fields)
    assert {"steps.0.params.team", "steps.0.params.user", "steps.0.params.text"} <= set(fields)
    page = post(admin, page, steps__0__action="add_note", steps__0__params__text="Look at {{ ticket.subject }}",
                steps__0__params__team="")
    assert draft_of(page)["steps"] == [{"action": "add_note", "params": {"text": "Look at {{ ticket.subject }}"}}]
    page = post(admin, page, steps__0__action="refund")
    assert set(dict(read_form(page).fields)) >= {"steps.0.params.reason", "steps.0.params.amount.amount",
                                                 "steps.0.params.amount.currency"}


def test_insert_a_field_into_a_text(admin):
    page = admin.get("/workflows/new")
    page = post(admin, page, "add-step:steps:action", trigger__stripe="charge.refunded")
    page = post(admin, page, steps__0__action="notify")
    page = post(admin, page, "insert:steps.0.params.text", steps__0__params__text="Refunded",
                **{"insert__steps__0__params__text": "charge.amount_refunded"})
    assert draft_of(page)["steps"][0]["params"]["text"] == "Refunded {{ charge.amount_refunded }}"
    assert read_form(page).autofocus == ["steps.0.params.text"]


def test_an_operation_on_a_node_that_is_gone_changes_nothing(admin):
    page = admin.get("/workflows/new")
    answer = post(admin, page, "remove:steps.4")
    assert answer.status_code == 400
    assert "That part of the workflow is no longer there; nothing was changed." in answer.content.decode()
    assert answer["X-Paydesk-Fragment"] == "1"  # swapped in place by htmx


def test_the_editor_answers_its_fragment_to_htmx_and_the_page_without(admin):
    page = admin.get("/workflows/new")
    fragment = post(admin, page, "add-step:steps:fetch")
    assert fragment.content.decode().lstrip().startswith('<form id="editor"')
    whole = admin.post(EDITOR, {**form_data(page), "op": "add-step:steps:fetch"})
    assert whole.status_code == 200 and b"<html" in whole.content and b'id="wf-result"' in whole.content


def test_trigger_words():
    assert trigger_words("stripe:radar.early_fraud_warning.created") == "Stripe: radar.early_fraud_warning.created"
    assert trigger_words("ticket:ticket.created") == "Ticket created"
    assert trigger_words("schedule:09:00") == "Every day at 09:00"
    assert trigger_words("") == "No trigger yet"


def test_build_places_every_mistake_somewhere():
    """A definition the editor can't show node by node (an import's odd shapes) still says
    every mistake, at the top."""
    odd = {"trigger": {"stripe": "charge.refunded"}, "steps": [
        "a step", {"action": "notify", "params": {"text": "hi", "team": "x", "weird": "{{ nowhere.at_all }}"}},
        {"branch": ["not a path"]}]}
    editor = build(Draft("x", None, editor_definition(odd)))
    shown = set(editor.general_errors)
    shown |= {e for s in editor.steps.steps for e in s.errors}
    for p in (p for s in editor.steps.steps for p in s.paths):
        shown |= set(p.errors)
    assert set(validate_definition(odd)) <= shown


def test_what_the_try_inputs_hold_survives_an_operation(admin):
    from payments.events import store_event
    from tests import factories

    older, newer = (factories.event("charge.refunded", factories.ChargeFactory(), created=1_700_000_000 + n)
                    for n in (0, 60))
    store_event(older)
    store_event(newer)
    page = admin.get("/workflows/new")
    page = post(admin, page, trigger__stripe="charge.refunded")
    assert f'<option value="{newer["id"]}" selected>' not in page.content.decode()
    page = post(admin, page, "add-step:steps:fetch", test_event=older["id"], days="12")
    html = page.content.decode()
    assert f'<option value="{older["id"]}" selected>' in html and 'name="days" type="number" min="1" max="90" value="12"' in html
