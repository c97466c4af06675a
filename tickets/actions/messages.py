"""The conversation: a customer's message from a channel, an agent's reply and internal note,
their attachments, and the note that says which attachments were refused."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import make_msgid, parseaddr
from typing import Sequence

from django.utils.translation import pgettext_lazy
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _, ngettext

from audit.actors import require
from audit.models import AuditAction

from .. import attachment_scan, identity as identity_rules
from ..models import Attachment, Channel, Contact, Identity, Message, Ticket
from ..sanitize import clean_html
from ..selectors import detect_language, language_code
from ..signals import message_received
from ._common import KIND_FOR_CHANNEL, audit, author, bump_contact, get_ticket, storable, target_of, touch
from ._rules import open_ticket, refresh_sla, status_fields
from .assist import close_open_draft
from .contacts import store_language, resolve_contact
from .delivery import enqueue_delivery
from .errors import ActionError, AttachmentRefused, NoRecipient, StaleTicket, TicketClosed
from .merges import live_ticket

# A channel's name in what is stored (a subject made up for a message without one).
CHANNEL_NAMES = {Channel.EMAIL: "Email", Channel.LINE: "LINE"}
# A LINE push carries at most 5 messages: the reply's text and up to 4 images.
LINE_MAX_IMAGES = 4
# The [#1234] token in a reply's subject.
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
class Received:
    message: Message
    created: bool
    ticket_created: bool = False
    notes: list[Message] = field(default_factory=list)


def _storable(text: str | None) -> str:
    return storable(text or "")


# --- attachments ----------------------------------------------------------------------------


def _store_attachments(message: Message, attachments: Sequence[IncomingAttachment]) -> list[Attachment]:
    """Store the files attachment_scan accepts; refuse the others (too large, a program, a
    disguise …: name and size kept, the verdict on `attachment.verdict` for the note)."""
    stored = []
    for item in attachments:
        filename = _storable(item.filename or "attachment").replace("/", "_").replace("\\", "_")[:255]
        verdict = attachment_scan.scan(filename, item.content, item.content_type, item.size)
        attachment = Attachment(
            message=message,
            filename=filename,
            content_type=_storable(verdict.content_type)[:255],
            size=item.length,
            content_id=_storable(item.content_id).strip("<>")[:255],
            refused=not verdict.ok,
        )
        if verdict.ok:
            attachment.file.save(filename, ContentFile(item.content), save=False)
        attachment.save()
        attachment.verdict = verdict
        stored.append(attachment)
    return stored


def _refusal_note(ticket: Ticket, refused: list[Attachment]) -> Message | None:
    """The note that says which files were refused and why: stored text, so in English (the
    attachment keeps only `refused`; its reason lives here)."""
    if not refused:
        return None
    with translation.override("en"):
        lines = [f"{a.filename} ({a.size:,} bytes): {a.verdict.reason()}" for a in refused]
    body = (
        f"Refused {len(refused)} attachment(s): "
        + "; ".join(lines)
        + ". Ask the customer to send them another way."
    )
    return Message.objects.create(ticket=ticket, kind=Message.Kind.NOTE, channel=ticket.channel, body_text=body)


def check_outgoing(attachments: Sequence[IncomingAttachment], channel: str, body: str = "") -> None:
    """An agent's files on a reply or a note, checked before anything is stored or sent: each
    as an inbound file is (attachment_scan), together under TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES,
    and what LINE can take (images only, JPEG or PNG up to 10 MB, at most 4 beside the text,
    fetched from PAYDESK_PUBLIC_URL). One refused file refuses the whole message, so a reply
    never goes out without a file its agent attached. Raises AttachmentRefused."""
    if not attachments:
        return
    problems = []
    total = 0
    for item in attachments:
        total += item.length
        verdict = attachment_scan.scan(item.filename, item.content, item.content_type, item.size)
        if not verdict.ok:
            problems.append(_("%(filename)s is refused: %(reason)s.") % {
                "filename": item.filename, "reason": verdict.reason()})
        elif channel == Channel.LINE:
            if verdict.content_type not in attachment_scan.LINE_IMAGE_TYPES:
                problems.append(_("%(filename)s: LINE can only receive images (JPEG or PNG).") % {
                    "filename": item.filename})
            elif item.length > attachment_scan.LINE_IMAGE_MAX_BYTES:
                problems.append(_("%(filename)s is over LINE's 10 MB limit for an image.") % {
                    "filename": item.filename})
    limit = settings.TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES
    if total > limit:
        problems.append(_("The files add up to %(total)s bytes, over the %(limit)s-byte limit for one message.") % {
            "total": f"{total:,}", "limit": f"{limit:,}"})
    if channel == Channel.LINE:
        count = len(attachments)
        if count > LINE_MAX_IMAGES:
            problems.append(_("LINE takes at most %(max)s images with a reply; %(count)s are attached.") % {
                "max": LINE_MAX_IMAGES, "count": count})
        elif len((body or "").strip()) > (5 - count) * 5000:
            problems.append(ngettext(
                "With %(count)s image the text of a LINE reply can be at most %(max)s characters.",
                "With %(count)s images the text of a LINE reply can be at most %(max)s characters.", count,
            ) % {"count": count, "max": f"{(5 - count) * 5000:,}"})
        if not (settings.PAYDESK_PUBLIC_URL or "").startswith("https://"):
            problems.append(_("LINE fetches images from Paydesk's public https address, which is not configured "
                              "(PAYDESK_PUBLIC_URL)."))
    if problems:
        raise AttachmentRefused(" ".join([_("Nothing was sent.")] + problems), code="attachment")


# --- in -------------------------------------------------------------------------------------


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
            return live_ticket(found.ticket)  # a merged ticket's thread goes on on its survivor
    # Headers lost (some clients drop them): the [#1234] token, only on the sender's own
    # tickets so a guessed number cannot write into somebody else's conversation.
    for match in TOKEN_RE.finditer(subject or ""):
        ticket = Ticket.objects.filter(number=int(match.group(1)), requester=contact).first()
        if ticket:
            return live_ticket(ticket)
    return None


def _thread_line(contact: Contact) -> Ticket | None:
    return (
        Ticket.objects.filter(requester=contact, channel=Channel.LINE)
        .exclude(status=Ticket.Status.CLOSED)
        .order_by("-last_message_at", "-id")
        .first()
    )


def _subject_from(text: str, channel: str, who: str) -> str:
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    if first:
        return first[:80] + ("…" if len(first) > 80 else "")
    # Stored, so written in no reader's language (the label would follow whoever is active).
    return f"{CHANNEL_NAMES.get(channel, channel)} message from {who}"


def receive_message(*, actor=None, channel: str, sender: str, sender_name: str = "", subject: str = "",
                    body_text: str = "", body_html: str = "", channel_message_id: str = "",
                    in_reply_to: str = "", references: Sequence[str] = (),
                    attachments: Sequence[IncomingAttachment] = (), recipient: str = "",
                    language: str = "") -> Received:
    """A customer's message from a channel: resolve the contact by the identity it carries,
    thread it onto a ticket (or open one), store it once (same channel message id: the
    stored one is returned), clean its HTML, keep or refuse its attachments, and learn the
    customer's language: `language` when the channel says it (an email's Content-Language),
    else a guess from the text while the contact's is unknown. Paydesk does this itself for
    the channels (the LINE and email tasks)."""
    require(actor, "tickets.add_ticket", doing=pgettext_lazy("permission", "receive customers' messages"), system=True)
    kind = KIND_FOR_CHANNEL.get(channel)
    if kind is None:
        raise ActionError(_("Channel %(channel)s has no inbound messages.") % {"channel": repr(channel)},
                          code="invalid")
    channel_message_id = _storable(channel_message_id).strip()[:998]
    in_reply_to, references = _storable(in_reply_to), [_storable(r) for r in references]
    if channel_message_id:
        existing = Message.objects.filter(channel=channel, channel_message_id=channel_message_id).first()
        if existing:
            return Received(existing, created=False)
    sender_value = identity_rules.normalise(kind, sender)
    if kind == Identity.Kind.EMAIL and not sender_name:
        sender_name = parseaddr(sender)[0]
    sender_name, subject, recipient = _storable(sender_name), _storable(subject), _storable(recipient)
    html = clean_html(_storable(body_html))
    text = _storable(body_text)
    try:
        with transaction.atomic():
            contact, ident, _created = resolve_contact(kind, sender_value, actor=actor, name=sender_name)
            if channel == Channel.EMAIL:
                ticket = _thread_email(contact, subject, in_reply_to, references)
            else:
                ticket = _thread_line(contact)
            follow_up_of = None
            if ticket is not None and ticket.status == Ticket.Status.CLOSED:
                follow_up_of, ticket = ticket, None
            opened = ticket is None
            if opened:
                ticket = open_ticket(
                    actor=actor, requester=contact, channel=channel,
                    subject=subject or _subject_from(text, channel, sender_name or sender_value),
                )
            ticket = get_ticket(ticket, lock=True)
            message = Message.objects.create(
                ticket=ticket, kind=Message.Kind.INBOUND, channel=channel, contact=contact,
                sender=sender_value, recipient=recipient[:320], subject=subject[:998], body_text=text,
                body_html=html, channel_message_id=channel_message_id,
                headers={"in_reply_to": in_reply_to, "references": list(references)} if channel == Channel.EMAIL else {},
            )
            stored = _store_attachments(message, attachments)
            _learn_language(actor, contact, channel, language, f"{subject}\n{text}")
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
            refresh_sla(ticket)
            touch(ticket, *fields, "sla_due")
            # A new message for the contact is a change: an older merge can no longer be undone
            # without splitting this conversation from the identity it came from.
            bump_contact(contact)
            audit(actor, AuditAction.MESSAGE_RECEIVE, target_of(ticket), channel=channel, sender=sender_value,
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


def _learn_language(actor, contact: Contact, channel: str, language: str, text: str) -> None:
    """What the channel says the customer reads, else a guess from what they wrote while
    nothing is known (a guess never replaces a known language)."""
    said = language_code(language)
    if said:
        store_language(actor, contact, said, "email" if channel == Channel.EMAIL else "line")
    elif not contact.language:
        guess = detect_language(text)
        if guess:
            store_language(actor, contact, guess, "detected")


# --- out ------------------------------------------------------------------------------------


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
    if kind == Identity.Kind.LINE:
        text = _("%(contact)s has no LINE account to reply to; link one first.")
    else:
        text = _("%(contact)s has no email address to reply to; link one first.")
    raise NoRecipient(text % {"contact": ticket.requester}, code="no_recipient")


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
    return make_msgid(domain=settings.TICKETS_EMAIL_DOMAIN).strip("<>")


def _reply_subject(ticket: Ticket) -> str:
    subject = ticket.subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return f"{subject} {ticket.token}"


def _outbound(actor, ticket: Ticket, body: str, html: str, attachments: Sequence[IncomingAttachment]) -> Message:
    channel = _reply_channel(ticket)
    check_outgoing(attachments, channel, body)
    recipient = _recipient(ticket, channel)
    headers = _email_headers(ticket) if channel == Channel.EMAIL else {}
    message = Message.objects.create(
        ticket=ticket, kind=Message.Kind.OUTBOUND, channel=channel, author=author(actor),
        recipient=recipient, subject=_reply_subject(ticket) if channel == Channel.EMAIL else "",
        body_text=body.strip(), body_html=clean_html(html),
        channel_message_id=new_message_id() if channel == Channel.EMAIL else "",
        headers=headers, delivery_status=Message.Delivery.QUEUED,
    )
    if attachments:
        _store_attachments(message, attachments)
    return message


def reply(*, actor, ticket, body: str, html: str = "", attachments: Sequence[IncomingAttachment] = (),
          status: str | None = None, expected_version: int | None = None, from_draft: int | None = None) -> Message:
    """A reply to the customer on the ticket's channel, queued and sent after commit. The
    ticket's open draft is closed: sent when the reply was made from it (`from_draft`), else
    set aside."""
    require(actor, "tickets.reply_ticket", doing=pgettext_lazy("permission", "reply to customers"))
    if not (body or "").strip():
        raise ActionError(_("A reply needs some text."), code="required")
    if status is not None and status not in Ticket.Status.values:
        raise ActionError(_("Unknown status %(status)s.") % {"status": repr(status)}, code="invalid")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        if ticket.status == Ticket.Status.CLOSED:
            raise TicketClosed(
                _("Ticket #%(number)s is closed; replies are not sent on closed tickets. "
                  "Open a new ticket for the customer instead.") % {"number": ticket.number},
                code="closed",
            )
        if expected_version is not None and ticket.version != expected_version:
            raise StaleTicket(_("Ticket #%(number)s changed since you opened it; read the update first.")
                              % {"number": ticket.number}, code="stale")
        message = _outbound(actor, ticket, body, html, attachments)
        now = timezone.now()
        fields = ["last_message_at", "sla_due"]
        ticket.last_message_at = now
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
            fields.append("first_responded_at")
        if status and status != ticket.status:
            fields += status_fields(ticket, status)
        refresh_sla(ticket)
        touch(ticket, *fields)
        close_open_draft(ticket, actor=actor, used_draft=from_draft)
        audit(actor, AuditAction.TICKET_REPLY, target_of(ticket), message=message.pk, channel=message.channel,
              recipient=message.recipient, status=ticket.status, **({"draft": from_draft} if from_draft else {}))
        enqueue_delivery(message.pk)
    return message


def add_note(*, actor, ticket, body: str, html: str = "", attachments: Sequence[IncomingAttachment] = ()) -> Message:
    require(actor, "tickets.note_ticket", doing=pgettext_lazy("permission", "add internal notes"))
    if not (body or "").strip():
        raise ActionError(_("A note needs some text."), code="required")
    with transaction.atomic():
        ticket = get_ticket(ticket, lock=True)
        check_outgoing(attachments, "note")
        message = Message.objects.create(
            ticket=ticket, kind=Message.Kind.NOTE, channel=ticket.channel, author=author(actor),
            body_text=body.strip(), body_html=clean_html(html),
        )
        if attachments:
            _store_attachments(message, attachments)
        touch(ticket)
        audit(actor, AuditAction.TICKET_NOTE, target_of(ticket), message=message.pk)
    return message
