"""Tickets themselves: opening one, status, priority, subject, assignment, tags, macros, and
the bulk versions the inbox uses."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from django.utils.translation import pgettext_lazy
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from audit.actors import require
from audit.models import AuditAction

from ..models import Channel, Macro, Message, Team, Ticket
from ..selectors import customer_language
from ..signals import ticket_solved
from ._common import (
    UNSET, audit, author, check_assignee, get_contact, get_ticket, tag_names, tags_named, target_of, touch,
)
from ._rules import check_version, open_ticket, refresh_sla, sla_times, status_fields
from .errors import ActionError
from .messages import add_note, reply

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")
# What render_macro fills in: a macro naming anything else is refused when saved.
MACRO_PLACEHOLDERS = ("contact.name", "contact.first_name", "ticket.number", "ticket.subject", "ticket.status",
                      "agent.name", "agent.first_name")
BULK_LIMIT = 500


def create_ticket(*, actor, requester, subject: str, channel: str = Channel.WEB,
                  priority: str = Ticket.Priority.NORMAL, team=None, assignee=None,
                  tags: Sequence[str] = (), note: str = "") -> Ticket:
    """A ticket opened by an agent or a workflow (inbound channels open theirs themselves)."""
    require(actor, "tickets.add_ticket", doing=pgettext_lazy("permission", "open tickets"))
    if not (subject or "").strip():
        raise ActionError(_("A ticket needs a subject."), code="required")
    if priority not in Ticket.Priority.values:
        raise ActionError(_("Unknown priority %(priority)s.") % {"priority": repr(priority)}, code="invalid")
    if channel not in Channel.values:
        raise ActionError(_("Unknown channel %(channel)s.") % {"channel": repr(channel)}, code="invalid")
    if assignee is not None:
        require(actor, "tickets.assign_ticket", doing=pgettext_lazy("permission", "assign tickets"))
        check_assignee(assignee)
    team = Team.objects.get(pk=team) if isinstance(team, int) else team
    with transaction.atomic():
        requester = get_contact(requester)
        ticket = open_ticket(actor=actor, requester=requester, subject=subject, channel=channel, priority=priority,
                             team=team, assignee=assignee, tags=tags)
        if note.strip():
            Message.objects.create(ticket=ticket, kind=Message.Kind.NOTE, channel=channel, author=author(actor),
                                   body_text=note.strip())
    return ticket


def set_status(*, actor, ticket, status: str, expected_version: int | None = None) -> Ticket:
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "change a ticket's status"))
    if status not in Ticket.Status.values:
        raise ActionError(_("Unknown status %(status)s.") % {"status": repr(status)}, code="invalid")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        check_version(ticket, expected_version)
        if ticket.status == status:
            return ticket
        old = ticket.status
        fields = status_fields(ticket, status)
        touch(ticket, *fields)
        audit(actor, AuditAction.TICKET_STATUS, target_of(ticket), status={"from": old, "to": status})
        if status == Ticket.Status.SOLVED:
            transaction.on_commit(lambda: ticket_solved.send(sender=__name__, ticket=ticket, actor=actor), robust=True)
    return ticket


def set_priority(*, actor, ticket, priority: str) -> Ticket:
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "change a ticket's priority"))
    if priority not in Ticket.Priority.values:
        raise ActionError(_("Unknown priority %(priority)s.") % {"priority": repr(priority)}, code="invalid")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        if ticket.priority == priority:
            return ticket
        old = ticket.priority
        ticket.priority = priority
        ticket.first_response_due, ticket.resolution_due = sla_times(priority, ticket.created)
        refresh_sla(ticket)
        touch(ticket, "priority", "first_response_due", "resolution_due", "sla_due")
        audit(actor, AuditAction.TICKET_PRIORITY, target_of(ticket), priority={"from": old, "to": priority})
    return ticket


def set_subject(*, actor, ticket, subject: str) -> Ticket:
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "rename tickets"))
    subject = (subject or "").strip()[:255]
    if not subject:
        raise ActionError(_("A ticket needs a subject."), code="required")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        old = ticket.subject
        ticket.subject = subject
        touch(ticket, "subject")
        audit(actor, AuditAction.TICKET_SUBJECT, target_of(ticket), subject={"from": old, "to": subject})
    return ticket


def assign(*, actor, ticket, assignee=UNSET, team=UNSET) -> Ticket:
    """Assign to an agent and/or a team (None clears; leave out to keep)."""
    require(actor, "tickets.assign_ticket", doing=pgettext_lazy("permission", "assign tickets"))
    if assignee is not UNSET:
        check_assignee(assignee)
    if team is not UNSET and team is not None and not isinstance(team, Team):
        found = Team.objects.filter(pk=team).first()
        if found is None:
            raise ActionError(_("No team %(id)s.") % {"id": team}, code="not_found")
        team = found
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        changes, fields = {}, []
        if assignee is not UNSET and ticket.assignee_id != getattr(assignee, "pk", None):
            changes["assignee"] = {"from": ticket.assignee_id, "to": getattr(assignee, "pk", None)}
            ticket.assignee = assignee
            fields.append("assignee")
        if team is not UNSET and ticket.team_id != getattr(team, "pk", None):
            changes["team"] = {"from": ticket.team_id, "to": getattr(team, "pk", None)}
            ticket.team = team
            fields.append("team")
        if not fields:
            return ticket
        touch(ticket, *fields)
        audit(actor, AuditAction.TICKET_ASSIGN, target_of(ticket), **changes)
    return ticket


def set_tags(*, actor, ticket, tags: Iterable[str] = (), add: Iterable[str] = (), remove: Iterable[str] = ()) -> Ticket:
    """Replace the ticket's tags with `tags`, or add/remove some (given add/remove)."""
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "tag tickets"))
    tags, add, remove = tag_names(tags), tag_names(add), tag_names(remove)
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        before = sorted(ticket.tags.values_list("name", flat=True))
        if add or remove:
            wanted = [t for t in before if t not in remove] + [t for t in add if t not in before]
        else:
            wanted = tags
        if sorted(wanted) == before:
            return ticket
        ticket.tags.set(tags_named(wanted))
        touch(ticket)
        audit(actor, AuditAction.TICKET_TAGS, target_of(ticket), tags={"from": before, "to": sorted(wanted)})
    return ticket


# --- macros ---------------------------------------------------------------------------------


def macro_body(macro: Macro, language: str) -> str:
    """The macro's body in `language` ("ja-JP" finds "ja"), else its default body."""
    translations = macro.translations if isinstance(macro.translations, dict) else {}
    for key in (language, language.split("-")[0]):
        text = translations.get(key)
        if isinstance(text, str) and text.strip():
            return text
    return macro.body


def render_macro(macro: Macro, *, ticket: Ticket, actor=None) -> str:
    """The macro's text in the customer's language (tickets.selectors.customer_language, never
    the agent's), placeholders filled ({{ contact.name }}, {{ ticket.number }},
    {{ ticket.subject }}, {{ agent.name }}); unknown placeholders are left as written."""
    contact = ticket.requester
    language = customer_language(contact, ticket)
    with translation.override(language):
        # Who the customer is when we don't know their name ("Hi there" / 「お客様」).
        unnamed = pgettext("the customer's name in a reply, when unknown", "there")
        values = {
            ("contact", "name"): contact.name or unnamed,
            ("contact", "first_name"): (contact.name or unnamed).split()[0],
            ("ticket", "number"): str(ticket.number),
            ("ticket", "subject"): ticket.subject,
            ("ticket", "status"): str(ticket.get_status_display()),
            ("agent", "name"): (actor.get_full_name() or actor.get_username()) if actor else "",
            ("agent", "first_name"): (actor.first_name or actor.get_username()) if actor else "",
        }
    body = macro_body(macro, language)
    text = PLACEHOLDER_RE.sub(lambda m: values.get((m.group(1), m.group(2)), m.group(0)), body)
    if not contact.name:
        # 「{{ contact.name }} 様」 for an unnamed customer: 「お客様」, not 「お客様 様」.
        text = re.sub(re.escape(unnamed) + r"[ \u3000]*(?:様|さん|殿)", unnamed, text)
    return text


def apply_macro(*, actor, ticket, macro, body: str | None = None, as_note: bool = False,
                expected_version: int | None = None, attachments=()) -> Ticket:
    """Send the macro's reply (or `body`, the agent's edit of it, with the agent's files) and
    apply its changes, all in one transaction. Each change checks its own permission too."""
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "apply macros"))
    macro = macro if isinstance(macro, Macro) else Macro.objects.filter(pk=macro, active=True).first()
    if macro is None or not macro.active:
        raise ActionError(_("That macro does not exist or is inactive."), code="not_found")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        check_version(ticket, expected_version)
        text = render_macro(macro, ticket=ticket, actor=actor) if body is None else body
        if text.strip() or attachments:
            if as_note:
                add_note(actor=actor, ticket=ticket, body=text, attachments=attachments)
            else:
                reply(actor=actor, ticket=ticket, body=text, attachments=attachments)
        if macro.add_tags:
            set_tags(actor=actor, ticket=ticket, add=macro.add_tags)
        if macro.set_team_id or macro.set_assignee_id:
            assign(
                actor=actor, ticket=ticket,
                assignee=macro.set_assignee if macro.set_assignee_id else UNSET,
                team=macro.set_team if macro.set_team_id else UNSET,
            )
        if macro.set_priority:
            set_priority(actor=actor, ticket=ticket, priority=macro.set_priority)
        if macro.set_status:
            set_status(actor=actor, ticket=ticket, status=macro.set_status)
        # Used once more: counted here, where it is sent (a preview in the composer is not a use).
        Macro.objects.filter(pk=macro.pk).update(use_count=F("use_count") + 1, last_used_at=timezone.now())
        audit(actor, AuditAction.TICKET_MACRO, target_of(ticket), macro=macro.name)
        return get_ticket(ticket)


# --- bulk -----------------------------------------------------------------------------------


def _bulk(tickets) -> list[int]:
    ids = [t.pk if isinstance(t, Ticket) else int(t) for t in tickets]
    if len(ids) > BULK_LIMIT:
        raise ActionError(_("At most %(limit)s tickets at once.") % {"limit": BULK_LIMIT}, code="too_many")
    return ids


def bulk_assign(*, actor, tickets, assignee=UNSET, team=UNSET) -> int:
    require(actor, "tickets.assign_ticket", doing=pgettext_lazy("permission", "assign tickets"))
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            assign(actor=actor, ticket=pk, assignee=assignee, team=team)
    return len(ids)


def bulk_set_tags(*, actor, tickets, add: Iterable[str] = (), remove: Iterable[str] = ()) -> int:
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "tag tickets"))
    add, remove = list(add), list(remove)
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            set_tags(actor=actor, ticket=pk, add=add, remove=remove)
    return len(ids)


def bulk_set_status(*, actor, tickets, status: str) -> int:
    """Bulk solve/close. A closed ticket in the selection cannot be reopened: nothing changes."""
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "change a ticket's status"))
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            set_status(actor=actor, ticket=pk, status=status)
    return len(ids)
