"""The console's own writes (per-agent preferences), one function per action: validate,
check who may, do it atomically, audit it. Views call these; they never save models."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.actors import require
from audit.log import record
from audit.models import AuditAction, AuditEntry
from payments.money import format_money
from tickets import actions as ticket_actions
from tickets.models import Team, Ticket

from .models import UserPreference


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted (the tz database ships with Python's tzdata or the OS)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def set_time_zone(actor, user, name: str) -> UserPreference:
    """The zone `user` reads dates in; blank means the console's default (settings.TIME_ZONE).
    People set their own; nobody sets another's."""
    if actor is None or not actor.is_authenticated or actor.pk != user.pk:
        raise PermissionDenied("You can only change your own time zone.")
    name = (name or "").strip()
    if name and name not in time_zone_names():
        raise ValidationError(f"“{name[:64]}” is not a time zone. Pick one from the list.", code="time_zone")
    with transaction.atomic():
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=user)
        previous = pref.time_zone
        if previous != name:
            pref.time_zone = name
            pref.save(update_fields=["time_zone"])
            record(actor=actor, action=AuditAction.USER_TIME_ZONE, target=f"user:{user.pk}", time_zone=name,
                   previous=previous)
    return pref


# --- lifting a login lockout ---------------------------------------------------------------------


def unlock_login(*, actor, username: str) -> int:
    """Forget django-axes' failed logins for `username` (from every address), so a locked-out
    person may log in again at once. The number of attempt records removed; 0 (and nothing
    audited) when there were none."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    require(actor, "axes.view_accessattempt", "axes.delete_accessattempt", doing="unlock logins")
    if not isinstance(username, str) or not username.strip() or len(username) > 255 or "\x00" in username:
        raise ValidationError("Say whose login to unlock.", code="username")
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
        where = f"the ticket is in {self.team.name}'s view" if self.team else f"the ticket is tagged {APPROVAL_TAG}"
        if self.replayed:
            return f"Finance was already asked on ticket #{self.ticket.number}; nothing was added again."
        return f"Asked finance: a note on ticket #{self.ticket.number} says what to refund, and {where}."


def request_refund_approval(actor, *, ticket: Ticket, charge_id: str, amount: int, currency: str, reason: str,
                            note: str, refusal: str, token: str) -> ApprovalRequest:
    """An agent over their refund limit hands the refund to finance on the ticket: an internal
    note that says exactly what to refund and why, the approval tag, and the finance team
    (settings.CONSOLE_FINANCE_TEAM) when it exists. The form's token makes a double click ask once."""
    if not (actor.has_perm("payments.refund_charge") and actor.has_perm("tickets.note_ticket")):
        raise PermissionDenied("Your role can't ask for refunds on tickets.")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationError("Say how much to refund.", code="amount")
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
