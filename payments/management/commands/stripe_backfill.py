"""manage.py stripe_backfill: list what Stripe has into the mirror, resumably."""

from __future__ import annotations

import shutil

from django.core.management.base import BaseCommand, CommandError

from payments import stripe_api, sync
from payments.mirror import KINDS


class ProgressBars:
    """One tqdm bar per resource: objects so far and their rate."""

    def __init__(self, stream):
        self.stream = stream
        self.bars: dict = {}

    def __call__(self, stage: str, result: sync.BackfillResult) -> None:
        from tqdm import tqdm

        if stage == "start":
            size = shutil.get_terminal_size((100, 24))
            self.bars[result.resource] = tqdm(
                desc=f"{result.resource:<26}",
                unit=" obj",
                initial=result.total,
                file=self.stream,
                # A terminal that reports no size (a bare pty, CI) would hide the bar.
                ncols=size.columns,
                nrows=size.lines,
            )
        elif stage == "page":
            self.bars[result.resource].update(result.last_page)
        elif stage == "done":
            bar = self.bars.pop(result.resource)
            if result.status != "ok":
                bar.set_postfix_str(result.status, refresh=False)
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def summary(results: dict[str, sync.BackfillResult]) -> list[str]:
    lines = [f"{'resource':<26} {'objects':>8} {'pages':>6} {'seconds':>8} {'obj/s':>9}  status"]
    for r in results.values():
        if r.skipped:
            status = f"skipped: {r.skipped}"
        elif r.error:
            status = f"error: {r.error}"
        else:
            status = "ok"
            if r.resumed_from:
                status += f" (resumed after {r.resumed_from}; {r.total} in the whole run)"
            if r.rate_limited or r.retries:
                status += f" ({r.rate_limited} rate-limit waits, {r.retries} retries)"
        lines.append(f"{r.resource:<26} {r.count:>8} {r.pages:>6} {r.seconds:>8.2f} {r.rate:>9.1f}  {status}")
    total = sum(r.count for r in results.values())
    seconds = sum(r.seconds for r in results.values())
    lines.append(f"{'total':<26} {total:>8} {'':>6} {seconds:>8.2f} {total / seconds if seconds else 0:>9.1f}")
    return lines


class Command(BaseCommand):
    help = (
        "List every mirrored Stripe resource (or the given ones) with limit=100 and upsert it into the "
        "mirror. An interrupted run resumes from its checkpoint; 429s are waited out."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--resource",
            dest="resources",
            action="extend",
            nargs="+",
            metavar="NAME",
            help=f"resource(s) to list (default: all): {', '.join(KINDS)}",
        )
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="only objects created on or after this day (UTC)")
        parser.add_argument("--task", action="store_true", help="queue the backfill as a Celery task instead")

    def handle(self, *args, resources=None, since=None, task=False, **options):
        try:
            kinds = sync.resolve_kinds(resources)
            since_ts = sync.parse_day(since) if since else None
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        names = [k.object for k in kinds] if resources else None
        if task:
            from payments.tasks import backfill_task

            queued = backfill_task.delay(names, since=since_ts)
            self.stdout.write(f"Queued backfill task {queued.id} for {', '.join(names or ['all resources'])}.")
            return
        if not stripe_api.is_configured():
            raise CommandError("STRIPE_API_KEY is not configured: set it (and STRIPE_API_BASE for a test server).")

        bars = ProgressBars(getattr(self.stdout, "_out", self.stdout)) if self.stdout.isatty() else None
        try:
            results = sync.backfill(names, since=since_ts, progress=bars)
        except KeyboardInterrupt:
            raise CommandError("Interrupted. Run the same command again to resume from the checkpoint.", returncode=130)
        finally:
            if bars:
                bars.close()
        for line in summary(results):
            self.stdout.write(line)
        failed = [r.resource for r in results.values() if r.error]
        if failed:
            raise CommandError(f"Backfill failed for {', '.join(failed)}; run again to resume.")
