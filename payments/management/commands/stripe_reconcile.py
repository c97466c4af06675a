"""manage.py stripe_reconcile: store and apply the events the webhook never delivered."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from payments import stripe_api, sync


class Command(BaseCommand):
    help = "List Stripe events since the last run (at most 30 days back) and apply those the webhook missed."

    def handle(self, *args, **options):
        if not stripe_api.is_configured():
            raise CommandError("STRIPE_API_KEY is not configured: set it (and STRIPE_API_BASE for a test server).")
        result = sync.reconcile()
        self.stdout.write(
            f"Listed {result.listed} events since {sync.format_ts(result.since)}: {result.new} new "
            f"(queued for applying), {result.existing} already stored, {result.unhandled} of types not mirrored."
        )
