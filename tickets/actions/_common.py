"""What the action modules share: row lookups, and the small writes every action makes (a
version bump, an audit row). Who may act is audit.actors.require, the one rule of every app."""

from __future__ import annotations

from typing import Iterable

from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from audit.log import record
from audit.models import AuditAction

from ..models import Channel, Contact, Identity, Tag, Ticket
from .errors import ActionError


class _Unset:
    def __repr__(self):
        return "UNSET"


UNSET = _Unset()

# The identity kind each inbound channel carries.
KIND_FOR_CHANNEL = {Channel.EMAIL: Identity.Kind.EMAIL, Channel.LINE: Identity.Kind.LINE}


def audit(actor, action: AuditAction, target: str, **details) -> None:
    record(actor=actor, action=action, target=target, **details)


def get_ticket(value, *, lock: bool = False) -> Ticket:
    pk = value.pk if isinstance(value, Ticket) else value
    qs = Ticket.objects.select_for_update(of=("self",)) if lock else Ticket.objects
    try:
        return qs.select_related("requester").get(pk=pk)
    except Ticket.DoesNotExist:
        raise ActionError(_("No ticket %(id)s.") % {"id": pk}, code="not_found") from None


def get_contact(value, *, lock: bool = False) -> Contact:
    pk = value.pk if isinstance(value, Contact) else value
    qs = Contact.objects.select_for_update() if lock else Contact.objects
    try:
        return qs.get(pk=pk)
    except Contact.DoesNotExist:
        raise ActionError(_("No contact %(id)s.") % {"id": pk}, code="not_found") from None


def storable(value):
    """`value` without what PostgreSQL refuses in text and jsonb: NUL characters, and lone
    surrogates (what Python makes of bytes it could not decode). Channels deliver both."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def target_of(obj) -> str:
    """How the audit log names an object: ticket:<number>, contact:<id>, team:<id> ..."""
    if isinstance(obj, Ticket):
        return f"ticket:{obj.number or obj.pk}"
    if isinstance(obj, Contact):
        return f"contact:{obj.pk}"
    return f"{obj.__class__.__name__.lower()}:{obj.pk}"


def author(actor):
    """The user a message is written by (None for Paydesk itself)."""
    return actor if getattr(actor, "pk", None) else None


def touch(ticket: Ticket, *fields: str) -> None:
    """Save these fields and bump the version, so an open page can tell the ticket changed."""
    ticket.version = F("version") + 1
    ticket.save(update_fields=[*fields, "version", "updated"])
    ticket.refresh_from_db(fields=["version", "updated"])


def bump_contact(contact: Contact, *fields: str) -> None:
    Contact.objects.filter(pk=contact.pk).update(version=F("version") + 1, updated=timezone.now())
    contact.refresh_from_db(fields=["version", "updated", *fields])


def tag_names(tags: Iterable[str]) -> list[str]:
    names = []
    for raw in tags:
        name = slugify(str(raw).strip(), allow_unicode=True)[:64]
        if not name:
            raise ActionError(_("%(tag)s is not a usable tag.") % {"tag": repr(raw)}, code="invalid")
        if name not in names:
            names.append(name)
    return names


def tags_named(names: Iterable[str]) -> list[Tag]:
    names = list(names)
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    for name in names:
        if name not in existing:
            existing[name], _created = Tag.objects.get_or_create(name=name)
    return [existing[n] for n in names]


def check_assignee(user) -> None:
    if user is None:
        return
    if not user.is_active or not user.has_perm("tickets.view_ticket"):
        raise ActionError(_("%(user)s cannot work tickets, so cannot be assigned one.") % {"user": user},
                          code="invalid")
