"""`manage.py assist_classify < messages.jsonl`: one JSON line in per message ({"text": "..."}),
one JSON line out: {"intent", "confidence", "runner_up", "entities"}. A line that carries its
own "intent" is also scored: the accuracy per language is written to standard error at the end,
so any labelled file checks the classifier."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone


class Command(BaseCommand):
    help = "Classify customer messages read as JSON lines on standard input ({\"text\": ...})."

    def handle(self, *args, **options):
        from console.assist.backends import classify
        from console.assist.entities import extract

        now = timezone.now()
        right, seen = Counter(), Counter()
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["text"] if isinstance(row, dict) else None
                if not isinstance(text, str):
                    raise ValueError('each line must be an object with a "text" string')
            except (ValueError, KeyError) as exc:
                self.stdout.write(json.dumps({"line": number, "error": str(exc)}, ensure_ascii=False))
                continue
            reading = classify(text)
            entities = [dataclasses.asdict(e) for e in extract(text, now=now, tz=settings.SHOP_TIME_ZONE)]
            self.stdout.write(json.dumps({"intent": reading.intent, "confidence": round(reading.confidence, 4),
                                          "runner_up": reading.runner_up, "entities": entities},
                                         ensure_ascii=False))
            if isinstance(row.get("intent"), str):
                group = str(row.get("lang") or "all")
                seen[group] += 1
                right[group] += reading.intent == row["intent"]
        for group in sorted(seen):
            self.stderr.write(f"accuracy ({group}): {right[group] / seen[group]:.3f} of {seen[group]}")
