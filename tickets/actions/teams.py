"""The team's setup, edited in Django admin: teams and macros."""

from __future__ import annotations

from typing import Iterable

from django.utils.translation import pgettext_lazy
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from audit.actors import require
from audit.models import AuditAction

from ..models import Macro, Team
from ..selectors import language_code
from ._common import audit, tag_names, target_of
from .errors import ActionError


def save_team(*, actor, team: Team, members: Iterable | None = None) -> Team:
    require(actor, "tickets.change_team" if team.pk else "tickets.add_team", doing=pgettext_lazy("permission", "edit teams"))
    if not team.name.strip():
        raise ActionError(_("A team needs a name."), code="required")
    team.slug = team.slug or slugify(team.name)
    with transaction.atomic():
        created = team.pk is None
        team.save()
        if members is not None:
            team.members.set(members)
        audit(actor, AuditAction.TEAM_CREATE if created else AuditAction.TEAM_UPDATE, target_of(team), name=team.name)
    return team


def delete_team(*, actor, team: Team) -> None:
    require(actor, "tickets.delete_team", doing=pgettext_lazy("permission", "delete teams"))
    with transaction.atomic():
        name, pk = team.name, team.pk
        team.delete()
        audit(actor, AuditAction.TEAM_DELETE, f"team:{pk}", name=name)


def save_macro(*, actor, macro: Macro) -> Macro:
    require(actor, "tickets.change_macro" if macro.pk else "tickets.add_macro", doing=pgettext_lazy("permission", "edit macros"))
    macro.add_tags = tag_names(macro.add_tags or [])
    macro.translations = _translations(macro.translations)
    with transaction.atomic():
        created = macro.pk is None
        macro.save()
        audit(actor, AuditAction.MACRO_CREATE if created else AuditAction.MACRO_UPDATE, target_of(macro),
              name=macro.name)
    return macro


def delete_macro(*, actor, macro: Macro) -> None:
    require(actor, "tickets.delete_macro", doing=pgettext_lazy("permission", "delete macros"))
    with transaction.atomic():
        name, pk = macro.name, macro.pk
        macro.delete()
        audit(actor, AuditAction.MACRO_DELETE, f"macro:{pk}", name=name)


def _translations(value) -> dict[str, str]:
    """{"ja": "...", "en-US": "..."} kept as {"ja": "...", "en": "..."}; empty bodies dropped."""
    if value in (None, "", []):
        return {}
    if not isinstance(value, dict):
        raise ActionError(_("Translations must map a language code to a body, such as {\"ja\": \"…\"}."),
                          code="invalid")
    cleaned = {}
    for key, text in value.items():
        code = language_code(str(key))
        if not code:
            raise ActionError(_("“%(language)s” is not a language code such as “ja” or “en”.")
                              % {"language": str(key)[:32]}, code="invalid")
        if not isinstance(text, str):
            raise ActionError(_("The %(language)s body must be text.") % {"language": code}, code="invalid")
        if text.strip():
            cleaned[code] = text
    return cleaned
