"""bench/results.json, shared by the benchmarks: each writes only its own top-level keys.

`python -m bench` owns when, quick, machine, intake, apply, end_to_end and backfill;
`python -m bench.inbox` owns "inbox"; `python -m bench.timeline` owns "timeline";
`python -m bench.workflows` owns "workflows"; `python -m bench.disputes` owns "disputes"; `python -m bench.assist` owns "assist"; `python -m bench.search` owns "search". A writer
reads the file, replaces its keys, keeps everyone else's and renames a temporary file over
it, so a reader never sees half a file and no run wipes another's figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

RESULTS = Path(__file__).resolve().parent / "results.json"


def merge_write(path: Path, updates: dict, owned: Iterable[str] = ()) -> dict:
    """Write `updates` into the JSON object at `path`, keeping every other top-level key.

    Keys in `owned` that `updates` lacks are removed (a writer's figures from an earlier run
    don't outlive the run that replaces them); keys already present keep their place. The
    file is written to `<path>.tmp` beside it and renamed over it. Returns what was written.
    A file that exists but is not a JSON object is left alone (ValueError), never overwritten.
    """
    path = Path(path)
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        current = {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); not overwriting it") from exc
    if not isinstance(current, dict):
        raise ValueError(f"{path} does not hold a JSON object; not overwriting it")
    for key in owned:
        if key not in updates:
            current.pop(key, None)
    current.update(updates)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(current, indent=2, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return current

