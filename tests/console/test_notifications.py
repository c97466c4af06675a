"""Notifying people (console.actions.notify_people, a workflow's "notify" step) and marking
one's own read (mark_notifications_read): who is notified, in whose language, the email that
follows the commit, what is refused and what is audited."""

import logging

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from audit.models import AuditEntry
from console import actions
from console.models import Notification, UserPreference
from tests import factories
from tickets.models import Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    """A team of three (one of them no longer active) and two people outside it."""
    ann, bob, cat = (factories.UserFactory(username=name) for name in ("ann", "bob", "cat"))
    gone = factories.UserFactory(username="gone", is_active=False)
    dan = factories.UserFactory(username="dan")
    team = Team.objects.create(name="Finance desk", slug="finance-desk")
    team.members.set([ann, bob, gone])
    return {"ann": ann, "bob": bob, "cat": cat, "gone": gone, "dan": dan, "team": team}


def _recipients(rows) -> list[str]:
    return sorted(n.recipient.username for n in rows)


def test_team_and_people_are_one_list_each_once_active_only(people, committed):
    with committed():
        rows = actions.notify_people(actor=None, users=[people["bob"], "cat", "cat", people["gone"]],
                                     team="finance-desk", text="A charge needs a look", link="/tickets/12/",
                                     source="workflow:12 run:40")
    assert _recipients(rows) == ["ann", "bob", "cat"]  # bob once; gone is inactive; dan wasn't asked
    assert Notification.objects.count() == 3
    assert {(n.text, n.link, n.source, n.read_at) for n in Notification.objects.all()} == {
        ("A charge needs a look", "/tickets/12/", "workflow:12 run:40", None)}
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@paydesk.test", "bob@paydesk.test", "cat@paydesk.test"]


def test_one_audit_row_names_the_recipients_and_the_source(people, agent, committed):
    with committed():
        actions.notify_people(actor=agent, users=["dan"], team="finance-desk", text="Hello", source="workflow:3 run:9")
    entry = AuditEntry.objects.get(action="notify")
    assert entry.actor == agent and entry.target == "notify:workflow:3 run:9"
    assert entry.details["recipients"] == ["ann", "bob", "dan"]
    assert entry.details["source"] == "workflow:3 run:9" and entry.details["team"] == "finance-desk"


def test_each_recipient_reads_it_in_their_own_language_rendered_once_per_language(people, committed):
    UserPreference.objects.create(user=people["ann"], language="ja")
    UserPreference.objects.create(user=people["bob"], language="")  # follows the browser: the console's default
    calls = []

    def text(language):
        calls.append((language, translation.get_language()))
        return f"{gettext('Inbox')} ({language})"

    with committed():
        actions.notify_people(actor=None, users=["ann", "bob", "cat"], text=text, link="/tickets/7/",
                              email_subject=lambda language: f"[{language}] {gettext('Refund issued')}")
    assert sorted(calls) == [("en", "en"), ("ja", "ja")]  # once per language, inside override
    texts = {n.recipient.username: n.text for n in Notification.objects.select_related("recipient")}
    assert texts == {"ann": "受信箱 (ja)", "bob": "Inbox (en)", "cat": "Inbox (en)"}
    emails = {m.to[0]: m for m in mail.outbox}
    assert len(mail.outbox) == 3
    assert emails["ann@paydesk.test"].subject == "[ja] 返金を実行"
    assert emails["ann@paydesk.test"].body.startswith("受信箱 (ja)")
    assert emails["bob@paydesk.test"].subject == "[en] Refund issued"
    assert emails["bob@paydesk.test"].body.startswith("Inbox (en)\n\n") and "/tickets/7/" in emails["bob@paydesk.test"].body
    assert translation.get_language() == "en"  # the caller's language is left as it was


def test_lazy_text_and_the_default_subject(people, committed):
    UserPreference.objects.create(user=people["ann"], language="ja")
    with committed():
        actions.notify_people(actor=None, users=["ann", "dan"], text=gettext_lazy("Inbox"))
    texts = {n.recipient.username: n.text for n in Notification.objects.select_related("recipient")}
    assert texts == {"ann": "受信箱", "dan": "Inbox"}
    english = next(m for m in mail.outbox if m.to == ["dan@paydesk.test"])
    assert english.subject == "Paydesk: a notification" and english.body == "Inbox"  # no link, no link line


def test_the_link_is_absolute_when_the_console_says_where_it_is(people, committed, settings):
    settings.CONSOLE_BASE_URL = "https://paydesk.example/"
    with committed():
        actions.notify_people(actor=None, users=["dan"], text="Look", link="/customers/4/")
    assert "https://paydesk.example/customers/4/" in mail.outbox[0].body


def test_no_email_for_someone_without_an_address_and_none_before_the_commit(people, committed):
    factories.UserFactory(username="noaddress", email="")
    with committed():
        rows = actions.notify_people(actor=None, users=["noaddress", "dan"], text="Hi")
        assert mail.outbox == []  # sent once committed, not inside the transaction
    assert _recipients(rows) == ["dan", "noaddress"]
    assert [m.to for m in mail.outbox] == [["dan@paydesk.test"]]


def test_a_failed_email_keeps_the_notifications(people, committed, monkeypatch, caplog):
    def broken(self, fail_silently=False):
        raise OSError("smtp is down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with caplog.at_level(logging.ERROR, logger="console.actions"), committed():
        actions.notify_people(actor=None, users=["ann", "dan"], text="Hi")
    assert Notification.objects.count() == 2 and AuditEntry.objects.filter(action="notify").exists()
    assert caplog.text.count("not sent") == 2  # each failure logged, the next one still tried


def test_an_unknown_team_is_refused_and_nothing_is_saved(people, committed):
    with committed(), pytest.raises(ValidationError) as refused:
        actions.notify_people(actor=None, users=["ann"], team="no-such-team", text="Hi")
    assert "no-such-team" in refused.value.messages[0]
    assert not Notification.objects.exists() and not AuditEntry.objects.exists() and mail.outbox == []


def test_an_unknown_username_is_refused_naming_it(people):
    with pytest.raises(ValidationError) as refused:
        actions.notify_people(actor=None, users=["ann", "nobody-here", "\x00"], text="Hi")
    assert "nobody-here" in refused.value.messages[0]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("users, team", [([], ""), (["gone"], ""), ([None, ""], "")])
def test_nobody_to_notify_is_refused(people, users, team):
    with pytest.raises(ValidationError):
        actions.notify_people(actor=None, users=users, team=team, text="Hi")
    assert not Notification.objects.exists() and not AuditEntry.objects.exists()


def test_a_team_with_no_active_member_is_refused(people):
    empty = Team.objects.create(name="Empty", slug="empty")
    empty.members.set([people["gone"]])
    with pytest.raises(ValidationError):
        actions.notify_people(actor=None, team="empty", text="Hi")


@pytest.mark.parametrize("link", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "/a b", "/x\\y"])
def test_a_link_must_be_a_console_path(people, link):
    with pytest.raises(ValidationError):
        actions.notify_people(actor=None, users=["ann"], text="Hi", link=link)
    assert not Notification.objects.exists()


def test_blank_text_is_refused(people):
    with pytest.raises(ValidationError):
        actions.notify_people(actor=None, users=["ann"], text=lambda language: "  ")


def test_who_may_notify(people, agent, finance, admin_user, no_role):
    for actor in (None, agent, finance, admin_user):  # Paydesk itself, and everyone who sees teams
        actions.notify_people(actor=actor, users=["ann"], text="Hi")
    with pytest.raises(PermissionDenied):
        actions.notify_people(actor=no_role, users=["ann"], text="Hi")
    assert Notification.objects.count() == 4


def test_marking_read_touches_only_ones_own(people):
    actions.notify_people(actor=None, users=["ann", "bob"], text="One")
    actions.notify_people(actor=None, users=["ann"], text="Two")
    assert actions.mark_notifications_read(actor=people["ann"], user=people["ann"]) == 2
    assert not Notification.objects.filter(recipient=people["ann"], read_at__isnull=True).exists()
    assert Notification.objects.get(recipient=people["bob"]).read_at is None
    entry = AuditEntry.objects.get(action="notifications.read")
    assert entry.actor == people["ann"] and entry.details == {"count": 2}
    # Nothing left unread: nothing changes, nothing more is audited.
    assert actions.mark_notifications_read(actor=people["ann"], user=people["ann"]) == 0
    assert AuditEntry.objects.filter(action="notifications.read").count() == 1


def test_nobody_marks_another_persons_notifications(people, admin_user):
    actions.notify_people(actor=None, users=["bob"], text="One")
    for actor in (admin_user, people["ann"], None):
        with pytest.raises(PermissionDenied):
            actions.mark_notifications_read(actor=actor, user=people["bob"])
    assert Notification.objects.get().read_at is None
