"""The demo's database is SQLite, and localstripe ignores idempotency keys: a double click
still refunds once and a per-charge limit still holds there (payments.actions.stripe_calls.hold
is a unique row, not a PostgreSQL advisory lock). Runs in its own process on a fresh SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_double_click_refunds_once_and_two_tabs_cannot_pass_the_limit_on_sqlite(localstripe_server, tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}", "DEBUG": "1",
           "CELERY_BROKER_URL": "", "CACHE_URL": ""}
    localstripe_server.flush()
    done = subprocess.run([sys.executable, "-m", "tests.payments.sqlite_double_submit", localstripe_server.url],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # The same confirmation twice at once: one refund; the other was told it is in progress, or replayed.
    assert outcome["double_click"] in (["ActionInProgress", "refunded"], ["refunded", "replayed"])
    # Two confirmations of ¥6,000 against a ¥10,000 limit per charge: one passes.
    assert outcome["two_tabs"] == ["RefundLimitExceeded", "refunded"]
    assert outcome["refunds"] == [1000, 6000]
