"""Writes to people: one function per action, permission-checked, atomic, audited."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from audit import actors
from audit.log import record
from audit.models import AuditAction
from tickets.actions import UNSET, bulk_assign
from tickets.models import Team, Ticket

from ..roles import ROLES, WORKFLOW_ROLE

PEOPLE_ROLES = tuple(role for role in ROLES if role != WORKFLOW_ROLE)  # the service role is no person's


def _role_and_teams(role: str, teams) -> tuple[Group, list[Team]]:
    if role not in PEOPLE_ROLES:
        raise ValidationError(_("Choose a role: agent, finance or admin."), code="role")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise ValidationError(_("The role %(role)s is missing; run migrate.") % {"role": role}, code="role")
    chosen = list(Team.objects.filter(pk__in=[t.pk if isinstance(t, Team) else t for t in teams or []]))
    return group, chosen


def _set_teams(user, teams: list[Team]) -> None:
    for team in Team.objects.filter(members=user).exclude(pk__in=[t.pk for t in teams]):
        team.members.remove(user)
    for team in teams:
        team.members.add(user)


def _describe(user) -> dict:
    return {"username": user.username, "email": user.email, "name": user.get_full_name(),
            "role": ",".join(sorted(user.groups.values_list("name", flat=True))),
            "teams": sorted(Team.objects.filter(members=user).values_list("slug", flat=True)),
            "active": user.is_active}


def create_person(*, actor, username: str, email: str, first_name: str = "", last_name: str = "", role: str,
                  teams=(), language: str = "", base_url: str = ""):
    """A new person in `role` and `teams`, with no password yet: they get an email with a link to
    set one (valid as long as Django's password-reset tokens, PASSWORD_RESET_TIMEOUT)."""
    actors.require(actor, "auth.add_user", doing=pgettext_lazy("permission", "add people"))
    User = get_user_model()
    username = (username or "").strip()
    email = (email or "").strip()
    if not username:
        raise ValidationError(_("A person needs a username."), code="username")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(_("The username %(name)s is taken.") % {"name": username}, code="username")
    if not email:
        raise ValidationError(_("A person needs an email address, for the link to set their password."),
                              code="email")
    group, chosen = _role_and_teams(role, teams)
    with transaction.atomic():
        user = User(username=username, email=email, first_name=first_name.strip()[:150],
                    last_name=last_name.strip()[:150], is_active=True)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        user.groups.set([group])
        _set_teams(user, chosen)
        record(actor=actor, action=AuditAction.PERSON_CREATE, target=f"user:{user.pk}", **_describe(user))
        transaction.on_commit(lambda: _send_password_link(user, language=language, base_url=base_url, invite=True))
    return user


def update_person(*, actor, user, email: str, first_name: str, last_name: str, role: str, teams=()):
    actors.require(actor, "auth.change_user", doing=pgettext_lazy("permission", "change people"))
    if user.is_superuser and not actor.is_superuser:
        raise ValidationError(_("Only a superuser changes a superuser."), code="superuser")
    group, chosen = _role_and_teams(role, teams)
    if user.pk == actor.pk and role != "admin" and not actor.is_superuser:
        raise ValidationError(_("You can't take the admin role from yourself; ask another admin."), code="self")
    with transaction.atomic():
        before = _describe(user)
        user.email, user.first_name, user.last_name = (email or "").strip(), first_name.strip()[:150], \
            last_name.strip()[:150]
        user.full_clean(exclude=["password"])
        user.save(update_fields=["email", "first_name", "last_name"])
        user.groups.set([group])
        _set_teams(user, chosen)
        after = _describe(user)
        if after != before:
            record(actor=actor, action=AuditAction.PERSON_UPDATE, target=f"user:{user.pk}",
                   changed={k: {"from": before[k], "to": after[k]} for k in after if after[k] != before[k]})
    return user


def deactivate_person(*, actor, user) -> int:
    """They can no longer sign in, their sessions end now, and their open tickets go back to
    their teams' queues (unassigned). Returns how many tickets were unassigned."""
    actors.require(actor, "auth.change_user", doing=pgettext_lazy("permission", "deactivate people"))
    if user.pk == actor.pk:
        raise ValidationError(_("You can't deactivate yourself."), code="self")
    if user.is_superuser and not actor.is_superuser:
        raise ValidationError(_("Only a superuser deactivates a superuser."), code="superuser")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        ended = _end_sessions(user)
        open_tickets = list(Ticket.objects.filter(assignee=user).exclude(
            status__in=[Ticket.Status.SOLVED, Ticket.Status.CLOSED]).values_list("pk", flat=True))
        if open_tickets:
            bulk_assign(actor=actor, tickets=open_tickets, assignee=None, team=UNSET)
        record(actor=actor, action=AuditAction.PERSON_DEACTIVATE, target=f"user:{user.pk}",
               username=user.username, sessions_ended=ended, tickets_unassigned=len(open_tickets))
    return len(open_tickets)


def reactivate_person(*, actor, user):
    actors.require(actor, "auth.change_user", doing=pgettext_lazy("permission", "reactivate people"))
    with transaction.atomic():
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
            record(actor=actor, action=AuditAction.PERSON_REACTIVATE, target=f"user:{user.pk}", username=user.username)
    return user


def send_password_link(*, actor, user, language: str = "", base_url: str = "") -> None:
    """Email the person a link to set a new password (their current one keeps working until then)."""
    actors.require(actor, "auth.change_user", doing=pgettext_lazy("permission", "reset passwords"))
    if not user.is_active:
        raise ValidationError(_("Reactivate %(name)s first.") % {"name": user.get_username()}, code="inactive")
    if not user.email:
        raise ValidationError(_("%(name)s has no email address to send the link to.") % {"name": user.get_username()},
                              code="email")
    with transaction.atomic():
        record(actor=actor, action=AuditAction.PERSON_PASSWORD_LINK, target=f"user:{user.pk}", username=user.username)
        transaction.on_commit(lambda: _send_password_link(user, language=language, base_url=base_url, invite=False))


def _end_sessions(user) -> int:
    """Delete the database sessions that belong to `user` (the session store is the database)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


def _send_password_link(user, *, language: str, base_url: str, invite: bool) -> None:
    token = default_token_generator.make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("password_set", args=[uid, token])
    base = (settings.CONSOLE_BASE_URL or base_url or "").rstrip("/")
    with translation.override(language or settings.LANGUAGE_CODE):
        context = {"user": user, "url": f"{base}{path}", "invite": invite}
        subject = (_("You have been added to Paydesk") if invite else _("Set a new Paydesk password"))
        body = render_to_string("people/password_email.txt", context)
    send_mail(str(subject), body, settings.DEFAULT_FROM_EMAIL, [user.email])


def record_sso_sign_in(*, user, issuer: str, subject: str):
    """A person signed in through the company's identity provider (console/sso.py): who the
    provider said they are (issuer and subject), never a token."""
    with transaction.atomic():
        return record(actor=user, action=AuditAction.PERSON_SSO_SIGN_IN, target=f"user:{user.pk}",
                      username=user.username, issuer=str(issuer)[:255], subject=str(subject)[:255])


def create_person_from_sso(*, email: str, first_name: str = "", last_name: str = "", issuer: str, subject: str):
    """A new person for someone the identity provider vouches for (only with OIDC_CREATE_USERS):
    no role and no teams, so they see nothing until an admin gives them a role; no password.
    Paydesk itself acts (the audit's actor is "system")."""
    actors.require(None, doing=pgettext_lazy("permission", "add people"), system=True)
    User = get_user_model()
    email = (email or "").strip()
    if not email:
        raise ValidationError(_("A person needs an email address."), code="email")
    base = re.sub(r"[^\w.@+-]", "", email.lower())[:150] or "person"
    username, n = base, 1
    while User.objects.filter(username__iexact=username).exists():
        n += 1
        suffix = f"-{n}"
        username = base[:150 - len(suffix)] + suffix
    with transaction.atomic():
        user = User(username=username, email=email, first_name=(first_name or "").strip()[:150],
                    last_name=(last_name or "").strip()[:150], is_active=True)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        record(actor=None, action=AuditAction.PERSON_CREATE, target=f"user:{user.pk}", **_describe(user),
               via="sso", issuer=str(issuer)[:255], subject=str(subject)[:255])
    return user
