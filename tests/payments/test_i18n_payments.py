"""The payments area in Japanese and English: the previews and refusals in money terms, Stripe's
enum words, the mirror pages and the sync page. English is the default and reads as before;
Japanese comes from the compiled catalogue (locale/ja), as a Japanese support team writes it."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe
from django.utils import timezone, translation

from payments import stripe_words
from payments.actions import refunds
from payments.actions.customers import PortalPlan
from payments.actions.stripe_calls import in_english, stripe_call
from payments.actions.subscriptions import CancelPlan
from payments.errors import ActionRefused, RefundLimitExceeded, StripeActionFailed
from payments.stripe_objects import payment_method_label, plan_text
from payments.templatetags.stripe_money import duration
from tests import factories
from tests.console.test_panel import live_charge  # noqa: F401  (a localstripe charge on a contact)
from tests.helpers import sealed
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401
from tests.payments.test_views import failed_event, shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_afterwards():
    """A request with Accept-Language: ja leaves Japanese active in this thread (LocaleMiddleware
    never deactivates it): the tests after these must start in the default language again."""
    yield
    translation.deactivate()


def charge(amount=5000, refunded=0) -> dict:
    """A captured ¥5,000 card payment by Misaki Sato, as Stripe returns it."""
    return {
        "id": "ch_ja0001", "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": refunded,
        "currency": "jpy", "status": "succeeded", "captured": True, "disputed": False, "customer": None,
        "billing_details": {"name": "Misaki Sato"},
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
    }


@pytest.fixture
def boss(db):
    """No refund limit (a superuser): the preview needs no call to Stripe."""
    return factories.UserFactory(username="boss", role="finance", is_superuser=True)


def plan(actor, amount, **kw):
    return refunds.build_refund_plan(charge(**kw), actor=actor, amount=amount, currency="jpy")


# --- the refund preview and its refusals -----------------------------------------------------


def test_refund_preview_reads_naturally_in_japanese(boss):
    with translation.override("ja"):
        said = plan(boss, 2500).describe()
    assert said == (
        "Misaki Sato 様の Visa •••• 4242（支払い ch_ja0001）に ¥5,000 のうち ¥2,500 を返金します。"
        "残りの ¥2,500 は返金されません。"
    )


def test_refund_preview_in_english_is_unchanged(boss):
    with translation.override("en"):
        assert plan(boss, 2500).describe() == (
            "Refund ¥2,500 of ¥5,000 to Misaki Sato's Visa ending 4242 (charge ch_ja0001); ¥2,500 stays captured."
        )
        assert plan(boss, 1500, refunded=1000).describe() == (
            "Refund ¥1,500 of ¥5,000 to Misaki Sato's Visa ending 4242 (charge ch_ja0001); "
            "¥1,000 was refunded before; ¥2,500 stays captured."
        )
        assert plan(boss, None, refunded=1000).describe().endswith(
            "; ¥1,000 was refunded before; the charge is then fully refunded.")


def test_refund_preview_with_an_earlier_refund_and_a_full_refund_in_japanese(boss):
    with translation.override("ja"):
        partial = plan(boss, 1500, refunded=1000).describe()
        full = plan(boss, None, refunded=1000).describe()
    assert partial == (
        "Misaki Sato 様の Visa •••• 4242（支払い ch_ja0001）に ¥5,000 のうち ¥1,500 を返金します。"
        "これまでに ¥1,000 が返金済みです。残りの ¥2,500 は返金されません。"
    )
    assert full.endswith("これまでに ¥1,000 が返金済みです。これでこの支払いは全額返金となります。")


def test_refusal_above_the_remainder_in_japanese_and_english(boss):
    with translation.override("ja"), pytest.raises(ActionRefused) as ja:
        plan(boss, 3000, refunded=2500)
    assert ja.value.message == (
        "¥5,000 のうち返金できるのは残りの ¥2,500 だけです（¥2,500 は返金済み）。¥3,000 はこれを超えています。"
    )
    assert ja.value.code == "above_remainder"
    with translation.override("en"), pytest.raises(ActionRefused) as en:
        plan(boss, 3000, refunded=2500)
    assert en.value.message == (
        "Only ¥2,500 of ¥5,000 can still be refunded (¥2,500 already refunded); ¥3,000 is more than that."
    )


def test_refund_limit_refusal_in_japanese(settings, agent):
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 1000}}
    with translation.override("ja"), pytest.raises(RefundLimitExceeded) as exc:
        refunds.build_refund_plan(charge(), actor=agent, amount=2500, currency="jpy")
    assert exc.value.message == (
        "¥1,000 を超える返金には経理の対応が必要です。#finance で依頼するか、チケットを経理に割り当ててください。"
    )


def test_the_audit_keeps_the_preview_in_english_whoever_reads_japanese(boss):
    refund_plan = plan(boss, 2500)
    with translation.override("ja"):
        kept = in_english(refund_plan.describe)
        shown = refund_plan.describe()
    assert kept.startswith("Refund ¥2,500 of ¥5,000 to Misaki Sato's Visa ending 4242")
    assert shown.startswith("Misaki Sato 様の Visa •••• 4242（")  # said in the language it is read in


def test_stripe_unreachable_in_japanese_says_it_may_have_happened():
    with translation.override("ja"), pytest.raises(StripeActionFailed) as exc:
        with stripe_call(f"支払い {'ch_ja0001'} の ¥2,500 の返金", writes=True):
            raise stripe.APIConnectionError("timeout")
    assert exc.value.message == (
        "支払い ch_ja0001 の ¥2,500 の返金のために Stripe に接続できませんでした（ネットワークエラーまたはタイムアウト）。"
        "Stripe に届いたかどうかはわかりません。同じ確認でもう一度実行しても安全です（二重に実行されることはありません）。"
    )
    assert exc.value.transient


# --- subscription cancel and portal previews ------------------------------------------------


def cancel_plan(**kw) -> CancelPlan:
    end = int(dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc).timestamp())
    return CancelPlan(subscription_id="sub_ja0001", at_period_end=True, period_start=end - 30 * 86400, period_end=end,
                      as_of=end - 10 * 86400, customer_name="Misaki Sato", label="Tea club", currency="jpy",
                      prorata=None, subscription={}, **kw)


def test_cancel_at_period_end_preview_in_japanese_and_english():
    with timezone.override(dt.timezone.utc):
        with translation.override("ja"):
            ja = cancel_plan().describe()
        with translation.override("en"):
            en = cancel_plan().describe()
    assert ja == (
        "Misaki Sato 様のサブスクリプション sub_ja0001（Tea club）を現在の請求期間の終了時（2027年1月15日 9:00）に"
        "解約します。それまでは有効なままで、更新はされません。返金はありません。"
    )
    assert en == (
        "Cancel Misaki Sato's subscription sub_ja0001 (Tea club) at the end of the current period, on "
        "Jan 15, 2027, 9:00\u202fAM: it stays active until then and does not renew. Nothing is refunded."
    )


def test_portal_preview_names_the_language_in_the_readers_language():
    portal = PortalPlan("cus_ja0001", "Misaki Sato", None, "", "", "ja", {})
    with translation.override("ja"):
        ja = portal.describe()
    with translation.override("en"):
        en = portal.describe()
    assert ja.startswith("Misaki Sato 様（cus_ja0001）向けに、ポータルのトップページが開くカスタマーポータルのリンクを日本語で作成します。")
    assert en.startswith("Create a billing-portal link for Misaki Sato (cus_ja0001) that opens on the portal's home page, "
                         "in Japanese.")


def test_plan_and_payment_method_labels_in_japanese():
    with translation.override("ja"):
        assert plan_text("Tea club", 1500, "jpy", "month") == "Tea club（¥1,500/月）"
        assert payment_method_label(charge()) == "Visa •••• 4242"
        assert payment_method_label({"payment_method_details": {"type": "konbini"}}) == "コンビニ決済"
        assert duration(7200) == "2時間"
    with translation.override("en"):
        assert plan_text("Tea club", 1500, "jpy", "month") == "Tea club (¥1,500/month)"
        assert payment_method_label({"payment_method_details": {"type": "konbini"}}) == "konbini account"


# --- Stripe's words ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "en", "ja"), [
    ("dispute.reason", "fraudulent", "Fraudulent", "不正利用"),
    ("dispute.reason", "product_not_received", "Product not received", "商品未着"),
    ("dispute.status", "needs_response", "Needs response", "要対応"),
    ("refund.reason", "requested_by_customer", "Requested by customer", "顧客の依頼"),
    ("refund.status", "succeeded", "Succeeded", "返金済み"),
    ("charge.failure_code", "insufficient_funds", "Insufficient funds", "残高不足"),
    ("charge.failure_code", "card_declined", "Card declined", "カードが拒否されました"),
    ("subscription.status", "past_due", "Past due", "支払い遅延"),
    ("subscription.status", "canceled", "Canceled", "解約済み"),
    ("invoice.billing_reason", "subscription_cycle", "Renewal", "更新"),
    ("early_fraud_warning.fraud_type", "made_with_stolen_card", "Stolen card used", "盗難カードの使用"),
    ("subscription.cancellation_reason", "payment_failed", "Payment failed", "支払い失敗"),
])
def test_stripe_words_in_both_languages(field, value, en, ja):
    with translation.override("en"):
        assert stripe_words.label(field, value) == en
    with translation.override("ja"):
        assert stripe_words.label(field, value) == ja


def test_evidence_deadlines_and_unused_time_count_days_not_weeks():
    from payments.actions.stripe_calls import span
    from payments.templatetags.mirror_ui import _days

    with translation.override("ja"):
        assert (_days(7 * 86400 + 5), span(20 * 86400 + 4 * 3600), span(30 * 86400)) == ("7日", "20日4時間", "30日")
    with translation.override("en"):
        assert (_days(7 * 86400 + 5), span(20 * 86400 + 4 * 3600)) == ("7 days", "20 days 4 hours")


def test_an_unknown_stripe_value_reads_as_stripe_wrote_it():
    with translation.override("ja"):
        assert stripe_words.label("dispute.reason", "brand_new_reason") == "brand new reason"
        assert stripe_words.label("dispute.reason", "") == ""


# --- pages -----------------------------------------------------------------------------------


JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


def test_sync_page_in_japanese(as_user, finance):
    shop()
    failed = failed_event()
    from payments.models import SyncCursor

    now = timezone.now()
    SyncCursor.objects.create(name="backfill:charge", count=1234, started_at=now - dt.timedelta(hours=3),
                              finished_at=now - dt.timedelta(hours=2))
    body = as_user(finance).get("/sync/", **JA).content.decode()
    for japanese in ("同期の状態", "適用の遅延", "配信の遅延", "ステータス別のイベント", "失敗したイベント",
                     "失敗した1件をすべて再実行", "過去データの取り込みと突き合わせ", "2時間前", "処理待ち",
                     "ミラーのオブジェクト", "不正利用の早期警告"):
        assert japanese in body, japanese
    assert failed in body
    assert "<h1>同期の状態</h1>" in body
    for english in ("<h1>Sync health", "Apply lag", "Events by status", "Replay all", "hours ago", "never run",
                    "Mirrored objects"):
        assert english not in body, english


def test_payments_list_and_charge_page_in_japanese(as_user, finance):
    data = shop()
    body = as_user(finance).get("/stripe/payments/", **JA).content.decode()
    for japanese in ("<th class=\"num\">金額</th>", "ステータス", "顧客", "すべてのステータス", "一部返金"):
        assert japanese in body, japanese
    assert "All statuses" not in body and "Partially refunded" not in body
    page = as_user(finance).get(f"/stripe/payments/{data['usd']['id']}/", **JA).content.decode()
    # The payment page (console/views/payment.py) in the same words as the mirror's pages.
    for japanese in ("金額", "返金額", "請求先メールアドレス", "Stripe の元データ", "返金"):
        assert japanese in page, japanese
    assert "Raw Stripe object" not in page and "Billing email" not in page


def test_event_log_in_japanese(as_user, finance):
    shop()
    body = as_user(finance).get("/stripe/events/", **JA).content.decode()
    assert "イベントを検索" in body and "処理待ち" in body and "試行回数" in body
    assert "Search events" not in body and "Attempts" not in body


# --- the refund flow beside a ticket, in Japanese -------------------------------------------


def test_refund_flow_in_japanese_keeps_the_audit_in_english(client, agent, live_charge, gw):  # noqa: F811
    from audit.models import AuditEntry

    contact, charge = live_charge
    ticket = factories.TicketFactory(requester=contact)
    client.force_login(agent)
    base = f"/customers/{contact.pk}/charges/{charge['id']}/refund"
    form = client.get(base + f"?ticket={ticket.pk}", HTTP_HX_REQUEST="true", **JA).content.decode()
    assert "最大 US$50.00 まで返金できます。" in form and "返金内容を確認" in form and "Review refund" not in form
    data = {"token": "a" * 32, "amount": "12.50", "reason": "requested_by_customer", "note": "", "ticket": str(ticket.pk)}
    preview = client.post(base + "/preview", data, HTTP_HX_REQUEST="true", **JA)
    said = preview.content.decode()
    assert f"（支払い {charge['id']}）に US$50.00 のうち US$12.50 を返金します。残りの US$37.50 は返金されません。" in said
    assert "Misaki Sato 様の " in said
    assert "返金の確定" in said and "返金する" in said and "stays captured" not in said
    confirm = client.post(base + "/confirm", {"confirmation": sealed(preview)}, HTTP_HX_REQUEST="true", **JA)
    assert confirm.status_code == 200
    assert "US$12.50 を返金しました（" in confirm.content.decode()
    [audit] = AuditEntry.objects.filter(action="charge.refund", target=charge["id"])
    assert audit.details["description"].startswith("Refund $12.50 of $50.00 to Misaki Sato's ")
