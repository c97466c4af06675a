"""What Paydesk understood of a customer message, and the replies it drafted (console/assist
reads and decides; these are its only writes to tickets). Triage and drafts are Paydesk's own
doing (actor None, system); discarding a draft is a person's."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from audit.actors import require
from audit.models import AuditAction

from ..models import Message, MessageTriage, ReplyDraft
from ._common import audit, get_ticket, storable, target_of
from .errors import ActionError

_TEXT_LIMIT = 20_000  # a draft is a reply, not a document
_JSON_ITEMS = 50


def _items(value) -> list:
    return storable(list(value or [])[:_JSON_ITEMS])


def record_triage(*, message, intent: str, confidence: float, runner_up: str = "", runner_up_confidence: float = 0.0,
                  below_threshold: bool = False, language: str = "", entities=(), links=(),
                  source: str = "builtin", actor=None) -> MessageTriage:
    """Keep what a customer message was understood as (replacing an earlier reading)."""
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "triage messages"), system=True)
    message = message if isinstance(message, Message) else Message.objects.filter(pk=message).first()
    if message is None:
        raise ActionError(_("No such message."), code="not_found")
    if message.kind != Message.Kind.INBOUND:
        raise ActionError(_("Only a customer's message is triaged."), code="invalid")
    values = {"intent": str(intent)[:40], "confidence": float(confidence), "runner_up": str(runner_up or "")[:40],
              "runner_up_confidence": float(runner_up_confidence), "below_threshold": bool(below_threshold),
              "language": str(language or "")[:10], "entities": _items(entities), "links": _items(links),
              "source": str(source)[:20]}
    with transaction.atomic():
        triage, _created = MessageTriage.objects.update_or_create(message=message, defaults=values)
        audit(actor, AuditAction.MESSAGE_TRIAGE, target_of(message.ticket), message=message.pk,
              intent=values["intent"], confidence=round(values["confidence"], 3),
              linked=[f"{link.get('object')} {link.get('id')}" for link in values["links"][:3] if isinstance(link, dict)])
    return triage


def save_reply_draft(*, ticket, message, body: str, language: str = "", intent: str = "", facts=(), missing=(),
                     suggestions=(), source: str = "builtin", actor=None) -> ReplyDraft:
    """A draft reply to `message` on `ticket`; an open draft the ticket had is replaced."""
    require(actor, "tickets.change_ticket", doing=pgettext_lazy("permission", "draft replies"), system=True)
    body = storable((body or "").strip())[:_TEXT_LIMIT]
    if not body:
        raise ActionError(_("A draft needs some text."), code="required")
    for attempt in range(2):
        try:
            with transaction.atomic():
                ticket = get_ticket(ticket, lock=True)
                message = message if isinstance(message, Message) else Message.objects.get(pk=message)
                if message.ticket_id != ticket.pk:
                    raise ActionError(_("That message is not on this ticket."), code="invalid")
                ticket.drafts.filter(status=ReplyDraft.Status.OPEN).update(status=ReplyDraft.Status.REPLACED)
                draft = ReplyDraft.objects.create(
                    ticket=ticket, message=message, body=body, language=str(language or "")[:10],
                    intent=str(intent or "")[:40], facts=_items(facts), missing=_items(missing),
                    suggestions=_items(suggestions), source=str(source)[:20])
                audit(actor, AuditAction.REPLY_DRAFT, target_of(ticket), draft=draft.pk, message=message.pk,
                      intent=draft.intent, facts=len(draft.facts))
                return draft
        except IntegrityError:
            if attempt:  # two drafts raced for the one open place twice: give up loudly
                raise
    raise AssertionError("unreachable")


def discard_reply_draft(*, actor, draft) -> ReplyDraft:
    """An agent sets the open draft aside."""
    require(actor, "tickets.reply_ticket", doing=pgettext_lazy("permission", "reply to customers"))
    with transaction.atomic():
        draft = ReplyDraft.objects.select_for_update().select_related("ticket").filter(
            pk=getattr(draft, "pk", draft)).first()
        if draft is None:
            raise ActionError(_("No such draft."), code="not_found")
        if draft.status != ReplyDraft.Status.OPEN:
            return draft  # already sent, discarded or replaced: nothing to do twice
        draft.status, draft.closed_by = ReplyDraft.Status.DISCARDED, actor
        draft.save(update_fields=["status", "closed_by", "updated"])
        audit(actor, AuditAction.REPLY_DRAFT_DISCARD, target_of(draft.ticket), draft=draft.pk)
    return draft


def close_open_draft(ticket, *, actor, used_draft: int | None) -> None:
    """A reply went out: the ticket's open draft was sent (when the reply came from it) or set
    aside. Inside the reply's transaction."""
    status = ReplyDraft.Status.SENT
    for draft in ticket.drafts.select_for_update().filter(status=ReplyDraft.Status.OPEN):
        status = ReplyDraft.Status.SENT if used_draft and draft.pk == used_draft else ReplyDraft.Status.DISCARDED
        draft.status, draft.closed_by = status, actor
        draft.save(update_fields=["status", "closed_by", "updated"])
