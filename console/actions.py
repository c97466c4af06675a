"""The console's own writes, one function per action: validate, check who may, do it
atomically, audit it. Views call these; they never save models.

- a person's own preferences (time zone, language);
- the flows that need both domains: asking finance on the ticket for a refund above one's
  limit, and sending a billing-portal link as a reply on the ticket.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from django.utils.translation import pgettext_lazy
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit import actors
from audit.log import record
from audit.models import AuditAction, AuditEntry
from payments.actions import customers
from payments.money import format_money
from tickets import actions as ticket_actions
from tickets.models import Identity, Message, Team, Ticket
from tickets.selectors import customer_language

from .models import UserPreference


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted (the tz database ships with Python's tzdata or the OS)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def set_time_zone(*, actor, user, name: str) -> UserPreference:
    """The zone `user` reads dates in; blank means the console's default (settings.TIME_ZONE).
    People set their own; nobody sets another's."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied(_("You can only change your own time zone."))
    name = (name or "").strip()
    if name and name not in time_zone_names():
        raise ValidationError(_("“%(name)s” is not a time zone. Pick one from the list.") % {"name": name[:64]},
                              code="time_zone")
    return _save_preference(actor, user, "time_zone", name, AuditAction.USER_TIME_ZONE)


def set_language(*, actor, user, language: str) -> UserPreference:
    """The language `user` works in; blank means the browser's (Accept-Language).
    People set their own; nobody sets another's."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied(_("You can only change your own language."))
    language = (language or "").strip()
    if language and language not in dict(settings.LANGUAGES):
        raise ValidationError(_("Choose one of the languages in the list."), code="language")
    return _save_preference(actor, user, "language", language, AuditAction.USER_LANGUAGE)


def _save_preference(actor, user, field: str, value: str, action: AuditAction) -> UserPreference:
    """One checked preference of `user`, audited when it changes ({field: new, previous: old})."""
    with transaction.atomic():
        pref, _created = UserPreference.objects.select_for_update().get_or_create(user=user)
        previous = getattr(pref, field)
        if previous != value:
            setattr(pref, field, value)
            pref.save(update_fields=[field])
            record(actor=actor, action=action, target=f"user:{user.pk}", previous=previous, **{field: value})
    return pref


# --- lifting a login lockout ---------------------------------------------------------------------


def unlock_login(*, actor, username: str) -> int:
    """Forget django-axes' failed logins for `username` (from every address), so a locked-out
    person may log in again at once. The number of attempt records removed; 0 (and nothing
    audited) when there were none."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    actors.require(actor, "axes.view_accessattempt", "axes.delete_accessattempt", doing=pgettext_lazy("permission", "unlock logins"))
    if not isinstance(username, str) or not username.strip() or len(username) > 255 or "\x00" in username:
        raise ValidationError(_("Say whose login to unlock."), code="username")
    with transaction.atomic():
        # Locked while read, so the audit row says exactly what was removed.
        rows = list(AccessAttempt.objects.select_for_update().filter(username=username)
                    .values_list("failures_since_start", "ip_address"))
        failures = sum(n for n, _ in rows)
        addresses = sorted({ip for _, ip in rows if ip})
        removed = reset(username=username) if rows else 0
        if removed:
            record(actor=actor, action=AuditAction.LOGIN_UNLOCK, target=f"login:{username}", failures=failures,
                   addresses=addresses, description=f"Unlocked logins of {username}")
    return removed


# --- asking finance for a refund above one's limit ----------------------------------------------

APPROVAL_TAG = "refund-approval"


@dataclass(frozen=True)
class ApprovalRequest:
    ticket: Ticket
    team: Team | None
    replayed: bool  # this confirmation had already asked; nothing was added again

    @property
    def message(self) -> str:
        if self.replayed:
            return _("Finance was already asked on ticket #%(number)s; nothing was added again.") % {
                "number": self.ticket.number}
        if self.team:
            return _("Asked finance: a note on ticket #%(number)s says what to refund, and the ticket is in "
                     "%(team)s's view.") % {"number": self.ticket.number, "team": self.team.name}
        return _("Asked finance: a note on ticket #%(number)s says what to refund, and the ticket is tagged "
                 "%(tag)s.") % {"number": self.ticket.number, "tag": APPROVAL_TAG}


def request_refund_approval(*, actor, ticket: Ticket, charge_id: str, amount: int, currency: str, reason: str,
                            note: str, refusal: str, token: str) -> ApprovalRequest:
    """An agent over their refund limit hands the refund to finance on the ticket: an internal
    note that says exactly what to refund and why, the approval tag, and the finance team
    (settings.CONSOLE_FINANCE_TEAM) when it exists. The form's token makes a double click ask once."""
    actors.require(actor, "payments.refund_charge", "tickets.note_ticket", doing=pgettext_lazy("permission", "ask for refunds on tickets"))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError(_("Say how much to refund."), code="amount")
    team = Team.objects.filter(slug=settings.CONSOLE_FINANCE_TEAM).first()
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)  # one request at a time per ticket
        if AuditEntry.objects.filter(action=AuditAction.REFUND_APPROVAL_REQUESTED, target=charge_id[:255],
                                     details__token=token).exists():
            return ApprovalRequest(ticket, team, replayed=True)
        money = format_money(amount, currency)
        body = (f"Refund approval needed: please refund {money} of charge {charge_id} "
                f"({reason.replace('_', ' ')}).")
        if note.strip():
            body += f"\nNote: {note.strip()}"
        body += f"\nAsked by {actor.get_full_name() or actor.get_username()}: {refusal}"
        ticket_actions.add_note(actor=actor, ticket=ticket, body=body)
        ticket_actions.set_tags(actor=actor, ticket=ticket, add=[APPROVAL_TAG])
        if team is not None and ticket.team_id != team.pk:
            ticket_actions.assign(actor=actor, ticket=ticket, team=team)
        record(
            actor=actor, action=AuditAction.REFUND_APPROVAL_REQUESTED, target=charge_id,
            amount=amount, currency=currency, reason=reason, note=note.strip(), ticket=f"#{ticket.number}",
            team=team.slug if team else "", token=token, description=f"Asked finance to refund {money} of {charge_id}",
        )
    return ApprovalRequest(ticket, team, replayed=False)


# --- a billing-portal link, sent on the ticket ----------------------------------------------------

# The reply's first line, by what the link is for. The reply is written in the customer's
# language (tickets.selectors.customer_language), as the portal opens in it.
PORTAL_INTRO = {
    "": gettext_lazy("Here is a secure link to manage your billing:"),
    "payment_method_update": gettext_lazy("Here is a secure link to update your payment method:"),
    "subscription_cancel": gettext_lazy("Here is a secure link to cancel your subscription:"),
    "subscription_update": gettext_lazy("Here is a secure link to change your plan:"),
}


@dataclass(frozen=True)
class PortalLinkOutcome:
    message: str = ""
    error: str = ""
    url: str = ""  # to copy: there was no ticket to send it on, or it could not be sent


def _portal_reply(flow: str, url: str, language: str) -> str:
    """The reply that carries the link, in the customer's language."""
    with translation.override(language):
        intro = str(PORTAL_INTRO.get(flow, PORTAL_INTRO[""]))
        warning = _("Please open it within a few minutes; it stops working after that. "
                    "Don't share it: it opens your billing settings.")
    return f"{intro}\n{url}\n\n{warning}"


def _portal_customer(ticket: Ticket | None, customer_id: str):
    """The contact the link is for: the ticket's requester, else the contact linked to the
    Stripe customer (None when none is)."""
    if ticket is not None:
        return ticket.requester
    identity = (Identity.objects.select_related("contact")
                .filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id).first())
    return identity.contact if identity else None


def send_portal_link(*, actor, ticket: Ticket | None, customer_id: str, flow: str, subscription_id: str,
                     coupon: str, locale: str | None, token: str) -> PortalLinkOutcome:
    """A billing-portal link for the customer, created at Stripe once per confirmation (its
    token), then sent as a reply on the ticket; without a ticket it is returned to copy. The
    URL is a credential for the customer's billing: it is never logged nor audited, and a
    confirmation sent again never sends a second link."""
    if ticket is not None:
        actors.require(actor, "payments.create_portal_session", "tickets.reply_ticket",
                       doing=pgettext_lazy("permission", "send billing-portal links on tickets"))
    about_one = flow in ("subscription_cancel", "subscription_update")
    # The customer's language, never the agent's: the reply is written in it, and the portal
    # opens in it (Stripe's preferred locale when the caller knows it, being more precise).
    contact = _portal_customer(ticket, customer_id)
    language = customer_language(contact, ticket)
    locale = locale or (contact.language if contact is not None and contact.language else language)
    result = customers.create_portal_session(
        customer_id, actor=actor, flow=flow or None, subscription_id=subscription_id if about_one else None,
        retention_coupon=coupon if flow == "subscription_cancel" else None, locale=locale,
        ticket_ref=f"#{ticket.number}" if ticket else "", idempotency_key=token,
    )
    url = result.url
    if ticket is None:
        if result.replayed:
            return PortalLinkOutcome(message=_("This confirmation already created this link. Copy it to the customer:"),
                                     url=url)
        return PortalLinkOutcome(message=_("Billing-portal link created. Copy it to the customer:"), url=url)
    number = {"number": ticket.number}
    # A retried confirmation gets Stripe's same session back (same idempotency key): send it once.
    if Message.objects.filter(ticket=ticket, body_text__contains=url).exists():
        return PortalLinkOutcome(message=_("This confirmation already sent this link on ticket #%(number)s; "
                                           "nothing was sent again.") % number)
    if result.replayed:
        # This confirmation made the link before but it isn't on the ticket (its reply failed,
        # or Stripe no longer replays that answer): never risk sending a second link.
        return PortalLinkOutcome(url=url, error=_(
            "This confirmation already created a link that was not sent on ticket #%(number)s; nothing was sent now. "
            "Copy it instead:") % number)
    try:
        message = ticket_actions.reply(actor=actor, ticket=ticket, body=_portal_reply(flow, url, language))
    except (ValidationError, PermissionDenied) as exc:
        # The session exists but was not sent: the agent may still pass the link on by hand.
        reason = "; ".join(getattr(exc, "messages", None) or [str(exc)])
        return PortalLinkOutcome(url=url, error=_("The link was created but not sent: %(reason)s Copy it instead:")
                                 % {"reason": reason})
    return PortalLinkOutcome(message=_("Billing-portal link sent on ticket #%(number)s by %(channel)s.") % {
        "number": ticket.number, "channel": message.get_channel_display()})
