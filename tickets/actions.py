"""Every write to tickets, contacts and identities: one function per action.

Each action validates its input, checks the actor's permission (actor=None is the system:
an inbound channel, a workflow, an integration), runs in one transaction, announces itself
in the audit log (audit.log.record, in the same transaction) and queues
outbound sends with on_commit. Views, admin, tasks and commands call these; none of them
saves a model directly. Functions take model instances or primary keys.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from audit.log import record
from audit.models import AuditAction

from . import identity as identity_rules
from . import queue
from .models import (
    Attachment,
    Channel,
    Contact,
    ContactMerge,
    Identity,
    Macro,
    Message,
    Tag,
    Team,
    Ticket,
)
from .sanitize import clean_html
from .signals import message_received, ticket_created

log = logging.getLogger(__name__)


class ActionError(ValidationError):
    """Bad input or a state that forbids the action: shown to the person, nothing written."""


class TicketClosed(ActionError):
    pass


class StaleTicket(ActionError):
    """The ticket changed since the page that sent this was loaded."""


class UndoRefused(ActionError):
    pass


class NoRecipient(ActionError):
    pass


class _Unset:
    def __repr__(self):
        return "UNSET"


UNSET = _Unset()

# The channel each identity kind is reached by, and back.
KIND_FOR_CHANNEL = {Channel.EMAIL: Identity.Kind.EMAIL, Channel.LINE: Identity.Kind.LINE}
TOKEN_RE = re.compile(r"\[#(\d{1,18})\]")


@dataclass
class IncomingAttachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"
    content_id: str = ""
    # Some sources know the size without the content (an oversize part we did not read).
    size: int | None = None

    @property
    def length(self) -> int:
        return self.size if self.size is not None else len(self.content)


@dataclass
class LinkResult:
    identity: Identity
    created: bool = False
    merge: ContactMerge | None = None


@dataclass
class Received:
    message: Message
    created: bool
    ticket_created: bool = False
    notes: list[Message] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------


def _audit(actor, action: AuditAction, target: str, **details) -> None:
    record(actor=actor, action=action, target=target, **details)


def _require(actor, *perms: str) -> None:
    if actor is None:
        return
    missing = [perm for perm in perms if not actor.has_perm(perm)]
    if missing:
        raise PermissionDenied(f"{actor} lacks {', '.join(missing)}")


def _ticket(value, *, lock: bool = False) -> Ticket:
    pk = value.pk if isinstance(value, Ticket) else value
    qs = Ticket.objects.select_for_update(of=("self",)) if lock else Ticket.objects
    try:
        return qs.select_related("requester").get(pk=pk)
    except Ticket.DoesNotExist:
        raise ActionError(f"No ticket {pk}.", code="not_found") from None


def _contact(value, *, lock: bool = False) -> Contact:
    pk = value.pk if isinstance(value, Contact) else value
    qs = Contact.objects.select_for_update() if lock else Contact.objects
    try:
        return qs.get(pk=pk)
    except Contact.DoesNotExist:
        raise ActionError(f"No contact {pk}.", code="not_found") from None


def _target(obj) -> str:
    if isinstance(obj, Ticket):
        return f"ticket:{obj.number or obj.pk}"
    if isinstance(obj, Contact):
        return f"contact:{obj.pk}"
    return f"{obj.__class__.__name__.lower()}:{obj.pk}"


def _user_ref(user) -> dict | None:
    return None if user is None else {"id": user.pk, "username": user.get_username()}


def _touch(ticket: Ticket, *fields: str) -> None:
    ticket.version = F("version") + 1
    ticket.save(update_fields=[*fields, "version", "updated"])
    ticket.refresh_from_db(fields=["version", "updated"])


def _bump_contact(contact: Contact, *fields: str) -> None:
    Contact.objects.filter(pk=contact.pk).update(version=F("version") + 1, updated=timezone.now())
    contact.refresh_from_db(fields=["version", "updated", *fields])


def sla_times(priority: str, start: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    targets = settings.TICKETS_SLA.get(priority)
    if not targets:
        return None, None
    first, resolution = targets
    return start + first, start + resolution


def _refresh_sla(ticket: Ticket) -> None:
    if ticket.status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        ticket.sla_due = None
    elif ticket.first_responded_at is None:
        ticket.sla_due = ticket.first_response_due
    else:
        ticket.sla_due = ticket.resolution_due


def _tag_names(tags: Iterable[str]) -> list[str]:
    names = []
    for raw in tags:
        name = slugify(str(raw).strip(), allow_unicode=True)[:64]
        if not name:
            raise ActionError(f"{raw!r} is not a usable tag.", code="invalid")
        if name not in names:
            names.append(name)
    return names


def _tags(names: Iterable[str]) -> list[Tag]:
    names = list(names)
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    for name in names:
        if name not in existing:
            existing[name], _ = Tag.objects.get_or_create(name=name)
    return [existing[n] for n in names]


def _check_assignee(user) -> None:
    if user is None:
        return
    if not user.is_active or not user.has_perm("tickets.view_ticket"):
        raise ActionError(f"{user} cannot work tickets, so cannot be assigned one.", code="invalid")


def _store_attachments(message: Message, attachments: Sequence[IncomingAttachment]) -> list[Attachment]:
    """Store files up to the limit; refuse larger ones (name and size kept)."""
    limit = settings.TICKETS_ATTACHMENT_MAX_BYTES
    stored = []
    for item in attachments:
        filename = (item.filename or "attachment").replace("/", "_").replace("\\", "_")[:255]
        refused = item.length > limit
        attachment = Attachment(
            message=message,
            filename=filename,
            content_type=(item.content_type or "")[:255],
            size=item.length,
            content_id=(item.content_id or "").strip("<>")[:255],
            refused=refused,
        )
        if not refused:
            attachment.file.save(filename, ContentFile(item.content), save=False)
        attachment.save()
        stored.append(attachment)
    return stored


def _refusal_note(ticket: Ticket, refused: list[Attachment]) -> Message | None:
    if not refused:
        return None
    limit = settings.TICKETS_ATTACHMENT_MAX_BYTES
    lines = [f"{a.filename} ({a.size:,} bytes)" for a in refused]
    body = (
        f"Refused {len(refused)} attachment(s) over the {limit:,}-byte limit: "
        + "; ".join(lines)
        + ". Ask the customer to send them another way."
    )
    return Message.objects.create(ticket=ticket, kind=Message.Kind.NOTE, channel=ticket.channel, body_text=body)


# --- contacts and identities -----------------------------------------------------------


def resolve_contact(kind: str, value: str, *, name: str = "") -> tuple[Contact, Identity, bool]:
    """The contact an identity belongs to; an unknown identity creates a contact.

    Returns (contact, identity, created). Safe under concurrency: two first messages from
    one new address end on one contact (the unique kind+value decides).
    """
    value = identity_rules.normalise(kind, value)
    found = Identity.objects.select_related("contact").filter(kind=kind, value=value).first()
    if found:
        return found.contact, found, False
    try:
        with transaction.atomic():
            contact = Contact.objects.create(name=(name or "")[:255])
            ident = Identity.objects.create(contact=contact, kind=kind, value=value)
            _audit(None, AuditAction.CONTACT_CREATE, _target(contact), kind=kind, value=value)
    except IntegrityError:
        found = Identity.objects.select_related("contact").get(kind=kind, value=value)
        return found.contact, found, False
    return contact, ident, True


def create_contact(*, actor, name: str = "", identities: Sequence[tuple[str, str]] = ()) -> Contact:
    _require(actor, "tickets.add_contact")
    pairs = [(kind, identity_rules.normalise(kind, value)) for kind, value in identities]
    with transaction.atomic():
        contact = Contact.objects.create(name=name[:255])
        _audit(actor, AuditAction.CONTACT_CREATE, _target(contact), name=name)
        for kind, value in pairs:
            link_identity(actor=actor, contact=contact, kind=kind, value=value)
    return contact


def update_contact(*, actor, contact, name: str) -> Contact:
    _require(actor, "tickets.change_contact")
    with transaction.atomic():
        contact = _contact(contact, lock=True)
        old = contact.name
        Contact.objects.filter(pk=contact.pk).update(name=name[:255])
        _bump_contact(contact, "name")
        _audit(actor, AuditAction.CONTACT_UPDATE, _target(contact), name={"from": old, "to": contact.name})
    return contact


def link_identity(*, actor, contact, kind: str, value: str, reason: str = "") -> LinkResult:
    """Give `contact` the identity kind:value. If another contact has it, the two are merged
    into `contact` (the merge is recorded and can be undone)."""
    _require(actor, "tickets.link_identity")
    value = identity_rules.normalise(kind, value)
    with transaction.atomic():
        contact = _contact(contact, lock=True)
        if contact.merged_into_id:
            raise ActionError(f"{contact} was merged into another contact; link to that one.", code="merged")
        existing = Identity.objects.select_for_update().filter(kind=kind, value=value).first()
        if existing and existing.contact_id == contact.pk:
            return LinkResult(existing, created=False)
        if existing:
            merge = contact_merge(
                actor=actor, survivor=contact, merged=existing.contact_id,
                reason=reason or f"linked {kind} {value}",
            )
            existing.refresh_from_db()
            return LinkResult(existing, created=False, merge=merge)
        try:
            with transaction.atomic():
                ident = Identity.objects.create(contact=contact, kind=kind, value=value)
        except IntegrityError:
            raise ActionError(f"{kind} {value} was linked elsewhere at the same moment; try again.") from None
        _bump_contact(contact)
        _audit(actor, AuditAction.IDENTITY_LINK, _target(contact), kind=kind, value=value, reason=reason)
        return LinkResult(ident, created=True)


def link_identity_to(*, actor, anchor_kind: str, anchor_value: str, kind: str, value: str,
                     name: str = "", reason: str = "") -> LinkResult:
    """Link kind:value to whichever contact has anchor_kind:anchor_value (an email, usually),
    creating that contact if nobody has it yet. Integrations and the Stripe mirror use this."""
    _require(actor, "tickets.link_identity")
    with transaction.atomic():
        contact, _, _ = resolve_contact(anchor_kind, anchor_value, name=name)
        if name and not contact.name:
            Contact.objects.filter(pk=contact.pk, name="").update(name=name[:255])
        return link_identity(actor=actor, contact=contact, kind=kind, value=value, reason=reason)


def unlink_identity(*, actor, identity, reason: str = "") -> None:
    """Remove an identity from its contact. Later messages from it start a new contact."""
    _require(actor, "tickets.link_identity")
    pk = identity.pk if isinstance(identity, Identity) else identity
    with transaction.atomic():
        ident = Identity.objects.select_for_update().filter(pk=pk).first()
        if ident is None:
            raise ActionError("That identity is already unlinked.", code="not_found")
        contact = _contact(ident.contact_id, lock=True)
        kind, value = ident.kind, ident.value
        ident.delete()
        _bump_contact(contact)
        _audit(actor, AuditAction.IDENTITY_UNLINK, _target(contact), kind=kind, value=value, reason=reason)


def contact_merge(*, actor, survivor, merged, reason: str = "") -> ContactMerge:
    """Move `merged`'s tickets, messages and identities to `survivor`, recording what moved."""
    _require(actor, "tickets.merge_contacts")
    survivor_pk = survivor.pk if isinstance(survivor, Contact) else survivor
    merged_pk = merged.pk if isinstance(merged, Contact) else merged
    if survivor_pk == merged_pk:
        raise ActionError("A contact cannot be merged into itself.", code="invalid")
    with transaction.atomic():
        # Lock in id order so two opposite merges cannot deadlock.
        locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=[survivor_pk, merged_pk]).order_by("pk")}
        if len(locked) != 2:
            raise ActionError("One of the contacts no longer exists.", code="not_found")
        survivor, merged = locked[survivor_pk], locked[merged_pk]
        if survivor.merged_into_id or merged.merged_into_id:
            raise ActionError("One of the contacts was already merged into another.", code="merged")
        moved = {
            "tickets": list(Ticket.objects.filter(requester=merged).values_list("pk", flat=True)),
            "messages": list(Message.objects.filter(contact=merged).values_list("pk", flat=True)),
            "identities": [
                {"id": pk, "kind": kind, "value": value}
                for pk, kind, value in Identity.objects.filter(contact=merged).values_list("pk", "kind", "value")
            ],
            "name": merged.name,
            "name_taken": bool(merged.name and not survivor.name),
        }
        Ticket.objects.filter(pk__in=moved["tickets"]).update(requester=survivor, updated=timezone.now())
        Message.objects.filter(pk__in=moved["messages"]).update(contact=survivor)
        Identity.objects.filter(contact=merged).update(contact=survivor)
        if moved["name_taken"]:
            Contact.objects.filter(pk=survivor.pk).update(name=merged.name)
        Contact.objects.filter(pk=merged.pk).update(merged_into=survivor, version=F("version") + 1, updated=timezone.now())
        _bump_contact(survivor, "name")
        record = ContactMerge.objects.create(
            survivor=survivor, merged=merged, actor=actor if getattr(actor, "pk", None) else None,
            reason=reason[:255], moved=moved, survivor_version=survivor.version,
        )
        _audit(
            actor, AuditAction.CONTACT_MERGE, _target(survivor), merged=merged.pk, merge=record.pk, reason=reason,
            tickets=len(moved["tickets"]), messages=len(moved["messages"]),
            identities=[f"{i['kind']}:{i['value']}" for i in moved["identities"]],
        )
    return record


def undo_merge(*, actor, merge) -> ContactMerge:
    """Put back what a merge moved, while the surviving contact has not changed since."""
    _require(actor, "tickets.merge_contacts")
    pk = merge.pk if isinstance(merge, ContactMerge) else merge
    with transaction.atomic():
        record = ContactMerge.objects.select_for_update().filter(pk=pk).first()
        if record is None:
            raise ActionError(f"No merge {pk}.", code="not_found")
        if record.undone_at:
            raise UndoRefused("This merge was already undone.", code="undone")
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update()
            .filter(pk__in=[record.survivor_id, record.merged_id])
            .order_by("pk")
        }
        survivor, merged = locked[record.survivor_id], locked[record.merged_id]
        if survivor.version != record.survivor_version:
            raise UndoRefused(
                f"{survivor} has changed since the merge (identities, name, messages or another merge); "
                "undo is no longer safe. Unlink or merge by hand instead.",
                code="changed",
            )
        moved = record.moved
        Ticket.objects.filter(pk__in=moved.get("tickets", []), requester=survivor).update(
            requester=merged, updated=timezone.now()
        )
        Message.objects.filter(pk__in=moved.get("messages", []), contact=survivor).update(contact=merged)
        Identity.objects.filter(pk__in=[i["id"] for i in moved.get("identities", [])], contact=survivor).update(
            contact=merged
        )
        if moved.get("name_taken"):
            Contact.objects.filter(pk=survivor.pk).update(name="")
        Contact.objects.filter(pk=merged.pk).update(merged_into=None, version=F("version") + 1, updated=timezone.now())
        _bump_contact(survivor, "name")
        record.undone_at = timezone.now()
        record.undone_by = actor if getattr(actor, "pk", None) else None
        record.save(update_fields=["undone_at", "undone_by"])
        _audit(actor, AuditAction.CONTACT_MERGE_UNDO, _target(survivor), merged=merged.pk, merge=record.pk)
    return record


# --- tickets ----------------------------------------------------------------------------


def _new_ticket(*, actor, requester: Contact, subject: str, channel: str, priority: str = Ticket.Priority.NORMAL,
                team=None, assignee=None, tags: Sequence[str] = (), number: int | None = None) -> Ticket:
    now = timezone.now()
    first_due, resolution_due = sla_times(priority, now)
    ticket = Ticket(
        subject=(subject or "(no subject)").strip()[:255] or "(no subject)",
        channel=channel,
        priority=priority,
        requester=requester,
        team=team,
        assignee=assignee,
        number=number,
        first_response_due=first_due,
        resolution_due=resolution_due,
        last_message_at=now,
    )
    _refresh_sla(ticket)
    ticket.save()
    # Due times count from the stored creation time exactly (set_priority recomputes from it),
    # written together with the number, which defaults to the id.
    ticket.first_response_due, ticket.resolution_due = sla_times(priority, ticket.created)
    _refresh_sla(ticket)
    ticket.number = ticket.number or ticket.pk
    Ticket.objects.filter(pk=ticket.pk).update(
        number=ticket.number, first_response_due=ticket.first_response_due,
        resolution_due=ticket.resolution_due, sla_due=ticket.sla_due,
    )
    if tags:
        ticket.tags.set(_tags(_tag_names(tags)))
    _audit(actor, AuditAction.TICKET_CREATE, _target(ticket), channel=channel, requester=requester.pk, priority=priority,
           subject=ticket.subject)
    # Listeners (console's timeline) hear of it once it is committed, never inside.
    transaction.on_commit(lambda: ticket_created.send(sender=__name__, ticket=ticket, actor=actor), robust=True)
    return ticket


def create_ticket(*, actor, requester, subject: str, channel: str = Channel.WEB,
                  priority: str = Ticket.Priority.NORMAL, team=None, assignee=None,
                  tags: Sequence[str] = (), note: str = "") -> Ticket:
    """A ticket opened by an agent or a workflow (inbound channels open theirs themselves)."""
    _require(actor, "tickets.add_ticket")
    if not (subject or "").strip():
        raise ActionError("A ticket needs a subject.", code="required")
    if priority not in Ticket.Priority.values:
        raise ActionError(f"Unknown priority {priority!r}.", code="invalid")
    if channel not in Channel.values:
        raise ActionError(f"Unknown channel {channel!r}.", code="invalid")
    if assignee is not None:
        _require(actor, "tickets.assign_ticket")
        _check_assignee(assignee)
    team = Team.objects.get(pk=team) if isinstance(team, int) else team
    with transaction.atomic():
        requester = _contact(requester)
        ticket = _new_ticket(actor=actor, requester=requester, subject=subject, channel=channel, priority=priority,
                             team=team, assignee=assignee, tags=tags)
        if note.strip():
            Message.objects.create(ticket=ticket, kind=Message.Kind.NOTE, channel=channel, author=_author(actor),
                                   body_text=note.strip())
    return ticket


def _author(actor):
    return actor if getattr(actor, "pk", None) else None


def _thread_email(contact: Contact, subject: str, in_reply_to: str, references: Sequence[str]) -> Ticket | None:
    ids = [i for i in [in_reply_to, *reversed(list(references))] if i]
    if ids:
        found = (
            Message.objects.filter(channel=Channel.EMAIL, channel_message_id__in=ids)
            .select_related("ticket")
            .order_by("-created", "-id")
            .first()
        )
        if found:
            return found.ticket
    # Headers lost (some clients drop them): the [#1234] token, only on the sender's own
    # tickets so a guessed number cannot write into somebody else's conversation.
    for match in TOKEN_RE.finditer(subject or ""):
        ticket = Ticket.objects.filter(number=int(match.group(1)), requester=contact).first()
        if ticket:
            return ticket
    return None


def _thread_line(contact: Contact) -> Ticket | None:
    return (
        Ticket.objects.filter(requester=contact, channel=Channel.LINE)
        .exclude(status=Ticket.Status.CLOSED)
        .order_by("-last_message_at", "-id")
        .first()
    )


def receive_message(*, actor=None, channel: str, sender: str, sender_name: str = "", subject: str = "",
                    body_text: str = "", body_html: str = "", channel_message_id: str = "",
                    in_reply_to: str = "", references: Sequence[str] = (),
                    attachments: Sequence[IncomingAttachment] = (), recipient: str = "") -> Received:
    """A customer's message from a channel: resolve the contact by the identity it carries,
    thread it onto a ticket (or open one), store it once (same channel message id: the
    stored one is returned), clean its HTML, keep or refuse its attachments."""
    _require(actor, "tickets.add_ticket")
    kind = KIND_FOR_CHANNEL.get(channel)
    if kind is None:
        raise ActionError(f"Channel {channel!r} has no inbound messages.", code="invalid")
    channel_message_id = (channel_message_id or "").strip()[:998]
    if channel_message_id:
        existing = Message.objects.filter(channel=channel, channel_message_id=channel_message_id).first()
        if existing:
            return Received(existing, created=False)
    sender_value = identity_rules.normalise(kind, sender)
    if kind == Identity.Kind.EMAIL and not sender_name:
        from email.utils import parseaddr

        sender_name = parseaddr(sender)[0]
    html = clean_html(body_html)
    text = body_text or ""
    try:
        with transaction.atomic():
            contact, ident, _ = resolve_contact(kind, sender_value, name=sender_name)
            if channel == Channel.EMAIL:
                ticket = _thread_email(contact, subject, in_reply_to, references)
            else:
                ticket = _thread_line(contact)
            follow_up_of = None
            if ticket is not None and ticket.status == Ticket.Status.CLOSED:
                follow_up_of, ticket = ticket, None
            opened = ticket is None
            if opened:
                ticket = _new_ticket(
                    actor=actor, requester=contact, channel=channel,
                    subject=subject or _subject_from(text, channel, sender_name or sender_value),
                )
            ticket = _ticket(ticket, lock=True)
            message = Message.objects.create(
                ticket=ticket, kind=Message.Kind.INBOUND, channel=channel, contact=contact,
                sender=sender_value, recipient=recipient[:320], subject=subject[:998], body_text=text,
                body_html=html, channel_message_id=channel_message_id,
                headers={"in_reply_to": in_reply_to, "references": list(references)} if channel == Channel.EMAIL else {},
            )
            stored = _store_attachments(message, attachments)
            notes = []
            if follow_up_of is not None:
                notes.append(Message.objects.create(
                    ticket=ticket, kind=Message.Kind.NOTE, channel=channel,
                    body_text=f"Follow-up to closed ticket #{follow_up_of.number}.",
                ))
            refusal = _refusal_note(ticket, [a for a in stored if a.refused])
            if refusal:
                notes.append(refusal)
            fields = ["last_message_at"]
            ticket.last_message_at = message.created
            if not opened and ticket.status in (Ticket.Status.PENDING, Ticket.Status.SOLVED):
                ticket.status, ticket.solved_at = Ticket.Status.OPEN, None
                fields += ["status", "solved_at"]
            _refresh_sla(ticket)
            _touch(ticket, *fields, "sla_due")
            # A new message for the contact is a change: an older merge can no longer be undone
            # without splitting this conversation from the identity it came from.
            _bump_contact(contact)
            _audit(actor, AuditAction.MESSAGE_RECEIVE, _target(ticket), channel=channel, sender=sender_value,
                   message=message.pk, attachments=len(stored), refused=sum(a.refused for a in stored))
            transaction.on_commit(lambda: message_received.send(
                sender=__name__, message=message, ticket=ticket, contact=contact, created_ticket=opened,
            ), robust=True)
    except IntegrityError:
        # The same message stored by a concurrent delivery: that one wins, this one is a no-op.
        if channel_message_id:
            existing = Message.objects.filter(channel=channel, channel_message_id=channel_message_id).first()
            if existing:
                return Received(existing, created=False)
        raise
    return Received(message, created=True, ticket_created=opened, notes=notes)


def _subject_from(text: str, channel: str, who: str) -> str:
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    if first:
        return first[:80] + ("…" if len(first) > 80 else "")
    return f"{Channel(channel).label} message from {who}"


def _recipient(ticket: Ticket, channel: str) -> str:
    """Where a reply goes: the address the customer last wrote from, if it is still theirs,
    else any identity of that kind the requester has."""
    kind = KIND_FOR_CHANNEL[channel]
    values = set(Identity.objects.filter(contact=ticket.requester_id, kind=kind, reachable=True)
                 .values_list("value", flat=True))
    last = (
        Message.objects.filter(ticket=ticket, kind=Message.Kind.INBOUND, channel=channel)
        .order_by("-created", "-id").values_list("sender", flat=True).first()
    )
    if last and last in values:
        return last
    if values:
        return sorted(values)[0]
    raise NoRecipient(
        f"{ticket.requester} has no {Identity.Kind(kind).label.lower()} to reply to; link one first.",
        code="no_recipient",
    )


def _reply_channel(ticket: Ticket) -> str:
    if ticket.channel in KIND_FOR_CHANNEL:
        return ticket.channel
    # Tickets opened by an agent or a workflow are answered by email.
    return Channel.EMAIL


def _email_headers(ticket: Ticket) -> dict:
    last = (
        Message.objects.filter(ticket=ticket, channel=Channel.EMAIL)
        .exclude(kind=Message.Kind.NOTE).exclude(channel_message_id="")
        .order_by("-created", "-id").values("channel_message_id", "headers").first()
    )
    if not last:
        return {"in_reply_to": "", "references": []}
    refs = [r for r in (last["headers"] or {}).get("references", []) if r]
    refs = [*refs, last["channel_message_id"]][-20:]
    return {"in_reply_to": last["channel_message_id"], "references": refs}


def new_message_id() -> str:
    from email.utils import make_msgid

    return make_msgid(domain=settings.TICKETS_EMAIL_DOMAIN).strip("<>")


def reply(*, actor, ticket, body: str, html: str = "", attachments: Sequence[IncomingAttachment] = (),
          status: str | None = None, expected_version: int | None = None) -> Message:
    """A reply to the customer on the ticket's channel, queued and sent after commit."""
    _require(actor, "tickets.reply_ticket")
    if not (body or "").strip():
        raise ActionError("A reply needs some text.", code="required")
    if status is not None and status not in Ticket.Status.values:
        raise ActionError(f"Unknown status {status!r}.", code="invalid")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        if ticket.status == Ticket.Status.CLOSED:
            raise TicketClosed(
                f"Ticket #{ticket.number} is closed; replies are not sent on closed tickets. "
                "Open a new ticket for the customer instead.",
                code="closed",
            )
        if expected_version is not None and ticket.version != expected_version:
            raise StaleTicket(f"Ticket #{ticket.number} changed since you opened it; read the update first.",
                              code="stale")
        message = _outbound(actor, ticket, body, html, attachments)
        now = timezone.now()
        fields = ["last_message_at", "sla_due"]
        ticket.last_message_at = now
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
            fields.append("first_responded_at")
        if status and status != ticket.status:
            fields += _status_fields(ticket, status)
        _refresh_sla(ticket)
        _touch(ticket, *fields)
        _audit(actor, AuditAction.TICKET_REPLY, _target(ticket), message=message.pk, channel=message.channel,
               recipient=message.recipient, status=ticket.status)
        _enqueue_delivery(message.pk)
    return message


def _outbound(actor, ticket: Ticket, body: str, html: str, attachments: Sequence[IncomingAttachment]) -> Message:
    channel = _reply_channel(ticket)
    recipient = _recipient(ticket, channel)
    headers = _email_headers(ticket) if channel == Channel.EMAIL else {}
    message = Message.objects.create(
        ticket=ticket, kind=Message.Kind.OUTBOUND, channel=channel, author=_author(actor),
        recipient=recipient, subject=_reply_subject(ticket) if channel == Channel.EMAIL else "",
        body_text=body.strip(), body_html=clean_html(html),
        channel_message_id=new_message_id() if channel == Channel.EMAIL else "",
        headers=headers, delivery_status=Message.Delivery.QUEUED,
    )
    if attachments:
        _store_attachments(message, attachments)
    return message


def _reply_subject(ticket: Ticket) -> str:
    subject = ticket.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return f"{subject} {ticket.token}"


def _enqueue_delivery(message_id: int) -> None:
    queue.enqueue("tickets.tasks.deliver_message_task", message_id)


def add_note(*, actor, ticket, body: str, html: str = "", attachments: Sequence[IncomingAttachment] = ()) -> Message:
    _require(actor, "tickets.note_ticket")
    if not (body or "").strip():
        raise ActionError("A note needs some text.", code="required")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        message = Message.objects.create(
            ticket=ticket, kind=Message.Kind.NOTE, channel=ticket.channel, author=_author(actor),
            body_text=body.strip(), body_html=clean_html(html),
        )
        if attachments:
            _store_attachments(message, attachments)
        _touch(ticket)
        _audit(actor, AuditAction.TICKET_NOTE, _target(ticket), message=message.pk)
    return message


def _status_fields(ticket: Ticket, status: str) -> list[str]:
    if ticket.status == Ticket.Status.CLOSED and status != Ticket.Status.CLOSED:
        raise TicketClosed(f"Ticket #{ticket.number} is closed and cannot be reopened.", code="closed")
    ticket.status = status
    if status in (Ticket.Status.SOLVED, Ticket.Status.CLOSED):
        ticket.solved_at = ticket.solved_at or timezone.now()
    else:
        ticket.solved_at = None
    _refresh_sla(ticket)
    return ["status", "solved_at", "sla_due"]


def set_status(*, actor, ticket, status: str, expected_version: int | None = None) -> Ticket:
    _require(actor, "tickets.change_ticket")
    if status not in Ticket.Status.values:
        raise ActionError(f"Unknown status {status!r}.", code="invalid")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        _check_version(ticket, expected_version)
        if ticket.status == status:
            return ticket
        old = ticket.status
        fields = _status_fields(ticket, status)
        _touch(ticket, *fields)
        _audit(actor, AuditAction.TICKET_STATUS, _target(ticket), status={"from": old, "to": status})
    return ticket


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and ticket.version != expected_version:
        raise StaleTicket(f"Ticket #{ticket.number} changed since you opened it.", code="stale")


def set_priority(*, actor, ticket, priority: str) -> Ticket:
    _require(actor, "tickets.change_ticket")
    if priority not in Ticket.Priority.values:
        raise ActionError(f"Unknown priority {priority!r}.", code="invalid")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        if ticket.priority == priority:
            return ticket
        old = ticket.priority
        ticket.priority = priority
        ticket.first_response_due, ticket.resolution_due = sla_times(priority, ticket.created)
        _refresh_sla(ticket)
        _touch(ticket, "priority", "first_response_due", "resolution_due", "sla_due")
        _audit(actor, AuditAction.TICKET_PRIORITY, _target(ticket), priority={"from": old, "to": priority})
    return ticket


def set_subject(*, actor, ticket, subject: str) -> Ticket:
    _require(actor, "tickets.change_ticket")
    subject = (subject or "").strip()[:255]
    if not subject:
        raise ActionError("A ticket needs a subject.", code="required")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        old = ticket.subject
        ticket.subject = subject
        _touch(ticket, "subject")
        _audit(actor, AuditAction.TICKET_SUBJECT, _target(ticket), subject={"from": old, "to": subject})
    return ticket


def assign(*, actor, ticket, assignee=UNSET, team=UNSET) -> Ticket:
    """Assign to an agent and/or a team (None clears; leave out to keep)."""
    _require(actor, "tickets.assign_ticket")
    if assignee is not UNSET:
        _check_assignee(assignee)
    if team is not UNSET and team is not None and not isinstance(team, Team):
        team = Team.objects.filter(pk=team).first() or _missing("team", team)
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
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
        _touch(ticket, *fields)
        _audit(actor, AuditAction.TICKET_ASSIGN, _target(ticket), **changes)
    return ticket


def _missing(what: str, pk):
    raise ActionError(f"No {what} {pk}.", code="not_found")


def set_tags(*, actor, ticket, tags: Iterable[str] = (), add: Iterable[str] = (), remove: Iterable[str] = ()) -> Ticket:
    """Replace the ticket's tags with `tags`, or add/remove some (given add/remove)."""
    _require(actor, "tickets.change_ticket")
    tags, add, remove = _tag_names(tags), _tag_names(add), _tag_names(remove)
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        before = sorted(ticket.tags.values_list("name", flat=True))
        if add or remove:
            wanted = [t for t in before if t not in remove] + [t for t in add if t not in before]
        else:
            wanted = tags
        if sorted(wanted) == before:
            return ticket
        ticket.tags.set(_tags(wanted))
        _touch(ticket)
        _audit(actor, AuditAction.TICKET_TAGS, _target(ticket), tags={"from": before, "to": sorted(wanted)})
    return ticket


PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def render_macro(macro: Macro, *, ticket: Ticket, actor=None) -> str:
    """The macro's text with placeholders filled ({{ contact.name }}, {{ ticket.number }},
    {{ ticket.subject }}, {{ agent.name }}); unknown placeholders are left as written."""
    contact = ticket.requester
    values = {
        ("contact", "name"): contact.name or "there",
        ("contact", "first_name"): (contact.name or "there").split()[0],
        ("ticket", "number"): str(ticket.number),
        ("ticket", "subject"): ticket.subject,
        ("ticket", "status"): ticket.get_status_display(),
        ("agent", "name"): (actor.get_full_name() or actor.get_username()) if actor else "",
        ("agent", "first_name"): (actor.first_name or actor.get_username()) if actor else "",
    }
    return PLACEHOLDER_RE.sub(lambda m: values.get((m.group(1), m.group(2)), m.group(0)), macro.body)


def apply_macro(*, actor, ticket, macro, body: str | None = None, as_note: bool = False,
                expected_version: int | None = None) -> Ticket:
    """Send the macro's reply (or `body`, the agent's edit of it) and apply its changes,
    all in one transaction."""
    macro = macro if isinstance(macro, Macro) else Macro.objects.filter(pk=macro, active=True).first()
    if macro is None or not macro.active:
        raise ActionError("That macro does not exist or is inactive.", code="not_found")
    with transaction.atomic():
        ticket = _ticket(ticket, lock=True)
        _check_version(ticket, expected_version)
        text = render_macro(macro, ticket=ticket, actor=actor) if body is None else body
        if text.strip():
            if as_note:
                add_note(actor=actor, ticket=ticket, body=text)
            else:
                reply(actor=actor, ticket=ticket, body=text)
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
        _audit(actor, AuditAction.TICKET_MACRO, _target(ticket), macro=macro.name)
        return _ticket(ticket)


def _bulk(tickets) -> list[int]:
    ids = [t.pk if isinstance(t, Ticket) else int(t) for t in tickets]
    if len(ids) > 500:
        raise ActionError("At most 500 tickets at once.", code="too_many")
    return ids


def bulk_assign(*, actor, tickets, assignee=UNSET, team=UNSET) -> int:
    _require(actor, "tickets.assign_ticket")
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            assign(actor=actor, ticket=pk, assignee=assignee, team=team)
    return len(ids)


def bulk_set_tags(*, actor, tickets, add: Iterable[str] = (), remove: Iterable[str] = ()) -> int:
    _require(actor, "tickets.change_ticket")
    add, remove = list(add), list(remove)
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            set_tags(actor=actor, ticket=pk, add=add, remove=remove)
    return len(ids)


def bulk_set_status(*, actor, tickets, status: str) -> int:
    """Bulk solve/close. A closed ticket in the selection cannot be reopened: nothing changes."""
    _require(actor, "tickets.change_ticket")
    with transaction.atomic():
        ids = _bulk(tickets)
        for pk in ids:
            set_status(actor=actor, ticket=pk, status=status)
    return len(ids)


# --- delivery ---------------------------------------------------------------------------


class DeliveryFailed(Exception):
    """A permanent failure: the message is marked failed (an agent can retry it)."""


def claim_delivery(message_id: int) -> Message | None:
    """Mark a queued (or long-stuck sending) message as sending; None if someone else has it
    or it is already sent. The claim is a compare-and-swap, so a redelivered task sends once."""
    stale = timezone.now() - dt.timedelta(minutes=10)
    claimed = Message.objects.filter(pk=message_id, kind=Message.Kind.OUTBOUND).filter(
        Q(delivery_status=Message.Delivery.QUEUED)
        | Q(delivery_status=Message.Delivery.SENDING, delivery_started_at__lt=stale)
    ).update(
        delivery_status=Message.Delivery.SENDING,
        delivery_started_at=timezone.now(),
        delivery_attempts=F("delivery_attempts") + 1,
    )
    if not claimed:
        return None
    return Message.objects.select_related("ticket", "ticket__requester", "author").get(pk=message_id)


def mark_delivered(message_id: int, *, channel_message_id: str = "") -> None:
    with transaction.atomic():
        fields = {"delivery_status": Message.Delivery.SENT, "delivery_error": "", "sent_at": timezone.now()}
        if channel_message_id:
            fields["channel_message_id"] = channel_message_id[:998]
        Message.objects.filter(pk=message_id).update(**fields)
        ticket_id = Message.objects.filter(pk=message_id).values_list("ticket_id", flat=True).first()
        _audit(None, AuditAction.MESSAGE_DELIVERED, f"message:{message_id}", ticket=ticket_id)


def mark_delivery_failed(message_id: int, error: str, *, final: bool) -> None:
    """Record a failed attempt: back to queued for the task's retry, or failed for an agent."""
    with transaction.atomic():
        Message.objects.filter(pk=message_id).exclude(delivery_status=Message.Delivery.SENT).update(
            delivery_status=Message.Delivery.FAILED if final else Message.Delivery.QUEUED,
            delivery_error=error[:2000],
        )
        if final:
            ticket_id = Message.objects.filter(pk=message_id).values_list("ticket_id", flat=True).first()
            _audit(None, AuditAction.MESSAGE_DELIVERY_FAILED, f"message:{message_id}", ticket=ticket_id, error=error[:500])


def retry_delivery(*, actor, message) -> Message:
    """Queue a failed outbound message again (the retry button)."""
    _require(actor, "tickets.retry_delivery")
    pk = message.pk if isinstance(message, Message) else message
    with transaction.atomic():
        msg = Message.objects.select_for_update().filter(pk=pk).select_related("ticket").first()
        if msg is None or msg.kind != Message.Kind.OUTBOUND:
            raise ActionError("Only replies to customers can be retried.", code="invalid")
        if msg.delivery_status != Message.Delivery.FAILED:
            raise ActionError(f"This reply is {msg.get_delivery_status_display().lower()}, not failed.",
                              code="not_failed")
        if msg.ticket.status == Ticket.Status.CLOSED:
            raise TicketClosed(f"Ticket #{msg.ticket.number} is closed.", code="closed")
        msg.delivery_status = Message.Delivery.QUEUED
        msg.save(update_fields=["delivery_status"])
        _audit(actor, AuditAction.MESSAGE_RETRY, _target(msg.ticket), message=msg.pk)
        _enqueue_delivery(msg.pk)
    return msg


# --- teams and macros (admin) -----------------------------------------------------------


def save_team(*, actor, team: Team, members: Iterable | None = None) -> Team:
    _require(actor, "tickets.change_team" if team.pk else "tickets.add_team")
    if not team.name.strip():
        raise ActionError("A team needs a name.", code="required")
    team.slug = team.slug or slugify(team.name)
    with transaction.atomic():
        created = team.pk is None
        team.save()
        if members is not None:
            team.members.set(members)
        _audit(actor, AuditAction.TEAM_CREATE if created else AuditAction.TEAM_UPDATE, _target(team), name=team.name)
    return team


def delete_team(*, actor, team: Team) -> None:
    _require(actor, "tickets.delete_team")
    with transaction.atomic():
        name, pk = team.name, team.pk
        team.delete()
        _audit(actor, AuditAction.TEAM_DELETE, f"team:{pk}", name=name)


def save_macro(*, actor, macro: Macro) -> Macro:
    _require(actor, "tickets.change_macro" if macro.pk else "tickets.add_macro")
    macro.add_tags = _tag_names(macro.add_tags or [])
    with transaction.atomic():
        created = macro.pk is None
        macro.save()
        _audit(actor, AuditAction.MACRO_CREATE if created else AuditAction.MACRO_UPDATE, _target(macro), name=macro.name)
    return macro


def delete_macro(*, actor, macro: Macro) -> None:
    _require(actor, "tickets.delete_macro")
    with transaction.atomic():
        name, pk = macro.name, macro.pk
        macro.delete()
        _audit(actor, AuditAction.MACRO_DELETE, f"macro:{pk}", name=name)


__all__ = [
    "ActionError", "TicketClosed", "StaleTicket", "UndoRefused", "NoRecipient", "DeliveryFailed",
    "UNSET", "IncomingAttachment", "LinkResult", "Received",
    "resolve_contact", "create_contact", "update_contact", "link_identity", "link_identity_to",
    "unlink_identity", "contact_merge", "undo_merge",
    "create_ticket", "receive_message", "reply", "add_note", "set_status", "set_priority", "set_subject",
    "assign", "set_tags", "render_macro", "apply_macro", "bulk_assign", "bulk_set_tags", "bulk_set_status",
    "claim_delivery", "mark_delivered", "mark_delivery_failed", "retry_delivery",
    "save_team", "delete_team", "save_macro", "delete_macro", "sla_times",
]
