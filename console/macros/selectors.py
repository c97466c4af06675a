"""Reads for the macro pages."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from common import parsing
from tickets import selectors as ticket_selectors
from tickets.models import Macro, Tag, Team, Ticket

RECENT_TICKETS = 25


def macros(user, *, team: str = "", q: str = "") -> list[Macro]:
    """The macros `user` may use (admins: all), active first, with their teams, in two queries."""
    found = ticket_selectors.visible_macros(user)
    if not user.has_perm("tickets.change_macro"):
        found = found.filter(active=True)
    if team == "none":
        found = found.filter(teams__isnull=True)
    elif team:
        found = found.filter(teams__slug=team)
    if q:
        found = found.filter(Q(name__icontains=q) | Q(body__icontains=q))
    return list(found.select_related("set_team", "set_assignee").prefetch_related("teams")
                .order_by("-active", "name").distinct())


def macro(pk) -> Macro | None:
    pk = parsing.parse_int(pk)
    if pk is None:
        return None
    return Macro.objects.filter(pk=pk).select_related("set_team", "set_assignee").prefetch_related("teams").first()


def languages(m: Macro) -> list[str]:
    """The languages a macro has a text in, as codes: the default's when `body` has text."""
    codes = [settings.LANGUAGE_CODE] if (m.body or "").strip() else []
    translations = m.translations if isinstance(m.translations, dict) else {}
    codes += [code for code, text in translations.items() if isinstance(text, str) and text.strip()
              and code not in codes]
    return codes


def teams() -> list[Team]:
    return list(Team.objects.order_by("name"))


def tag_names(extra=()) -> list[str]:
    """Existing tags, and any the macro adds that has no row yet."""
    return sorted(set(Tag.objects.values_list("name", flat=True)) | set(extra))


def recent_tickets() -> list[Ticket]:
    return list(Ticket.objects.select_related("requester").order_by("-updated", "-pk")[:RECENT_TICKETS])


def ticket(pk) -> Ticket | None:
    pk = parsing.parse_int(pk)
    if pk is None:
        return None
    return Ticket.objects.select_related("requester").filter(pk=pk).first()


def assignable_agents() -> list:
    return ticket_selectors.assignable_agents()
