"""Indexes Django's model state can't express (expression GIN indexes for search), written as
raw definitions and made by a migration's RunPython on PostgreSQL only: on SQLite (the demo) the
same queries run unindexed, so the operations do nothing there and the model state is untouched.
"""

from __future__ import annotations

from typing import Callable

from django.contrib.postgres.operations import TrigramExtension


def postgres_indexes(indexes: dict[str, str], *, before: Callable | None = None, after: Callable | None = None):
    """The (create, drop) pair for RunPython over `indexes` ({name: 'ON "table" USING …'}):
    `before(schema_editor)` runs ahead of the creation (a function the indexes use), `after`
    once they are dropped."""

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        if before:
            before(schema_editor)
        for name, definition in indexes.items():
            schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" {definition}')

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in indexes:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
        if after:
            after(schema_editor)

    return create, drop



class KeptTrigramExtension(TrigramExtension):
    """pg_trgm, created where missing (on PostgreSQL only, as TrigramExtension) and kept when a
    migration is reversed: tickets' and payments' indexes both use it, and reversing one app's
    must not drop it from under the other's (DROP EXTENSION would refuse, failing the reversal)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass
