"""What tickets announces. Nothing outside tickets is imported here; console listens."""

from django.dispatch import Signal

# Sent once the creating transaction committed (never inside it). kwargs: ticket (Ticket), actor (User or None).
ticket_created = Signal()

# Sent once the transaction that stored an inbound message (email or LINE) committed.
# kwargs: message (Message), ticket (Ticket), contact (Contact), created_ticket (bool).
message_received = Signal()

# Sent once the transaction that solved a ticket committed. kwargs: ticket (Ticket), actor (User or None).
ticket_solved = Signal()
