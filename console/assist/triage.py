"""Reading one customer message: its intent (classifier.py, or the language model when one is
configured: backends.py), the entities in it (entities.py), the Stripe objects it is most
likely about (linking.py); kept through tickets.actions.record_triage. Then the draft reply
for the ticket's latest customer message (drafts.py), kept through save_reply_draft."""

from __future__ import annotations

import dataclasses
import logging

from django.conf import settings

from tickets.actions import record_triage, save_reply_draft
from tickets.models import Message, MessageTriage, ReplyDraft
from tickets.selectors import customer_language, detect_language

from . import backends, drafts, linking
from .entities import extract
from .classifier import Classification
from .selectors import History, earlier_intent, history, latest_customer_message

log = logging.getLogger(__name__)


def message_text(message: Message) -> str:
    """What the classifier reads: the subject (an email's first words) and the text."""
    subject = (message.subject or "").strip()
    text = (message.body_text or "").strip()
    return f"{subject}\n{text}" if subject and not text.startswith(subject) else text


def language_of(message: Message) -> str:
    ticket = message.ticket
    return (customer_language(ticket.requester, ticket) or detect_language(message_text(message)) or "en")[:2]


def understand(message: Message) -> tuple[MessageTriage, History]:
    """Triage `message` (a customer's) and keep it; the history it was linked against."""
    text = message_text(message)
    reading = backends.classify(text)
    if reading.intent == "other":
        # A follow-up ("here is the photo") is about what the ticket is about.
        earlier = earlier_intent(message)
        if earlier is not None:
            reading = Classification(earlier.intent, earlier.confidence, reading.runner_up, reading.runner_up_confidence,
                                     source=f"{reading.source}+ticket")
    found = [dataclasses.asdict(e) for e in extract(text, now=message.created, tz=settings.SHOP_TIME_ZONE)]
    h = history(message.ticket.requester_id, until=message.created)
    # Under the threshold the message is "other", but the best guess still finds the objects
    # the agent will want beside it.
    links = linking.link(reading.runner_up if reading.below_threshold else reading.intent, found, h,
                         at=message.created)
    triage = record_triage(message=message, intent=reading.intent, confidence=reading.confidence,
                           runner_up=reading.runner_up, runner_up_confidence=reading.runner_up_confidence,
                           below_threshold=reading.below_threshold, language=language_of(message),
                           entities=found, links=links, source=reading.source)
    return triage, h


def draft_reply(ticket_id: int, *, h: History | None = None) -> ReplyDraft | None:
    """A draft for the ticket's latest customer message, unless one exists for it already or it
    has been answered since."""
    message = latest_customer_message(ticket_id)
    if message is None:
        return None
    triage = MessageTriage.objects.filter(message=message).first()
    if triage is None:
        return None
    answered = Message.objects.filter(ticket_id=ticket_id, kind=Message.Kind.OUTBOUND,
                                      created__gt=message.created).exists()
    if answered or ReplyDraft.objects.filter(message=message).exists():
        return None
    h = h if h is not None else history(message.ticket.requester_id, until=message.created)
    draft = drafts.write(intent=triage.intent, language=triage.language or "en",
                         name=message.ticket.requester.name or h.customer_name, links=triage.links, h=h)
    return save_reply_draft(ticket=message.ticket, message=message, body=draft.body, language=draft.language,
                            intent=draft.intent, facts=draft.facts, missing=draft.missing,
                            suggestions=draft.suggestions, source=triage.source)
