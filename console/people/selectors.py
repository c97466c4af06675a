"""Reads for the people pages."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from audit.models import AuditAction, AuditEntry
from tickets.models import Team, Ticket

from ..roles import WORKFLOW_ROLE


def people():
    """Everyone who signs in (not the service users workflows and reminders act as), active first,
    with their roles, teams and open tickets, in three queries."""
    User = get_user_model()
    open_statuses = [Ticket.Status.OPEN, Ticket.Status.PENDING]
    return (User.objects.exclude(groups__name=WORKFLOW_ROLE)
            .annotate(open_tickets=Count("assigned_tickets", filter=Q(assigned_tickets__status__in=open_statuses),
                                         distinct=True))
            .prefetch_related("groups", "ticket_teams")
            .order_by("-is_active", "username"))


def person(pk) -> object | None:
    return get_user_model().objects.filter(pk=pk).exclude(groups__name=WORKFLOW_ROLE).first()


def role_of(user) -> str:
    names = [g.name for g in user.groups.all()]
    return names[0] if names else ("admin" if user.is_superuser else "")


def teams():
    return Team.objects.order_by("name")


def team_ids(user) -> set[int]:
    return set(Team.objects.filter(members=user).values_list("pk", flat=True))


def last_sso_sign_in(user):
    """The person's latest sign-in through the company's identity provider (the audit log), or None."""
    return (AuditEntry.objects.filter(target=f"user:{user.pk}", action=AuditAction.PERSON_SSO_SIGN_IN)
            .order_by("-created", "-id").first())
