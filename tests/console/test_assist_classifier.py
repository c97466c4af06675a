"""The built-in classifier (console/assist/classifier.py) and `manage.py assist_classify`: each
intent in both languages, the threshold, quoted replies and signatures ignored, training
deterministic."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.management import call_command

from console.assist import classifier

# Messages written for these tests (not in the labelled set), one per intent and language.
MESSAGES = [
    ("refund_request", "The kettle arrived with a cracked lid. I'd like my money back please."),
    ("refund_request", "届いたケトルの蓋が割れていました。返金をお願いできますか。"),
    ("charged_after_cancel", "I cancelled my subscription last month, so why did you charge my card again?"),
    ("charged_after_cancel", "先月解約したはずなのに、今月もカードに請求が来ています。"),
    ("double_charge", "My card shows the same order charged twice, two payments of $38."),
    ("double_charge", "同じ注文で2回引き落とされています。二重請求ではないでしょうか。"),
    ("payment_failed", "Checkout keeps saying my card was declined, I can't complete the payment."),
    ("payment_failed", "決済しようとするとカードが通らずエラーになります。"),
    ("cancel_subscription", "Please cancel my coffee subscription, I won't need more deliveries."),
    ("cancel_subscription", "定期便を解約したいです。手続きをお願いします。"),
    ("update_payment_method", "I got a new card, how do I change the card on my account?"),
    ("update_payment_method", "カード情報を新しいカードに変更したいです。"),
    ("refund_status", "You said you refunded me last week but I still don't see the money. Where is my refund?"),
    ("refund_status", "返金の手続きをしていただいたとのことですが、まだ口座に反映されていません。いつ頃になりますか。"),
    ("dispute_threat", "If this isn't sorted today I'm calling my bank to dispute the charge."),
    ("dispute_threat", "対応いただけない場合はカード会社に連絡してチャージバックします。"),
    ("invoice_request", "Could you send me an invoice for my last order for my company's expenses?"),
    ("invoice_request", "前回の注文の領収書を発行していただけますか。宛名は会社名でお願いします。"),
    ("other", "Do you ship to Canada, and how long does delivery usually take?"),
    ("other", "浅煎りと深煎り、どちらが水出しに向いていますか？"),
]


@pytest.mark.parametrize("intent,text", MESSAGES)
def test_each_intent_in_both_languages(intent, text):
    reading = classifier.classify(text)
    assert (reading.intent, reading.source) == (intent, "builtin"), reading


def test_a_quoted_reply_and_a_signature_are_not_the_customers_words():
    text = ("Where is my refund? It's been ten days.\n\nSent from my iPhone\n\n"
            "> On Mon, Nov 30, 2026 at 10:12 Kissa Support wrote:\n> Please cancel your subscription here.")
    assert classifier.customer_words(text) == "where is my refund? it's been ten days."
    assert classifier.classify(text).intent == "refund_status"


def test_under_the_threshold_it_is_other_with_the_best_guess(settings):
    settings.ASSIST_CONFIDENCE_THRESHOLD = 0.99
    reading = classifier.classify("The kettle arrived with a cracked lid. I'd like my money back please.")
    assert reading.intent == "other" and reading.below_threshold and reading.runner_up == "refund_request"
    assert classifier.classify("").intent == "other"  # nothing written: nothing to read


def test_training_is_deterministic():
    rows = classifier.load_dataset("train")
    texts = [r["text"] for r in classifier.load_dataset("test")]
    first, second = classifier.train(rows), classifier.train(rows)
    assert classifier.rank(first, texts) == classifier.rank(second, texts)


def test_the_command_reads_json_lines_and_scores_labelled_ones(monkeypatch):
    lines = [json.dumps({"text": "二重に引き落とされています", "intent": "double_charge", "lang": "ja"},
                        ensure_ascii=False), "not json", json.dumps({"text": "$20 refund please, order KR-10454"})]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    out, err = io.StringIO(), io.StringIO()
    call_command("assist_classify", stdout=out, stderr=err)
    first, bad, third = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["intent"] == "double_charge" and 0 < first["confidence"] <= 1
    assert bad["line"] == 2 and "error" in bad
    assert {"kind": "money", "value": {"amount": 2000, "currency": "usd"}}.items() <= {
        "kind": third["entities"][0]["kind"], "value": third["entities"][0]["value"]}.items()
    assert any(e["kind"] == "order" and e["value"]["number"] == "KR-10454" for e in third["entities"])
    assert "accuracy (ja): 1.000 of 1" in err.getvalue()
