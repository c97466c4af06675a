"""bench/results.json is shared by three benchmarks: each replaces only its own keys."""

from __future__ import annotations

import json

import pytest

from bench.results import merge_write


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_missing_file_is_created(tmp_path):
    path = tmp_path / "results.json"
    merge_write(path, {"inbox": {"first_page_p95_ms": 12.5}})
    assert read(path) == {"inbox": {"first_page_p95_ms": 12.5}}


def test_only_the_writers_key_is_replaced_and_the_others_keep_their_place(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"when": "t0", "intake": {"p95_ms": 40}, "inbox": {"old": 1}, "timeline": {"x": 2}}))
    merge_write(path, {"inbox": {"first_page_p95_ms": 9.0}})
    data = read(path)
    assert data == {"when": "t0", "intake": {"p95_ms": 40}, "inbox": {"first_page_p95_ms": 9.0}, "timeline": {"x": 2}}
    assert list(data) == ["when", "intake", "inbox", "timeline"]
    assert not (tmp_path / "results.json.tmp").exists()


def test_the_mirror_bench_keeps_inbox_and_timeline_and_drops_its_own_stale_keys(tmp_path):
    # `python -m bench --only webhooks` after a full run: the old backfill doesn't stay
    # beside a new "when"; the inbox and timeline figures do.
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"when": "t0", "machine": {}, "intake": 1, "backfill": 2, "inbox": 3, "timeline": 4}))
    owned = ("when", "quick", "machine", "intake", "apply", "end_to_end", "backfill")
    merge_write(path, {"when": "t1", "machine": {"cpus": 2}, "intake": 5, "apply": 6, "end_to_end": 7}, owned=owned)
    assert read(path) == {"when": "t1", "machine": {"cpus": 2}, "intake": 5, "inbox": 3, "timeline": 4,
                          "apply": 6, "end_to_end": 7}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_a_file_that_is_not_a_json_object_is_left_alone(tmp_path, content):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        merge_write(path, {"inbox": {}})
    assert path.read_text() == content
