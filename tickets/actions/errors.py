"""Every exception tickets defines derives from TicketsError.

Those that refuse what a person asked for (bad input, a closed or changed ticket, an undo
that is no longer safe, nobody to reply to) are ActionErrors, which are also Django
ValidationErrors: forms, views and admin show their messages as they are, and nothing was
written. The others are not a person's mistake and are never shown as a form error: a reply
the channel refused for good (DeliveryFailed), a delivery from a channel that cannot become
a message (Unusable: it stays stored, ignored with that reason), and line.Transient (LINE or
the network had a moment; the task retries).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class TicketsError(Exception):
    """The base of every exception tickets defines."""


class ActionError(TicketsError, ValidationError):
    """Bad input or a state that forbids the action: shown to the person, nothing written.
    A ValidationError too, so forms, views and admin show its messages as they are."""


class TicketClosed(ActionError):
    pass


class StaleTicket(ActionError):
    """The ticket changed since the page that sent this was loaded."""


class UndoRefused(ActionError):
    pass


class NoRecipient(ActionError):
    pass


class AttachmentRefused(ActionError):
    """A file an agent attached cannot go out (its type, its size, what the channel takes):
    the whole reply or note is refused, so nothing is sent without it."""


class DeliveryFailed(TicketsError):
    """A permanent failure to send a reply: the message is marked failed (an agent can retry it)."""


class Unusable(TicketsError):
    """A delivery from a channel that cannot become a message (no usable sender, an event
    Paydesk does not handle): it stays stored and is kept as ignored with this reason."""
