"""manage.py stripe_replay: apply stored Stripe events again (failed ones, by id, or by time range)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from payments import selectors, sync
from payments.actions import events as actions
from payments.models import WebhookEvent


def _when(value: str | None, flag: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromtimestamp(sync.parse_day(value), tz=dt.timezone.utc)
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Re-apply stored Stripe events: all failed ones (--failed), given ids (--id), or those created in a "
        "time range (--since/--until). Filters combine. Queued for the workers unless --sync."
    )

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="events whose processing failed")
        parser.add_argument("--id", dest="ids", action="append", default=[], metavar="evt_...", help="an event id (repeatable)")
        parser.add_argument("--since", metavar="ISO", help="events created at or after (YYYY-MM-DD or ISO datetime, UTC if no zone)")
        parser.add_argument("--until", metavar="ISO", help="events created before")
        parser.add_argument("--sync", action="store_true", help="apply here and now instead of queueing")

    def handle(self, *args, failed=False, ids=(), since=None, until=None, sync=False, **options):
        if not (failed or ids or since or until):
            raise CommandError("Say which events: --failed, --id evt_..., --since/--until.")
        since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
        if since_dt and until_dt and since_dt >= until_dt:
            raise CommandError("--since must be before --until.")
        event_ids = selectors.replay_event_ids(failed=failed, ids=list(ids), since=since_dt, until=until_dt)
        missing = sorted(set(ids) - set(event_ids))
        if missing:
            self.stderr.write(f"Not replayed (not stored, ignored type, or outside the filters): {', '.join(missing)}")
        if not event_ids:
            self.stdout.write("No events to replay.")
            return
        # An operator at the shell acts as Paydesk itself (actor None: the system).
        count = actions.replay_events(event_ids, actor=None, enqueue=not sync)
        if not sync:
            self.stdout.write(f"Queued {count} event{'s' if count != 1 else ''} for replay.")
            return
        statuses = Counter(WebhookEvent.objects.filter(id__in=event_ids).values_list("status", flat=True))
        detail = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        self.stdout.write(f"Replayed {count} event{'s' if count != 1 else ''}: {detail}.")
        if statuses.get(WebhookEvent.Status.FAILED):
            raise CommandError(f"{statuses[WebhookEvent.Status.FAILED]} event(s) still failed; see the sync page.")
