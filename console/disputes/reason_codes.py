"""The card networks' own dispute reason codes in plain words (what the issuer told the
network), for the dispute page: Visa's and Mastercard's common codes, American Express's."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CODES = {
    "visa": {
        "10.1": _("EMV liability shift: counterfeit card"),
        "10.2": _("EMV liability shift: not counterfeit"),
        "10.3": _("Other fraud, card present"),
        "10.4": _("Other fraud, card absent: the cardholder says they did not make the purchase"),
        "10.5": _("Visa fraud monitoring programme"),
        "11.1": _("Card recovery bulletin"),
        "11.2": _("Declined authorisation"),
        "11.3": _("No authorisation"),
        "12.1": _("Late presentment"),
        "12.2": _("Incorrect transaction code"),
        "12.3": _("Incorrect currency"),
        "12.4": _("Incorrect account number"),
        "12.5": _("Incorrect amount"),
        "12.6.1": _("Duplicate processing: charged twice"),
        "12.6.2": _("Paid by other means"),
        "12.7": _("Invalid data"),
        "13.1": _("Merchandise or services not received"),
        "13.2": _("Cancelled recurring transaction"),
        "13.3": _("Not as described or defective merchandise"),
        "13.4": _("Counterfeit merchandise"),
        "13.5": _("Misrepresentation"),
        "13.6": _("Credit not processed: a refund was promised but not made"),
        "13.7": _("Cancelled merchandise or services"),
        "13.8": _("Original credit transaction not accepted"),
        "13.9": _("Non-receipt of cash"),
    },
    "mastercard": {
        "4808": _("Authorisation-related"),
        "4831": _("Transaction amount differs"),
        "4834": _("Point-of-interaction error: duplicate or incorrect processing"),
        "4837": _("No cardholder authorisation: the cardholder says they did not make the purchase"),
        "4840": _("Fraudulent processing of transactions"),
        "4841": _("Cancelled recurring or digital goods transaction"),
        "4842": _("Late presentment"),
        "4846": _("Correct transaction currency code not provided"),
        "4849": _("Questionable merchant activity"),
        "4853": _("Cardholder dispute: not as described, defective, or other"),
        "4855": _("Goods or services not provided"),
        "4859": _("Addendum, no-show or ATM dispute"),
        "4860": _("Credit not processed"),
        "4863": _("Cardholder does not recognise: potential fraud"),
        "4870": _("Chip liability shift"),
        "4871": _("Chip/PIN liability shift"),
    },
    "amex": {
        "A01": _("Charge amount exceeds authorisation amount"),
        "A02": _("No valid authorisation"),
        "C02": _("Credit not processed"),
        "C04": _("Goods or services returned or refused"),
        "C05": _("Goods or services cancelled"),
        "C08": _("Goods or services not received or only partially received"),
        "C14": _("Paid by other means"),
        "C18": _("No show or cancelled reservation"),
        "C28": _("Cancelled recurring billing"),
        "C31": _("Goods or services not as described"),
        "C32": _("Goods or services damaged or defective"),
        "F10": _("Missing imprint"),
        "F14": _("Missing signature"),
        "F24": _("No cardmember authorisation"),
        "F29": _("Card not present: the cardmember says they did not make the purchase"),
        "P01": _("Unassigned card number"),
        "P03": _("Credit processed as charge"),
        "P04": _("Charge processed as credit"),
        "P05": _("Incorrect charge amount"),
        "P07": _("Late submission"),
        "P08": _("Duplicate charge"),
        "P22": _("Non-matching card number"),
        "P23": _("Currency discrepancy"),
        "R03": _("Insufficient reply"),
        "R13": _("No reply"),
    },
}
_BRANDS = {"american_express": "amex", "american express": "amex", "master": "mastercard"}


def explain(brand: str, code: str) -> str:
    """The code's words, or "" when this list does not know it (the page shows the code alone)."""
    brand = (brand or "").strip().lower()
    known = CODES.get(_BRANDS.get(brand, brand), {}).get((code or "").strip())
    return str(known) if known else ""
