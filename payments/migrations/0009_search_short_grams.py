"""Indexes for one- and two-character words in the top-bar search (console/search.py), as
tickets 0009 has for messages: GIN indexes of common.short_grams' function on a charge's
description and metadata (the same expression KT("data__metadata") compiles to) and a Stripe
customer's name, so "抹茶" finds every payment whose order names it, not only recent ones.
PostgreSQL only: on SQLite (the demo) the operations do nothing.
"""

from django.db import migrations

from common.pg_indexes import postgres_indexes
from common.short_grams import FUNCTION, create_function, drop_function_if_unused

INDEXES = {
    "charge_description_grams": f'ON "payments_charge" USING gin ({FUNCTION}("description"))',
    "charge_metadata_grams": f'ON "payments_charge" USING gin ({FUNCTION}(("data" ->> \'metadata\')))',
    "customer_name_grams": f'ON "payments_customer" USING gin ({FUNCTION}("name"))',
}
create, drop = postgres_indexes(INDEXES, before=create_function, after=drop_function_if_unused)


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0008_search_trigram_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
