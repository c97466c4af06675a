"""One error base for the payments app: everything payments raises on purpose is a PaymentsError.

- EventNotApplicable, InvalidEvent: a stored or delivered Stripe event that can't be used;
- ActionError and its kinds: an action on Stripe that did not happen (or only partly),
  with a `message` written for the person who asked.
"""

from __future__ import annotations


class PaymentsError(Exception):
    """Base of every error payments raises on purpose."""


class InvalidEvent(PaymentsError, ValueError):
    """The body is JSON but not a Stripe event; the message names the field."""


class EventNotApplicable(PaymentsError):
    """A permanent problem with one event: it is marked failed and never blocks others."""


class ActionError(PaymentsError):
    """An action did not happen; `message` is written for the person who asked."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


class ActionRefused(ActionError):
    """Bad input, or the object's state does not allow it. Nothing was sent to Stripe."""


class RefundLimitExceeded(ActionRefused):
    def __init__(self, message: str, *, limit: int, currency: str, already: int = 0):
        super().__init__(message, code="refund_limit")
        self.limit, self.currency, self.already = limit, currency, already


class ActionInProgress(ActionError):
    """The same confirmation (or another refund of the same charge) is being sent right now."""


class StripeActionFailed(ActionError):
    """Stripe answered with an error, or could not be reached."""

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None, transient: bool = False):
        super().__init__(message, code=code)
        self.http_status, self.transient = http_status, transient


class PartiallyCompleted(ActionError):
    """The first step happened (and is mirrored and audited); a later one failed."""

    def __init__(self, message: str, *, done, cause: ActionError):
        super().__init__(message, code="partial")
        self.done, self.cause = done, cause
