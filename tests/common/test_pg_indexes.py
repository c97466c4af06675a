"""common.pg_indexes and common.short_grams in the search migrations (tickets 0006/0009,
payments 0008/0009): reversing either app's leaves the other's indexes working (pg_trgm and
the short-gram function stay while an index uses them), and migrating forward makes them all."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH_INDEXES = ("%_trgm", "%_grams")


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s OR indexname LIKE %s",
                       list(SEARCH_INDEXES))
        return {row[0] for row in cursor.fetchall()}


def _exists(sql: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return bool(cursor.fetchone()[0])


def test_reversing_one_apps_search_indexes_keeps_the_others_and_forward_restores_all():
    if connection.vendor != "postgresql":
        pytest.skip("the search indexes are PostgreSQL's")
    every = _indexes()
    assert {"message_body_trgm", "message_body_grams", "charge_description_trgm", "charge_metadata_grams"} <= every
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        call_command("migrate", "payments", "0007", verbosity=0)
        left = _indexes()
        assert "message_body_trgm" in left and "message_body_grams" in left
        assert not {i for i in left if i.startswith(("charge_", "customer_"))}
        assert _exists("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
        assert _exists("SELECT count(*) FROM pg_proc WHERE proname = 'paydesk_short_grams'")
        call_command("migrate", "tickets", "0005", verbosity=0)
        assert _indexes() == set()
        assert not _exists("SELECT count(*) FROM pg_proc WHERE proname = 'paydesk_short_grams'")
    finally:
        for app, name in latest:
            call_command("migrate", app, name, verbosity=0)
    assert _indexes() == every
