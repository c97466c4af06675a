"""manage.py workflows list | templates | install TEMPLATE [--activate] | export ID [FILE] | import FILE [--activate] |
activate ID [--version N] | deactivate ID

For operators and deployments: move a workflow between a staging and a live console as the JSON
a reviewer read. Recorded in the audit log as "system"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from console.workflows import actions
from console.workflows.models import Workflow


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("list", help="every workflow: id, status, trigger, versions, name")
        sub.add_parser("templates", help="the ready-made workflows install can copy")
        install = sub.add_parser("install", help="a new, inactive workflow from a template")
        install.add_argument("template")
        install.add_argument("--activate", action="store_true", help="activate it once installed")
        export = sub.add_parser("export", help="the newest version of a workflow as JSON")
        export.add_argument("id", type=int)
        export.add_argument("file", nargs="?", help="write here instead of standard output")
        imported = sub.add_parser("import", help="a new, inactive workflow from an export")
        imported.add_argument("file")
        imported.add_argument("--activate", action="store_true", help="activate it once imported")
        activate = sub.add_parser("activate", help="run the newest (or --version N) version from now on")
        activate.add_argument("id", type=int)
        activate.add_argument("--version", type=int)
        deactivate = sub.add_parser("deactivate", help="stop running a workflow")
        deactivate.add_argument("id", type=int)

    def handle(self, *args, command: str, **options):
        try:
            getattr(self, f"_{command}")(**options)
        except Workflow.DoesNotExist:
            raise CommandError(f"No workflow {options.get('id')}.") from None
        except actions.WorkflowError as exc:
            raise CommandError("\n".join(exc.errors)) from None

    def _list(self, **options):
        rows = Workflow.objects.annotate(n=Count("versions")).order_by("id")
        for w in rows:
            self.stdout.write(f"{w.pk:>5}  {w.status:<8}  {w.trigger or '-':<45}  v{w.n:<3}  {w.name}")
        if not rows:
            self.stdout.write("No workflows.")

    def _templates(self, **options):
        from console.workflows.templates import TEMPLATES

        for slug, (name, definition) in sorted(TEMPLATES.items()):
            trigger = next(iter(definition["trigger"].values()))
            self.stdout.write(f"{slug:<36}  {trigger:<36}  {name}")

    def _install(self, template: str, activate: bool = False, **options):
        version = actions.install_template(actor=None, slug=template)
        if activate:
            actions.activate_workflow(actor=None, workflow=version.workflow)
        state = "active" if activate else "inactive"
        self.stdout.write(f"Installed workflow {version.workflow_id} ({state}): {version.workflow.name}")

    def _export(self, id: int, file: str | None = None, **options):
        text = json.dumps(actions.export_workflow(id), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if file:
            Path(file).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)

    def _import(self, file: str, activate: bool = False, **options):
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(f"{file}: not a readable JSON file ({exc.__class__.__name__}).") from None
        version = actions.import_workflow(actor=None, data=data)
        if activate:
            actions.activate_workflow(actor=None, workflow=version.workflow)
        state = "active" if activate else "inactive"
        self.stdout.write(f"Imported workflow {version.workflow_id} ({state}): {version.workflow.name}")

    def _activate(self, id: int, version: int | None = None, **options):
        workflow = actions.activate_workflow(actor=None, workflow=id, version=version)
        self.stdout.write(f"Workflow {workflow.pk} runs version {workflow.active_version.number}.")

    def _deactivate(self, id: int, **options):
        actions.deactivate_workflow(actor=None, workflow=id)
        self.stdout.write(f"Workflow {id} is inactive.")
