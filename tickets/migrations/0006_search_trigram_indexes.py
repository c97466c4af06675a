"""Trigram indexes for the top-bar search (console/search.py).

Django's icontains is `UPPER(col::text) LIKE UPPER('%…%')` on PostgreSQL, so the pg_trgm GIN
indexes are on that expression (trigrams ignore case anyway); they serve it, Japanese included,
for queries of three characters or more. PostgreSQL only: on SQLite (the demo) the same queries run
unindexed, so the operations do nothing there and the model state is left untouched.
"""

from django.db import migrations

from common.pg_indexes import KeptTrigramExtension, postgres_indexes

COLUMNS = {
    "message_body_trgm": ("tickets_message", "body_text"),
    "ticket_subject_trgm": ("tickets_ticket", "subject"),
    "contact_name_trgm": ("tickets_contact", "name"),
    "identity_value_trgm": ("tickets_identity", "value"),
}
INDEXES = {name: f'ON "{table}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
           for name, (table, column) in COLUMNS.items()}
create, drop = postgres_indexes(INDEXES)


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0005_message_triage_reply_draft"),
    ]

    operations = [
        KeptTrigramExtension(),  # skipped on databases other than PostgreSQL; kept when reversed
        migrations.RunPython(create, drop, elidable=False),
    ]
