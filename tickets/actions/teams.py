"""The team's setup, edited in Django admin: teams and macros."""

from __future__ import annotations

from typing import Iterable

from django.db import transaction
from django.utils.text import slugify

from audit.actors import require
from audit.models import AuditAction

from ..models import Macro, Team
from ._common import audit, tag_names, target_of
from .errors import ActionError


def save_team(*, actor, team: Team, members: Iterable | None = None) -> Team:
    require(actor, "tickets.change_team" if team.pk else "tickets.add_team", doing="edit teams")
    if not team.name.strip():
        raise ActionError("A team needs a name.", code="required")
    team.slug = team.slug or slugify(team.name)
    with transaction.atomic():
        created = team.pk is None
        team.save()
        if members is not None:
            team.members.set(members)
        audit(actor, AuditAction.TEAM_CREATE if created else AuditAction.TEAM_UPDATE, target_of(team), name=team.name)
    return team


def delete_team(*, actor, team: Team) -> None:
    require(actor, "tickets.delete_team", doing="delete teams")
    with transaction.atomic():
        name, pk = team.name, team.pk
        team.delete()
        audit(actor, AuditAction.TEAM_DELETE, f"team:{pk}", name=name)


def save_macro(*, actor, macro: Macro) -> Macro:
    require(actor, "tickets.change_macro" if macro.pk else "tickets.add_macro", doing="edit macros")
    macro.add_tags = tag_names(macro.add_tags or [])
    with transaction.atomic():
        created = macro.pk is None
        macro.save()
        audit(actor, AuditAction.MACRO_CREATE if created else AuditAction.MACRO_UPDATE, target_of(macro),
              name=macro.name)
    return macro


def delete_macro(*, actor, macro: Macro) -> None:
    require(actor, "tickets.delete_macro", doing="delete macros")
    with transaction.atomic():
        name, pk = macro.name, macro.pk
        macro.delete()
        audit(actor, AuditAction.MACRO_DELETE, f"macro:{pk}", name=name)
