"""The timeline speaks its reader's language: one row, written once in a worker with no
reader, reads in Japanese to a Japanese agent and in English to an English one. Needs the
compiled catalogue (`make test` / /work/i18n/build.sh compile it)."""

import datetime as dt
import re
import time

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from audit.log import record
from audit.models import AuditAction
from console import timeline
from console.models import TimelineEntry
from console.templatetags.timeline_ui import day_label, entry_brief, timeline_rows
from tests import factories
from tests.helpers import committed, deliver
from tickets import actions as ticket_actions

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def story(agent):
    """A refund, a dispute opened as fraudulent, a failed invoice, a subscription set to
    cancel, a ticket and an agent's refund: on one customer's timeline."""
    cus = factories.CustomerFactory(name="Misaki Sato", email="misaki@example.jp")
    deliver("customer.created", cus, created=NOW - 9000)
    from tickets.models import Identity

    contact = Identity.objects.get(kind="stripe_customer", value=cus["id"]).contact
    ch = factories.ChargeFactory(customer=cus["id"], amount=5000, currency="jpy", created=NOW - 8000)
    deliver("charge.succeeded", ch, created=NOW - 8000)
    refund = factories.RefundFactory(charge=ch["id"], amount=2500, currency="jpy", created=NOW - 7000)
    deliver("refund.created", refund, created=NOW - 7000)
    dp = factories.DisputeFactory(charge=ch["id"], amount=5000, currency="jpy", reason="fraudulent", created=NOW - 6000)
    deliver("charge.dispute.created", dp, created=NOW - 6000)
    sub = factories.SubscriptionFactory(customer=cus["id"], created=NOW - 5000)
    deliver("customer.subscription.created", sub, created=NOW - 5000)
    deliver("customer.subscription.updated", {**sub, "cancel_at_period_end": True, "cancel_at": NOW + 20 * 86400},
            created=NOW - 4000,
            previous_attributes={"cancel_at_period_end": False})
    inv = factories.InvoiceFactory(customer=cus["id"], subscription=sub["id"], number="INV-0042", created=NOW - 3000)
    deliver("invoice.payment_failed", {**inv, "status": "open", "attempt_count": 2,
                                       "next_payment_attempt": NOW + 3 * 86400}, created=NOW - 3000)
    with committed():
        ticket = ticket_actions.create_ticket(actor=agent, requester=contact, subject="缶が潰れていました")
        record(actor=agent, action=AuditAction.CHARGE_REFUND, target=ch["id"], amount=2500, currency="jpy")
    entries = list(TimelineEntry.objects.filter(contact=contact))
    return contact, ticket, entries


def render(entries, contact, language):
    with translation.override(language):
        return str(timeline_rows(entries, contact.pk))


def text(html):
    return re.sub(r"<[^>]+>", " ", html)


def test_the_same_rows_in_japanese_for_a_japanese_reader(story, agent):
    contact, ticket, entries = story
    html = render(entries, contact, "ja")
    for words in ("返金", "異議申し立て発生", "請求書 INV-0042 の支払い失敗", "2回目の試行、次回の再試行：",
                  "サブスクリプション変更", "期間終了時に解約（", f"チケット #{ticket.number}：缶が潰れていました",
                  "返金を実行", "agent が実行", "¥2,500", "読み込み中…", "今日"):
        assert words in html, words
    # (Stripe's own words, a refund's reason, come from payments.stripe_words and are not checked here.)
    shown = text(html)
    for english in ("Dispute opened", "Refund issued", "Invoice INV-0042", "Attempt", "Set to cancel", "Ticket #",
                    "by agent", "Loading", "Today", "Subscription changed", "\u202fAM", "\u202fPM"):
        assert english not in shown, english


def test_the_same_rows_in_english_for_an_english_reader(story):
    contact, ticket, entries = story
    html = render(entries, contact, "en")
    for words in ("Refund", "Dispute opened", "Invoice INV-0042 payment failed", "Attempt 2, next try",
                  "Set to cancel at period end (", f"Ticket #{ticket.number}: 缶が潰れていました",
                  "Refund issued", "by agent", "Loading…", "Today"):
        assert words in html, words
    assert not re.search(r"[\u3040-\u30ff]", text(html).replace("缶が潰れていました", ""))


def test_what_the_row_keeps_is_english_and_the_words_to_say_it_again(story):
    _, ticket, entries = story
    failed = next(e for e in entries if e.kind == "invoice_failed")
    assert failed.title == "Invoice INV-0042 payment failed" and failed.summary.startswith("Attempt 2, next try ")
    assert failed.data["say"]["title"] == ["invoice_failed", {"number": "INV-0042"}]
    opened = next(e for e in entries if e.kind == "dispute_opened")
    assert opened.data["say"]["summary"] == [["word", {"field": "dispute.reason", "value": "fraudulent"}]]
    # Whatever language wrote the row (a Japanese agent's request), the stored words are English.
    with translation.override("ja"):
        row = timeline.ticket_entry(ticket)
    assert row["title"] == f"Ticket #{ticket.number}: 缶が潰れていました"


def test_titles_and_summaries_one_by_one(story):
    _, _, entries = story
    by_kind = {e.kind: e for e in entries}
    with translation.override("ja"):
        assert timeline.entry_title(by_kind["refund"]) == "返金"
        assert timeline.entry_title(by_kind["subscription_changed"]) == "サブスクリプション変更"
        assert timeline.entry_summary(by_kind["subscription_changed"]).startswith("期間終了時に解約（")
        assert timeline.entry_title(by_kind["action"]) == "返金を実行"
        assert timeline.entry_summary(by_kind["invoice_failed"]).startswith("2回目の試行、次回の再試行：")
        # Dates in summaries are the reader's: 2026年12月6日, not 2026-12-06.
        assert "年" in timeline.entry_summary(by_kind["invoice_failed"])
    with translation.override("en"):
        assert timeline.entry_title(by_kind["dispute_opened"]) == "Dispute opened"
        assert timeline.entry_title(by_kind["action"]) == "Refund issued"


def test_ticket_status_and_cancellation_actions(story, agent):
    contact, ticket, _ = story
    with committed():
        ticket_actions.set_status(actor=agent, ticket=ticket, status="solved")
        record(actor=agent, action=AuditAction.SUBSCRIPTION_CANCEL, target=f"ticket:{ticket.number}", at_period_end=True)
    titles = {}
    for language in ("ja", "en"):
        with translation.override(language):
            titles[language] = {timeline.entry_title(e) for e in TimelineEntry.objects.filter(contact=contact, kind="action")}
    assert {f"チケット #{ticket.number} を解決済みに変更", "期間終了時に解約", "返金を実行"} <= titles["ja"]
    assert {f"Ticket #{ticket.number} solved", "Cancellation at period end", "Refund issued"} <= titles["en"]


def test_day_headings():
    today = dt.date(2026, 12, 10)
    with translation.override("ja"):
        assert day_label(today, today) == "今日"
        assert day_label(dt.date(2026, 12, 9), today) == "昨日"
        assert day_label(dt.date(2026, 12, 3), today) == "12月3日(木)"
        assert day_label(dt.date(2025, 12, 3), today) == "2025年12月3日(水)"
    with translation.override("en"):
        assert day_label(today, today) == "Today"
        assert day_label(dt.date(2026, 12, 9), today) == "Yesterday"
        assert day_label(dt.date(2026, 12, 3), today) == "Thu, Dec 3"


def test_an_old_row_without_the_new_data_keeps_its_stored_words(story):
    contact, _, _ = story
    old = TimelineEntry.objects.create(contact=contact, occurred_at=timezone.now(), kind="refund", source="old:1",
                                       title="Refund from before", summary="requested by customer", data={})
    for language in ("ja", "en"):
        html = render([old], contact, language)
        assert "Refund from before" in html and "requested by customer" in html
    # A key this version does not know falls back the same way.
    odd = TimelineEntry.objects.create(contact=contact, occurred_at=timezone.now(), kind="refund", source="old:2",
                                       title="Stored", data={"say": {"title": ["nope", {}], "summary": [["nope", {}]]}})
    with translation.override("ja"):
        assert timeline.entry_title(odd) == "Stored"


def test_rebuild_fills_the_words_of_old_rows(story):
    contact, ticket, _ = story
    TimelineEntry.objects.filter(contact=contact).update(data={})
    from django.core.management import call_command

    call_command("timeline_rebuild")
    entry = TimelineEntry.objects.get(kind="ticket", contact=contact)
    with translation.override("ja"):
        assert timeline.entry_title(entry) == f"チケット #{ticket.number}：缶が潰れていました"


def test_the_panels_recent_activity_in_japanese(story):
    _, _, entries = story
    action = next(e for e in entries if e.kind == "action")
    with translation.override("ja"):
        html = str(entry_brief(action))
    assert "返金を実行" in html and "agent が実行" in html and "by" not in text(html)


def test_filter_chips_and_kind_labels(story):
    with translation.override("ja"):
        assert [str(label) for label, _ in timeline.FILTERS.values()][:3] == ["支払い", "返金", "異議申し立て"]
        assert str(TimelineEntry.Kind.DISPUTE_OPENED.label) == "異議申し立て発生"
        assert str(AuditAction.CHARGE_REFUND.label) == "返金を実行"


def test_entry_detail_in_japanese(client, agent, story):
    contact, ticket, entries = story
    client.force_login(agent)
    ticket_entry = next(e for e in entries if e.kind == "ticket")
    html = client.get(reverse("timeline_entry", args=[contact.pk, ticket_entry.pk]),
                      HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert f"チケット #{ticket.number} を開く" in html and "Open ticket" not in html
    action = next(e for e in entries if e.kind == "action")
    html = client.get(reverse("timeline_entry", args=[contact.pk, action.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert " に " in html and "年" in html and " on " not in html
    payment = next(e for e in entries if e.kind == "payment_succeeded")
    html = client.get(reverse("timeline_entry", args=[contact.pk, payment.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "請求の理由" in html and "Why was I charged?" not in html


def test_audit_refusals_in_the_readers_language(no_role):
    from django.core.exceptions import PermissionDenied

    from audit.actors import require

    with translation.override("ja"), pytest.raises(PermissionDenied, match="あなたのロールでは"):
        require(no_role, "payments.refund_charge", doing="refund charges")


def test_a_plan_is_said_in_the_readers_language(agent):
    """The plan on "Subscription started" is kept as facts, not as one language's label."""
    cus = factories.CustomerFactory(name="Misaki Sato")
    deliver("customer.created", cus, created=NOW - 900)
    price = factories.RESOURCES["price"] | {"id": "price_tea", "unit_amount": 1500, "currency": "jpy",
                                            "recurring": {"interval": "month"}, "product": {"id": "prod_tea", "name": "Tea club"}}
    sub = factories.SubscriptionFactory(customer=cus["id"], items={"object": "list", "data": [
        {"id": "si_tea", "price": price, "quantity": 1}]})
    with translation.override("ja"):  # a Japanese agent's request writes the row: it keeps no Japanese
        deliver("customer.subscription.created", sub, created=NOW - 800)
    entry = TimelineEntry.objects.get(kind="subscription_started")
    assert entry.summary == "Tea club (¥1,500/month)"
    with translation.override("ja"):
        assert timeline.entry_summary(entry) == "Tea club（¥1,500/月）"
    with translation.override("en"):
        assert timeline.entry_summary(entry) == "Tea club (¥1,500/month)"
