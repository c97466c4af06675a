"""Who may run an action: the one rule every action in every app follows.

`actor` is keyword-only everywhere. A person (or, later, a workflow's named service user)
must be signed in and hold every permission the action names. `actor=None` is Paydesk
itself (an inbound channel, the mirror, a Celery task): it is allowed only by the actions
that Paydesk itself performs, which say so with `system=True`; anywhere else None is
refused like a person without the permission. The audit log records None as "system".
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _


def require(actor, *perms: str, doing: str, system: bool = False) -> None:
    """Raise PermissionDenied (with a sentence for the person) unless `actor` may do it.
    `doing` is a verb phrase ("refund charges"); callers mark it with gettext_lazy so the
    sentence reads in the person's language."""
    if actor is None:
        if system:
            return
        raise PermissionDenied(_("Paydesk doesn't %(doing)s on its own: a person or a workflow must.")
                               % {"doing": doing})
    if not getattr(actor, "is_authenticated", False) or not getattr(actor, "is_active", True):
        raise PermissionDenied(_("Sign in to %(doing)s.") % {"doing": doing})
    if not actor.has_perms(perms):
        raise PermissionDenied(_("Your role can't %(doing)s.") % {"doing": doing})
