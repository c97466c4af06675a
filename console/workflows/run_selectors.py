"""Reads of workflow runs for the run pages, the ticket's panel and the customer's timeline.

Admins (workflows.view_workflow) see every run. People who work tickets see the runs that
touched a ticket or a customer (every agent and finance person can open those); a run that
concerned neither (a morning digest) is the admins' business."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from common import parsing

from .models import WorkflowRun

PAGE = 50


def can_see_all(user) -> bool:
    return user.has_perm("workflows.view_workflow")


def visible_runs(user) -> QuerySet[WorkflowRun]:
    runs = WorkflowRun.objects.select_related("workflow", "version")
    if can_see_all(user):
        return runs
    if not user.has_perm("tickets.view_ticket"):
        return runs.none()
    return runs.filter(Q(ticket_id__isnull=False) | Q(contact_id__isnull=False))


def run_list(user, *, workflow: str = "", status: str = "", ticket: str = "", page: str = "") -> tuple[list, bool, int]:
    """A page of runs, newest first, filtered by what the query string says (bad values are
    ignored, never an error): (runs, has_more, page number)."""
    runs = visible_runs(user)
    if (workflow_id := parsing.parse_int(workflow)) is not None:
        runs = runs.filter(workflow_id=workflow_id)
    if status in WorkflowRun.Status.values:
        runs = runs.filter(status=status)
    if (ticket_id := parsing.parse_int(ticket)) is not None:
        runs = runs.filter(ticket_id=ticket_id)
    number = max(1, min(parsing.parse_int(page) or 1, 10_000))
    rows = list(runs.order_by("-created", "-id")[(number - 1) * PAGE:number * PAGE + 1])
    return rows[:PAGE], len(rows) > PAGE, number


def visible_run(user, run_id: int) -> WorkflowRun | None:
    return visible_runs(user).filter(pk=run_id).first()


def ticket_runs(ticket: str, size: int = 5) -> list[WorkflowRun]:
    """The newest runs that concerned a ticket (the panel beside it)."""
    ticket_id = parsing.parse_int(ticket)
    if ticket_id is None:
        return []
    return list(WorkflowRun.objects.select_related("workflow").filter(ticket_id=ticket_id)
                .order_by("-created", "-id")[:size])


def ticket_numbers(runs) -> dict[int, int]:
    """Ticket pk → number (what its URL carries) for the runs' tickets, in one query."""
    from tickets.models import Ticket

    ids = {r.ticket_id for r in runs if r.ticket_id}
    return dict(Ticket.objects.filter(pk__in=ids).values_list("pk", "number")) if ids else {}
