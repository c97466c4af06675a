"""The inbox and the ticket page in the reader's language: Japanese for a Japanese browser
(LocaleMiddleware reads Accept-Language), English, unchanged, for everyone else.

Needs the compiled Japanese catalogue (locale/ja/LC_MESSAGES/django.mo), which `make test`
builds from the compendia. Status, priority and channel labels come from the model's choices
(translated where tickets/models.py is): the badges are checked against those labels.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.contrib.admin.sites import site as admin_site
from django.utils import timezone, translation

from tickets import actions, presence
from tickets.models import ContactMerge, Identity, Ticket
from tickets.templatetags import inbox_ui
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def world(agent):
    now = timezone.now()
    support = factories.TeamFactory(name="Support", slug="support")
    t = {
        "late": factories.TicketFactory(subject="Overdue one", sla_due=now - dt.timedelta(hours=2), assignee=agent,
                                        team=support, priority="urgent"),
        "soon": factories.TicketFactory(subject="Due soon", sla_due=now + dt.timedelta(minutes=40), priority="high"),
        "later": factories.TicketFactory(subject="Due later", sla_due=now + dt.timedelta(days=3, minutes=5),
                                         channel="line"),
    }
    return {"tickets": t, "support": support}


@pytest.fixture
def ticket(db) -> Ticket:
    return actions.receive_message(channel="email", sender="Hana Sato <hana@example.jp>", subject="Where is my order?",
                                   body_text="It has been a week.", channel_message_id="i18n-1@mail.example").message.ticket


def bulk_texts(html: str) -> dict:
    found = re.search(r'<script id="bulk-texts" type="application/json">(.*?)</script>', html)
    assert found, "the inbox renders the bulk bar's words for inbox.js"
    return json.loads(found.group(1))


# --- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_in_japanese(client, world, agent):
    client.force_login(agent)
    html = client.get("/tickets/all/", **JA).content.decode()
    # The page, the navigation, the filters and the table's headings.
    assert "<h1>すべてのチケット</h1>" in html
    assert "すべてのチケットです。SLA の期限が近い順に表示しています。" in html
    assert "チケットのビュー" in html and "自分のチケット" in html and "未割り当て" in html
    assert 'aria-label="絞り込み"' in html and "すべてのチャネル" in html and "すべての優先度" in html
    assert "<th>チケット</th><th>ステータス</th><th>優先度</th><th>担当者</th>" in html
    assert ">未解決</option>" in html and ">すべてのステータス</option>" in html
    assert ">割り当てる</button>" in html and ">クローズ</button>" in html
    assert "選択したチケットをクローズしますか？" in html
    # The SLA column: Japanese units, no space before them.
    assert re.search(r'class="due due-late" title="期限：[^"]+">(2時間超過|1時間59分超過)<', html)
    assert re.search(r'class="due due-soon" title="期限：[^"]+">あと(39|40)分<', html)
    assert re.search(r'class="due" title="期限：[^"]+">あと3日<', html)
    assert "チケット #" in html and "を選択" in html  # the row checkbox's label
    # The badges and the filters' options are the model's labels in Japanese.
    with translation.override("ja"):
        assert f'status-open">{Ticket.Status.OPEN.label}</span>' in html
        assert f'<option value="pending">{Ticket.Status.PENDING.label}</option>' in html
        assert f'<span class="prio prio-urgent">{Ticket.Priority.URGENT.label}</span>' in html
        assert f'<option value="urgent">{Ticket.Priority.URGENT.label}</option>' in html
    # The keyboard shortcuts overlay and the hint under the list.
    assert "キーボードショートカット" in html and "ハイライトしたチケットを開く" in html
    assert "<kbd>?</kbd> でショートカット一覧を表示します。" in html
    # inbox.js counts selected tickets with the page's words.
    texts = bulk_texts(html)
    assert texts["one"] == "%(count)s件を選択中" and texts["other"] == "%(count)s件を選択中"
    # No English left among the things a person reads first.
    for english in ("Keyboard shortcuts", "All tickets", "Sort by", "Assignee", "Bulk actions", " late<", ">in ",
                    'title="Due ', "Select ticket", "tickets selected", "Ticket views"):
        assert english not in html, english


def test_the_inbox_in_english_is_unchanged(client, world, agent):
    client.force_login(agent)
    html = client.get("/tickets/all/", **EN).content.decode()
    assert "<h1>All tickets</h1>" in html
    assert "Every ticket, soonest SLA deadline first." in html
    assert "<th>Ticket</th><th>Status</th><th>Priority</th><th>Assignee</th>" in html
    assert re.search(r'class="due due-late" title="Due [^"]+">(2h|1h 59m) late<', html)
    assert re.search(r'class="due due-soon" title="Due [^"]+">in (39|40)m<', html)
    assert re.search(r'class="due" title="Due [^"]+">in 3d<', html)
    assert '<span class="badge badge-warn status-open">Open</span>' in html
    assert '<span class="prio prio-urgent">Urgent</span>' in html
    assert "Keyboard shortcuts" in html and 'aria-label="Select ticket #' in html
    assert bulk_texts(html) == {"one": "%(count)s ticket selected", "other": "%(count)s tickets selected"}
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", html.split("<main", 1)[1])


def test_the_inbox_subtitle_follows_the_sort_in_japanese(client, world, agent):
    client.force_login(agent)
    html = client.get("/tickets/mine/?sort=updated", **JA).content.decode()
    assert "自分に割り当てられたチケットです。更新日時の新しい順に表示しています。" in html
    html = client.get("/tickets/team-support/", **JA).content.decode()
    assert "Support チームのチケットです。SLA の期限が近い順に表示しています。" in html


def test_bulk_messages_in_japanese(client, world, agent):
    client.force_login(agent)
    t = world["tickets"]
    response = client.post("/tickets/bulk/", {"view": "all", "op": "assign", "assign_to": "me",
                                              "ticket": [t["soon"].pk, t["later"].pk]}, **HX, **JA)
    assert "2件のチケットを割り当てました。" in response.content.decode()
    response = client.post("/tickets/bulk/", {"view": "all", "op": "solved"}, **HX, **JA)
    assert "先にチケットを選択してください。" in response.content.decode()
    response = client.post("/tickets/bulk/", {"view": "all", "op": "tag", "ticket": [t["soon"].pk]}, **HX, **JA)
    assert "追加するタグを入力してください。" in response.content.decode()
    response = client.post("/tickets/bulk/", {"view": "all", "op": "tag", "add_tag": "vip", "ticket": [t["soon"].pk]},
                           **HX, **JA)
    assert "1件のチケットにタグ「vip」を追加しました。" in response.content.decode()
    # English: a proper plural and the same sentence as before.
    response = client.post("/tickets/bulk/", {"view": "all", "op": "solved", "ticket": [t["soon"].pk]}, **HX, **EN)
    assert "Marked 1 ticket solved." in response.content.decode()


# --- the ticket page -----------------------------------------------------------------------------


def test_the_ticket_page_in_japanese(client, ticket, agent):
    client.force_login(agent)
    html = client.get(f"/tickets/{ticket.number}/", **JA).content.decode()
    assert "← 一覧に戻る" in html
    assert " に作成</span>" in html  # "opened <when>"
    assert 'aria-label="会話"' in html and 'aria-label="チケットの詳細"' in html
    assert "宛先：Hana Sato 様（メール）" in html
    assert "社内メモ：エージェントだけが閲覧できます。" in html
    assert '> 返信 <kbd>r</kbd>' in html and '> 社内メモ <kbd>n</kbd>' in html
    assert 'placeholder="返信を入力…"' in html and ">送信</button>" in html
    assert "<dt>ステータス</dt>" in html and "<dt>担当者</dt>" in html and "<h2>問い合わせ元</h2>" in html
    assert re.search(r'初回返信 <span class="due" title="期限：[^"]+">あと\d+時間', html)
    assert "（自分）</option>" in html
    assert ">解決済みにする <kbd>e</kbd></button>" in html
    assert "キーボードショートカット" in html
    with translation.override("ja"):
        assert f'<option value="open" selected>{Ticket.Status.OPEN.label}</option>' in html
    for english in ("Back to the list", "Internal note", "Requester", "First reply", "Write your reply",
                    "Keyboard shortcuts", "Looking up payments", "opened "):
        assert english not in html, english


def test_the_ticket_page_in_english_is_unchanged(client, ticket, agent):
    client.force_login(agent)
    html = client.get(f"/tickets/{ticket.number}/", **EN).content.decode()
    assert "← Back to the list" in html and "To Hana Sato by email" in html
    assert "> Reply <kbd>r</kbd>" in html and "> Internal note <kbd>n</kbd>" in html
    assert re.search(r'First reply <span class="due" title="Due [^"]+">in \d+h', html)
    assert "<h2>Requester</h2>" in html and " (me)</option>" in html and "Keyboard shortcuts" in html
    # Nothing Japanese but a language's own name in the "Replies in" choice (<option lang="ja">日本語).
    body = re.sub(r'<option value="ja" lang="ja"[^>]*>日本語</option>', "", html.split("<main", 1)[1])
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", body)


def test_presence_and_sent_messages_in_japanese(client, ticket, agent):
    ken = factories.UserFactory(username="ken", role="agent", first_name="Ken", last_name="Ito")
    presence.touch(ticket.pk, ken, composing=True)
    client.force_login(agent)
    html = client.post(f"/tickets/{ticket.number}/presence/", {"version": ticket.version}, **HX, **JA).content.decode()
    assert "Ken Ito さんが返信中" in html and 'title="Ken Ito さんがこのチケットを開いています"' in html
    html = client.post(f"/tickets/{ticket.number}/reply/", {"kind": "note", "body": "確認します", "version": ticket.version},
                       **HX, **JA).content.decode()
    assert "社内メモを追加しました。" in html


def test_a_stale_reply_is_explained_in_japanese(client, ticket, agent):
    client.force_login(agent)
    html = client.get(f"/tickets/{ticket.number}/", **JA).content.decode()
    loaded = re.search(r'name="version" value="(\d+)"', html).group(1)
    seen = re.search(r'name="seen" value="([^"]+)"', html).group(1)
    first = ticket.messages.get()
    actions.receive_message(channel="email", sender="hana@example.jp", subject="Re: Where is my order?",
                            body_text="Any news?", channel_message_id="i18n-2@mail.example",
                            in_reply_to=first.channel_message_id)
    html = client.post(f"/tickets/{ticket.number}/reply/", {"kind": "reply", "body": "On it", "version": loaded,
                                                            "seen": seen}, **HX, **JA).content.decode()
    assert "このチケットは開いた後に更新されました。" in html and "返信は送信されていません。" in html
    assert re.search(r"Hana Sato 様が [^<]+ に書き込みました：「Any news\?」", html)
    assert ">このまま送信</button>" in html


def test_contact_notices_in_japanese(client, ticket, agent):
    client.force_login(agent)
    html = client.post(f"/tickets/contacts/{ticket.requester_id}/link/",
                       {"kind": "phone", "value": "+81 90 1234 5678", "ticket": ticket.number}, **HX, **JA).content.decode()
    with translation.override("ja"):
        kind = str(Identity.Kind.PHONE.label).lower()
    assert f"{kind} +819012345678 を紐付けました。" in html


# --- the pieces in Python ------------------------------------------------------------------------

NOW = dt.datetime(2026, 6, 10, 9, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("delta", "ja", "en"), [
    (dt.timedelta(hours=-2), "2時間超過", "2h late"),
    (dt.timedelta(minutes=-5), "5分超過", "5m late"),
    (dt.timedelta(hours=3), "あと3時間", "in 3h"),
    (dt.timedelta(hours=1, minutes=30), "あと1時間30分", "in 1h 30m"),
    (dt.timedelta(minutes=20), "あと20分", "in 20m"),
    (dt.timedelta(days=3), "あと3日", "in 3d"),
    (dt.timedelta(days=-4), "4日超過", "4d late"),
])
def test_due_texts(delta, ja, en):
    for lang, expected in (("ja", ja), ("en", en)):
        with translation.override(lang), timezone.override(dt.timezone.utc):
            html = str(inbox_ui.due(NOW + delta, NOW))
        assert f">{expected}</span>" in html, (lang, html)


def test_due_title_and_when_use_the_readers_formats():
    value = NOW - dt.timedelta(hours=2)
    today, tomorrow, utc = value.date(), value.date() + dt.timedelta(days=1), dt.timezone.utc
    with translation.override("ja"):
        assert 'title="期限：6月10日 7:00"' in inbox_ui._due_html(value, NOW, utc, today=today)
        assert inbox_ui._when(value, today, utc) == "7:00"  # today: the time alone
        assert inbox_ui._when(value, tomorrow, utc) == "6月10日 7:00"
        assert inbox_ui._when(value, dt.date(2027, 1, 2), utc) == "2026年6月10日 7:00"  # another year: with it
    with translation.override("en"):
        assert 'title="Due Jun 10, 7:00\u202fAM"' in inbox_ui._due_html(value, NOW, utc, today=today)
        assert inbox_ui._when(value, today, utc) == "7:00\u202fAM"
        assert inbox_ui._when(value, tomorrow, utc) == "Jun 10, 7:00\u202fAM"


def test_status_and_priority_badges_use_the_model_labels():
    with translation.override("ja"):
        assert f">{Ticket.Status.SOLVED.label}</span>" in str(inbox_ui.status_badge("solved"))
        assert f">{Ticket.Priority.HIGH.label}</span>" in str(inbox_ui.priority("high"))
    with translation.override("en"):
        assert str(inbox_ui.status_badge("solved")) == '<span class="badge badge-ok status-solved">Solved</span>'
        assert str(inbox_ui.priority("high")) == '<span class="prio prio-high">High</span>'


def test_the_admin_speaks_japanese_too():
    merge_admin = admin_site._registry[ContactMerge]
    with translation.override("ja"):
        assert str(merge_admin.undo_selected.short_description) == "選択した統合を取り消す"
        summary = merge_admin.moved_summary(ContactMerge(moved={"tickets": [1, 2], "messages": [3], "identities": []}))
        assert summary == "チケット2件、メッセージ1件、連絡手段0件"
    with translation.override("en"):
        assert str(merge_admin.undo_selected.short_description) == "Undo the selected merges"


# --- in a browser: what inbox.js writes comes from the page -----------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_bulk_count_and_the_overlay_in_japanese_in_a_browser(monkeypatch, live_server, agent, world):
    from tests.tickets.test_browser_inbox import PASSWORD
    from tests.helpers import watch_csp

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = chromium.new_context(locale="ja-JP", viewport={"width": 1360, "height": 860}).new_page()
            page.set_default_timeout(15_000)
            blocked = watch_csp(page)
            page.on("pageerror", lambda exc: blocked.append(str(exc)))
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=username]", agent.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button.primary")
            page.wait_for_url(f"{live_server.url}/")
            page.goto(f"{live_server.url}/tickets/all/")
            assert page.locator("h1").inner_text() == "すべてのチケット"
            page.locator('tr[data-ticket-url] input[name="ticket"]').first.check()
            assert page.locator("#bulk-count").inner_text() == "1件を選択中"
            page.locator("#select-all").check()
            assert page.locator("#bulk-count").inner_text() == "3件を選択中"
            page.locator("h1").click()
            page.keyboard.press("?")
            assert page.locator("#shortcuts").is_visible()
            assert "キーボードショートカット" in page.locator("#shortcuts").inner_text()
            assert blocked == []
        finally:
            chromium.close()
