"""Macros in the console (console/macros): admins list, create, edit (a text per language,
tags chosen from existing tags, team visibility), preview on a real ticket, deactivate and
delete; agents see the macros their teams may use, read-only; the ticket page offers and
applies only visible macros; a macro sent in a reply is counted once."""

from __future__ import annotations

import pytest

from audit.models import AuditAction, AuditEntry
from tests import factories
from tickets import actions
from tickets.models import Macro, Message, Tag

pytestmark = pytest.mark.django_db


def _ticket(**kw):
    """A ticket whose customer has an email address to reply to."""
    ticket = factories.TicketFactory(**kw)
    factories.IdentityFactory(contact=ticket.requester)
    return ticket


def _form(**over) -> dict:
    data = {"name": "Refund issued", "body_en": "Hi {{ contact.name }}, your refund is on its way.",
            "body_ja": "{{ contact.name }} 様\n返金いたしました。", "new_tags": "", "set_status": "",
            "set_priority": "", "set_team": "", "set_assignee": ""}
    data.update(over)
    return data


@pytest.fixture
def ticket_ja():
    """A ticket from a customer who writes Japanese."""
    contact = factories.ContactFactory(name="佐藤 美咲", language="ja")
    return factories.TicketFactory(requester=contact, subject="返金について")


# --- who may -------------------------------------------------------------------------------


def test_admins_manage_agents_read_and_anonymous_visitors_log_in(client, as_user, agent, finance, admin_user):
    macro = factories.MacroFactory(name="Hello")
    assert as_user(admin_user).get("/macros/").status_code == 200
    page = as_user(admin_user).get(f"/macros/{macro.pk}/")
    assert page.status_code == 200 and "Hello" in page.content.decode()
    for person in (agent, finance):
        listing = as_user(person).get("/macros/")
        assert listing.status_code == 200 and "Hello" in listing.content.decode()
        assert f"/macros/{macro.pk}/" not in listing.content.decode()  # read-only: no link to the editor
        assert as_user(person).get("/macros/new").status_code == 403
        assert as_user(person).post("/macros/new", _form()).status_code == 403
        assert as_user(person).get(f"/macros/{macro.pk}/").status_code == 403
        assert as_user(person).post(f"/macros/{macro.pk}/deactivate").status_code == 403
        assert as_user(person).post(f"/macros/{macro.pk}/delete").status_code == 403
    assert Macro.objects.get(pk=macro.pk).active
    client.logout()
    for url in ("/macros/", "/macros/new", f"/macros/{macro.pk}/"):
        assert client.get(url)["Location"].startswith("/login/")
    assert "/macros/" in as_user(admin_user).get("/").content.decode()


# --- create and edit -----------------------------------------------------------------------


def test_an_admin_creates_a_macro_with_existing_and_new_tags_and_teams(as_user, admin_user):
    Tag.objects.create(name="refund")
    japan = factories.TeamFactory(name="Japan", slug="japan")
    page = as_user(admin_user).get("/macros/new").content.decode()
    assert 'value="refund"' in page and "Japan" in page and 'data-placeholder="contact.name"' in page
    response = as_user(admin_user).post("/macros/new", _form(tags=["refund"], new_tags="good-news",
                                                              teams=[str(japan.pk)], set_status="solved"))
    macro = Macro.objects.get(name="Refund issued")
    assert response.status_code == 302 and response["Location"] == f"/macros/{macro.pk}/"
    assert macro.body.startswith("Hi {{ contact.name }}") and macro.translations == {"ja": "{{ contact.name }} 様\n返金いたしました。"}
    assert macro.add_tags == ["refund", "good-news"] and macro.set_status == "solved"
    assert list(macro.teams.all()) == [japan]
    assert Tag.objects.filter(name="good-news").exists()  # offered as a choice next time
    entry = AuditEntry.objects.get(action=AuditAction.MACRO_CREATE)
    assert entry.actor == admin_user and entry.details["teams"] == ["japan"]


def test_editing_records_what_changed(as_user, admin_user):
    macro = actions.save_macro(actor=admin_user, macro=Macro(name="Hello", body="Hi {{ contact.name }}"))
    response = as_user(admin_user).post(f"/macros/{macro.pk}/", _form(name="Hello", body_en="Hello {{ contact.name }}",
                                                                      body_ja="", set_priority="high"))
    assert response.status_code == 302
    macro.refresh_from_db()
    assert macro.body == "Hello {{ contact.name }}" and macro.translations == {} and macro.set_priority == "high"
    changed = AuditEntry.objects.get(action=AuditAction.MACRO_UPDATE).details["changed"]
    assert set(changed) == {"body", "set_priority"}
    assert changed["set_priority"] == {"from": "", "to": "high"}
    page = as_user(admin_user).get(f"/macros/{macro.pk}/").content.decode()
    assert "Hello {{ contact.name }}" in page and "Saved the macro" in page


def test_an_unknown_placeholder_is_named_and_nothing_is_saved(as_user, admin_user):
    response = as_user(admin_user).post("/macros/new", _form(body_ja="{{ contact.nmae }} 様"))
    assert response.status_code == 400
    assert "{{ contact.nmae }}" in response.content.decode()
    assert not Macro.objects.exists()


def test_a_macro_needs_text_in_some_language_and_tags_are_slugs(as_user, admin_user):
    response = as_user(admin_user).post("/macros/new", _form(body_en="  ", body_ja=""))
    assert response.status_code == 400 and "at least one language" in response.content.decode()
    response = as_user(admin_user).post("/macros/new", _form(new_tags="ok bad/tag"))
    assert response.status_code == 400 and "“bad/tag” is not a tag" in response.content.decode()
    response = as_user(admin_user).post("/macros/new", _form(tags=["not-a-choice"]))
    assert response.status_code == 400
    assert not Macro.objects.exists()


def test_a_duplicate_name_is_refused_in_the_form(as_user, admin_user):
    factories.MacroFactory(name="Refund issued")
    response = as_user(admin_user).post("/macros/new", _form(name="refund issued"))
    assert response.status_code == 400 and "already a macro named" in response.content.decode()
    assert Macro.objects.count() == 1


def test_deactivate_activate_and_delete_with_confirmation(as_user, admin_user):
    macro = factories.MacroFactory(name="Old one")
    client = as_user(admin_user)
    assert client.post(f"/macros/{macro.pk}/deactivate").status_code == 302
    assert not Macro.objects.get(pk=macro.pk).active
    assert client.post(f"/macros/{macro.pk}/activate").status_code == 302
    assert Macro.objects.get(pk=macro.pk).active
    confirm = client.get(f"/macros/{macro.pk}/delete")
    assert confirm.status_code == 200 and "Delete the macro" in confirm.content.decode()
    assert Macro.objects.filter(pk=macro.pk).exists()  # asking deletes nothing
    assert client.post(f"/macros/{macro.pk}/delete")["Location"] == "/macros/"
    assert not Macro.objects.filter(pk=macro.pk).exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        AuditAction.MACRO_UPDATE, AuditAction.MACRO_UPDATE, AuditAction.MACRO_DELETE]


def test_the_list_shows_languages_teams_tags_and_uses_and_filters_by_team(as_user, admin_user):
    japan = factories.TeamFactory(name="Japan", slug="japan")
    macro = actions.save_macro(actor=admin_user, macro=Macro(name="Bilingual", body="Hi", translations={"ja": "こんにちは"},
                                                             add_tags=["greeting"]), teams=[japan])
    factories.MacroFactory(name="Everyone's")
    Macro.objects.filter(pk=macro.pk).update(use_count=7)
    page = as_user(admin_user).get("/macros/").content.decode()
    assert "Bilingual" in page and "Japanese" in page and "greeting" in page and ">7<" in page
    only_japan = as_user(admin_user).get("/macros/?team=japan").content.decode()
    assert "Bilingual" in only_japan and "Everyone" not in only_japan
    assert as_user(admin_user).get("/macros/?team=nope&q=%ff").status_code == 200
    assert as_user(admin_user).get("/macros/?team=%00").status_code in (200, 400)  # never a 5xx


# --- the live preview ----------------------------------------------------------------------


def test_the_preview_renders_in_the_customers_language_on_a_real_ticket(as_user, admin_user, ticket_ja):
    admin_user.first_name, admin_user.last_name = "Aiko", "Mori"
    admin_user.save()
    response = as_user(admin_user).post("/macros/new", _form(preview="1", preview_ticket=str(ticket_ja.pk)),
                                        HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="macro-preview"' in html and "<form" not in html
    assert "佐藤 美咲 様" in html and "Japanese text" in html
    assert not Macro.objects.exists()  # a preview saves nothing


def test_the_preview_says_when_the_customers_language_has_no_text(as_user, admin_user, ticket_ja):
    response = as_user(admin_user).post("/macros/new", _form(preview="1", body_ja="",
                                                             preview_ticket=str(ticket_ja.pk)), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "Hi 佐藤 美咲, your refund" in html and "No Japanese text: the English one is sent" in html


def test_the_preview_names_an_unknown_placeholder_and_survives_junk(as_user, admin_user, ticket_ja):
    html = as_user(admin_user).post("/macros/new", _form(preview="1", body_ja="{{ foo.bar }}",
                                                         preview_ticket=str(ticket_ja.pk))).content.decode()
    assert "{{ foo.bar }}" in html and "Unknown placeholder" in html
    for junk in ("", "x", "99999999999999999999999", "-1"):
        assert as_user(admin_user).post("/macros/new", _form(preview="1", preview_ticket=junk)).status_code == 200


# --- on the ticket page ----------------------------------------------------------------------


@pytest.fixture
def team_macros(admin_user):
    japan = factories.TeamFactory(name="Japan", slug="japan")
    billing = factories.TeamFactory(name="Billing", slug="billing")
    everyone = actions.save_macro(actor=admin_user, macro=Macro(name="For everyone", body="Hi {{ contact.name }}"))
    mine = actions.save_macro(actor=admin_user, macro=Macro(name="For Japan", body="Japan {{ ticket.number }}"),
                              teams=[japan])
    theirs = actions.save_macro(actor=admin_user, macro=Macro(name="For Billing", body="Billing"), teams=[billing])
    return {"japan": japan, "everyone": everyone, "mine": mine, "theirs": theirs}


def test_the_composer_offers_only_the_macros_of_the_agents_teams(as_user, agent, admin_user, team_macros):
    team_macros["japan"].members.add(agent)
    ticket = factories.TicketFactory()
    page = as_user(agent).get(f"/tickets/{ticket.number}/").content.decode()
    assert "For everyone" in page and "For Japan" in page and "For Billing" not in page
    admin_page = as_user(admin_user).get(f"/tickets/{ticket.number}/").content.decode()
    assert "For Billing" in admin_page
    listing = as_user(agent).get("/macros/").content.decode()
    assert "For Japan" in listing and "For Billing" not in listing


def test_a_macro_the_agent_may_not_use_is_refused_not_applied(as_user, agent, team_macros):
    ticket = factories.TicketFactory()
    theirs = team_macros["theirs"]
    client = as_user(agent)
    assert client.get(f"/tickets/{ticket.number}/macro/?macro={theirs.pk}").status_code == 404
    response = client.post(f"/tickets/{ticket.number}/reply/", {"kind": "reply", "body": "Billing",
                                                                "macro": str(theirs.pk), "version": ticket.version})
    assert response.status_code == 404
    assert not Message.objects.filter(ticket=ticket).exists()
    assert Macro.objects.get(pk=theirs.pk).use_count == 0
    assert client.get(f"/tickets/{ticket.number}/macro/?macro={team_macros['everyone'].pk}").status_code == 200


def test_a_macro_is_counted_once_per_sent_reply_not_per_preview(as_user, agent, team_macros):
    ticket = _ticket()
    macro = team_macros["everyone"]
    client = as_user(agent)
    filled = client.get(f"/tickets/{ticket.number}/macro/?macro={macro.pk}")
    assert filled.status_code == 200 and ticket.requester.name in filled.content.decode()
    assert Macro.objects.get(pk=macro.pk).use_count == 0  # filling the composer is not a use
    response = client.post(f"/tickets/{ticket.number}/reply/", {
        "kind": "reply", "body": f"Hi {ticket.requester.name}", "macro": str(macro.pk), "version": ticket.version})
    assert response.status_code == 302
    macro.refresh_from_db()
    assert macro.use_count == 1 and macro.last_used_at is not None
    assert Message.objects.filter(ticket=ticket, kind="outbound").count() == 1
    ticket.refresh_from_db()
    client.post(f"/tickets/{ticket.number}/reply/", {"kind": "reply", "body": "Anything else?", "version": ticket.version})
    assert Macro.objects.get(pk=macro.pk).use_count == 1  # a reply without the macro doesn't count


def test_a_workflow_applying_a_macro_counts_it(admin_user):
    macro = factories.MacroFactory(name="Auto")
    ticket = _ticket()
    actions.apply_macro(actor=admin_user, ticket=ticket, macro=macro)
    actions.apply_macro(actor=admin_user, ticket=ticket, macro=macro.pk)
    assert Macro.objects.get(pk=macro.pk).use_count == 2


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_ships_bilingual_macros_once(admin_user):
    from console.demo.tickets import DEMO_MACROS, ensure_macros

    billing = factories.TeamFactory(name="Billing", slug="billing")
    teams = {"billing": billing, "finance": factories.TeamFactory(name="Finance", slug="finance")}
    made = ensure_macros(admin_user, teams)
    assert len(made) == len(DEMO_MACROS) >= 6
    assert ensure_macros(admin_user, teams) == []  # idempotent
    for macro in Macro.objects.all():
        assert macro.body.strip() and macro.translations.get("ja", "").strip()
        assert "様" in macro.translations["ja"] and ("ます" in macro.translations["ja"])
    assert set(Macro.objects.get(name="Double charge explained").teams.values_list("slug", flat=True)) == {
        "billing", "finance"}
    ticket = factories.TicketFactory(requester=factories.ContactFactory(name="田中 花子", language="ja"))
    text = actions.render_macro(Macro.objects.get(name="Thanks, closing"), ticket=ticket, actor=admin_user)
    assert text.startswith("田中 花子 様") and f"#{ticket.number}" in text
