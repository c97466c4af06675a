"""What payments announces. Nothing outside payments is imported here; console listens."""

from django.dispatch import Signal

# Sent inside the applying transaction, once per event, when it is first applied.
# kwargs: event (dict, the Stripe event), obj (dict, the object as now mirrored),
# kind (str, Stripe object type), source ("webhook" | "reconcile" | "replay"),
# changed (bool: False for an event older than the mirror's state, which still happened).
stripe_event_applied = Signal()

# Sent inside the transaction of every action a person or a job takes on payments data,
# so the audit log (console) records it atomically with the change.
# kwargs: actor (User or None), action (str), target (str, a Stripe id or a name),
# details (dict, JSON-safe).
payments_action = Signal()
