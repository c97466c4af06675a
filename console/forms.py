"""The forms of the actions a person confirms in money terms (console.confirm runs them)."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django import forms

from payments.actions.customers import METADATA_KEY_MAX, METADATA_VALUE_MAX, PORTAL_FLOWS
from payments.actions.refunds import REFUND_REASONS
from payments.actions.subscriptions import CANCEL_FEEDBACK
from payments.money import decimals

from .confirm import ConfirmForm

_AMOUNT = re.compile(r"^\d{1,15}(\.\d{1,3})?$")


def words(value: str) -> str:
    return value.replace("_", " ").capitalize()


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
            raise forms.ValidationError(f"“{text[:20]}” is not an amount.", code="amount")
        try:
            minor = Decimal(text).scaleb(places)
        except InvalidOperation:
            raise forms.ValidationError(f"“{text[:20]}” is not an amount.", code="amount") from None
        if minor != minor.to_integral_value():
            raise forms.ValidationError(f"{self.currency.upper()} amounts have at most {places} decimals.",
                                        code="amount")
        if minor <= 0:
            raise forms.ValidationError("The refund amount must be more than zero.", code="amount")
        return int(minor)


class RefundForm(ConfirmForm):
    reason = forms.ChoiceField(choices=[(r, words(r)) for r in REFUND_REASONS], initial="requested_by_customer",
                               required=False)
    note = forms.CharField(required=False, max_length=METADATA_VALUE_MAX, strip=True)

    def clean_reason(self):
        return self.cleaned_data["reason"] or "requested_by_customer"

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MinorUnitsField(currency=currency)


class CancelForm(ConfirmForm):
    when = forms.ChoiceField(choices=[("period_end", "At the end of the period"), ("now", "Now")],
                             initial="period_end", required=False)
    refund = forms.BooleanField(required=False)
    feedback = forms.ChoiceField(choices=[("", "—")] + [(f, words(f)) for f in CANCEL_FEEDBACK], required=False)
    comment = forms.CharField(required=False, max_length=5000, strip=True)


class _CustomerForm(ConfirmForm):
    """An action on one of the contact's Stripe customers."""

    def __init__(self, *args, customer_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"] = forms.ChoiceField(choices=[(c, c) for c in customer_ids],
                                                    initial=customer_ids[0] if customer_ids else "")


class MetadataForm(_CustomerForm):
    key = forms.CharField(max_length=METADATA_KEY_MAX, initial="Tier", strip=True)
    value = forms.CharField(required=False, max_length=METADATA_VALUE_MAX, strip=True)


PORTAL_FLOW_LABELS = {
    "": "The portal's home page",
    "payment_method_update": "Update the payment method",
    "subscription_cancel": "Cancel a subscription",
    "subscription_update": "Change a subscription's plan",
}
assert set(PORTAL_FLOW_LABELS) == {""} | set(PORTAL_FLOWS)


class PortalForm(_CustomerForm):
    flow = forms.ChoiceField(choices=list(PORTAL_FLOW_LABELS.items()), required=False,
                             initial="payment_method_update")
    coupon = forms.CharField(required=False, max_length=100, strip=True)

    def __init__(self, *args, subscription_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"] = forms.ChoiceField(choices=[("", "—")] + [(s, s) for s in subscription_ids],
                                                        required=False)
