from django.core.management.base import BaseCommand

from console import timeline


class Command(BaseCommand):
    help = "Rebuild the customer timeline from the Stripe event log and mirror, tickets, messages and the audit log."

    def add_arguments(self, parser):
        parser.add_argument("--clear", action="store_true", help="delete every entry first")

    def handle(self, *args, clear=False, **options):
        counts = timeline.rebuild(clear=clear)
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()) or "nothing to rebuild")
