"""Paydesk benchmarks: `make bench` (python -m bench). They measure and print; they assert nothing.

- intake: signed events posted over loopback HTTP to gunicorn (2 workers) by a separate
  load generator (wrk, 16 connections): accepted events/s, p50/p95 latency;
- apply: the queue drained by 2 Celery worker processes on Redis: events/s;
- end to end: events posted while the workers run, until every one is applied: events/s;
- backfill apply: pre-fetched pages of 100 objects through payments.mirror.upsert_fetched.

Each figure comes with the CPU time per event or object of the processes involved (from
/proc), which says more than a rate on a machine shared with other work. Other benchmarks in
this folder run on their own: `python -m bench.inbox`, `python -m bench.timeline`,
`python -m bench.screenshots`. The first three share bench/results.json, each replacing only
its own top-level keys (bench/results.py).
"""
