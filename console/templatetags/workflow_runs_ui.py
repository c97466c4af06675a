"""Badges and labels of workflow runs and their steps; the runs beside a ticket."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _, pgettext

from console.workflows import describe, run_selectors
from console.workflows.models import WorkflowRun

register = template.Library()

_RUN_TONE = {"succeeded": "badge-ok", "failed": "badge-bad", "stopped": "badge-warn", "pending": "badge-info",
             "running": "badge-info"}
_STEP_TONE = {"done": "badge-ok", "skipped": "badge-warn", "failed": "badge-bad", "error": "badge-bad",
              "planned": "badge-info"}


@register.filter
def item(mapping, key):
    """mapping[key], or None: a dict read by a key the template holds."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag
def run_badge(run: WorkflowRun) -> str:
    return format_html('<span class="badge {}">{}</span>', _RUN_TONE.get(run.status, ""), run.get_status_display())


def _step_status(status: str) -> str:
    return {
        "done": pgettext("workflow step", "Done"),
        "skipped": pgettext("workflow step", "Skipped"),
        "failed": pgettext("workflow step", "Failed"),
        "error": pgettext("workflow step", "Error"),
        "planned": pgettext("workflow step", "Not done yet"),
    }.get(status, status)


@register.simple_tag
def step_badge(step: dict) -> str:
    status = step.get("status") or ""
    return format_html('<span class="badge {}">{}</span>', _STEP_TONE.get(status, ""), _step_status(status))


@register.simple_tag
def step_title(step: dict) -> str:
    detail = step.get("detail") or {}
    kind = step.get("kind")
    if kind == "action":
        return describe.action_name(detail.get("action") or "")
    if kind == "fetch":
        return format_html('{} <span class="mono">{}</span>', _("Fetch %(object)s") % {"object": detail.get("object", "")},
                           detail.get("id") or "")
    if kind == "branch":
        taken = detail.get("path")
        if taken == "else":
            return _("Branch: all other cases")
        if taken is None:
            return _("Branch: no path matched")
        return _("Branch: path %(n)s") % {"n": taken}
    if kind == "conditions":
        return _("Trigger conditions")
    return str(kind or "")


@register.simple_tag
def ticket_workflow_runs(ticket) -> list:
    return run_selectors.ticket_runs(str(ticket or ""))


@register.simple_tag
def run_summary(run: WorkflowRun) -> str:
    return describe.run_sentence([describe.step_facts(s) for s in run.steps or [] if s.get("kind") == "action"])


@register.filter
def param_value(value) -> str:
    """A step's parameter as people read it: a list as "a, b"; a money value as "15 USD"."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return f"{value['amount']} {str(value['currency']).upper()}"
    return "" if value is None else str(value)
