"""Trigram indexes for the top-bar search (console/search.py).

Django's icontains is `UPPER(col::text) LIKE UPPER('%…%')` on PostgreSQL, so the pg_trgm GIN
indexes are on that expression (trigrams ignore case anyway); they serve it, Japanese included,
for queries of three characters or more. PostgreSQL only: on SQLite (the demo) the same queries run
unindexed, so the operations do nothing there and the model state is left untouched.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "message_body_trgm": ("tickets_message", "body_text"),
    "ticket_subject_trgm": ("tickets_ticket", "subject"),
    "contact_name_trgm": ("tickets_contact", "name"),
    "identity_value_trgm": ("tickets_identity", "value"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                              f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0005_message_triage_reply_draft"),
    ]

    operations = [
        TrigramExtension(),  # skipped by Django on databases other than PostgreSQL
        migrations.RunPython(create, drop, elidable=False),
    ]
