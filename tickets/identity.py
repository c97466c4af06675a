"""Identity values in one canonical form, so the same person always resolves the same way."""

from __future__ import annotations

import re
from email.utils import parseaddr

import phonenumbers
from django.conf import settings

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
STRIPE_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{4,}$")


def normalise_email(raw: str) -> str:
    """'"Hana Sato" <Hana.Sato@Example.COM>' -> 'hana.sato@example.com'.

    The whole address is lowercased: mail servers treat the local part case-insensitively
    in practice, and a contact split by letter case is the bug this module exists to prevent.
    """
    _name, address = parseaddr((raw or "").strip())
    address = address.strip().lower()
    if not address:
        raise ValidationError(_("An email address is required."), code="invalid")
    local, _at, domain = address.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(_("%(value)s is not a valid email address.") % {"value": repr(raw)},
                              code="invalid") from None
    address = f"{local}@{domain}"
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(_("%(value)s is not a valid email address.") % {"value": repr(raw)},
                              code="invalid") from None
    return address


def normalise_line(raw: str) -> str:
    value = (raw or "").strip()
    if not LINE_USER_ID.match(value):
        raise ValidationError(_("%(value)s is not a LINE user id (U followed by 32 hex digits).")
                              % {"value": repr(raw)}, code="invalid")
    return value


def normalise_phone(raw: str) -> str:
    """'090-8628-8424' and '+81 90 8628 8424' -> '+819086288424': E.164, a number written without
    its country read in settings.PHONE_DEFAULT_REGION (JP). What phonenumbers can't read as a
    possible number is kept as its digits (with its plus), as before."""
    value = (raw or "").strip()
    digits = re.sub(r"\D", "", value)
    if len(digits) < 6 or len(digits) > 15:
        raise ValidationError(_("%(value)s is not a phone number.") % {"value": repr(raw)}, code="invalid")
    region = None if value.startswith("+") else (getattr(settings, "PHONE_DEFAULT_REGION", "JP") or None)
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return ("+" if value.startswith("+") else "") + digits


def format_phone(value: str) -> str:
    """A stored phone as people read it: '+81 90-8628-8424' (as stored when it isn't E.164)."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_stripe_customer(raw: str) -> str:
    value = (raw or "").strip()
    if not STRIPE_CUSTOMER_ID.match(value):
        raise ValidationError(_("%(value)s is not a Stripe customer id.") % {"value": repr(raw)}, code="invalid")
    return value


NORMALISERS = {
    "email": normalise_email,
    "line": normalise_line,
    "phone": normalise_phone,
    "stripe_customer": normalise_stripe_customer,
}


def normalise(kind: str, value: str) -> str:
    try:
        normaliser = NORMALISERS[kind]
    except KeyError:
        raise ValidationError(_("Unknown identity kind %(kind)s.") % {"kind": repr(kind)}, code="invalid") from None
    return normaliser(value)


def contact_display_name(name: str, line_name: str, identities) -> str:
    """What agents call a contact: their name, else their LINE display name, else an email,
    a phone number, "LINE user ·1a2b" (the id's last four) — never an internal number.
    `identities` is (kind, value) pairs."""
    if name:
        return name
    if line_name:
        return line_name
    by_kind: dict[str, str] = {}
    for kind, value in identities:
        by_kind.setdefault(kind, value)
    if by_kind.get("email"):
        return by_kind["email"]
    if by_kind.get("phone"):
        return format_phone(by_kind["phone"])
    if by_kind.get("line"):
        return pgettext("contact label", "LINE user ·%(last4)s") % {"last4": by_kind["line"][-4:]}
    if by_kind.get("stripe_customer"):
        return pgettext("contact label", "Stripe customer ·%(last4)s") % {"last4": by_kind["stripe_customer"][-4:]}
    return _("Unnamed customer")
