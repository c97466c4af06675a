"""What payments announces. Nothing outside payments is imported here; console listens."""

from django.dispatch import Signal

# Sent once per event after the transaction that first applied it committed (never inside
# it: a listener's failure can't undo a mirror write), from payments.actions.events.announce_event,
# with send_robust: each listener's error is kept on the event and the announcement is
# retried, so listeners must be idempotent; one that writes more than one statement keeps
# them in its own atomic block (a savepoint inside the announcement's transaction).
# kwargs: event (dict, the Stripe event), obj (dict, the object as now mirrored, with
# "deleted": True when Stripe deleted it), kind (str, Stripe object type), source
# ("webhook" | "reconcile").
stripe_event_applied = Signal()
