"""Every write to tickets, contacts and identities: one function per action.

Each action validates its input, checks who may run it, runs in one transaction, writes its
audit row (audit.log.record, in the same transaction) and queues follow-up work (deliveries)
by task name once it commits. Views, admin, tasks and commands call these; none of them
saves a model directly. Functions take model instances or primary keys.

Who may run an action: `actor` is keyword-only everywhere, and every action asks
audit.actors.require, the rule of every app. A person must be signed in, active and hold the
permissions the action names. actor=None is Paydesk itself, allowed only by the actions
Paydesk performs on its own (they pass system=True, and their actor defaults to None):
receive_message and resolve_contact (a channel brought a message), link_identity_to and
disconnect_identity (the Stripe mirror; the shop's contacts API), set_line_following (LINE's
follow and unfollow), set_contact_language and set_line_profile (what LINE, email and Stripe say the customer reads;
an agent's setting it is a person's action), claim_delivery, mark_delivered, mark_delivery_failed (the delivery
task), and intake's storing, claims and marks (the webhooks, the import command, the
tasks), and assist's record_triage and save_reply_draft. Every other action has no default actor and refuses None: opening, changing,
replying, noting, assigning, tagging, merging, unlinking, macros, teams and processing an
email again are done by somebody, who is named in the audit log.

The modules, by kind of write: contacts (contacts, identities, merges), tickets (a ticket's
properties, macros, bulk changes), merges (merging two tickets, and undo), messages (what
customers send, replies, notes, attachments), delivery (sending replies), teams (teams and macros in admin), intake (what
the channels deliver, stored before it is read: LINE events, inbound email). _common and
_rules are what they share. Callers outside this package import from here; modules inside
tickets import from the submodules. Nothing here imports what calls the actions (channels,
tasks, views): follow-up work is queued by task name (tickets.queue).

Errors (errors.py): every exception tickets defines derives from TicketsError. The ones that
refuse what a person asked for are ActionErrors, which stay Django ValidationErrors so forms,
views and admin show their messages; the others (DeliveryFailed, Unusable, line.Transient)
are not a person's mistake and are never shown as a form error.
"""

from ._common import UNSET
from .assist import discard_reply_draft, record_triage, save_reply_draft
from .contacts import (
    LinkResult, contact_merge, create_contact, disconnect_identity, link_identity, link_identity_to, resolve_contact,
    set_contact_language, set_line_following, set_line_profile, undo_merge, unlink_identity, update_contact,
)
from .delivery import claim_delivery, mark_delivered, mark_delivery_failed, retry_delivery
from .errors import (
    ActionError, DeliveryFailed, NoRecipient, StaleTicket, TicketClosed, TicketsError, UndoRefused, Unusable,
)
from .intake import (
    LineDelivery, claim_inbound_email, claim_line_event, finish_inbound_email, finish_line_event,
    record_inbound_email_failure, record_line_event_failure, reprocess_inbound_email, store_inbound_email,
    store_line_events,
)
from .messages import IncomingAttachment, Received, add_note, receive_message, reply
from .merges import merge_tickets, undo_ticket_merge
from .teams import delete_macro, delete_team, save_macro, save_team, set_macro_active
from .tickets import (
    apply_macro, assign, bulk_assign, bulk_set_status, bulk_set_tags, create_ticket, render_macro, set_priority,
    set_status, set_subject, set_tags, sla_times,
)

__all__ = [
    # errors, and the marker for "leave unchanged"
    "TicketsError", "ActionError", "TicketClosed", "StaleTicket", "UndoRefused", "NoRecipient", "DeliveryFailed",
    "Unusable", "UNSET",
    # contacts
    "LinkResult", "resolve_contact", "create_contact", "update_contact", "link_identity", "link_identity_to",
    "unlink_identity", "disconnect_identity", "contact_merge", "undo_merge", "set_line_following",
    "set_contact_language", "set_line_profile",
    # tickets
    "create_ticket", "set_status", "set_priority", "set_subject", "assign", "set_tags", "render_macro",
    "apply_macro", "bulk_assign", "bulk_set_tags", "bulk_set_status", "sla_times",
    # ticket merges
    "merge_tickets", "undo_ticket_merge",
    # messages
    "IncomingAttachment", "Received", "receive_message", "reply", "add_note",
    # delivery
    "claim_delivery", "mark_delivered", "mark_delivery_failed", "retry_delivery",
    # teams and macros
    "save_team", "delete_team", "save_macro", "delete_macro", "set_macro_active",
    # what the channels delivered, stored first
    "LineDelivery", "store_line_events", "claim_line_event", "finish_line_event", "record_line_event_failure",
    "store_inbound_email", "claim_inbound_email", "finish_inbound_email", "record_inbound_email_failure",
    "reprocess_inbound_email",
    # what Paydesk understood of a message, and its drafts (console/assist)
    "record_triage", "save_reply_draft", "discard_reply_draft",
]
