"""Import .eml files as inbound email, exactly as the inbound webhook would receive them."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tickets import email_in


class Command(BaseCommand):
    help = "Receive .eml files as inbound customer email (threaded and deduplicated like live mail)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        failed = 0
        for name in files:
            path = Path(name)
            try:
                raw = path.read_bytes()
            except OSError as exc:
                self.stderr.write(f"{name}: {exc.strerror}")
                failed += 1
                continue
            try:
                result = email_in.receive_bytes(raw)
            except ValidationError as exc:
                self.stderr.write(f"{name}: {'; '.join(exc.messages)}")
                failed += 1
                continue
            ticket = result.message.ticket
            if not result.created:
                what = "already stored"
            elif result.ticket_created:
                what = "new ticket"
            else:
                what = "added to ticket"
            self.stdout.write(f"{name}: {what} #{ticket.number} (message {result.message.pk})")
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) not imported")
