"""tickets.actions.teams: the team's setup, edited by admins in Django admin, each change audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from tickets import actions
from tickets.models import Macro, Team

pytestmark = pytest.mark.django_db


def test_teams_and_macros_are_saved_by_admins_only(agent, admin_user):
    with pytest.raises(PermissionDenied):
        actions.save_team(actor=agent, team=Team(name="Sneaky"))
    team = actions.save_team(actor=admin_user, team=Team(name="VIP Desk"), members=[agent])
    assert team.slug == "vip-desk" and list(team.members.all()) == [agent]
    assert AuditEntry.objects.get(action="team.create").actor == admin_user


def test_macros_keep_their_tags_as_tag_names_and_deleting_is_audited(agent, admin_user):
    with pytest.raises(PermissionDenied):
        actions.save_macro(actor=agent, macro=Macro(name="Refund sent", body="Done."))
    macro = actions.save_macro(actor=admin_user, macro=Macro(name="Refund sent", body="Done.",
                                                             add_tags=["Refund Issued", "refund-issued"]))
    team = actions.save_team(actor=admin_user, team=Team(name="Night shift"))
    macro_pk, team_pk = macro.pk, team.pk

    actions.delete_macro(actor=admin_user, macro=macro)
    actions.delete_team(actor=admin_user, team=team)

    assert macro.add_tags == ["refund-issued"]
    assert not Macro.objects.exists() and not Team.objects.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", "target")) == [
        ("macro.create", f"macro:{macro_pk}"), ("team.create", f"team:{team_pk}"),
        ("macro.delete", f"macro:{macro_pk}"), ("team.delete", f"team:{team_pk}"),
    ]
