"""Outgoing replies by email, threaded in the customer's mail client."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from .models import Message


def build(message: Message) -> EmailMultiAlternatives:
    headers = {"Message-ID": f"<{message.channel_message_id}>"}
    thread = message.headers or {}
    if thread.get("in_reply_to"):
        headers["In-Reply-To"] = f"<{thread['in_reply_to']}>"
    refs = [r for r in thread.get("references", []) if r]
    if refs:
        headers["References"] = " ".join(f"<{r}>" for r in refs)
    headers["Auto-Submitted"] = "no"  # a person wrote it; auto-responders may answer
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.TICKETS_EMAIL_FROM,
        to=[message.recipient],
        headers=headers,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    for attachment in message.attachments.filter(refused=False):
        with attachment.file.open("rb") as fh:
            email.attach(attachment.filename, fh.read(), attachment.content_type or None)
    return email


def send(message: Message) -> None:
    build(message).send(fail_silently=False)
