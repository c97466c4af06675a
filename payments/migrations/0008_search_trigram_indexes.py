"""Indexes for the top-bar search (console/search.py): trigram GIN indexes on what a person
types to find a payment or a Stripe customer (a charge's description and metadata, where order
numbers live; a customer's name and email), on `UPPER(…::text)` because that is what Django's
icontains compiles to on PostgreSQL; and btrees on the card's last four digits and the amount, so
every branch of the payments query's OR has an index (a bitmap OR, no sequential scan).

PostgreSQL only: on SQLite (the demo) the same queries run unindexed, so the operations do
nothing there and the model state is left untouched.
"""

from django.db import migrations

from common.pg_indexes import KeptTrigramExtension, postgres_indexes

INDEXES = {
    "charge_description_trgm": 'ON "payments_charge" USING gin ((UPPER("description"::text)) gin_trgm_ops)',
    # The same expressions as KT("data__metadata") and KT("data__…__last4") compile to.
    "charge_metadata_trgm": 'ON "payments_charge" USING gin ((UPPER(("data" ->> \'metadata\')::text)) gin_trgm_ops)',
    "charge_last4": 'ON "payments_charge" (("data" #>> \'{payment_method_details,card,last4}\'))',
    "charge_amount": 'ON "payments_charge" ("amount")',
    "customer_name_trgm": 'ON "payments_customer" USING gin ((UPPER("name"::text)) gin_trgm_ops)',
    "customer_email_trgm": 'ON "payments_customer" USING gin ((UPPER("email"::text)) gin_trgm_ops)',
}
create, drop = postgres_indexes(INDEXES)


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0007_dispute_at_risk_reason"),
    ]

    operations = [
        KeptTrigramExtension(),  # skipped on databases other than PostgreSQL; kept when reversed
        migrations.RunPython(create, drop, elidable=False),
    ]
