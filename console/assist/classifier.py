"""The built-in intent classifier: character n-grams (1–3, within word boundaries, so Japanese
needs no tokenizer) weighted by TF-IDF, and a logistic regression over the ten intents, trained
from the labelled set this project writes (data/messages.jsonl, its "train" split).

Training is deterministic (a fixed solver, no random state involved) and takes about a second:
it happens at first use in each process and is kept. A message whose best intent scores under
the threshold is `other`, with the best guess kept as the runner-up for the agent to see.

    from console.assist.classifier import classify
    classify("解約したのにまた請求されました").intent   # "charged_after_cancel"
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

INTENTS = ("refund_request", "charged_after_cancel", "double_charge", "payment_failed", "cancel_subscription",
           "update_payment_method", "refund_status", "dispute_threat", "invoice_request", "other")
DATASET = Path(__file__).resolve().parent / "data" / "messages.jsonl"
MAX_CHARS = 2000  # a customer's point is in its first lines; a pasted log would only add noise

# Where the customer's own words stop: a quoted earlier message or a signature.
_QUOTE_HEAD = re.compile(
    r"^(?:>|-{2,}\s*original message|-{5,}|on .{4,200} wrote:|.{0,40}\d{4}年\d{1,2}月\d{1,2}日.{0,80}[:：]\s*$"
    r"|from:\s|差出人[:：]|sent from my |iphoneから送信|--\s*$)", re.IGNORECASE)


@dataclass(frozen=True)
class Classification:
    intent: str  # one of INTENTS; "other" under the threshold
    confidence: float  # the probability of `intent` as predicted (of the best guess when under the threshold)
    runner_up: str  # the second best (the best guess when the message fell under the threshold)
    runner_up_confidence: float
    below_threshold: bool = False
    source: str = "builtin"

    def as_dict(self) -> dict:
        return {"intent": self.intent, "confidence": round(self.confidence, 3), "runner_up": self.runner_up,
                "runner_up_confidence": round(self.runner_up_confidence, 3),
                "below_threshold": self.below_threshold, "source": self.source}


def customer_words(text: str) -> str:
    """The part of a message the customer wrote now: before any quoted reply or signature,
    full-width folded (NFKC) and lower-cased."""
    text = unicodedata.normalize("NFKC", text or "")
    kept = []
    for line in text.splitlines():
        if _QUOTE_HEAD.match(line.strip()) and kept:
            break
        kept.append(line)
    words = " ".join(" ".join(kept).split()).lower()
    return words[:MAX_CHARS]


def load_dataset(split: str | None = None) -> list[dict]:
    """The labelled messages (all, or one split: "train" or "test")."""
    rows = []
    with DATASET.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if split is None or row.get("split") == split:
                    rows.append(row)
    return rows


def train(rows: list[dict]):
    """A fitted pipeline for these labelled rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1, lowercase=False),
        LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced", solver="lbfgs"),
    )
    model.fit([customer_words(r["text"]) for r in rows], [r["intent"] for r in rows])
    return model


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    with _lock:  # one training per process, however many threads ask first
        return train(load_dataset("train"))


def threshold() -> float:
    return float(getattr(settings, "ASSIST_CONFIDENCE_THRESHOLD", 0.25))


def rank(model, texts: list[str]) -> list[list[tuple[str, float]]]:
    """Each text's intents, best first, with their probabilities."""
    probabilities = model.predict_proba([customer_words(t) for t in texts])
    classes = list(model.classes_)
    return [sorted(zip(map(str, classes), map(float, row)), key=lambda kv: (-kv[1], kv[0])) for row in probabilities]


def decide(ranked: list[tuple[str, float]], *, limit: float) -> Classification:
    (best, p1), (second, p2) = ranked[0], ranked[1]
    if p1 < limit and best != "other":
        return Classification("other", p1, best, p1, below_threshold=True)
    return Classification(best, p1, second, p2)


def classify(text: str) -> Classification:
    """The message's intent, with a confidence and the runner-up."""
    if not customer_words(text).strip():
        return Classification("other", 1.0, "other", 0.0)
    return decide(rank(_model(), [text])[0], limit=threshold())


def classify_many(texts: list[str]) -> list[Classification]:
    limit = threshold()
    return [decide(r, limit=limit) if customer_words(t).strip() else Classification("other", 1.0, "other", 0.0)
            for t, r in zip(texts, rank(_model(), texts))]
