"""Stripe's enum values (a dispute's reason, a refund's status, a decline code) as the
reader's language says them. Stripe sends `fraudulent`; an English reader sees "Fraudulent",
a Japanese reader 「不正利用」. A value this module does not know is shown as Stripe wrote it,
with underscores as spaces: new values from newer API versions still read.

    label("dispute.reason", "fraudulent")
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _, pgettext_lazy

WORDS: dict[str, dict[str, object]] = {
    "dispute.reason": {
        "fraudulent": _("Fraudulent"),
        "product_not_received": _("Product not received"),
        "product_unacceptable": _("Product unacceptable"),
        "duplicate": pgettext_lazy("dispute reason", "Duplicate"),
        "subscription_canceled": _("Subscription canceled"),
        "credit_not_processed": _("Credit not processed"),
        "unrecognized": _("Unrecognized"),
        "general": _("General"),
    },
}


def label(field: str, value: str | None) -> str:
    """The reader's word for Stripe's `value` of `field` ("dispute.reason", "refund.status" ...)."""
    if not value:
        return ""
    known = WORDS.get(field, {}).get(value)
    return str(known) if known is not None else str(value).replace("_", " ")
