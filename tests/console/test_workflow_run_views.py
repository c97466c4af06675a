"""The run pages (console/workflows/run_views.py): admins see every run and retry failed ones;
agents and finance see the runs that touched a ticket or a customer; anonymous visitors log in."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from console.workflows.actions import activate_workflow, import_workflow
from console.workflows.models import WorkflowRun
from tests import factories, helpers

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket_run(db):
    version = import_workflow(actor=None, data={"paydesk_workflow": 1, "name": "Tag refunds", "definition": {
        "trigger": {"ticket": "ticket.created"}, "steps": [{"action": "tag_ticket", "params": {"tags": ["auto"]}},
                                                           {"action": "assign_ticket", "params": {"team": "ghosts"}}]}})
    activate_workflow(actor=None, workflow=version.workflow_id)
    with helpers.committed():
        ticket = factories.TicketFactory(subject="Refund please")
    return WorkflowRun.objects.get(ticket_id=ticket.pk), ticket


@pytest.fixture
def quiet_run(ticket_run):
    """A run about no ticket and no customer (a scheduled digest): the admins' alone."""
    run, _ticket = ticket_run
    return WorkflowRun.objects.create(workflow=run.workflow, version=run.version, event_key="schedule:2026-12-04T09:00",
                                      trigger="schedule:09:00", status=WorkflowRun.Status.FAILED, error="no team")


def test_the_run_page_says_what_each_step_did(as_user, agent, ticket_run):
    run, ticket = ticket_run
    page = as_user(agent).get(f"/workflows/runs/{run.pk}/").content.decode()
    assert "Tag refunds" in page and "Tag the ticket" in page and "Tagged auto" in page
    assert "Skipped" in page and "There is no team “ghosts”." in page  # the refusal, in words
    assert f'href="/tickets/{ticket.number}/"' in page
    assert "Retry from the failed step" not in page  # it did not fail; and agents don't retry


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_every_role_lists_ticket_runs_but_only_admins_see_runs_about_nobody(request, as_user, role, ticket_run,
                                                                            quiet_run):
    user = request.getfixturevalue(role)
    client = as_user(user)
    listing = client.get("/workflows/runs/").content.decode()
    assert f'href="/workflows/runs/{ticket_run[0].pk}/"' in listing
    sees_all = role == "admin_user"
    assert (f'href="/workflows/runs/{quiet_run.pk}/"' in listing) is sees_all
    assert client.get(f"/workflows/runs/{quiet_run.pk}/").status_code == (200 if sees_all else 404)


def test_anonymous_is_sent_to_login(client, ticket_run):
    response = client.get(f"/workflows/runs/{ticket_run[0].pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_filters_by_status_and_ticket_and_serves_the_table_to_htmx(as_user, admin_user, ticket_run, quiet_run):
    client = as_user(admin_user)
    failed = client.get("/workflows/runs/?status=failed", HTTP_HX_REQUEST="true").content.decode()
    assert f"/workflows/runs/{quiet_run.pk}/" in failed and f"/workflows/runs/{ticket_run[0].pk}/" not in failed
    assert "<html" not in failed  # the table alone
    by_ticket = client.get(f"/workflows/runs/?ticket={ticket_run[1].pk}").content.decode()
    assert f"/workflows/runs/{ticket_run[0].pk}/" in by_ticket and f"/workflows/runs/{quiet_run.pk}/" not in by_ticket


def test_an_admin_retries_a_failed_run_agents_and_finance_cannot(as_user, admin_user, agent, finance, quiet_run,
                                                                 django_capture_on_commit_callbacks):
    for person in (agent, finance):
        assert as_user(person).post(f"/workflows/runs/{quiet_run.pk}/retry").status_code == 403
    quiet_run.refresh_from_db()
    assert quiet_run.status == WorkflowRun.Status.FAILED
    response = as_user(admin_user).post(f"/workflows/runs/{quiet_run.pk}/retry")
    assert response.status_code == 302 and response["Location"] == f"/workflows/runs/{quiet_run.pk}/"
    quiet_run.refresh_from_db()
    assert quiet_run.status == WorkflowRun.Status.PENDING
    assert AuditEntry.objects.filter(action="workflow.run_retry", actor=admin_user).exists()


def test_the_ticket_panel_lists_the_runs_that_touched_the_ticket(as_user, agent, ticket_run):
    run, ticket = ticket_run
    panel = as_user(agent).get(f"/customers/{ticket.requester_id}/panel?ticket={ticket.pk}").content.decode()
    assert "Workflows on this ticket" in panel and f"/workflows/runs/{run.pk}/" in panel and "Tagged auto" in panel
