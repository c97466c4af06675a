"""Reads for the agent inbox and the ticket page.

Every list query here costs the same number of queries whatever the page size: the page
itself is one indexed keyset query (ordered by the next SLA deadline, as the inbox indexes
in tickets.models are), and what each row shows (tags, the requester's email or LINE id) comes
from one prefetch each.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, F, OuterRef, Prefetch, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from common import parsing

from .models import Attachment, Channel, Contact, ContactMerge, Identity, Macro, Message, Tag, Team, Ticket

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
    fixed = {"mine": _("My tickets"), "unassigned": _("Unassigned"), "all": _("All tickets")}
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


# The shared navigation counts (unassigned, all, per team) are counted at most every
# COUNTS_TTL seconds: counting every unsolved ticket is linear in their number, and the
# navigation is on every inbox page. An agent's own changes refresh them at once
# (counts_changed); tickets arriving by email or LINE show in the counts within the TTL
# (the lists themselves are always live).
COUNTS_TTL = 30
_COUNTS_GENERATION = "tickets:inbox-counts:generation"


def counts_changed() -> None:
    try:
        cache.incr(_COUNTS_GENERATION)
    except ValueError:  # not set yet, or evicted
        cache.set(_COUNTS_GENERATION, 1, None)


def inbox_counts(user, team_list: list[Team]) -> dict[str, int]:
    """Unsolved (open and pending) tickets per view, for the navigation."""
    active = Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES)
    generation = cache.get(_COUNTS_GENERATION, 0)
    key = f"tickets:inbox-counts:{generation}:{'.'.join(str(t.pk) for t in team_list)}"
    shared = cache.get(key)
    if shared is None:
        aggregates = {"unassigned": Count("id", filter=Q(assignee__isnull=True)), "all": Count("id")}
        for team in team_list:
            aggregates[f"team-{team.slug}"] = Count("id", filter=Q(team_id=team.pk))
        shared = active.aggregate(**aggregates)
        cache.set(key, shared, COUNTS_TTL)
    # One's own count is small and read from the (assignee, status, ...) index: always live.
    return {**shared, "mine": active.filter(assignee=user).count()}


def _encode_cursor(values: list) -> str:
    return parsing.encode_cursor(values[0], values[1])


def _decode_cursor(cursor: str) -> list | None:
    """[sla_due or updated (None: among the tickets without a deadline), id], or None."""
    position = parsing.decode_cursor(cursor, allow_null_stamp=True)
    return list(position) if position is not None else None


def _after(sort: str, cursor: list) -> Q:
    """Rows strictly after the cursor in the page order (sla_due ASC NULLS LAST, id ASC;
    or updated DESC, id DESC)."""
    value, pk = cursor
    if sort == "updated":
        if value is None:  # every ticket has an updated time: not a cursor of this order, start over
            return Q()
        return Q(updated__lt=value) | Q(updated=value, id__lt=pk)
    if value is None:  # already among the tickets without a deadline
        return Q(sla_due__isnull=True, id__gt=pk)
    return Q(sla_due__gt=value) | Q(sla_due=value, id__gt=pk) | Q(sla_due__isnull=True)


@dataclass
class Row:
    """One line of the inbox: plain values, no model instances (a page has up to 100)."""

    pk: int
    number: int
    subject: str
    status: str
    priority: str
    channel: str
    sla_due: dt.datetime | None
    updated: dt.datetime
    requester: str
    assignee: str
    team: str
    tags: list[str] = field(default_factory=list)


ROW_FIELDS = ("id", "number", "subject", "status", "priority", "channel", "sla_due", "updated", "requester_name",
              "requester_first_identity", "assignee__first_name", "assignee__last_name", "assignee__username",
              "team__name")


def _first_identity():
    # A contact without a name is shown by their first identity (an email, a LINE id).
    return Subquery(
        Identity.objects.filter(contact_id=OuterRef("requester_id")).order_by("kind", "id").values("value")[:1]
    )


def _row_key(sort: str):
    if sort == "updated":
        return lambda v: (v[7], v[0])  # updated, id (merged in reverse)
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return lambda v: (v[6] is None, v[6] or far, v[0])  # sla_due (nulls last), id


def inbox_page(user, view: InboxView, filters: Filters, after: str = "", size: int = PAGE_SIZE) -> Page:
    """One page of a view, in the view's order.

    One ordered, limited query per status in the filter (two for "unsolved"), merged here:
    each walks an inbox index ((status, sla_due, id) and the assignee/team/unassigned
    variants) and stops after a page, where a single `status IN (...)` query would have to
    sort every unsolved ticket of the view. Then one query for the page's tags.
    """
    size = max(1, min(size, MAX_PAGE_SIZE))
    qs = Ticket.objects.filter(view_filter(view, user))
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.priority:
        qs = qs.filter(priority=filters.priority)
    if filters.tag:
        qs = qs.filter(tags__name=filters.tag)
    cursor = _decode_cursor(after)
    if cursor is not None:
        qs = qs.filter(_after(filters.sort, cursor))
    if filters.sort == "updated":
        order = (F("updated").desc(), F("id").desc())
    else:
        order = (F("sla_due").asc(nulls_last=True), F("id").asc())
    qs = qs.order_by(*order).annotate(
        requester_name=F("requester__name"), requester_first_identity=_first_identity()
    )
    statuses = STATUS_FILTERS[filters.status] or list(Ticket.Status.values)
    parts = [list(qs.filter(status=status).values_list(*ROW_FIELDS)[: size + 1]) for status in statuses]
    merged = heapq.merge(*parts, key=_row_key(filters.sort), reverse=filters.sort == "updated")
    values = list(itertools.islice(merged, size + 1))
    more = len(values) > size
    values = values[:size]
    tags: dict[int, list[str]] = {}
    if values:
        through = Ticket.tags.through.objects.filter(ticket_id__in=[v[0] for v in values])
        for ticket_id, name in through.order_by("tag__name").values_list("ticket_id", "tag__name"):
            tags.setdefault(ticket_id, []).append(name)
    rows = []
    for (pk, number, subject, status, priority, channel, sla_due, updated, name, first_identity,
         first, last, username, team) in values:
        rows.append(Row(
            pk, number, subject, status, priority, channel, sla_due, updated,
            requester=name or first_identity or "",
            assignee=f"{first} {last}".strip() or username or "" if username else "",
            team=team or "", tags=tags.get(pk, []),
        ))
    next_cursor = ""
    if more:
        last_row = rows[-1]
        key = last_row.updated if filters.sort == "updated" else last_row.sla_due
        next_cursor = _encode_cursor([key, last_row.pk])
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
        .prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("id", "name")),
            Prefetch("requester__identities", queryset=Identity.objects.order_by("kind", "value")),
        )
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
    if "identities" in getattr(contact, "_prefetched_objects_cache", {}):
        return list(contact.identities.all())  # ticket_by_number fetched them, in this order
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
    pk = parsing.parse_int(macro_id)
    if pk is None:
        return None
    return Macro.objects.filter(active=True, pk=pk).select_related("set_team", "set_assignee").first()


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
    return _("Contact %(id)s") % {"id": contact.pk}


def now() -> dt.datetime:
    return timezone.now()


def ticket_attachment(ticket, pk: int):
    """A stored (not refused) attachment of one of this ticket's messages, or None."""
    return (
        Attachment.objects.filter(pk=pk, message__ticket=ticket, refused=False)
        .exclude(file="")
        .first()
    )


# --- the customer's language ---------------------------------------------------------------

# Hiragana, katakana (full and half width) and the CJK ideographs: a message with any of them
# was written by someone who reads Japanese.
JAPANESE_RE = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\u3400-\u4dbf\u4e00-\u9fff]")
# The language each channel's customers read when nothing else says (LINE is the Japanese one).
CHANNEL_LANGUAGE = {Channel.LINE: "ja"}
LANGUAGE_TAG_RE = re.compile(r"^[a-z]{2,3}$")


def language_code(value: str | None) -> str:
    """The primary subtag of a language tag or locale, lowercased ("ja-JP", "ja_JP" -> "ja");
    the first of a list ("en-US, fr;q=0.5" -> "en"); "" for anything else."""
    first = (value or "").split(",")[0].split(";")[0].strip().replace("_", "-")
    primary = first.split("-")[0].lower()
    return primary if LANGUAGE_TAG_RE.match(primary) else ""


def detect_language(text: str | None) -> str:
    """A cheap guess from what a customer wrote: kana or kanji -> "ja"; otherwise "" (unknown;
    Latin script says nothing about which language)."""
    return "ja" if text and JAPANESE_RE.search(text) else ""


def _supported(code: str) -> str:
    codes = {language for language, _ in settings.LANGUAGES}
    return code if code in codes else ""


def customer_language(contact: Contact | None, ticket: Ticket | None = None) -> str:
    """The language Paydesk writes to this customer in ("ja" or "en", one of settings.LANGUAGES),
    whatever the agent reads: the contact's known language; else the one their latest message
    on the ticket (or anywhere, without a ticket) is written in; else the channel's (LINE:
    Japanese); else the console's default. A known language Paydesk has no translation for
    gets the default."""
    default = settings.LANGUAGE_CODE
    if contact is None and ticket is not None:
        contact = ticket.requester
    if contact is not None and contact.language:
        return _supported(language_code(contact.language)) or default
    inbound = Message.objects.filter(kind=Message.Kind.INBOUND)
    if ticket is not None:
        inbound = inbound.filter(ticket=ticket)
    elif contact is not None:
        inbound = inbound.filter(contact=contact)
    else:
        inbound = None
    if inbound is not None:
        latest = inbound.order_by("-created", "-id").values("subject", "body_text").first()
        if latest:
            found = _supported(detect_language(f"{latest['subject']}\n{latest['body_text']}"))
            if found:
                return found
    if ticket is not None:
        found = _supported(CHANNEL_LANGUAGE.get(ticket.channel, ""))
        if found:
            return found
    return _supported(language_code(default)) or "en"
