"""The team's setup, edited in Django admin and the console (/macros/): teams and macros."""

from __future__ import annotations

import re
from typing import Iterable

from django.utils.translation import pgettext_lazy
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from audit.actors import require
from audit.models import AuditAction

from ..models import Macro, Team
from ..selectors import language_code
from ._common import audit, tag_names, tags_named, target_of
from .errors import ActionError
from .tickets import MACRO_PLACEHOLDERS


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


def save_macro(*, actor, macro: Macro, teams: Iterable | None = None) -> Macro:
    """Create or change a macro; `teams` (Team rows or ids) sets who sees it (empty: every
    team), None leaves them. Its tags become Tag rows; the audit row says what changed."""
    require(actor, "tickets.change_macro" if macro.pk else "tickets.add_macro", doing=pgettext_lazy("permission", "edit macros"))
    macro.name = (macro.name or "").strip()
    if not macro.name:
        raise ActionError(_("A macro needs a name."), code="required")
    macro.add_tags = tag_names(macro.add_tags or [])
    macro.translations = _translations(macro.translations)
    if not (macro.body or "").strip() and not macro.translations:
        raise ActionError(_("Write the macro's text in at least one language."), code="required")
    check_placeholders([macro.body or "", *macro.translations.values()])
    if Macro.objects.filter(name__iexact=macro.name).exclude(pk=macro.pk).exists():
        raise ActionError(_("There is already a macro named “%(name)s”.") % {"name": macro.name}, code="unique")
    chosen = None if teams is None else list(
        Team.objects.filter(pk__in=[t.pk if isinstance(t, Team) else t for t in teams]).order_by("pk"))
    with transaction.atomic():
        created = macro.pk is None
        before = {} if created else _describe_macro(Macro.objects.get(pk=macro.pk))
        macro.save()
        if chosen is not None:
            macro.teams.set(chosen)
        tags_named(macro.add_tags)  # the tags it adds exist, so the editor offers them next time
        after = _describe_macro(macro)
        if created:
            audit(actor, AuditAction.MACRO_CREATE, target_of(macro), name=macro.name, **after)
        elif after != before:
            audit(actor, AuditAction.MACRO_UPDATE, target_of(macro), name=macro.name,
                  changed={k: {"from": before.get(k), "to": after[k]} for k in after if after[k] != before.get(k)})
    return macro


def set_macro_active(*, actor, macro: Macro, active: bool) -> Macro:
    """Deactivate (no longer offered nor applied; kept with its counts) or activate again."""
    require(actor, "tickets.change_macro", doing=pgettext_lazy("permission", "edit macros"))
    with transaction.atomic():
        if macro.active != bool(active):
            macro.active = bool(active)
            macro.save(update_fields=["active", "updated"])
            audit(actor, AuditAction.MACRO_UPDATE, target_of(macro), name=macro.name,
                  changed={"active": {"from": not macro.active, "to": macro.active}})
    return macro


def check_placeholders(texts) -> None:
    unknown = []
    for text in texts:
        for found in re.findall(r"\{\{(.*?)\}\}", text, flags=re.S):
            name = found.strip()
            if name not in MACRO_PLACEHOLDERS and name not in unknown:
                unknown.append(name)
    if unknown:
        raise ActionError(
            _("Unknown placeholder %(names)s. Use one of: %(known)s.") % {
                "names": ", ".join("{{ %s }}" % n[:40] for n in unknown[:5]),
                "known": ", ".join("{{ %s }}" % n for n in MACRO_PLACEHOLDERS)},
            code="placeholder")


def _describe_macro(macro: Macro) -> dict:
    return {"body": macro.body, "translations": dict(macro.translations or {}), "set_status": macro.set_status,
            "set_priority": macro.set_priority, "set_team": macro.set_team_id, "set_assignee": macro.set_assignee_id,
            "add_tags": list(macro.add_tags or []), "active": macro.active,
            "teams": sorted(macro.teams.values_list("slug", flat=True)) if macro.pk else []}


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
