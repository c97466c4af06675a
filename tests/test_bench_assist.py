"""bench/assist.py's figures are computed as its --quick run computes them (no timing asserted):
the classifier's quality on the held-back split, per language and intent, and the draft timings
over a customer with a year of mirrored history."""

from __future__ import annotations

import pytest

from bench import assist
from console.assist import classifier


def test_quick_is_a_smaller_run_of_the_same_measures():
    args = assist.parse_args(["--quick"])
    assert args.quick and args.training_rounds == 1 and args.batch < 5000 and args.drafts < 300


def test_quality_is_measured_overall_and_per_language_for_every_intent():
    train, test = classifier.load_dataset("train"), classifier.load_dataset("test")
    q = assist.quality(train, test, classifier.threshold())

    assert q["threshold"] == classifier.threshold()
    for suffix, n in [("", len(test)), ("_en", sum(r["lang"] == "en" for r in test)),
                      ("_ja", sum(r["lang"] == "ja" for r in test))]:
        per_intent = q[f"per_intent{suffix}"]
        assert list(per_intent) == list(classifier.INTENTS)
        assert sum(m["support"] for m in per_intent.values()) == n
        for key in ("accuracy", "macro_f1", "accuracy_top1", "macro_f1_top1", "below_threshold_share"):
            assert 0.0 <= q[f"{key}{suffix}"] <= 1.0
    # Every message read wrong is listed, and the accuracy is what the list leaves.
    assert q["accuracy"] == round(1 - len(q["misread"]) / len(test), 4)
    assert all(m["shown"] != m["intent"] for m in q["misread"])
    # The evaluation reads as the product does: classify_many shows the same intents.
    shown = {m["id"]: m["shown"] for m in q["misread"]}
    product = classifier.classify_many([r["text"] for r in test])
    assert [c.intent for c in product] == [shown.get(r["id"], r["intent"]) for r in test]


@pytest.mark.django_db
def test_the_draft_timings_cover_a_year_of_history_and_every_figure():
    contact_id = assist.mirror_customer()
    assert assist.mirror_customer() == contact_id  # a second run reuses the contact
    t = assist.draft_timings(contact_id, classifier.load_dataset(), iterations=20)

    assert t["draft_iterations"] == 20
    assert t["history_objects"] == {"charges": 41, "refunds": 4, "subscriptions": 2, "invoices": 14, "disputes": 1}
    for key in ("draft_p50_ms", "draft_p95_ms", "history_p50_ms", "history_p95_ms", "link_p95_ms", "write_p95_ms"):
        assert t[key] >= 0
    assert t["draft_facts_mean"] > 0  # the drafts state what the mirror holds
    text = assist.table({**assist.quality(classifier.load_dataset("train"), classifier.load_dataset("test"), 0.25)},
                        {"training_rounds": 1, "training_s": 1.0, "classify_batch": 1000, "classify_batch_s": 0.1,
                         "classify_per_s": 10000.0, "classify_single_n": 10, "classify_single_p50_ms": 0.5,
                         "classify_single_p95_ms": 1.0, **t},
                        {"train_messages": 504, "test_messages": 112, "test_messages_en": 56, "test_messages_ja": 56})
    assert "macro F1" in text and "history alone" in text and "dispute_threat" in text
