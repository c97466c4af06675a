"""Import .eml files as inbound email: each is stored as the inbound webhook stores it, then
processed at once through the same row and action the task uses, so the command can say
what became of it."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tickets import email_in
from tickets.models import InboundEmail


class Command(BaseCommand):
    help = "Receive .eml files as inbound customer email (threaded and deduplicated like live mail)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        not_imported = 0
        for name in files:
            try:
                raw = Path(name).read_bytes()
            except OSError as exc:
                self.stderr.write(f"{name}: {exc.strerror}")
                not_imported += 1
                continue
            arrival = email_in.receive_bytes(raw)
            email = arrival.email
            if email.status == InboundEmail.Status.PROCESSED:
                message = email.message
                if arrival.received is None:
                    what = "already stored"
                elif arrival.received.ticket_created:
                    what = "new ticket"
                else:
                    what = "added to ticket"
                self.stdout.write(f"{name}: {what} #{message.ticket.number} (message {message.pk})")
            else:
                self.stderr.write(f"{name}: {email.get_status_display().lower()}: {email.last_error}")
                not_imported += 1
        if not_imported:
            raise CommandError(f"{not_imported} of {len(files)} file(s) not imported")
