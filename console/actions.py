"""The console's own writes, one function per action: validate, check who may, do it
atomically, audit it. Views call these; they never save models.

- a person's own preferences (time zone, language);
- the flows that need both domains: asking finance on the ticket for a refund above one's
  limit, and sending a billing-portal link as a reply on the ticket;
- notifying people (the bell in the top bar, and an email), and marking one's own read.
"""

from __future__ import annotations

import logging
import uuid
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from django.utils.translation import pgettext_lazy
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audit import actors
from audit.log import record
from audit.models import AuditAction, AuditEntry
from payments.actions import customers
from payments.money import format_money
from tickets import actions as ticket_actions
from tickets.models import Identity, Message, Team, Ticket
from tickets.selectors import customer_language

from .models import Notification, RefundApproval, UserPreference
from .roles import ADMIN_ROLE, has_role

log = logging.getLogger(__name__)


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


def set_after_solve(*, actor, user, value: str) -> UserPreference:
    """What "Solve" does next for `user`: go to the next ticket in the view, or stay.
    People set their own; nobody sets another's."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied(_("You can only change your own settings."))
    value = (value or "").strip()
    if value not in UserPreference.AfterSolve.values:
        raise ValidationError(_("Choose one of the options in the list."), code="after_solve")
    return _save_preference(actor, user, "after_solve", value, AuditAction.USER_AFTER_SOLVE)


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
        previous_team_id = ticket.team_id
        if team is not None and ticket.team_id != team.pk:
            ticket_actions.assign(actor=actor, ticket=ticket, team=team)
        # Finance's queue (/approvals/) reads this row; closing it sends the ticket back.
        RefundApproval.objects.create(
            ticket=ticket, charge_id=charge_id, amount=amount, currency=currency.lower(), reason=reason,
            note=note.strip(), refusal=str(refusal or ""), requested_by=actor, previous_team_id=previous_team_id,
            token=token[:64], refund_token=uuid.uuid4().hex,
        )
        record(
            actor=actor, action=AuditAction.REFUND_APPROVAL_REQUESTED, target=charge_id,
            amount=amount, currency=currency, reason=reason, note=note.strip(), ticket=f"#{ticket.number}",
            team=team.slug if team else "", token=token, description=f"Asked finance to refund {money} of {charge_id}",
        )
    return ApprovalRequest(ticket, team, replayed=False)


FINANCE_ROLE = "finance"


def may_decide_approvals(user) -> bool:
    """Finance and admins decide refund approvals; agents (who may refund too) ask for them."""
    return bool(user is not None and user.is_authenticated and user.has_perm("payments.refund_charge")
                and (has_role(user, FINANCE_ROLE) or has_role(user, ADMIN_ROLE)))


@dataclass(frozen=True)
class ApprovalClosed:
    approval: RefundApproval
    replayed: bool  # it was already closed; nothing was noted, moved or notified again

    @property
    def message(self) -> str:
        number = {"number": self.approval.ticket.number}
        if self.replayed:
            return _("This request was already closed; ticket #%(number)s was left as it is.") % number
        if self.approval.status == RefundApproval.Status.APPROVED:
            return _("The request is closed: a note on ticket #%(number)s says what was refunded, and the agent "
                     "who asked was told.") % number
        return _("The request is declined: a note on ticket #%(number)s says why, and the agent who asked "
                 "was told.") % number


def close_refund_approval(*, actor, approval: RefundApproval, refund: dict | None = None,
                          decline_reason: str = "") -> ApprovalClosed:
    """Finance's answer to a refund approval: `refund` (Stripe's refund, made by the refund flow
    with the approval's refund_token) approves it; else it is declined for `decline_reason`.
    The answer becomes an internal note on the ticket, the approval tag goes, the ticket goes
    back to the agent who asked (settings.CONSOLE_APPROVAL_RETURN = "finance" keeps it with
    finance), and that agent is notified. Closed once: a second close changes nothing."""
    actors.require(actor, "payments.refund_charge", "tickets.note_ticket", "tickets.change_ticket",
                   "tickets.assign_ticket", doing=pgettext_lazy("permission", "decide refund approvals"))
    if not may_decide_approvals(actor):
        raise PermissionDenied(_("Only finance decides refund approvals."))
    decline_reason = (decline_reason or "").replace("\x00", "").strip()
    if refund is None and not decline_reason:
        raise ValidationError(_("Say why the refund is declined."), code="decline_reason")
    if len(decline_reason) > 1000:
        raise ValidationError(_("Keep the reason under 1,000 characters."), code="decline_reason")
    who = actor.get_full_name() or actor.get_username()
    with transaction.atomic():
        # The compare-and-swap: only an open request is closed, under its row lock.
        approval = RefundApproval.objects.select_for_update(of=("self",)).select_related(
            "ticket", "requested_by").get(pk=approval.pk)
        if approval.status != RefundApproval.Status.OPEN:
            return ApprovalClosed(approval, replayed=True)
        ticket = approval.ticket
        if refund is not None:
            # Stored text, English like the request's note (it is read by whoever opens the ticket).
            with translation.override("en"):
                money = format_money(int(refund.get("amount") or 0), refund.get("currency") or approval.currency)
            body = f"Finance ({who}) refunded {money} of {approval.charge_id} ({refund.get('id', '')})."
            approval.status, approval.refund_id = RefundApproval.Status.APPROVED, str(refund.get("id") or "")[:255]
            approval.refunded = int(refund.get("amount") or 0)
        else:
            body = f"Finance ({who}) declined the refund of {approval.charge_id}: {decline_reason}"
            approval.status, approval.decline_reason = RefundApproval.Status.DECLINED, decline_reason
        approval.decided_by, approval.decided_at = actor, timezone.now()
        approval.save(update_fields=["status", "refund_id", "refunded", "decline_reason", "decided_by", "decided_at"])
        ticket_actions.add_note(actor=actor, ticket=ticket, body=body)
        ticket_actions.set_tags(actor=actor, ticket=ticket, remove=[APPROVAL_TAG])
        asker = approval.requested_by
        back = asker is not None and asker.is_active
        if back and settings.CONSOLE_APPROVAL_RETURN != "finance" and asker.has_perm("tickets.view_ticket"):
            ticket_actions.assign(actor=actor, ticket=ticket, assignee=asker, team=approval.previous_team)
        record(actor=actor, action=AuditAction.REFUND_APPROVAL_CLOSED, target=approval.charge_id,
               approval=approval.pk, status=approval.status, refund=approval.refund_id, amount=approval.refunded,
               currency=approval.currency, decline_reason=approval.decline_reason, ticket=f"#{ticket.number}",
               description=body)
        if back:
            notify_people(actor=actor, users=[asker], text=_approval_wording(approval, who),
                          link=f"/tickets/{ticket.number}/", source=f"refund-approval:{approval.pk}")
    return ApprovalClosed(approval, replayed=False)


def _approval_wording(approval: RefundApproval, who: str) -> Callable[[str], str]:
    """The requester's notification, worded in their language."""
    def worded(language: str) -> str:
        facts = {"who": who, "number": approval.ticket.number, "charge": approval.charge_id}
        if approval.status == RefundApproval.Status.APPROVED:
            return _("Finance (%(who)s) refunded %(amount)s of %(charge)s, as you asked on ticket #%(number)s.") % {
                **facts, "amount": format_money(approval.refunded or 0, approval.currency)}
        return _("Finance (%(who)s) declined the refund you asked for on ticket #%(number)s: %(reason)s") % {
            **facts, "reason": approval.decline_reason}
    return worded


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


# --- notifying people (the bell in the top bar, and an email) -------------------------------------

# What a notification says (its text, its email's subject): words, or a function that words
# it for a language code ("ja"). Either is rendered once per recipients' language, inside
# translation.override(language), so gettext (and lazy strings) in it follow the reader.
Wording = str | Promise | Callable[[str], str]

LINK_MAX = Notification._meta.get_field("link").max_length
SOURCE_MAX = Notification._meta.get_field("source").max_length


def _worded(wording: Wording, language: str) -> str:
    with translation.override(language):
        value = wording(language) if callable(wording) and not isinstance(wording, Promise) else wording
        return str(value if value is not None else "").replace("\x00", "").strip()


def _console_path(link) -> str:
    """A notification's link: a path in the console (/tickets/12/), never another site."""
    link = (link or "").strip() if isinstance(link, str) else link
    if not link:
        return ""
    if (not isinstance(link, str) or not link.startswith("/") or link.startswith("//") or len(link) > LINK_MAX
            or any(c.isspace() or ord(c) < 32 or c == "\\" for c in link)):
        raise ValidationError(_("A notification's link must be a path in the console, such as /tickets/12/."),
                              code="link")
    return link


def _named(values, limit: int = 5) -> str:
    """“alice”, “bob”: each name quoted, so a list doesn't read as one name."""
    return ", ".join(f"“{v[:100]}”" for v in values[:limit]) + ("…" if len(values) > limit else "")


def _recipients(users, team) -> list:
    """The active people among `users` (User objects or usernames) and `team`'s members, each
    once, by username. An unknown username or team is refused, naming it."""
    User = get_user_model()
    field = User.USERNAME_FIELD
    if isinstance(users, (str, User)):
        users = [users]
    ids, names = set(), set()
    for user in users or ():
        if isinstance(user, User) and user.pk is not None:
            ids.add(user.pk)
        elif isinstance(user, str):
            if user.strip():
                names.add(user.strip())
        elif user is not None:
            raise ValidationError(_("Say who to notify by their username."), code="recipients")
    if not isinstance(team, str):
        raise ValidationError(_("Say which team to notify by its slug."), code="team")
    team = team.strip()
    if not ids and not names and not team:
        raise ValidationError(_("Say who to notify: a person, a team or both."), code="recipients")
    query = Q(pk__in=ids)
    if names:
        askable = {n for n in names if len(n) <= 150 and "\x00" not in n}
        known = set(User.objects.filter(**{f"{field}__in": askable}).values_list(field, flat=True)) if askable else set()
        unknown = sorted(names - known)
        if unknown:
            raise ValidationError(
                ngettext("There is no user named %(names)s.", "There are no users named %(names)s.", len(unknown))
                % {"names": _named(unknown)}, code="unknown_user")
        query |= Q(**{f"{field}__in": known})
    if team:
        found = Team.objects.filter(slug=team).first() if len(team) <= 100 and "\x00" not in team else None
        if found is None:
            raise ValidationError(_("There is no team “%(team)s”.") % {"team": team[:100]}, code="unknown_team")
        query |= Q(pk__in=found.members.values("pk"))
    people = list(User.objects.filter(query, is_active=True).order_by(field))
    if not people:
        raise ValidationError(_("Nobody to notify: no one named, nor anyone in the team, is an active user."),
                              code="no_recipients")
    return people


def _languages(people) -> dict[int, str]:
    """Each person's console language (their preference, else settings.LANGUAGE_CODE)."""
    chosen = dict(UserPreference.objects.filter(user__in=[p.pk for p in people]).values_list("user_id", "language"))
    known = dict(settings.LANGUAGES)
    return {p.pk: chosen[p.pk] if chosen.get(p.pk) in known else settings.LANGUAGE_CODE for p in people}


def _absolute(link: str) -> str:
    """A console path as a full URL, when settings.CONSOLE_BASE_URL (https://paydesk.example)
    says where the console is; else the path as it is."""
    base = (getattr(settings, "CONSOLE_BASE_URL", "") or "").rstrip("/")
    return f"{base}{link}" if base else link


@dataclass(frozen=True)
class _Email:
    user_id: int
    to: str
    subject: str
    body: str


def _send_notification_emails(emails: list[_Email]) -> None:
    """After the notifications committed: one email each, through the configured backend. A
    failure is logged and leaves the notification where it is (the bell still shows it)."""
    for email in emails:
        try:
            EmailMessage(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, [email.to]).send(fail_silently=False)
        except Exception:
            log.exception("notification email to user %s not sent", email.user_id)


def notify_people(*, actor, users=(), team: str = "", text: Wording, link: str = "", source: str = "",
                  email_subject: Wording | None = None) -> list[Notification]:
    """Tell people something: a notification under each one's bell and, once committed, an
    email to each who has an address, in each one's own language. Recipients are `users`
    (User objects or usernames) and the members of `team` (a tickets.Team slug), the active
    ones, each once. `link` is a console path; `source` says what sent it ("workflow:12 run:40").
    A person (or a workflow's service user) who sees teams may notify; so may Paydesk itself."""
    actors.require(actor, "tickets.view_team", doing=pgettext_lazy("permission", "notify people"), system=True)
    link = _console_path(link)
    source = str(source or "").replace("\x00", "").strip()[:SOURCE_MAX]
    people = _recipients(users, team)
    languages = _languages(people)
    texts, subjects = {}, {}
    for language in sorted(set(languages.values())):
        texts[language] = _worded(text, language)
        if not texts[language]:
            raise ValidationError(_("A notification needs some text."), code="text")
        subject = " ".join(_worded(email_subject, language).split()) if email_subject is not None else ""
        if not subject:
            with translation.override(language):
                subject = _("Paydesk: a notification")
        subjects[language] = subject[:200]
    emails = []
    for person in people:
        language = languages[person.pk]
        address = getattr(person, person.get_email_field_name(), "") or ""
        if address.strip():
            body = texts[language]
            if link:
                with translation.override(language):
                    body += "\n\n" + _("Open it in Paydesk: %(url)s") % {"url": _absolute(link)}
            emails.append(_Email(person.pk, address.strip(), subjects[language], body))
    usernames = [person.get_username() for person in people]
    with transaction.atomic():
        rows = Notification.objects.bulk_create(
            [Notification(recipient=person, text=texts[languages[person.pk]], link=link, source=source)
             for person in people])
        record(actor=actor, action=AuditAction.NOTIFY, target=f"notify:{source}" if source else "notify",
               recipients=usernames, team=team.strip(), link=link, source=source,
               description=f"Notified {', '.join(usernames[:20])}{' …' if len(usernames) > 20 else ''}")
        if emails:
            transaction.on_commit(lambda: _send_notification_emails(emails), robust=True)
    return rows


def mark_notifications_read(*, actor, user) -> int:
    """Every unread notification of `user`, read now. People mark their own; nobody marks
    another's. How many were unread (0: nothing changed, nothing audited)."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied(_("You can only mark your own notifications read."))
    with transaction.atomic():
        count = Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())
        if count:
            record(actor=actor, action=AuditAction.NOTIFICATIONS_READ, target=f"user:{user.pk}", count=count)
    return count
