"""Saving, versions, activation, export and import of workflows (console/workflows/actions.py)
and `manage.py workflows`: only admins write; every change is audited; nothing half saved."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEntry
from console.workflows import actions
from console.workflows.models import Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

DISPUTE_TICKET = {
    "trigger": {"stripe": "charge.dispute.created"},
    "steps": [{"action": "create_ticket", "params": {"subject": "Dispute {{ dispute.id }}", "team": "finance",
                                                      "tags": ["dispute"]}}],
}
EVERY_MORNING = {"trigger": {"schedule": "09:00"}, "steps": [{"action": "notify", "params": {"team": "finance",
                                                                                               "text": "Good morning"}}]}


def test_an_admin_saves_versions_and_each_save_is_audited(admin_user):
    first = actions.save_workflow(actor=admin_user, name="Chargebacks to finance", definition=DISPUTE_TICKET)
    second = actions.save_workflow(actor=admin_user, name="Chargebacks to finance", definition=EVERY_MORNING,
                                   workflow=first.workflow)
    assert (first.number, second.number) == (1, 2) and second.workflow == first.workflow
    assert first.trigger == "stripe:charge.dispute.created" and second.trigger == "schedule:09:00"
    saves = AuditEntry.objects.filter(action="workflow.save").order_by("id")
    assert [e.details["version"] for e in saves] == [1, 2] and saves[0].actor == admin_user
    assert first.workflow.status == Workflow.Status.INACTIVE and first.workflow.trigger == ""


@pytest.mark.parametrize("role", ["agent", "finance", "no_role"])
def test_other_roles_may_not_write_workflows(request, role):
    with pytest.raises(PermissionDenied):
        actions.save_workflow(actor=request.getfixturevalue(role), name="x", definition=DISPUTE_TICKET)
    with pytest.raises(PermissionDenied):
        actions.save_workflow(actor=None, name="x", definition=DISPUTE_TICKET)  # the editor always has a person
    assert not Workflow.objects.exists()


def test_activation_indexes_the_trigger_and_editing_keeps_the_active_version(admin_user):
    v1 = actions.save_workflow(actor=admin_user, name="Chargebacks", definition=DISPUTE_TICKET)
    workflow = actions.activate_workflow(actor=admin_user, workflow=v1.workflow)
    assert workflow.status == Workflow.Status.ACTIVE and workflow.trigger == "stripe:charge.dispute.created"
    assert list(Workflow.objects.filter(trigger="stripe:charge.dispute.created")) == [workflow]
    # A new version is saved; the active one still runs until activated again.
    actions.save_workflow(actor=admin_user, name="Chargebacks", definition=EVERY_MORNING, workflow=workflow)
    workflow.refresh_from_db()
    assert workflow.active_version == v1 and workflow.trigger == "stripe:charge.dispute.created"
    actions.activate_workflow(actor=admin_user, workflow=workflow)
    workflow.refresh_from_db()
    assert workflow.active_version.number == 2 and workflow.trigger == "schedule:09:00"
    actions.deactivate_workflow(actor=admin_user, workflow=workflow)
    workflow.refresh_from_db()
    assert workflow.status == Workflow.Status.INACTIVE and workflow.trigger == ""
    assert [e.action for e in AuditEntry.objects.filter(action__startswith="workflow.").order_by("id")] == [
        "workflow.save", "workflow.activate", "workflow.save", "workflow.activate", "workflow.deactivate"]


def test_a_broken_definition_saves_nothing_and_says_every_reason(admin_user):
    broken = {"trigger": {"stripe": "charge.dispute.created"}, "steps": [{"action": "launch_rockets"}, {}]}
    with pytest.raises(actions.WorkflowError) as caught:
        actions.save_workflow(actor=admin_user, name=" ", definition=broken)
    assert caught.value.errors == [
        "Give the workflow a name.",
        "Step 1: “launch_rockets” is not an action a workflow can take.",
        "Step 2 is empty.",
    ]
    assert not Workflow.objects.exists() and not AuditEntry.objects.exists()


def test_export_then_import_round_trips_and_duplicate_copies(admin_user):
    v1 = actions.save_workflow(actor=admin_user, name="Chargebacks", definition=DISPUTE_TICKET)
    exported = actions.export_workflow(v1.workflow)
    assert exported == {"paydesk_workflow": 1, "name": "Chargebacks", "definition": DISPUTE_TICKET}
    imported = actions.import_workflow(actor=admin_user, data=json.loads(json.dumps(exported)))
    assert imported.workflow != v1.workflow and imported.definition == DISPUTE_TICKET
    assert imported.workflow.status == Workflow.Status.INACTIVE
    copy = actions.duplicate_workflow(actor=admin_user, workflow=v1.workflow)
    assert copy.workflow.name == "Copy of Chargebacks" and copy.number == 1


@pytest.mark.parametrize("data, error", [
    ({"name": "x", "definition": DISPUTE_TICKET}, "This is not a Paydesk workflow export (format 1)."),
    ({"paydesk_workflow": 1, "name": "x", "definition": {**DISPUTE_TICKET, "steps": [{"action": "rm -rf /"}]}},
     "Step 1: “rm -rf /” is not an action a workflow can take."),
    ({"paydesk_workflow": 1, "name": "<script>alert(1)</script>" * 20, "definition": DISPUTE_TICKET},
     "A workflow's name has at most 200 characters."),
    ("not even an object", "This is not a Paydesk workflow export (format 1)."),
])
def test_an_import_with_any_mistake_saves_nothing(admin_user, data, error):
    with pytest.raises(actions.WorkflowError) as caught:
        actions.import_workflow(actor=admin_user, data=data)
    assert error in caught.value.errors
    assert not Workflow.objects.exists() and not WorkflowVersion.objects.exists()


def test_manage_py_workflows_moves_a_workflow_between_consoles(admin_user, tmp_path, capsys):
    v1 = actions.save_workflow(actor=admin_user, name="Chargebacks", definition=DISPUTE_TICKET)
    file = tmp_path / "chargebacks.json"
    call_command("workflows", "export", str(v1.workflow.pk), str(file))
    assert json.loads(file.read_text())["definition"] == DISPUTE_TICKET
    call_command("workflows", "import", str(file), "--activate")
    imported = Workflow.objects.exclude(pk=v1.workflow.pk).get()
    assert imported.status == Workflow.Status.ACTIVE and imported.trigger == "stripe:charge.dispute.created"
    entry = AuditEntry.objects.get(action="workflow.import")
    assert entry.actor is None  # an operator at the shell: "system"
    call_command("workflows", "list")
    assert "Chargebacks" in capsys.readouterr().out
    call_command("workflows", "deactivate", str(imported.pk))
    imported.refresh_from_db()
    assert imported.status == Workflow.Status.INACTIVE
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not a readable JSON file"):
        call_command("workflows", "import", str(bad))
    with pytest.raises(CommandError, match="No workflow 999"):
        call_command("workflows", "activate", "999")


def test_templates_install_from_the_command_line(capsys):
    call_command("workflows", "templates")
    assert "chargeback-ticket" in capsys.readouterr().out
    call_command("workflows", "install", "chargeback-ticket", "--activate")
    workflow = Workflow.objects.get()
    assert workflow.name == "Chargeback: a ticket for finance" and workflow.trigger == "stripe:charge.dispute.created"
    with pytest.raises(CommandError, match="“nope” is not a template"):
        call_command("workflows", "install", "nope")
    assert Workflow.objects.count() == 1


@pytest.mark.parametrize("name, text", [("Fraud\x00", "ok"), ("Fraud", "bad\x00byte"), ("Fraud", "lone \ud800")])
def test_an_import_with_characters_postgres_cannot_store_is_refused_whole(name, text):
    from console.workflows.actions import WorkflowError, import_workflow
    from console.workflows.models import Workflow

    data = {"paydesk_workflow": 1, "name": name, "definition": {
        "trigger": {"ticket": "ticket.created"}, "steps": [{"action": "add_note", "params": {"text": text}}]}}
    with pytest.raises(WorkflowError) as refused:
        import_workflow(actor=None, data=data)
    assert "can't be stored" in str(refused.value)
    assert not Workflow.objects.exists()
