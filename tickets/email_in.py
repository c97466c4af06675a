"""Inbound email: a stored raw message (tickets.actions.intake.store_inbound_email: the anymail
inbound webhook and manage.py tickets_import_eml store first) read and made into a message
by the task (process), through tickets.actions.messages.receive_message.

Real mail is messy, and none of that may keep a customer's message from becoming a ticket
from its sender. Recipients are kept as text, never parsed into addresses (To:
undisclosed-recipients:; on every BCC'd message, a bare word, no To at all). Headers are
decoded whatever they hold (an encoded-word in a charset nobody knows, raw 8-bit bytes), and
a body by the charset it declares or by what it turns out to be (ISO-2022-JP declared as
US-ASCII). A message without a Message-ID is stored as it is. Only a message without a
usable From, or from the support address itself, cannot be used: it stays stored, ignored
with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message as MIMEMessage
from email.utils import getaddresses, parseaddr

from anymail.inbound import AnymailInboundMessage
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from . import identity as identity_rules
from .actions.errors import Unusable
from .actions.intake import claim_inbound_email, finish_inbound_email, store_inbound_email
from .actions.messages import IncomingAttachment, Received, receive_message
from .models import Channel, InboundEmail

MSGID_RE = re.compile(r"<([^<>\s]+)>")
# ISO-2022-JP's escape sequences: no other charset mail uses puts these in a body.
ISO_2022_JP_RE = re.compile(rb"\x1b\$[B@]|\x1b\([BJI]")
# Supersets that real mail labelled with the narrower name uses (cp932's ①, cp1252's curly quotes).
WIDER = {
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932", "iso-8859-1": "cp1252",
    "latin-1": "cp1252", "us-ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
}
ISO_2022_JP = ("iso2022_jp", "iso2022_jp_2004", "iso2022_jp_ext")
# The email package's header parser raises these on some malformed headers.
HEADER_ERRORS = (HeaderParseError, IndexError, ValueError, TypeError, AttributeError)


def message_ids(header: str | None) -> list[str]:
    """'<a@x> <b@y>' -> ['a@x', 'b@y']; a bare id without brackets is accepted too."""
    if not header:
        return []
    found = MSGID_RE.findall(str(header))
    if not found and str(header).strip():
        found = [str(header).strip().strip("<>")]
    return found


# --- reading a raw message --------------------------------------------------------------------


@dataclass
class InboundMail:
    """What a raw message says, as text."""

    mail_from: str = ""  # the From header, decoded
    sender: str = ""  # its (first) address, as written
    sender_name: str = ""
    recipients: str = ""  # the To header, decoded, as text
    subject: str = ""
    text: str = ""
    html: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[IncomingAttachment] = field(default_factory=list)
    language: str = ""  # the Content-Language header (of the message, else of its text part), as written


def read(raw: bytes) -> InboundMail:
    """Read a raw message. Whatever the bytes are, there is an answer: what the headers and
    parts don't hold stays empty."""
    message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
    hint = _body_charset(message)
    mail_from = header_text(message, "From", hint)
    name, address = _first_address(message, mail_from, hint)
    own_id = message_ids(header_text(message, "Message-ID"))
    in_reply_to = message_ids(header_text(message, "In-Reply-To"))
    return InboundMail(
        mail_from=mail_from,
        sender=address,
        sender_name=name,
        recipients=header_text(message, "To", hint),
        subject=header_text(message, "Subject", hint),
        text=_body(message, "text/plain"),
        html=_body(message, "text/html"),
        message_id=own_id[0] if own_id else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=message_ids(header_text(message, "References")),
        attachments=_attachments(message),
        language=_content_language(message),
    )


def header_text(message: MIMEMessage, name: str, hint: str | None = None) -> str:
    """The first `name` header, decoded from its source: encoded-words in whatever charset
    they name (one Python doesn't know is read as UTF-8, then as `hint`, then Windows-1252),
    raw 8-bit bytes the same way."""
    raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), None)
    if raw is None:
        return ""
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw)  # unfold
    try:
        chunks = decode_header(raw)
    except HEADER_ERRORS:
        return _repair(raw, hint).strip()
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text.append(_repair(chunk, hint))
        elif charset is None:  # the parts between encoded-words, kept as they were
            text.append(_repair(chunk.decode("raw-unicode-escape"), hint))
        else:
            text.append(decode_bytes(chunk, charset, hint))
    return "".join(text).strip()


def _first_address(message: MIMEMessage, mail_from: str, hint: str | None) -> tuple[str, str]:
    """(display name, address) of the first From address. The parsed header knows quoting
    and groups; where the parser gives up, the decoded text is split instead."""
    try:
        header = message["From"]
        addresses = list(header.addresses) if header is not None else []
    except HEADER_ERRORS:
        addresses = []
    if addresses:
        return _repair(addresses[0].display_name, hint), _repair(addresses[0].addr_spec, hint)
    pairs = [(n, a) for n, a in getaddresses([mail_from]) if a]
    return pairs[0] if pairs else ("", "")


def _repair(text: str, hint: str | None) -> str:
    """Text the email package decoded from bytes it couldn't place (they stand as lone
    surrogates): decoded as UTF-8, else as `hint`, else as Windows-1252."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8", hint)


def decode_bytes(data: bytes, declared: str | None, hint: str | None = None) -> str:
    """Text from bytes in charset `declared`, or in what they turn out to be."""
    if ISO_2022_JP_RE.search(data):
        candidates = ISO_2022_JP
    else:
        declared = (declared or "").lower()
        candidates = (WIDER.get(declared, declared), "utf-8", hint)
    for charset in candidates:
        if not charset:
            continue
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", "replace")


def _content_language(message: MIMEMessage) -> str:
    """The Content-Language the sender's mail client declared (RFC 3282): on the message, or
    on its first text part (clients put it on either)."""
    found = header_text(message, "Content-Language")
    if found:
        return found[:64]
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            return header_text(part, "Content-Language")[:64]
    return ""


def _body_charset(message: MIMEMessage) -> str | None:
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            return part.get_content_charset()
    return None


def _body(message: MIMEMessage, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_attachment():
            return decode_bytes(part.get_payload(decode=True) or b"", part.get_content_charset())
    return ""


def _attachments(message: AnymailInboundMessage) -> list[IncomingAttachment]:
    items = []
    for part in message.walk():
        if part.is_multipart():
            continue
        is_file = part.is_attachment() or (
            part.is_inline() and (part.get_filename() or header_text(part, "Content-ID"))
            and part.get_content_maintype() != "text"
        )
        if not is_file:
            continue
        items.append(IncomingAttachment(
            filename=_repair(part.get_filename() or "attachment", None),
            content=part.get_content_bytes() or b"",
            content_type=part.get_content_type(),
            content_id=header_text(part, "Content-ID"),
        ))
    return items


# --- a stored email becomes a message ---------------------------------------------------------


def process(email_pk: int) -> tuple[str, Received | None]:
    """Make one stored email a message, once: the claim and what it became are one
    transaction. Returns its status, and what receive_message returned if this call made it."""
    with transaction.atomic():
        row = claim_inbound_email(email_pk)
        if row is None:
            return InboundEmail.objects.filter(pk=email_pk).values_list("status", flat=True).first() or "", None
        mail = read(bytes(row.raw))
        summary = {"mail_from": mail.mail_from, "subject": mail.subject}
        try:
            _check_sender(mail)
            with transaction.atomic():
                received = receive_message(
                    channel=Channel.EMAIL,
                    sender=mail.sender,
                    sender_name=mail.sender_name,
                    subject=mail.subject,
                    body_text=mail.text,
                    body_html=mail.html,
                    # Without a Message-ID there is nothing to dedupe on: stored as it is.
                    channel_message_id=mail.message_id,
                    in_reply_to=mail.in_reply_to,
                    references=mail.references,
                    attachments=mail.attachments,
                    recipient=row.envelope_recipient or mail.recipients,
                    language=mail.language,
                )
        except Unusable as exc:
            finish_inbound_email(row.pk, InboundEmail.Status.IGNORED, reason=str(exc), **summary)
            return InboundEmail.Status.IGNORED, None
        if not received.created:
            finish_inbound_email(row.pk, InboundEmail.Status.IGNORED, message=received.message, **summary,
                                 reason=f"the same Message-ID was received before (message {received.message.pk})")
            return InboundEmail.Status.IGNORED, received
        finish_inbound_email(row.pk, InboundEmail.Status.PROCESSED, message=received.message, **summary)
    return InboundEmail.Status.PROCESSED, received


def _check_sender(mail: InboundMail) -> None:
    if not mail.sender:
        raise Unusable("the message has no From address")
    try:
        address = identity_rules.normalise_email(mail.sender)
    except ValidationError:
        raise Unusable(f"its From ({mail.mail_from}) is not an email address") from None
    if address == parseaddr(settings.TICKETS_EMAIL_FROM)[1].lower():
        # Our own reply coming back (a forwarding rule, a misrouted copy): a ticket from it
        # would answer itself in a loop.
        raise Unusable("it is from the support address itself")


@dataclass
class Arrival:
    """What became of one raw email received at once (the import command)."""

    email: InboundEmail
    stored: bool  # False: these exact bytes were stored before
    received: Received | None  # what receive_message returned, if this call processed it


def receive_bytes(raw: bytes, *, esp: str = "file", envelope_recipient: str = "") -> Arrival:
    """Store a raw email and process it now, through the same row and action the task uses
    (a row already processed is left as it is)."""
    row, stored = store_inbound_email(raw, esp=esp, envelope_recipient=envelope_recipient, enqueue=False)
    _, received = process(row.pk)
    row.refresh_from_db(fields=["status", "last_error", "message", "mail_from", "subject", "attempts"])
    return Arrival(row, stored, received)
