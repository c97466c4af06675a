"""Reads for the agent inbox and the ticket page.

Every list query here costs the same number of queries whatever the page size: the page
itself is one indexed keyset query (ordered by the next SLA deadline, as the inbox indexes
in tickets.models are), and what each row shows (tags, the requester's email or LINE id) comes
from one prefetch each.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Channel, Contact, ContactMerge, Identity, Macro, Message, Tag, Ticket, Team

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

# The status filter: "unsolved" (open and pending) is what an inbox shows unless asked.
STATUS_FILTERS = {
    "unsolved": list(Ticket.ACTIVE_STATUSES),
    "open": [Ticket.Status.OPEN],
    "pending": [Ticket.Status.PENDING],
    "solved": [Ticket.Status.SOLVED],
    "closed": [Ticket.Status.CLOSED],
    "any": None,
}
SORTS = ("due", "updated")


@dataclass(frozen=True)
class InboxView:
    key: str  # "mine", "unassigned", "all", "team-<slug>"
    label: str
    team: Team | None = None


@dataclass
class Filters:
    status: str = "unsolved"
    channel: str = ""
    priority: str = ""
    tag: str = ""
    sort: str = "due"

    @classmethod
    def from_query(cls, query) -> "Filters":
        f = cls(
            status=query.get("status", "unsolved"),
            channel=query.get("channel", ""),
            priority=query.get("priority", ""),
            tag=query.get("tag", "").strip().lower()[:64],
            sort=query.get("sort", "due"),
        )
        if f.status not in STATUS_FILTERS:
            f.status = "unsolved"
        if f.channel not in Channel.values:
            f.channel = ""
        if f.priority not in Ticket.Priority.values:
            f.priority = ""
        if f.sort not in SORTS:
            f.sort = "due"
        return f

    @property
    def active(self) -> bool:
        return self.status != "unsolved" or bool(self.channel or self.priority or self.tag)

    def query(self) -> dict[str, str]:
        """The non-default filters, for links that keep them (next page, bulk redirect)."""
        q = {}
        if self.status != "unsolved":
            q["status"] = self.status
        for name in ("channel", "priority", "tag"):
            if getattr(self, name):
                q[name] = getattr(self, name)
        if self.sort != "due":
            q["sort"] = self.sort
        return q


@dataclass
class Page:
    rows: list[Ticket]
    cursor: str = ""
    size: int = PAGE_SIZE
    extra: dict = field(default_factory=dict)


def teams() -> list[Team]:
    return list(Team.objects.only("id", "name", "slug"))


def resolve_view(key: str, team_list: list[Team]) -> InboxView | None:
    fixed = {"mine": "My tickets", "unassigned": "Unassigned", "all": "All tickets"}
    if key in fixed:
        return InboxView(key, fixed[key])
    if key.startswith("team-"):
        slug = key[5:]
        for team in team_list:
            if team.slug == slug:
                return InboxView(key, team.name, team)
    return None


def view_filter(view: InboxView, user) -> Q:
    if view.key == "mine":
        return Q(assignee=user)
    if view.key == "unassigned":
        return Q(assignee__isnull=True)
    if view.team is not None:
        return Q(team=view.team)
    return Q()


def inbox_counts(user, team_list: list[Team]) -> dict[str, int]:
    """Unsolved tickets per view, for the navigation: one aggregate query."""
    active = Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES)
    aggregates = {
        "mine": Count("id", filter=Q(assignee=user)),
        "unassigned": Count("id", filter=Q(assignee__isnull=True)),
        "all": Count("id"),
    }
    for team in team_list:
        aggregates[f"team-{team.slug}"] = Count("id", filter=Q(team_id=team.pk))
    return active.aggregate(**aggregates)


def _encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(values, list) or len(values) != 2 or not isinstance(values[1], int):
        return None
    if values[0] is not None:
        if not isinstance(values[0], str):
            return None
        values[0] = parse_datetime(values[0])
        if values[0] is None:
            return None
    return values


def _after(sort: str, cursor: list) -> Q:
    """Rows strictly after the cursor in the page order (sla_due ASC NULLS LAST, id ASC;
    or updated DESC, id DESC)."""
    value, pk = cursor
    if sort == "updated":
        return Q(updated__lt=value) | Q(updated=value, id__lt=pk)
    if value is None:  # already among the tickets without a deadline
        return Q(sla_due__isnull=True, id__gt=pk)
    return Q(sla_due__gt=value) | Q(sla_due=value, id__gt=pk) | Q(sla_due__isnull=True)


def _contact_identities() -> Prefetch:
    return Prefetch(
        "requester__identities",
        queryset=Identity.objects.only("id", "contact_id", "kind", "value").order_by("kind", "id"),
    )


def inbox_page(user, view: InboxView, filters: Filters, after: str = "", size: int = PAGE_SIZE) -> Page:
    size = max(1, min(size, MAX_PAGE_SIZE))
    qs = Ticket.objects.filter(view_filter(view, user))
    statuses = STATUS_FILTERS[filters.status]
    if statuses is not None:
        qs = qs.filter(status__in=statuses) if len(statuses) > 1 else qs.filter(status=statuses[0])
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.priority:
        qs = qs.filter(priority=filters.priority)
    if filters.tag:
        qs = qs.filter(tags__name=filters.tag)
    cursor = _decode_cursor(after)
    if cursor is not None:
        qs = qs.filter(_after(filters.sort, cursor))
    order = ("-updated", "-id") if filters.sort == "updated" else ("sla_due", "id")
    qs = (
        qs.order_by(*order)
        .select_related("requester", "assignee", "team")
        .only(
            "id", "number", "subject", "status", "priority", "channel", "sla_due", "updated", "created",
            "last_message_at", "requester__id", "requester__name", "assignee__id", "assignee__username",
            "assignee__first_name", "assignee__last_name", "team__id", "team__name", "team__slug",
        )
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")), _contact_identities())
    )
    rows = list(qs[: size + 1])
    next_cursor = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        key = last.updated if filters.sort == "updated" else last.sla_due
        next_cursor = _encode_cursor([key.isoformat() if key else None, last.pk])
    return Page(rows=rows, cursor=next_cursor, size=size)


def assignable_agents() -> list:
    """People a ticket can be assigned to: active users whose role may reply to customers."""
    User = get_user_model()
    return list(
        User.objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(groups__permissions__codename="reply_ticket", groups__permissions__content_type__app_label="tickets")
            | Q(user_permissions__codename="reply_ticket", user_permissions__content_type__app_label="tickets")
        )
        .distinct()
        .only("id", "username", "first_name", "last_name")
        .order_by("first_name", "username")
    )


def tag_names(limit: int = 200) -> list[str]:
    return list(Tag.objects.order_by("name").values_list("name", flat=True)[:limit])


# --- one ticket ------------------------------------------------------------------------------


def ticket_by_number(number: int) -> Ticket | None:
    return (
        Ticket.objects.select_related("requester", "assignee", "team")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name")))
        .filter(number=number)
        .first()
    )


def conversation(ticket: Ticket) -> list[Message]:
    return list(
        ticket.messages.select_related("author", "contact")
        .prefetch_related("attachments")
        .order_by("created", "id")
    )


def contact_identities(contact: Contact) -> list[Identity]:
    return list(contact.identities.order_by("kind", "value"))


def undoable_merges(contact: Contact) -> list[ContactMerge]:
    """Merges into this contact that can still be undone (nothing changed the survivor since)."""
    return list(
        ContactMerge.objects.filter(survivor=contact, undone_at__isnull=True, survivor_version=contact.version)
        .select_related("merged", "actor")
        .order_by("-created")[:3]
    )


def identity_owner(kind: str, value: str) -> Identity | None:
    return Identity.objects.select_related("contact").filter(kind=kind, value=value).first()


def active_macros() -> list[Macro]:
    return list(Macro.objects.filter(active=True).only("id", "name").order_by("name"))


def macro(macro_id) -> Macro | None:
    try:
        return Macro.objects.filter(active=True, pk=int(macro_id)).select_related("set_team", "set_assignee").first()
    except (TypeError, ValueError):
        return None


def changes_since(ticket: Ticket, seen_at: dt.datetime | None, user) -> list[Message]:
    """What others wrote on the ticket after the page was loaded (newest last)."""
    if seen_at is None:
        return []
    return list(
        ticket.messages.filter(created__gt=seen_at)
        .exclude(author=user)
        .select_related("author", "contact")
        .order_by("created", "id")[:5]
    )


def requester_label(contact: Contact) -> str:
    """A contact's name, else their first identity's value (uses a prefetch when present)."""
    if contact.name:
        return contact.name
    for identity in contact.identities.all():
        return identity.value
    return f"Contact {contact.pk}"


def now() -> dt.datetime:
    return timezone.now()
