"""Inbound email (anymail's inbound signal, or .eml files) into tickets.actions.receive_message."""

from __future__ import annotations

import logging
import re
from email.utils import parseaddr

from anymail.exceptions import AnymailInvalidAddress
from anymail.inbound import AnymailInboundMessage
from django.conf import settings

from . import actions
from .models import Channel

log = logging.getLogger(__name__)

MSGID_RE = re.compile(r"<([^<>\s]+)>")


def message_ids(header: str | None) -> list[str]:
    """'<a@x> <b@y>' -> ['a@x', 'b@y']; a bare id without brackets is accepted too."""
    if not header:
        return []
    found = MSGID_RE.findall(str(header))
    if not found and str(header).strip():
        found = [str(header).strip().strip("<>")]
    return found


def _attachments(message: AnymailInboundMessage) -> list[actions.IncomingAttachment]:
    items = []
    for part in message.walk():
        if part.is_multipart():
            continue
        is_file = part.is_attachment() or (
            part.is_inline() and (part.get_filename() or part["Content-ID"])
            and part.get_content_maintype() != "text"
        )
        if not is_file:
            continue
        content = part.get_content_bytes() or b""
        items.append(actions.IncomingAttachment(
            filename=part.get_filename() or "attachment",
            content=content,
            content_type=part.get_content_type(),
            content_id=str(part["Content-ID"] or ""),
        ))
    return items


def receive(message: AnymailInboundMessage, *, recipient: str = "") -> actions.Received:
    try:
        sender = message.from_email
    except AnymailInvalidAddress:
        raise actions.ActionError("The message's From address is not an email address.", code="no_sender") from None
    if isinstance(sender, list):  # several From addresses: the first speaks
        sender = sender[0] if sender else None
    if sender is None or not sender.addr_spec:
        raise actions.ActionError("The message has no From address.", code="no_sender")
    ours = parseaddr(settings.TICKETS_EMAIL_FROM)[1].lower()
    if sender.addr_spec.lower() == ours:
        # Our own reply coming back (a forwarding rule, a misrouted copy): a ticket from it
        # would answer itself in a loop.
        raise actions.ActionError("The message is from the support address itself.", code="loop")
    in_reply_to = message_ids(message["In-Reply-To"])
    # Without a Message-ID there is nothing to dedupe on; the message is stored as it is.
    own_id = message_ids(message["Message-ID"])
    if not recipient:
        to = message.to
        recipient = to[0].addr_spec if to else ""
    return actions.receive_message(
        channel=Channel.EMAIL,
        sender=sender.addr_spec,
        sender_name=sender.display_name or "",
        subject=str(message.subject or "").strip(),
        body_text=message.text or "",
        body_html=message.html or "",
        channel_message_id=own_id[0] if own_id else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=message_ids(message["References"]),
        attachments=_attachments(message),
        recipient=recipient,
    )


def receive_bytes(raw: bytes) -> actions.Received:
    return receive(AnymailInboundMessage.parse_raw_mime_bytes(raw))


def on_anymail_inbound(sender, event, esp_name, **kwargs):
    """anymail.signals.inbound receiver (connected in TicketsConfig.ready)."""
    message = event.message
    try:
        receive(message, recipient=getattr(message, "envelope_recipient", None) or "")
    except actions.ActionError as exc:
        # Unusable mail (no From, an invalid address) is dropped, not retried by the provider forever.
        log.warning("inbound email from %s dropped: %s", esp_name, "; ".join(exc.messages))
