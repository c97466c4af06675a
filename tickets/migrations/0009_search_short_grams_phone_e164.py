"""Search for one- and two-character words (console/search.py) and phones stored as E.164.

pg_trgm needs three characters, so "二重" or "返金" could only be found by scanning. Here GIN
indexes of common.short_grams' function on a message's text, a ticket's subject and a contact's
name (the function and why it is shaped so are there). PostgreSQL only: on SQLite (the demo) the
operations do nothing.

Also existing phone identities rewritten to E.164 (tickets.identity.normalise_phone), where that
gives a number no other phone identity already has; the others are left as they were (search
finds both forms).
"""

from django.db import migrations

from common.pg_indexes import postgres_indexes
from common.short_grams import FUNCTION, create_function, drop_function_if_unused

INDEXES = {
    "message_body_grams": f'ON "tickets_message" USING gin ({FUNCTION}("body_text"))',
    "ticket_subject_grams": f'ON "tickets_ticket" USING gin ({FUNCTION}("subject"))',
    "contact_name_grams": f'ON "tickets_contact" USING gin ({FUNCTION}("name"))',
}
create, drop = postgres_indexes(INDEXES, before=create_function, after=drop_function_if_unused)


def phones_to_e164(apps, schema_editor):
    from tickets.identity import normalise_phone

    Identity = apps.get_model("tickets", "Identity")
    taken = set(Identity.objects.filter(kind="phone").values_list("value", flat=True))
    for pk, value in Identity.objects.filter(kind="phone").exclude(value__startswith="+").values_list("pk", "value"):
        try:
            e164 = normalise_phone(value)
        except Exception:  # noqa: BLE001 - a value that no longer reads as a phone stays as it was
            continue
        if e164 != value and e164 not in taken:
            Identity.objects.filter(pk=pk).update(value=e164)
            taken.add(e164)


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0008_macro_teams_usage_ticket_merge"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
        migrations.RunPython(phones_to_e164, migrations.RunPython.noop, elidable=False),
    ]
