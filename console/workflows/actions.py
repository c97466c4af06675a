"""Writes to workflows, one function per action: validate, check who may, do it atomically,
audit it. The editor (admins) passes the person; `manage.py workflows` passes actor=None, which
only import, activate and deactivate accept (an operator at the shell, recorded as "system").

Export/import is JSON a reviewer can diff: {"paydesk_workflow": 1, "name": ..., "definition": ...}.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _, pgettext_lazy

from audit.actors import require
from audit.log import record
from audit.models import AuditAction

from . import index
from .definition import trigger_key, validate_definition
from .models import Workflow, WorkflowVersion

EXPORT_FORMAT = 1
MAX_NAME = 200


class WorkflowError(Exception):
    """A workflow that can't be saved as given; `errors` says every reason, for the editor."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _checked(name, definition) -> str:
    errors = []
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        errors.append(_("Give the workflow a name."))
    elif len(name) > MAX_NAME:
        errors.append(_("A workflow's name has at most %(n)s characters.") % {"n": MAX_NAME})
    errors += validate_definition(definition)
    if not errors and not _storable(name, definition):
        errors.append(_("This workflow holds characters that can't be stored (a NUL or a broken character)."))
    if errors:
        raise WorkflowError(errors)
    return name


def _storable(name: str, definition) -> bool:
    """No NUL and no lone surrogate anywhere: PostgreSQL refuses both (an import file may hold them)."""
    try:
        text = name + json.dumps(definition, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        return False
    return "\x00" not in text and "\\u0000" not in text


def _target(workflow: Workflow) -> str:
    return f"workflow:{workflow.pk}"


def _new_version(workflow: Workflow, definition: dict, actor) -> WorkflowVersion:
    number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return WorkflowVersion.objects.create(workflow=workflow, number=number, definition=definition,
                                          trigger=trigger_key(definition), created_by=actor)


def save_workflow(*, actor, name: str, definition: dict, workflow: Workflow | int | None = None) -> WorkflowVersion:
    """A new version of `workflow` (a new workflow when None). An active workflow keeps running
    the version it was activated with until it is activated again."""
    require(actor, "workflows.change_workflow" if workflow else "workflows.add_workflow",
            doing=pgettext_lazy("permission", "edit workflows"))
    name = _checked(name, definition)
    with transaction.atomic():
        if workflow is None:
            workflow = Workflow.objects.create(name=name, created_by=actor)
        else:
            workflow = Workflow.objects.select_for_update().get(pk=getattr(workflow, "pk", workflow))
            if workflow.name != name:
                workflow.name = name
                workflow.save(update_fields=["name", "updated"])
        version = _new_version(workflow, definition, actor)
        record(actor=actor, action=AuditAction.WORKFLOW_SAVE, target=_target(workflow), version=version.number,
               trigger=version.trigger)
    return version


def activate_workflow(*, actor, workflow: Workflow | int, version: int | None = None) -> Workflow:
    """Run `version` (the newest when None) from now on, for the events that arrive from now on."""
    require(actor, "workflows.change_workflow", doing=pgettext_lazy("permission", "activate workflows"), system=True)
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=getattr(workflow, "pk", workflow))
        versions = workflow.versions.order_by("-number")
        chosen = versions.filter(number=version).first() if version else versions.first()
        if chosen is None:
            raise WorkflowError([_("This workflow has no version %(n)s.") % {"n": version}])
        errors = validate_definition(chosen.definition)  # what was valid when saved may not be now
        if errors:
            raise WorkflowError(errors)
        if workflow.status == Workflow.Status.ACTIVE and workflow.active_version_id == chosen.pk:
            return workflow
        workflow.status, workflow.active_version, workflow.trigger = Workflow.Status.ACTIVE, chosen, chosen.trigger
        workflow.save(update_fields=["status", "active_version", "trigger", "updated"])
        record(actor=actor, action=AuditAction.WORKFLOW_ACTIVATE, target=_target(workflow), version=chosen.number)
        transaction.on_commit(index.bump_generation)  # every process reloads at its next event
    return workflow


def deactivate_workflow(*, actor, workflow: Workflow | int) -> Workflow:
    require(actor, "workflows.change_workflow", doing=pgettext_lazy("permission", "deactivate workflows"),
            system=True)
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=getattr(workflow, "pk", workflow))
        if workflow.status == Workflow.Status.INACTIVE:
            return workflow
        workflow.status, workflow.trigger = Workflow.Status.INACTIVE, ""
        workflow.save(update_fields=["status", "trigger", "updated"])
        record(actor=actor, action=AuditAction.WORKFLOW_DEACTIVATE, target=_target(workflow))
        transaction.on_commit(index.bump_generation)
    return workflow


def duplicate_workflow(*, actor, workflow: Workflow | int) -> WorkflowVersion:
    """A new, inactive workflow from the newest version of `workflow`."""
    source = Workflow.objects.get(pk=getattr(workflow, "pk", workflow))
    latest = source.versions.order_by("-number").first()
    name = (_("Copy of %(name)s") % {"name": source.name})[:MAX_NAME]
    return save_workflow(actor=actor, name=name, definition=latest.definition if latest else {})


def export_workflow(workflow: Workflow | int) -> dict:
    """The newest version as JSON to review, diff and import elsewhere."""
    workflow = Workflow.objects.get(pk=getattr(workflow, "pk", workflow))
    latest = workflow.versions.order_by("-number").first()
    return {"paydesk_workflow": EXPORT_FORMAT, "name": workflow.name,
            "definition": latest.definition if latest else {}}


def install_template(*, actor, slug: str) -> WorkflowVersion:
    """A new, inactive workflow from one of templates.TEMPLATES, named as the template is (in the
    installer's language)."""
    from .templates import TEMPLATES

    if slug not in TEMPLATES:
        raise WorkflowError([_("“%(slug)s” is not a template. Templates: %(names)s.")
                             % {"slug": str(slug)[:60], "names": ", ".join(sorted(TEMPLATES))}])
    name, definition = TEMPLATES[slug]
    return import_workflow(actor=actor, data={"paydesk_workflow": EXPORT_FORMAT, "name": str(name),
                                              "definition": definition})


def import_workflow(*, actor, data) -> WorkflowVersion:
    """A new, inactive workflow from an export. Checked whole first: nothing is saved from a
    file with any mistake in it."""
    require(actor, "workflows.add_workflow", doing=pgettext_lazy("permission", "import workflows"), system=True)
    if not isinstance(data, dict) or data.get("paydesk_workflow") != EXPORT_FORMAT:
        raise WorkflowError([_("This is not a Paydesk workflow export (format %(n)s).") % {"n": EXPORT_FORMAT}])
    name = _checked(data.get("name"), data.get("definition"))
    with transaction.atomic():
        workflow = Workflow.objects.create(name=name, created_by=actor)
        version = _new_version(workflow, data["definition"], actor)
        record(actor=actor, action=AuditAction.WORKFLOW_IMPORT, target=_target(workflow), version=version.number,
               trigger=version.trigger)
    return version
