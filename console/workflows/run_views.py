"""The run pages: the list of runs (filtered by workflow, status or ticket) and one run, step
by step, with Retry on a failed run for admins. Who sees what: run_selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import describe, run_selectors
from .models import WorkflowRun
from .runs import retry_run

LIST_TEMPLATE = "workflows/runs.html"
RUN_TEMPLATE = "workflows/run.html"


def _require_some_view(user) -> None:
    if not (run_selectors.can_see_all(user) or user.has_perm("tickets.view_ticket")):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied


@require_GET
@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    _require_some_view(request.user)
    q = request.GET
    runs, has_more, page = run_selectors.run_list(request.user, workflow=q.get("workflow", ""), status=q.get("status", ""),
                                                  ticket=q.get("ticket", ""), page=q.get("page", ""))
    context = {"runs": runs, "has_more": has_more, "page": page, "status": q.get("status", ""),
               "workflow": q.get("workflow", ""), "ticket": q.get("ticket", ""),
               "statuses": WorkflowRun.Status.choices, "nav": "workflows",
               "summaries": {r.pk: _summary(r) for r in runs}, "numbers": run_selectors.ticket_numbers(runs)}
    return render(request, LIST_TEMPLATE + ("#run-table" if request.htmx else ""), context)


def _summary(run: WorkflowRun) -> str:
    return describe.run_sentence([describe.step_facts(s) for s in run.steps or [] if s.get("kind") == "action"])


@require_GET
@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require_some_view(request.user)
    run = run_selectors.visible_run(request.user, run_id)
    if run is None:
        raise Http404(_("No such workflow run"))
    steps = [{**s, "sentence": describe.step_sentence(describe.step_facts(s)) if s.get("kind") == "action" else ""}
             for s in run.steps or []]
    context = {"run": run, "steps": steps, "nav": "workflows", "numbers": run_selectors.ticket_numbers([run]),
               "event_id": run.event_key.partition(":")[2]
               if run.event_key.startswith("stripe:") else ""}
    return render(request, RUN_TEMPLATE + ("#run-steps" if request.htmx else ""), context)


@require_POST
@permission_required("workflows.change_workflow", raise_exception=True)
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_selectors.visible_run(request.user, run_id)
    if run is None:
        raise Http404(_("No such workflow run"))
    if run.status != WorkflowRun.Status.FAILED:
        messages.info(request, _("Only a failed run can be retried; this one is %(status)s.")
                      % {"status": run.get_status_display().lower()})
    else:
        retry_run(actor=request.user, run=run)
        messages.success(request, _("Run %(run)s is queued again; the steps already done stay done.") % {"run": run.pk})
    return redirect("workflow_run", run.pk)
