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
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Concat
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _, ngettext, pgettext

from audit.models import AuditAction, AuditEntry
from common import parsing
from common.money import format_money

from .identity import contact_display_name
from .models import (
    Attachment, Channel, Contact, ContactMerge, Identity, Macro, Message, Tag, Team, Ticket, TicketMerge,
)

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
    picture: str = ""  # the requester's LINE profile picture


ROW_FIELDS = ("id", "number", "subject", "status", "priority", "channel", "sla_due", "updated", "requester_name",
              "requester_first_identity", "assignee__first_name", "assignee__last_name", "assignee__username",
              "team__name", "requester_line_name", "requester_picture")


def _first_identity():
    # A contact without a name is shown by their first identity (an email, a LINE id), as
    # "kind:value" for identity.contact_display_name.
    return Subquery(
        Identity.objects.filter(contact_id=OuterRef("requester_id")).order_by("kind", "id")
        .annotate(pair=Concat("kind", Value(":"), "value")).values("pair")[:1]
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
        requester_name=F("requester__name"), requester_first_identity=_first_identity(),
        requester_line_name=F("requester__line_name"), requester_picture=F("requester__line_picture_url"),
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
         first, last, username, team, line_name, picture) in values:
        rows.append(Row(
            pk, number, subject, status, priority, channel, sla_due, updated,
            requester=contact_display_name(name, line_name, [first_identity.split(":", 1)] if first_identity else []),
            picture=picture or "",
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


def visible_macros(user=None):
    """Macros `user` may use: those with no teams, or a team they are a member of; whoever
    manages macros (admins) sees them all. No user: all of them (Paydesk itself, workflows)."""
    macros = Macro.objects.all()
    if user is None or user.has_perm("tickets.change_macro"):
        return macros
    if not getattr(user, "is_authenticated", False):
        return macros.none()
    mine = Team.objects.filter(members=user).values("pk")
    return macros.filter(Q(teams__isnull=True) | Q(teams__in=mine)).distinct()


def active_macros(user=None) -> list[Macro]:
    return list(visible_macros(user).filter(active=True).only("id", "name").order_by("name"))


def macro(macro_id, user=None) -> Macro | None:
    pk = parsing.parse_int(macro_id)
    if pk is None:
        return None
    return visible_macros(user).filter(active=True, pk=pk).select_related("set_team", "set_assignee").first()


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
    """What agents call a contact (uses a prefetch of the identities when present)."""
    if contact.name or contact.line_name:
        return contact_display_name(contact.name, contact.line_name, [])
    return contact_display_name("", "", [(i.kind, i.value) for i in contact.identities.all()])


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


# --- the thread: messages and what was done on the ticket -----------------------------------

# What the thread says besides messages, read from the audit log (below both domains). Changes
# made at Stripe name the ticket in their details ("#12"); the requester's merges are on the
# contact; a workflow's changes to the ticket itself are on "ticket:<number>". A person's own
# status, assignment and tag changes are housekeeping the properties card already shows.
STRIPE_EVENTS = (AuditAction.CHARGE_REFUND, AuditAction.SUBSCRIPTION_CANCEL, AuditAction.CUSTOMER_UPDATE_METADATA,
                 AuditAction.PORTAL_SESSION_CREATE, AuditAction.REFUND_APPROVAL_REQUESTED,
                 AuditAction.REFUND_APPROVAL_CLOSED)
CONTACT_EVENTS = (AuditAction.CONTACT_MERGE, AuditAction.CONTACT_MERGE_UNDO)
# Ticket merges are written on both tickets ("ticket:<number>", details.role survivor/merged).
TICKET_MERGE_EVENTS = (AuditAction.TICKET_MERGE, AuditAction.TICKET_MERGE_UNDO)
WORKFLOW_TICKET_EVENTS = (AuditAction.TICKET_TAGS, AuditAction.TICKET_ASSIGN, AuditAction.TICKET_STATUS,
                          AuditAction.TICKET_PRIORITY, AuditAction.TICKET_MACRO)
THREAD_EVENTS_LIMIT = 200
# A workflow's steps on one ticket land within moments of each other: one line says them all.
WORKFLOW_BURST = dt.timedelta(seconds=30)


@dataclass
class SystemEvent:
    """One compact line of the thread: what was done, worded in the reader's language."""

    pk: int
    created: dt.datetime
    action: str
    text: str
    is_event: bool = True
    url: str = ""  # where the line links to: the workflow run that did it


def _workflow_of(entry: AuditEntry) -> dict:
    """{"run", "name"} when a workflow run did this (audit.log.acting_as, console.workflows)."""
    found = (entry.details or {}).get("workflow")
    return found if isinstance(found, dict) and found.get("run") else {}


def _run_url(workflow: dict) -> str:
    try:
        return reverse("workflow_run", args=[int(workflow["run"])])
    except (NoReverseMatch, TypeError, ValueError):
        return ""


def _actor_name(user) -> str:
    if user is None:
        return "Paydesk"
    if user.get_username() == settings.WORKFLOWS_SERVICE_USER:
        return gettext("Workflows")  # the service account's name, in the reader's language
    return user.get_full_name() or user.get_username()


def _listed(items) -> str:
    """Items in a sentence, with the reader's list separator ("a, b" / 「a、b」)."""
    return pgettext("list separator", ", ").join(map(str, items))


def _short_id(value) -> str:
    """"ch_3Qx…9Lm": a Stripe id the reader recognises without the whole of it."""
    value = str(value or "")
    return value if len(value) <= 14 else f"{value[:7]}…{value[-3:]}"


def _stripe_values(entry: AuditEntry, **extra) -> dict:
    """What the sentences about a change at Stripe name: who, which object (short), the amount,
    the metadata keys; each sentence takes the ones it says."""
    d = entry.details or {}
    keys = sorted(set(d.get("set") or {}) | set(d.get("removed") or []))
    short = _short_id(entry.target)
    return {"actor": _actor_name(entry.actor), "charge": short, "subscription": short, "customer": short,
            "amount": format_money(d.get("amount") if "amount" in d else d.get("refund_amount"),
                                   d.get("currency") or ""),
            "keys": _listed(keys) or "—", **extra}


def _workflow_stripe_text(entry: AuditEntry, name: str) -> str:
    """A change at Stripe a workflow run made on the ticket's customer."""
    d, action, values = entry.details or {}, entry.action, _stripe_values(entry, workflow=name)
    if action == AuditAction.CHARGE_REFUND:
        return gettext("Refunded %(amount)s of %(charge)s — by workflow “%(workflow)s”") % values
    if action == AuditAction.SUBSCRIPTION_CANCEL:
        if d.get("at_period_end"):
            return gettext("Cancelled %(subscription)s at the end of its period — by workflow “%(workflow)s”") % values
        if d.get("refund_amount"):
            return gettext("Cancelled %(subscription)s and refunded %(amount)s — by workflow “%(workflow)s”") % values
        return gettext("Cancelled %(subscription)s — by workflow “%(workflow)s”") % values
    if action == AuditAction.CUSTOMER_UPDATE_METADATA:
        return gettext("Changed the metadata of %(customer)s (%(keys)s) — by workflow “%(workflow)s”") % values
    return gettext("Created a billing-portal link for %(customer)s — by workflow “%(workflow)s”") % values


def _stripe_text(entry: AuditEntry) -> str:
    d, action = entry.details or {}, entry.action
    workflow = _workflow_of(entry)
    if workflow and action in (AuditAction.CHARGE_REFUND, AuditAction.SUBSCRIPTION_CANCEL,
                               AuditAction.CUSTOMER_UPDATE_METADATA, AuditAction.PORTAL_SESSION_CREATE):
        return _workflow_stripe_text(entry, str(workflow.get("name") or workflow["run"]))
    values = _stripe_values(entry, reason=d.get("decline_reason") or "—")
    if action == AuditAction.REFUND_APPROVAL_CLOSED:
        if d.get("status") == "approved":
            return gettext("Finance approved: refunded %(amount)s — %(actor)s") % values
        return gettext("Finance declined: %(reason)s — %(actor)s") % values
    if action == AuditAction.CHARGE_REFUND:
        return gettext("%(actor)s refunded %(amount)s of %(charge)s") % values
    if action == AuditAction.REFUND_APPROVAL_REQUESTED:
        return gettext("Asked finance to refund %(amount)s of %(charge)s — %(actor)s") % values
    if action == AuditAction.SUBSCRIPTION_CANCEL:
        if d.get("at_period_end"):
            return gettext("%(actor)s cancelled %(subscription)s at the end of its period") % values
        if d.get("refund_amount"):
            return gettext("%(actor)s cancelled %(subscription)s and refunded %(amount)s") % values
        return gettext("%(actor)s cancelled %(subscription)s") % values
    if action == AuditAction.CUSTOMER_UPDATE_METADATA:
        return gettext("%(actor)s changed the metadata of %(customer)s (%(keys)s)") % values
    return gettext("%(actor)s created a billing-portal link for %(customer)s") % values


def _contact_text(entry: AuditEntry) -> str:
    d, who = entry.details or {}, _actor_name(entry.actor)
    if entry.action == AuditAction.CONTACT_MERGE_UNDO:
        return gettext("%(actor)s undid a merge of the requester with another contact") % {"actor": who}
    return gettext("%(actor)s merged another contact into the requester (%(count)s tickets moved)") % {
        "actor": who, "count": d.get("tickets", 0)}


def _ticket_merge_text(entry: AuditEntry) -> str:
    d, who = entry.details or {}, _actor_name(entry.actor)
    merged, survivor = d.get("merged_number", "?"), d.get("survivor_number", "?")
    if entry.action == AuditAction.TICKET_MERGE_UNDO:
        if d.get("role") == "merged":
            return gettext("%(actor)s undid the merge into #%(survivor)s: this ticket is separate again") % {
                "actor": who, "survivor": survivor}
        return gettext("%(actor)s undid the merge of #%(merged)s: its messages went back") % {
            "actor": who, "merged": merged}
    if d.get("role") == "merged":
        return gettext("%(actor)s merged this ticket into #%(survivor)s") % {"actor": who, "survivor": survivor}
    return ngettext("%(actor)s merged #%(merged)s into this ticket (%(count)s message moved)",
                    "%(actor)s merged #%(merged)s into this ticket (%(count)s messages moved)",
                    d.get("messages", 0) or 0) % {"actor": who, "merged": merged, "count": d.get("messages", 0) or 0}


def _workflow_phrase(entry: AuditEntry, teams: dict, users: dict) -> str:
    """One step a workflow took on the ticket, as a verb phrase ("tagged refund")."""
    d = entry.details or {}
    if entry.action == AuditAction.TICKET_TAGS:
        change = d.get("tags") or {}
        added = [t for t in change.get("to", []) if t not in change.get("from", [])]
        if added:
            return gettext("tagged %(tags)s") % {"tags": _listed(added)}
        return gettext("removed the tags %(tags)s") % {
            "tags": _listed(t for t in change.get("from", []) if t not in change.get("to", []))}
    if entry.action == AuditAction.TICKET_ASSIGN:
        parts = []
        if "assignee" in d:
            to = (d["assignee"] or {}).get("to")
            parts.append(gettext("assigned to %(name)s") % {"name": users.get(to, "?")} if to
                         else gettext("unassigned it"))
        if "team" in d:
            to = (d["team"] or {}).get("to")
            parts.append(gettext("moved to %(team)s") % {"team": teams.get(to, "?")} if to
                         else gettext("moved to no team"))
        return _listed(parts)
    if entry.action == AuditAction.TICKET_STATUS:
        to = (d.get("status") or {}).get("to", "")
        label = Ticket.Status(to).label if to in Ticket.Status.values else to
        return gettext("set the status to %(status)s") % {"status": str(label).lower()}
    if entry.action == AuditAction.TICKET_PRIORITY:
        to = (d.get("priority") or {}).get("to", "")
        label = Ticket.Priority(to).label if to in Ticket.Priority.values else to
        return gettext("set the priority to %(priority)s") % {"priority": str(label).lower()}
    return gettext("applied the macro “%(name)s”") % {"name": d.get("macro", "")}


def thread_events(ticket: Ticket) -> list[SystemEvent]:
    """What was done on this ticket besides writing, oldest first: one query for the audit
    rows (bounded by THREAD_EVENTS_LIMIT), and one for the names a workflow assigned to."""
    since = ticket.created - dt.timedelta(minutes=1)  # nothing about the ticket predates it
    rows = list(
        AuditEntry.objects.filter(
            Q(action__in=STRIPE_EVENTS, details__ticket=f"#{ticket.number}", created__gte=since)
            | Q(target=f"contact:{ticket.requester_id}", action__in=CONTACT_EVENTS, created__gte=since)
            | Q(target=f"ticket:{ticket.number}", action__in=TICKET_MERGE_EVENTS, created__gte=since)
            | Q(target=f"ticket:{ticket.number}", action__in=WORKFLOW_TICKET_EVENTS,
                actor__username=settings.WORKFLOWS_SERVICE_USER)
        )
        .select_related("actor")
        .order_by("-created", "-id")[:THREAD_EVENTS_LIMIT]
    )
    rows.reverse()
    team_ids, user_ids = set(), set()
    for entry in rows:
        if entry.action == AuditAction.TICKET_ASSIGN:
            team_ids.add(((entry.details or {}).get("team") or {}).get("to"))
            user_ids.add(((entry.details or {}).get("assignee") or {}).get("to"))
    teams = dict(Team.objects.filter(pk__in=team_ids - {None}).values_list("pk", "name")) if team_ids - {None} else {}
    users = {}
    if user_ids - {None}:
        users = {u.pk: u.get_full_name() or u.get_username()
                 for u in get_user_model().objects.filter(pk__in=user_ids - {None}).only(
                     "id", "username", "first_name", "last_name")}
    events: list[SystemEvent] = []
    burst: list[AuditEntry] = []
    # Finance's approval says what it refunded: the refund's own row would say it twice.
    approved = {(e.details or {}).get("refund") for e in rows if e.action == AuditAction.REFUND_APPROVAL_CLOSED
                and (e.details or {}).get("status") == "approved"} - {None, ""}

    def flush():
        if burst:
            phrases = [p for p in (_workflow_phrase(e, teams, users) for e in burst) if p]
            text = gettext("%(actor)s %(actions)s") % {"actor": _actor_name(burst[0].actor),
                                                       "actions": _listed(phrases)}
            events.append(SystemEvent(burst[0].pk, burst[0].created, "workflow", text,
                                      url=_run_url(_workflow_of(burst[0])) if _workflow_of(burst[0]) else ""))
            burst.clear()

    for entry in rows:
        if entry.action in WORKFLOW_TICKET_EVENTS:
            if burst and entry.created - burst[0].created > WORKFLOW_BURST:
                flush()
            burst.append(entry)
            continue
        flush()
        if entry.action == AuditAction.CHARGE_REFUND and (entry.details or {}).get("refund") in approved:
            continue
        if entry.action in TICKET_MERGE_EVENTS:
            text = _ticket_merge_text(entry)
        else:
            text = _contact_text(entry) if entry.action in CONTACT_EVENTS else _stripe_text(entry)
        workflow = _workflow_of(entry)
        events.append(SystemEvent(entry.pk, entry.created, entry.action, text,
                                  url=_run_url(workflow) if workflow else ""))
    flush()
    return events


def thread(ticket: Ticket) -> list:
    """The ticket's messages and its system events, interleaved by time (a message and an
    event in the same instant: the message first, as it is usually what prompted the act)."""
    items = [(m.created, 0, m.pk, m) for m in conversation(ticket)]
    items += [(e.created, 1, e.pk, e) for e in thread_events(ticket)]
    items.sort(key=lambda item: item[:3])
    return [item[3] for item in items]


# --- the contacts list -----------------------------------------------------------------------

CONTACT_CHANNELS = ("email", "line", "phone", "stripe_customer")


@dataclass
class ContactRow:
    pk: int
    label: str
    picture: str
    channels: list[str]
    last_message_at: dt.datetime | None
    open_tickets: int


def contacts_page(channel: str = "", after: str = "", size: int = PAGE_SIZE) -> Page:
    """Every contact (LINE-only ones too; not those merged into another), newest first, one
    keyset page: one query for the page (the last message and open tickets as subqueries)
    and one for its identities."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    qs = Contact.objects.filter(merged_into__isnull=True)
    if channel in CONTACT_CHANNELS:
        qs = qs.filter(Exists(Identity.objects.filter(contact_id=OuterRef("pk"), kind=channel)))
    position = parsing.decode_cursor(after) if after else None
    if position is not None:
        created, pk = position
        qs = qs.filter(Q(created__lt=created) | Q(created=created, id__lt=pk))
    last_message = Message.objects.filter(contact_id=OuterRef("pk")).order_by("-created").values("created")[:1]
    open_tickets = (
        Ticket.objects.filter(requester_id=OuterRef("pk"), status__in=Ticket.ACTIVE_STATUSES)
        .order_by().values("requester_id").annotate(n=Count("id")).values("n")[:1]
    )
    values = list(
        qs.order_by("-created", "-id")
        .annotate(last_message_at=Subquery(last_message), open_tickets=Subquery(open_tickets))
        .values_list("id", "created", "name", "line_name", "line_picture_url", "last_message_at", "open_tickets")
        [: size + 1]
    )
    more = len(values) > size
    values = values[:size]
    identities: dict[int, list[tuple[str, str]]] = {}
    for contact_id, kind, value in (Identity.objects.filter(contact_id__in=[v[0] for v in values])
                                    .order_by("kind", "id").values_list("contact_id", "kind", "value")):
        identities.setdefault(contact_id, []).append((kind, value))
    rows = []
    for pk, _created, name, line_name, picture, last_at, n_open in values:
        pairs = identities.get(pk, [])
        rows.append(ContactRow(
            pk=pk, label=contact_display_name(name, line_name, pairs), picture=picture or "",
            channels=[k for k in CONTACT_CHANNELS if any(kind == k for kind, _v in pairs)],
            last_message_at=last_at, open_tickets=n_open or 0,
        ))
    cursor = parsing.encode_cursor(values[-1][1], values[-1][0]) if more else ""
    return Page(rows=rows, cursor=cursor, size=size)


# --- after solving: the next ticket of the view -----------------------------------------------


def next_in_view(user, view_key: str, ticket: Ticket) -> int | None:
    """The number of the ticket after `ticket` in the inbox view it was opened from (the
    view's default order and filter: unsolved, by the next deadline), else the view's first
    other ticket; None when the view has no other. `ticket` carries its place as it was before
    solving (solving clears its deadline)."""
    view = resolve_view(view_key, teams())
    if view is None:
        return None
    filters = Filters()
    after = _encode_cursor([ticket.sla_due, ticket.pk])
    for cursor in (after, ""):
        for row in inbox_page(user, view, filters, after=cursor, size=2).rows:
            if row.pk != ticket.pk:
                return row.number
    return None


# --- ticket merges ----------------------------------------------------------------------------

MERGE_CANDIDATES_LIMIT = 20


def merge_candidates(ticket: Ticket) -> list[Ticket]:
    """The requester's other open or pending tickets `ticket` can be merged into, most recently
    active first (what tickets.actions.merges.check_mergeable allows), with their message count."""
    return list(
        Ticket.objects.filter(requester_id=ticket.requester_id, status__in=Ticket.ACTIVE_STATUSES,
                              merged_into__isnull=True)
        .exclude(pk=ticket.pk)
        .annotate(message_count=Count("messages"))
        .only("id", "number", "subject", "status", "last_message_at", "created", "requester_id")
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")[:MERGE_CANDIDATES_LIMIT]
    )


def merge_candidate(ticket: Ticket, number) -> Ticket | None:
    """One of merge_candidates by its number (None for anything else)."""
    number = parsing.parse_int(number)
    if number is None:
        return None
    return next((t for t in merge_candidates(ticket) if t.number == number), None)


@dataclass
class MergePreview:
    """What merging `merged` into `survivor` will do, in the words the page says it."""

    survivor: Ticket
    merged: Ticket
    messages: int
    tags: list[str]


def merge_preview(merged: Ticket, survivor: Ticket) -> MergePreview:
    have = set(survivor.tags.values_list("name", flat=True))
    return MergePreview(
        survivor=survivor, merged=merged, messages=merged.messages.count(),
        tags=sorted(set(merged.tags.values_list("name", flat=True)) - have),
    )


def merges_into(ticket: Ticket) -> list[TicketMerge]:
    """Merges into this ticket not undone (newest first): the page offers to undo them."""
    return list(
        TicketMerge.objects.filter(survivor=ticket, undone_at__isnull=True)
        .select_related("merged", "actor").order_by("-created", "-id")[:5]
    )


def merged_away(ticket: Ticket) -> TicketMerge | None:
    """The merge that closed this ticket into another, while it holds."""
    if not ticket.merged_into_id:
        return None
    return (
        TicketMerge.objects.filter(merged=ticket, survivor_id=ticket.merged_into_id, undone_at__isnull=True)
        .select_related("survivor", "actor").order_by("-created", "-id").first()
    )
