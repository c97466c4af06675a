"""Every write to tickets, contacts and identities: one function per action.

Each action validates its input, checks the actor's permission (actor=None is the system:
an inbound channel, a workflow, an integration), runs in one transaction, announces itself
in the audit log (audit.log.record, in the same transaction) and queues follow-up work
(deliveries) by task name once it commits. Views, admin, tasks and commands call these; none
of them saves a model directly. Functions take model instances or primary keys.

The modules, by kind of write: contacts (contacts, identities, merges), tickets (a ticket's
properties, macros, bulk changes), messages (what customers send, replies, notes,
attachments), delivery (sending replies), teams (teams and macros in admin). _common and
_rules are what they share. Callers outside this package import from here; modules inside
tickets import from the submodules.

Errors (errors.py): every exception tickets defines derives from TicketsError. The ones that
refuse what a person asked for are ActionErrors, which stay Django ValidationErrors so forms,
views and admin show their messages; the others (DeliveryFailed, the channels' own) are not
a person's mistake and are never shown as a form error.
"""

from ._common import UNSET
from .contacts import (
    LinkResult, contact_merge, create_contact, link_identity, link_identity_to, resolve_contact, undo_merge,
    unlink_identity, update_contact,
)
from .delivery import claim_delivery, mark_delivered, mark_delivery_failed, retry_delivery
from .errors import ActionError, DeliveryFailed, NoRecipient, StaleTicket, TicketClosed, TicketsError, UndoRefused
from .messages import IncomingAttachment, Received, add_note, receive_message, reply
from .teams import delete_macro, delete_team, save_macro, save_team
from .tickets import (
    apply_macro, assign, bulk_assign, bulk_set_status, bulk_set_tags, create_ticket, render_macro, set_priority,
    set_status, set_subject, set_tags, sla_times,
)

__all__ = [
    # errors, and the marker for "leave unchanged"
    "TicketsError", "ActionError", "TicketClosed", "StaleTicket", "UndoRefused", "NoRecipient", "DeliveryFailed", "UNSET",
    # contacts
    "LinkResult", "resolve_contact", "create_contact", "update_contact", "link_identity", "link_identity_to",
    "unlink_identity", "contact_merge", "undo_merge",
    # tickets
    "create_ticket", "set_status", "set_priority", "set_subject", "assign", "set_tags", "render_macro",
    "apply_macro", "bulk_assign", "bulk_set_tags", "bulk_set_status", "sla_times",
    # messages
    "IncomingAttachment", "Received", "receive_message", "reply", "add_note",
    # delivery
    "claim_delivery", "mark_delivered", "mark_delivery_failed", "retry_delivery",
    # teams and macros
    "save_team", "delete_team", "save_macro", "delete_macro",
]
