"""What tickets announces. Nothing outside tickets is imported here; console listens."""

from django.dispatch import Signal

# Sent inside the creating transaction. kwargs: ticket (Ticket), actor (User or None).
ticket_created = Signal()

# Sent inside the transaction that stored an inbound message (email or LINE).
# kwargs: message (Message), ticket (Ticket), contact (Contact), created_ticket (bool).
message_received = Signal()

# Sent inside the transaction of every tickets action, so the audit log (console) records
# it atomically with the change. kwargs: actor (User or None), action (str, e.g.
# "ticket.reply"), target (str, e.g. "ticket:1042" or "contact:7"), details (dict, JSON-safe).
tickets_action = Signal()
