"""Workflows: admins automate the routine on Stripe events and tickets (issue 9). Built in
pieces; so far:

- conditions.py: conditions and their validation (money in real units);
- references.py: the dynamic references available at a point, from Stripe's typed shapes and
  the ticket models;
- definition.py: a workflow's JSON (trigger, conditions, steps) and its validation;
- models.py, actions.py: workflows and their versions; save, activate, deactivate, duplicate,
  export and import, audited; `manage.py workflows` for operators;
- engine.py: plan_run, what a definition does with one event (conditions, fetches from the
  mirror, branches, the actions it would take, rendered), without side effects.

Not yet: runs (recorded, exactly once, performing the planned actions), the HTMX editor,
templates, backtests.
"""
