"""Reads for the workflow pages: the list with its run counts, one workflow and its newest
version, the stored events and tickets a draft can be tested with, the editor's choices."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

from .models import Workflow, WorkflowRun, WorkflowVersion

RECENT_DAYS = 7
TEST_CHOICES = 25  # stored events or tickets offered to test a draft with


def workflow_rows(now: dt.datetime | None = None) -> list[Workflow]:
    """Every workflow with its newest version (number and trigger), its last run, and its runs
    and failures of the last seven days: one query."""
    since = (now or timezone.now()) - dt.timedelta(days=RECENT_DAYS)
    newest = WorkflowVersion.objects.filter(workflow=OuterRef("pk")).order_by("-number")
    recent = Q(runs__created__gte=since)
    return list(
        Workflow.objects.select_related("active_version")
        .annotate(
            newest_number=Subquery(newest.values("number")[:1]),
            newest_trigger=Subquery(newest.values("trigger")[:1]),
            last_run=Max("runs__created"),
            runs_recent=Count("runs", filter=recent),
            failures_recent=Count("runs", filter=recent & Q(runs__status=WorkflowRun.Status.FAILED)),
        )
        .order_by("name", "id")
    )


def workflow(pk) -> Workflow | None:
    if not isinstance(pk, int):
        return None
    return (Workflow.objects.select_related("active_version")
            .annotate(newest_number=Subquery(WorkflowVersion.objects.filter(workflow=OuterRef("pk"))
                                             .order_by("-number").values("number")[:1]))
            .filter(pk=pk).first())


def newest_version(workflow: Workflow) -> WorkflowVersion | None:
    return workflow.versions.order_by("-number").first()


def recent_events(event_type: str, limit: int = TEST_CHOICES) -> list:
    """The newest stored Stripe events of one type, to test a draft with (newest first)."""
    from payments.models import WebhookEvent

    if not event_type:
        return []
    return list(WebhookEvent.objects.filter(type=event_type).order_by("-created", "-id")
                .only("id", "type", "created", "object_id")[:limit])


def stored_event(event_id: str, event_type: str) -> dict | None:
    """One stored event's payload, when it is of `event_type`."""
    from payments.models import WebhookEvent

    if not event_id or not event_type or len(event_id) > 255:
        return None
    return WebhookEvent.objects.filter(pk=event_id, type=event_type).values_list("payload", flat=True).first()


def recent_tickets(limit: int = TEST_CHOICES) -> list:
    from tickets.models import Ticket

    return list(Ticket.objects.select_related("requester").order_by("-created", "-id")[:limit])


def ticket_for_test(pk):
    """A ticket and its newest message from the customer (for message.received), or (None, None)."""
    from tickets.models import Message, Ticket

    if not isinstance(pk, int):
        return None, None
    ticket = Ticket.objects.select_related("requester", "assignee", "team").filter(pk=pk).first()
    if ticket is None:
        return None, None
    message = (Message.objects.filter(ticket=ticket, kind=Message.Kind.INBOUND).order_by("-created", "-id").first())
    return ticket, message


def editor_choices() -> dict:
    """What the editor's selects offer: teams by slug, people by username, active macros by name."""
    from tickets import selectors as tickets

    return {
        "teams": [(t.slug, t.name) for t in tickets.teams()],
        "users": [(u.username, u.get_full_name() or u.username) for u in tickets.assignable_agents()],
        "macros": [m.name for m in tickets.active_macros()],
    }


def ticket_events(trigger: str, *, since, until):
    """The stored ticket events of one ticket trigger in [since, until), oldest first, as
    (event id, Unix time, run context): tickets opened, customers' messages received, tickets
    solved (the last time each was). What a backtest of a ticket workflow replays."""
    from tickets.models import Message, Ticket

    from .engine import ticket_context

    if trigger == "message.received":
        messages = (Message.objects.select_related("ticket__requester", "ticket__team", "ticket__assignee")
                    .prefetch_related("ticket__tags")
                    .filter(kind=Message.Kind.INBOUND, created__gte=since, created__lt=until)
                    .order_by("created", "id"))
        for message in messages.iterator(chunk_size=500):
            yield (f"message.received:{message.pk}", int(message.created.timestamp()),
                   ticket_context(message.ticket, message, trigger=trigger))
        return
    field = "solved_at" if trigger == "ticket.solved" else "created"
    tickets = (Ticket.objects.select_related("requester", "team", "assignee").prefetch_related("tags")
               .filter(**{f"{field}__gte": since, f"{field}__lt": until}).order_by(field, "id"))
    for ticket in tickets.iterator(chunk_size=500):
        yield (f"{trigger}:{ticket.pk}", int(getattr(ticket, field).timestamp()),
               ticket_context(ticket, trigger=trigger))
