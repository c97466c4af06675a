"""Search for one- and two-character words (console/search.py) and phones stored as E.164.

pg_trgm needs three characters, so "二重" or "返金" could only be found by scanning. Here a GIN
index on `paydesk_short_grams(column)`: the column's one- and two-character substrings (of its
UPPER, as Django's icontains compares) that hold a non-ASCII character. Shorter ASCII text is not
searched (it would match nearly everything), so ASCII-only grams are left out, which keeps English
rows out of the index. The query is `paydesk_short_grams(col) @> ARRAY[UPPER('二重')]`: exact, not a
candidate list. PL/pgSQL over the characters as an array (one pass: `substr` on multibyte text walks
from the start each time). PostgreSQL only: on SQLite (the demo) the operations do nothing.

Also existing phone identities rewritten to E.164 (tickets.identity.normalise_phone), where that
gives a number no other phone identity already has; the others are left as they were (search
finds both forms).
"""

from django.db import migrations

FUNCTION = "paydesk_short_grams"

INDEXES = {
    "message_body_grams": ("tickets_message", "body_text"),
    "ticket_subject_grams": ("tickets_ticket", "subject"),
    "contact_name_grams": ("tickets_contact", "name"),
}

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(value text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  u text := upper(value);
  chars text[];
  n int;
  grams text[] := '{{}}';
BEGIN
  IF octet_length(u) = char_length(u) THEN
    RETURN grams;  -- all ASCII: nothing a short search looks for
  END IF;
  chars := string_to_array(u, NULL);
  n := coalesce(array_length(chars, 1), 0);
  FOR i IN 1..n LOOP
    IF octet_length(chars[i]) > 1 THEN
      grams := grams || chars[i];
    END IF;
    IF i < n AND (octet_length(chars[i]) > 1 OR octet_length(chars[i + 1]) > 1) THEN
      grams := grams || (chars[i] || chars[i + 1]);
    END IF;
  END LOOP;
  RETURN grams;
END
$$;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ({FUNCTION}("{column}"))')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text)")


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
