"""The console in Japanese (console-ui area): the shell, home, the customer page and its panel,
search, the login page, a 404, and the confirm flow's refusals, for a browser that asks for
Japanese (Accept-Language: ja; LocaleMiddleware picks it). English stays the default.

These read the compiled catalogue (locale/ja/LC_MESSAGES/django.mo), which `make test` builds."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from unittest import mock

import pytest
from django.conf import settings
from django.core import signing
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from common.l10n import format_date
from console.confirm import failure
from console.forms import MinorUnitsField
from console.views.login import locked_out
from tests import factories
from tests.helpers import HX, deliver
from tickets import actions as ticket_actions

pytestmark = pytest.mark.django_db
NOW = int(time.time())
JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


@pytest.fixture(autouse=True)
def english_afterwards():
    """A request in Japanese leaves Japanese active on this thread; the next test starts in English."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def shop(agent):
    """A contact whose Stripe customer paid once (partly refunded) and has a subscription."""
    cus = factories.CustomerFactory(email="misaki@example.jp", name="Misaki Sato")
    deliver("customer.created", cus, created=NOW - 9000)
    from tickets.models import Identity

    contact = Identity.objects.get(value=cus["id"]).contact
    charge = factories.ChargeFactory(customer=cus["id"], amount=5000, currency="jpy", amount_refunded=2000)
    deliver("charge.succeeded", charge, created=NOW - 8000)
    return {"cus": cus, "contact": contact, "charge": charge}


def page(client, url, status=200, **headers):
    response = client.get(url, **JA, **headers)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def test_english_stays_the_default(client, agent, shop):
    client.force_login(agent)
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="en">' in html and "Log out" in html and "ログアウト" not in html


def test_home_and_the_shell_in_japanese(client, agent, shop):
    client.force_login(agent)
    html = page(client, reverse("home"))
    assert '<html lang="ja">' in html
    # The shell: navigation, search, the user menu and the role.
    for ja in ("受信箱", "顧客", "支払い", "返金", "サブスクリプション", "異議申し立て", 'aria-label="検索"',
               "ログアウト", "設定（言語、タイムゾーン）", '<span class="role">サポート</span>'):
        assert ja in html, ja
    # The page itself.
    for ja in ("<title>ホーム · Paydesk</title>", "さん、お疲れさまです", "未解決の異議申し立て", "総売上",
               "過去30日間・成功した支払い", "1件の支払い", "返金済み", "最近の支払い", "すべての支払い"):
        assert ja in html, ja
    for en in ("Log out", "Good to see you", "Gross volume", "Recent payments", "Disputes needing a response",
               ">Inbox<", ">agent<"):
        assert en not in html, en


def test_customer_page_and_panel_in_japanese(client, agent, shop):
    client.force_login(agent)
    contact = shop["contact"]
    html = page(client, reverse("customer", args=[contact.pk]))
    for ja in ('<p class="eyebrow">顧客</p>', "Stripe の顧客", "累計支払額", "返金額", "未解決の異議申し立て",
               "有効なサブスクリプション", "リスク", "不正利用の早期警告はありません", "アクティビティ",
               "以前のアクティビティ" if "tl-more" in html else "タイムラインを絞り込む",
               "時刻は UTC で表示", "支払いを確認しています…"):
        assert ja in html, ja
    for en in ("Lifetime paid", "Active subscriptions", "No fraud warnings", "Looking up payments", "Times in"):
        assert en not in html, en

    panel = page(client, reverse("customer_panel", args=[contact.pk]), **HX)
    day = format_date(dt.datetime.fromtimestamp(shop["charge"]["created"], dt.timezone.utc), locale="ja_JP")
    assert day.endswith("日") and "年" in day
    for ja in ("支払いと操作", "最近の支払い", "¥2,000 返金済み", "残り ¥3,000", "サブスクリプションはありません。",
               "返金…", f'<span class="muted cpanel-date">{day}</span>'):
        assert ja in panel, ja
    for en in ("Recent payments", "Refunded ¥", "left<", "No subscriptions.", "Refund…"):
        assert en not in panel, en


def test_search_lists_in_japanese(client, agent, shop):
    ticket_actions.create_contact(actor=agent, name="Misaki Tanaka")
    client.force_login(agent)
    html = page(client, reverse("search") + "?q=Misaki")
    assert "「Misaki」の検索結果" in html and "<title>検索 · Paydesk</title>" in html
    assert "results for “Misaki”" not in html and "顧客" in html


def test_login_page_and_lockout_in_japanese(client):
    html = page(client, reverse("login"))
    for ja in ("<title>ログイン · Paydesk</title>", "コンソールにログイン", "ユーザー名", "パスワード",
               "ショップの Stripe アカウントのサポートコンソールです。"):
        assert ja in html, ja
    assert "Log in to your console" not in html and "Username" not in html
    refused = client.post(reverse("login"), {"username": "nobody", "password": "wrong"}, **JA).content.decode()
    assert "ユーザー名とパスワードが一致しません。もう一度お試しください。" in refused
    assert "didn't match" not in refused

    # django-axes answers a locked-out login with console.views.login.locked_out (429).
    request = RequestFactory().post("/login/", {"username": "nobody"})
    with translation.override("ja"):
        locked = locked_out(request)
    assert locked.status_code == 429
    locked = locked.content.decode()
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"ログイン失敗が多すぎます。{minutes}分後にもう一度お試しいただくか" in locked
    assert "Too many failed logins" not in locked


def test_not_found_in_japanese(client, agent, shop):
    client.force_login(agent)
    html = page(client, f"/customers/{shop['contact'].pk}/timeline/999999", status=404)
    assert "<title>見つかりません · Paydesk</title>" in html and "ページが見つかりません" in html
    assert "この顧客のタイムラインにその項目はありません。Stripe の ID からたどった場合は" in html
    assert "Nothing here" not in html and "No such entry" not in html


def test_forbidden_in_japanese(client, no_role):
    client.force_login(no_role)
    html = page(client, reverse("customer", args=[1]), status=403)
    assert "このページへのアクセス権がありません" in html and "管理者に依頼してください" in html
    assert "You don't have access" not in html


# --- the confirm flow's refusals --------------------------------------------------------------


@pytest.fixture
def refund_url(shop):
    return f"/customers/{shop['contact'].pk}/charges/{shop['charge']['id']}/refund"


def confirmation(user, charge_id, **changes):
    payload = {"user": user.pk, "target": charge_id, "ticket": None, "token": uuid.uuid4().hex,
               "params": {"amount": 1000, "currency": "jpy", "reason": "requested_by_customer", "note": ""}}
    return signing.dumps({**payload, **changes}, salt="paydesk.confirm.refund", compress=True)


def confirm(client, refund_url, value):
    response = client.post(refund_url + "/confirm", {"confirmation": value}, **HX, **JA)
    assert response.status_code == 400
    return response.content.decode()


def test_an_expired_confirmation_is_refused_in_japanese(client, agent, shop, refund_url):
    client.force_login(agent)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 16 * 60):
        old = confirmation(agent, shop["charge"]["id"])
    html = confirm(client, refund_url, old)
    assert "この確認は表示から15分以上経っています。もう一度内容を確認してください。" in html
    assert "more than 15 minutes old" not in html


def test_an_altered_or_foreign_confirmation_is_refused_in_japanese(client, agent, shop, refund_url):
    client.force_login(agent)
    good = confirmation(agent, shop["charge"]["id"])
    altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    html = confirm(client, refund_url, altered)
    assert "この確認は Paydesk が表示したものではありません。" in html and "not one Paydesk showed" not in html
    colleague = factories.UserFactory(username="kenji", role="agent")
    html = confirm(client, refund_url, confirmation(colleague, shop["charge"]["id"]))
    assert "この確認は別の操作のためのものです。" in html and "made for something else" not in html


def test_a_typed_amount_is_refused_in_japanese(client, agent, refund_url):
    client.force_login(agent)
    response = client.post(refund_url + "/preview", {"token": uuid.uuid4().hex, "amount": "abc",
                                                     "reason": "requested_by_customer"}, **HX, **JA)
    assert response.status_code == 400
    html = response.content.decode()
    assert "「abc」は金額として読み取れません。" in html and "is not an amount" not in html


def test_refusal_messages_follow_the_active_language():
    field = MinorUnitsField(currency="jpy")
    with translation.override("ja"):
        for typed, ja in (("1.5", "JPY の金額は小数点以下0桁までです。"), ("0", "返金額は0より大きくしてください。")):
            with pytest.raises(Exception) as refused:
                field.clean(typed)
            assert failure(refused.value) == (400, ja)
    with translation.override("en"):
        with pytest.raises(Exception) as refused:
            field.clean("0")
        assert failure(refused.value) == (400, "The refund amount must be more than zero.")
