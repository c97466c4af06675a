"""The admin's workflow pages: the list, and the editor with its tests.

The editor's state is the form: each operation (add, remove, move a step; add a path, a
condition, a group; change the trigger or an action) posts the whole form to
`workflow_editor`, which rebuilds the draft, applies the operation, validates, and answers the
editor again (`#editor` for HTMX, the whole page without). Nothing is saved until Save, which
calls save_workflow. "Test with a past event" and "Test against history" post the same form and
answer what the draft would do, with no side effects. Every write is an action of
console.workflows.actions; these views read, call and render.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_GET, require_POST

from common import parsing
from payments.money import format_money

from . import actions, selectors
from .backtest import BacktestError, backtest
from .definition import validate_definition
from .describe import action_name
from .editor import Draft, OperationError, apply, build, describe_step, editor_definition, parse, trigger_words
from .engine import plan_run, stripe_context, ticket_context
from .models import Workflow
from .templates import TEMPLATES

VIEW = "workflows.view_workflow"
LIST_TEMPLATE = "workflows/list.html"
EDITOR_TEMPLATE = "workflows/editor.html"
MAX_IMPORT_BYTES = 512 * 1024
BACKTEST_DAYS = (1, 90)
BACKTEST_LISTED = 100  # events listed one by one; the totals count them all
NEW_DEFINITION = {"trigger": {"stripe": ""}, "steps": []}


def _runs_url(workflow_id: int | None = None) -> str:
    """The run history (console/workflows/runs' pages), when it is there."""
    try:
        url = reverse("workflow_runs")
    except NoReverseMatch:
        return ""
    return f"{url}?workflow={workflow_id}" if workflow_id else url


# --- the list ------------------------------------------------------------------------------------


def _list_context(**extra) -> dict:
    rows = selectors.workflow_rows()
    for row in rows:
        row.trigger_words = trigger_words(row.trigger or row.newest_trigger or "")
    return {"rows": rows, "templates": [(slug, str(name)) for slug, (name, _d) in TEMPLATES.items()],
            "nav": "workflows", "runs_url": _runs_url(), **extra}


@require_GET
@permission_required(VIEW, raise_exception=True)
def workflow_list(request: HttpRequest) -> HttpResponse:
    return render(request, LIST_TEMPLATE, _list_context())


def _refused(request, errors: list[str], status: int = 400) -> HttpResponse:
    return render(request, LIST_TEMPLATE, _list_context(list_errors=errors), status=status)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_import(request: HttpRequest) -> HttpResponse:
    """A workflow from an exported JSON file: checked whole first, nothing saved from a file
    with any mistake in it."""
    length = parsing.parse_int(request.META.get("CONTENT_LENGTH"), 0) or 0
    upload = request.FILES.get("file") if length <= 4 * MAX_IMPORT_BYTES else None
    if length > 4 * MAX_IMPORT_BYTES or (upload is not None and upload.size > MAX_IMPORT_BYTES):
        return _refused(request, [_("This file is too large for a workflow (at most %(size)s KB).")
                                  % {"size": MAX_IMPORT_BYTES // 1024}], status=413)
    if upload is None:
        return _refused(request, [_("Choose a JSON file exported from Paydesk.")])
    try:
        data = json.loads(upload.read(MAX_IMPORT_BYTES + 1).decode("utf-8-sig"))
        # PostgreSQL can hold neither a NUL nor half a surrogate pair in text or JSON.
        said = json.dumps(data, ensure_ascii=False)
        said.encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return _refused(request, [_("This file is not JSON: export the workflow from Paydesk again.")])
    if "\\u0000" in said:  # json.dumps spells a NUL so
        return _refused(request, [_("This file holds characters a workflow can't (NUL).")])
    try:
        version = actions.import_workflow(actor=request.user, data=data)
    except actions.WorkflowError as exc:
        return _refused(request, [_("Nothing was imported:")] + exc.errors)
    messages.success(request, _("Imported “%(name)s” as a new, inactive workflow.") % {"name": version.workflow.name})
    return redirect("workflow_edit", version.workflow_id)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_install(request: HttpRequest) -> HttpResponse:
    """A copy of one of the ready-made workflows, opened in the editor."""
    try:
        version = actions.install_template(actor=request.user, slug=request.POST.get("template", "")[:100])
    except actions.WorkflowError as exc:
        return _refused(request, exc.errors)
    messages.success(request, _("“%(name)s” is a new, inactive workflow: edit it, test it, then activate it.")
                     % {"name": version.workflow.name})
    return redirect("workflow_edit", version.workflow_id)


def _workflow_or_404(pk: int) -> Workflow:
    workflow = selectors.workflow(pk)
    if workflow is None:
        raise Http404(_("No such workflow."))
    return workflow


def _back(request, workflow: Workflow) -> HttpResponse:
    if request.POST.get("back") == "edit":
        return redirect("workflow_edit", workflow.pk)
    return redirect("workflow_list")


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_activate(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(pk)
    try:
        workflow = actions.activate_workflow(actor=request.user, workflow=workflow)
    except actions.WorkflowError as exc:
        messages.error(request, _("“%(name)s” was not activated: %(errors)s")
                       % {"name": workflow.name, "errors": " ".join(exc.errors)})
    else:
        messages.success(request, _("“%(name)s” is active: version %(n)s runs on the events that arrive from now on.")
                         % {"name": workflow.name, "n": workflow.active_version.number})
    return _back(request, workflow)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = actions.deactivate_workflow(actor=request.user, workflow=_workflow_or_404(pk))
    messages.success(request, _("“%(name)s” is inactive: it runs on no new event.") % {"name": workflow.name})
    return _back(request, workflow)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(pk)
    try:
        version = actions.duplicate_workflow(actor=request.user, workflow=workflow)
    except actions.WorkflowError as exc:
        messages.error(request, _("“%(name)s” could not be copied: %(errors)s")
                       % {"name": workflow.name, "errors": " ".join(exc.errors)})
        return _back(request, workflow)
    messages.success(request, _("“%(name)s” is a new, inactive copy.") % {"name": version.workflow.name})
    return redirect("workflow_edit", version.workflow_id)


@require_GET
@permission_required(VIEW, raise_exception=True)
def workflow_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The newest version as a JSON file to review, diff and import elsewhere."""
    workflow = _workflow_or_404(pk)
    data = actions.export_workflow(workflow)
    name = slugify(workflow.name)[:80].strip("-") or f"workflow-{workflow.pk}"
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return response


# --- the editor -------------------------------------------------------------------------------------


def _editor_context(request, draft: Draft, *, focus: str = "", workflow: Workflow | None = None, **extra) -> dict:
    editor = build(draft, focus=focus, choices=selectors.editor_choices())
    trigger = editor.definition.get("trigger") or {}
    posted = request.POST if request.method == "POST" else {}
    context = {"editor": editor, "workflow": workflow, "nav": "workflows", "show_errors": True,
               "runs_url": _runs_url(workflow.pk) if workflow else "",
               # What the "Try this draft" inputs held stays chosen through every operation.
               "days": str(posted.get("days", "30"))[:10], "chosen_event": str(posted.get("test_event", ""))[:255],
               "chosen_ticket": str(posted.get("test_ticket", ""))[:20], **extra}
    if editor.trigger_kind == "stripe":
        context["test_events"] = selectors.recent_events(str(trigger.get("stripe") or ""))
    elif editor.trigger_kind == "ticket":
        context["test_tickets"] = selectors.recent_tickets()
    return context


def _editor_page(request, draft: Draft, *, status: int = 200, partial: str = "", **extra) -> HttpResponse:
    workflow = extra.pop("workflow", None)
    if workflow is None and draft.workflow_id:
        workflow = selectors.workflow(draft.workflow_id)
        if workflow is None:
            raise Http404(_("No such workflow."))
    context = _editor_context(request, draft, workflow=workflow, **extra)
    template = f"{EDITOR_TEMPLATE}#{partial}" if partial and request.htmx else EDITOR_TEMPLATE
    return render(request, template, context, status=status)


@require_GET
@permission_required(VIEW, raise_exception=True)
def workflow_new(request: HttpRequest) -> HttpResponse:
    draft = Draft(name="", workflow_id=None, definition=editor_definition(NEW_DEFINITION))
    return _editor_page(request, draft, show_errors=False)


@require_GET
@permission_required(VIEW, raise_exception=True)
def workflow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = _workflow_or_404(pk)
    version = selectors.newest_version(workflow)
    draft = Draft(name=workflow.name, workflow_id=workflow.pk,
                  definition=editor_definition(version.definition if version else NEW_DEFINITION))
    return _editor_page(request, draft, workflow=workflow)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_editor(request: HttpRequest) -> HttpResponse:
    """One editing operation on the posted draft (or Save), answered with the editor again."""
    draft = parse(request.POST)
    op = request.POST.get("op", "refresh")[:300]
    if op == "save":
        return _save(request, draft)
    try:
        focus = apply(draft, op)
    except OperationError:
        return _editor_page(request, draft, status=400, partial="editor",
                            notice=_("That part of the workflow is no longer there; nothing was changed."))
    return _editor_page(request, draft, focus=focus, partial="editor")


def _save(request, draft: Draft) -> HttpResponse:
    workflow = None
    if draft.workflow_id:
        workflow = selectors.workflow(draft.workflow_id)
        if workflow is None:
            raise Http404(_("No such workflow."))
    try:
        version = actions.save_workflow(actor=request.user, name=draft.name, definition=draft.definition,
                                        workflow=workflow)
    except actions.WorkflowError as exc:
        return _editor_page(request, draft, status=400, partial="editor", workflow=workflow, save_errors=exc.errors)
    messages.success(request, _("Saved “%(name)s” as version %(n)s.") % {"name": version.workflow.name,
                                                                          "n": version.number})
    url = reverse("workflow_edit", args=[version.workflow_id])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _stripe_time(value) -> dt.datetime | None:
    number = parsing.parse_int(value, minimum=0, maximum=253402300799)
    return dt.datetime.fromtimestamp(number, tz=dt.timezone.utc) if number is not None else None


# --- trying a draft ------------------------------------------------------------------------------


def _result(request, draft: Draft, context: dict, *, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{EDITOR_TEMPLATE}#result", context, status=status)
    return _editor_page(request, draft, status=status, **context)


def _fix_first(request, draft: Draft, kind: str) -> HttpResponse | None:
    errors = validate_definition(draft.definition)
    if not errors:
        return None
    return _result(request, draft, {"result_kind": kind, "result_errors": [
        _("Fix the workflow first; it can't be tested as it is:")] + errors}, status=400)


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_test(request: HttpRequest) -> HttpResponse:
    """The draft run on one stored event (or ticket), without side effects: matched or not, each
    step, the branch taken, each action with its parameters rendered."""
    draft = parse(request.POST)
    refused = _fix_first(request, draft, "test")
    if refused:
        return refused
    trigger = draft.definition["trigger"]
    subject = ""
    if "stripe" in trigger:
        event_id = request.POST.get("test_event", "")[:255]
        payload = selectors.stored_event(event_id, trigger["stripe"])
        if payload is None:
            return _result(request, draft, {"result_kind": "test", "result_errors": [
                _("Choose a stored %(event)s event to test with.") % {"event": trigger["stripe"]}]}, status=400)
        context, subject = stripe_context(payload), event_id
    elif "ticket" in trigger:
        ticket, message = selectors.ticket_for_test(parsing.parse_int(request.POST.get("test_ticket")))
        if ticket is None:
            return _result(request, draft, {"result_kind": "test", "result_errors": [
                _("Choose a ticket to test with.")]}, status=400)
        if trigger["ticket"] == "message.received" and message is None:
            return _result(request, draft, {"result_kind": "test", "result_errors": [
                _("Ticket #%(number)s has no message from the customer to test with.") % {"number": ticket.number}]},
                status=400)
        context = ticket_context(ticket, message if trigger["ticket"] == "message.received" else None,
                                 trigger=trigger["ticket"])
        subject = f"#{ticket.number}"
    else:
        context, subject = {"event": {"type": "schedule", "id": f"schedule:{trigger['schedule']}"}}, ""
    plan = plan_run(draft.definition, context)
    return _result(request, draft, {"result_kind": "test", "subject": subject, "plan": plan,
                                    "planned": [describe_step(s) for s in plan.steps],
                                    "failed": bool(plan.error) or any(s.status == "error" for s in plan.steps)})


@require_POST
@permission_required(VIEW, raise_exception=True)
def workflow_backtest(request: HttpRequest) -> HttpResponse:
    """The draft against the stored events of the last N days, with no side effects: totals, and
    per event whether it matched, the path it took and what each action would have done."""
    draft = parse(request.POST)
    days = parsing.parse_int(request.POST.get("days"), minimum=BACKTEST_DAYS[0], maximum=BACKTEST_DAYS[1])
    if days is None:
        return _result(request, draft, {"result_kind": "backtest", "result_errors": [
            _("Say how many days back to test, from %(min)s to %(max)s.") % {"min": BACKTEST_DAYS[0],
                                                                           "max": BACKTEST_DAYS[1]}]}, status=400)
    refused = _fix_first(request, draft, "backtest")
    if refused:
        return refused
    try:
        report = backtest(draft.definition, days=days)
    except BacktestError as exc:
        return _result(request, draft, {"result_kind": "backtest", "result_errors": [str(exc)]}, status=400)
    listed = report.outcomes[:BACKTEST_LISTED]
    outcomes = [{"outcome": o, "planned": [describe_step(s) for s in o.steps], "when": _stripe_time(o.created),
                 # The run's error, unless one of its steps says it already.
                 "error": "" if any(s.error for s in o.steps) else o.error}
                for o in listed]
    shown = len(listed)
    return _result(request, draft, {
        "result_kind": "backtest", "report": report, "backtest_days": days, "outcomes": outcomes,
        "refunds": [format_money(amount, currency) for currency, amount in sorted(report.refunds.items())],
        # The backtest lists the first 500 events that matched or failed; this page the first 100.
        "capped": len(report.outcomes) > shown or report.matched > len(report.outcomes),
        "shown": shown,
        "not_matched": report.events - report.matched,
        "actions": [(action_name(a), n) for a, n in sorted(report.totals.items())],
        "capped_note": ngettext("Showing the first %(n)s event that matched or failed.",
                                "Showing the first %(n)s events that matched or failed.", shown) % {"n": shown},
    })
