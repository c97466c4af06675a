"""Which reader classifies a message: the built-in classifier always; a language model only
when ASSIST_LLM_API_KEY is set (llm.py), and its answer passes the same checks (an intent from
the list, a confidence between 0 and 1). Should the model fail, the built-in reading stands."""

from __future__ import annotations

import logging

from django.conf import settings

from . import classifier
from .classifier import INTENTS, Classification

log = logging.getLogger(__name__)


def llm_configured() -> bool:
    return bool(getattr(settings, "ASSIST_LLM_API_KEY", ""))


def checked(reading: Classification) -> Classification | None:
    """The model's reading, if it is one Paydesk can use."""
    if reading.intent not in INTENTS or not 0.0 <= reading.confidence <= 1.0:
        return None
    if reading.runner_up and reading.runner_up not in INTENTS:
        return None
    return reading


def classify(text: str) -> Classification:
    builtin = classifier.classify(text)
    if not llm_configured():
        return builtin
    try:
        from . import llm

        reading = checked(llm.classify(text))
    except Exception:  # noqa: BLE001  (the model is optional: its failure must never lose the message's triage)
        log.warning("assist: the language model could not classify a message; the built-in reading stands",
                    exc_info=True)
        return builtin
    if reading is None:
        return builtin
    if reading.confidence < classifier.threshold() and reading.intent != "other":
        return Classification("other", reading.confidence, reading.intent, reading.confidence,
                              below_threshold=True, source=reading.source)
    return reading
