"""The forms of the actions a person confirms in money terms (console.confirm runs them)."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext as _, gettext_lazy, pgettext_lazy

from payments.actions.customers import METADATA_KEY_MAX, METADATA_VALUE_MAX, PORTAL_FLOWS
from payments.actions.refunds import REFUND_REASONS
from payments.actions.subscriptions import CANCEL_FEEDBACK
from payments.money import decimals

from .confirm import ConfirmForm

_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,3})?$")


# Stripe's enums as the person picking one reads them (the values sent stay Stripe's).
REFUND_REASON_LABELS = {
    "requested_by_customer": pgettext_lazy("refund reason", "Requested by customer"),
    "duplicate": pgettext_lazy("refund reason", "Duplicate"),
    "fraudulent": pgettext_lazy("refund reason", "Fraudulent"),
}
assert set(REFUND_REASON_LABELS) == set(REFUND_REASONS)

CANCEL_FEEDBACK_LABELS = {
    "customer_service": pgettext_lazy("cancellation feedback", "Customer service"),
    "low_quality": pgettext_lazy("cancellation feedback", "Low quality"),
    "missing_features": pgettext_lazy("cancellation feedback", "Missing features"),
    "other": pgettext_lazy("cancellation feedback", "Other"),
    "switched_service": pgettext_lazy("cancellation feedback", "Switched service"),
    "too_complex": pgettext_lazy("cancellation feedback", "Too complex"),
    "too_expensive": pgettext_lazy("cancellation feedback", "Too expensive"),
    "unused": pgettext_lazy("cancellation feedback", "Unused"),
}
assert set(CANCEL_FEEDBACK_LABELS) == set(CANCEL_FEEDBACK)


class MinorUnitsField(forms.Field):
    """An amount typed in the currency's major units ("12.50", "2,500", or "２５００" from a
    Japanese keyboard) as whole minor units; blank is None (all that is left). Anything that is
    not a plain positive amount — a sign, an exponent, Infinity, NaN — is a field error."""

    def __init__(self, *, currency: str, **kwargs):
        self.currency = currency
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        # Full-width forms (a Japanese keyboard's ２，５００) read as ASCII; nothing else is folded.
        text = "".join(unicodedata.normalize("NFKC", c) if "\uff00" <= c <= "\uffef" else c for c in str(value or "")[:40])
        text = text.replace(",", "").replace(" ", "").strip()
        if not text:
            return None
        places = decimals(self.currency)
        if not _AMOUNT.match(text):
            raise forms.ValidationError(_("“%(text)s” is not an amount.") % {"text": text[:20]}, code="amount")
        try:
            minor = Decimal(text).scaleb(places)
        except InvalidOperation:
            raise forms.ValidationError(_("“%(text)s” is not an amount.") % {"text": text[:20]},
                                        code="amount") from None
        if minor != minor.to_integral_value():
            raise forms.ValidationError(_("%(currency)s amounts have at most %(places)d decimals.")
                                        % {"currency": self.currency.upper(), "places": places}, code="amount")
        if minor <= 0:
            raise forms.ValidationError(_("The refund amount must be more than zero."), code="amount")
        return int(minor)


class RefundForm(ConfirmForm):
    reason = forms.ChoiceField(label=gettext_lazy("Reason"), initial="requested_by_customer", required=False,
                               choices=[(r, REFUND_REASON_LABELS[r]) for r in REFUND_REASONS])
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=METADATA_VALUE_MAX, strip=True)

    def clean_reason(self):
        return self.cleaned_data["reason"] or "requested_by_customer"

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MinorUnitsField(currency=currency, label=gettext_lazy("Amount"))


class CancelForm(ConfirmForm):
    when = forms.ChoiceField(label=gettext_lazy("When"), choices=[
        ("period_end", gettext_lazy("At the end of the period")), ("now", pgettext_lazy("cancel", "Now"))],
        initial="period_end", required=False)
    refund = forms.BooleanField(label=gettext_lazy("Refund the unused part"), required=False)
    feedback = forms.ChoiceField(label=gettext_lazy("Feedback"), required=False,
                                 choices=[("", "—")] + [(f, CANCEL_FEEDBACK_LABELS[f]) for f in CANCEL_FEEDBACK])
    comment = forms.CharField(label=gettext_lazy("Reason (customer's words)"), required=False, max_length=5000,
                              strip=True)


class _CustomerForm(ConfirmForm):
    """An action on one of the contact's Stripe customers."""

    def __init__(self, *args, customer_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"] = forms.ChoiceField(label=gettext_lazy("Stripe customer"),
                                                    choices=[(c, c) for c in customer_ids],
                                                    initial=customer_ids[0] if customer_ids else "")


class MetadataForm(_CustomerForm):
    key = forms.CharField(label=gettext_lazy("Key"), max_length=METADATA_KEY_MAX, initial="Tier", strip=True)
    value = forms.CharField(label=gettext_lazy("Value"), required=False, max_length=METADATA_VALUE_MAX, strip=True)


PORTAL_FLOW_LABELS = {
    "": gettext_lazy("The portal's home page"),
    "payment_method_update": gettext_lazy("Update the payment method"),
    "subscription_cancel": gettext_lazy("Cancel a subscription"),
    "subscription_update": gettext_lazy("Change a subscription's plan"),
}
assert set(PORTAL_FLOW_LABELS) == {""} | set(PORTAL_FLOWS)


class PortalForm(_CustomerForm):
    flow = forms.ChoiceField(label=gettext_lazy("Opens on"), choices=list(PORTAL_FLOW_LABELS.items()), required=False,
                             initial="payment_method_update")
    coupon = forms.CharField(label=gettext_lazy("Retention coupon"), required=False, max_length=100, strip=True)

    def __init__(self, *args, subscription_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"] = forms.ChoiceField(label=gettext_lazy("Subscription"), required=False,
                                                        choices=[("", "—")] + [(s, s) for s in subscription_ids])
