"""The labelled messages the assist classifier learns from and is measured on
(console/assist/data/messages.jsonl) stay well-formed: one JSON object a line with exactly the
agreed keys, unique ids, the ten intents each in English and Japanese with enough messages,
a fixed test split of about a fifth of every (intent, language) group, and no repeated text.

Plain file checks: no database, no Django models.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

DATASET = Path(__file__).resolve().parents[2] / "console/assist/data/messages.jsonl"
KEYS = {"id", "text", "intent", "lang", "channel", "split"}
INTENTS = {"refund_request", "charged_after_cancel", "double_charge", "payment_failed", "cancel_subscription",
           "update_payment_method", "refund_status", "dispute_threat", "invoice_request", "other"}
LANGS = ("en", "ja")
MIN_PER_GROUP = 20
MIN_TOTAL = 400
MAX_CHARS = 3000


@lru_cache(maxsize=1)
def raw_lines() -> tuple[str, ...]:
    return tuple(DATASET.read_text(encoding="utf-8").splitlines())


@lru_cache(maxsize=1)
def rows() -> tuple[dict, ...]:
    return tuple(json.loads(line) for line in raw_lines())


def groups() -> dict[tuple[str, str], list[dict]]:
    by_group: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows():
        by_group[(row["intent"], row["lang"])].append(row)
    return by_group


def test_every_line_is_a_json_object_with_exactly_the_keys():
    problems = []
    for number, line in enumerate(raw_lines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON ({error})")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {number}: not an object")
        elif set(row) != KEYS:
            problems.append(f"line {number}: keys {sorted(row)}")
        elif not all(isinstance(value, str) for value in row.values()):
            problems.append(f"line {number}: a value is not a string")
    assert raw_lines(), "the dataset is empty"
    assert problems == []


def test_fields_take_only_their_allowed_values():
    bad = [row["id"] for row in rows()
           if row["lang"] not in LANGS or row["channel"] not in ("email", "line")
           or row["split"] not in ("train", "test")]
    assert bad == []


def test_ids_are_unique_and_name_their_language():
    ids = [row["id"] for row in rows()]
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    assert repeated == []
    malformed = [row["id"] for row in rows() if not re.fullmatch(rf"{row['lang']}-\d{{4}}", row["id"])]
    assert malformed == []


def test_the_intents_are_exactly_the_ten_slugs():
    assert {row["intent"] for row in rows()} == INTENTS


@pytest.mark.parametrize("intent", sorted(INTENTS))
def test_each_intent_has_enough_messages_in_both_languages(intent):
    counts = Counter(row["lang"] for row in rows() if row["intent"] == intent)
    short = {lang: counts[lang] for lang in LANGS if counts[lang] < MIN_PER_GROUP}
    assert short == {}, f"{intent}: fewer than {MIN_PER_GROUP} messages in {short}"


def test_the_set_is_large_enough_and_other_is_the_largest_intent():
    assert len(rows()) >= MIN_TOTAL
    per_intent = Counter(row["intent"] for row in rows())
    assert per_intent.most_common(1)[0][0] == "other", per_intent


def test_every_group_keeps_about_a_fifth_for_test():
    fractions = {}
    for group, members in groups().items():
        tested = sum(1 for row in members if row["split"] == "test")
        fractions[group] = (tested, len(members))
    off = {group: (tested, size) for group, (tested, size) in fractions.items()
           if tested == 0 or tested == size or not 0.15 <= tested / size <= 0.25}
    assert len(fractions) == len(INTENTS) * len(LANGS)
    assert off == {}


def test_no_text_is_repeated_after_whitespace_normalisation():
    seen: dict[str, str] = {}
    repeated = []
    for row in rows():
        key = " ".join(row["text"].split())
        if key in seen:
            repeated.append((seen[key], row["id"]))
        else:
            seen[key] = row["id"]
    assert repeated == []


def test_texts_are_present_and_of_reasonable_length():
    empty = [row["id"] for row in rows() if not row["text"].strip()]
    too_long = [row["id"] for row in rows() if len(row["text"]) >= MAX_CHARS]
    assert empty == []
    assert too_long == []
