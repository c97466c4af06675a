"""The SQL function behind search's indexes for one- and two-character words (console/search.py):
`paydesk_short_grams(text)` is the text's one- and two-character substrings (of its UPPER, as
Django's icontains compares) that hold a non-ASCII character. pg_trgm needs three characters, so
"二重" or "返金" could only be found by scanning; a GIN index on this function finds them exactly
(`paydesk_short_grams(col) @> ARRAY[UPPER('二重')]`). ASCII-only grams are left out: shorter ASCII
text is not searched (it would match nearly everything), which keeps English rows out of the
indexes. PL/pgSQL over the characters as an array (one pass: `substr` on multibyte text walks
from the start each time).

Tickets and payments each index their own columns with it (their migrations 0009); either may
create it (CREATE OR REPLACE), and the last one to drop its indexes drops it. PostgreSQL only.
"""

FUNCTION = "paydesk_short_grams"

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


def create_function(schema_editor) -> None:
    schema_editor.execute(CREATE_FUNCTION)


def drop_function_if_unused(schema_editor) -> None:
    """Drop the function unless the other app's indexes still use it (then it stays, for them)."""
    schema_editor.execute(
        f"DO $$ BEGIN DROP FUNCTION IF EXISTS {FUNCTION}(text); "
        "EXCEPTION WHEN dependent_objects_still_exist THEN NULL; END $$;")
