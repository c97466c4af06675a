"""A Stripe customer's own settings: its metadata (Tier=VIP), and a billing-portal link in the
customer's language, optionally deep-linked to one task (update the card, cancel with a
retention coupon, change plan). Each once per confirmation."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlparse

from babel import Locale, UnknownLocaleError
from django.db import transaction
from django.utils.translation import gettext as _, pgettext, pgettext_lazy

from audit.models import AuditAction

from .. import stripe_api
from ..errors import ActionRefused
from ..mirror import upsert_fetched
from ..models import Customer, Subscription
from common.l10n import babel_locale

from .stripe_calls import (
    audit, confirmation_key, customer_name, fetch, in_english, recorded, require, sentences, single_flight,
    stripe_call, text,
)
from .subscriptions import ENDED_SUBSCRIPTION

PORTAL_FLOWS = ("payment_method_update", "subscription_cancel", "subscription_update")
PORTAL_LOCALES = frozenset(  # the locales Stripe's billing portal speaks
    "auto bg cs da de el en en-AU en-CA en-GB en-IE en-IN en-NZ en-SG es es-419 et fi fil fr fr-CA "
    "hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500  # Stripe's limits


def _read_customer(customer_id: str) -> str:
    return _("read customer %(customer)s") % {"customer": customer_id}


# --- customer metadata ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataPlan:
    customer_id: str
    customer_name: str
    set: dict[str, tuple[str | None, str]]  # key: (old value or None, new value)
    removed: dict[str, str]  # key: old value
    params: dict[str, str] = field(repr=False)

    def describe(self) -> str:
        """The preview, in the reader's language: each key's change, then the sentence that holds them."""
        parts = []
        for key, (old, new) in self.set.items():
            if old is None:
                parts.append(_("set %(key)s to “%(new)s”") % {"key": key, "new": new})
            else:
                parts.append(_("set %(key)s to “%(new)s” (was “%(old)s”)") % {"key": key, "new": new, "old": old})
        for key, old in self.removed.items():
            parts.append(_("remove %(key)s (was “%(old)s”)") % {"key": key, "old": old})
        changes = ""
        for part in parts:
            changes = pgettext("list of metadata changes", "%(first)s; %(second)s") % {
                "first": changes, "second": part} if changes else part
        facts = {"name": self.customer_name, "customer": self.customer_id, "changes": changes}
        if self.customer_name:
            return _("Change the metadata of %(name)s's Stripe customer %(customer)s: %(changes)s.") % facts
        return _("Change the metadata of Stripe customer %(customer)s: %(changes)s.") % facts


def build_metadata_plan(customer: dict, changes: dict) -> MetadataPlan:
    if not isinstance(changes, dict) or not changes:
        raise ActionRefused(_("Say which metadata keys to set or remove."), code="empty")
    current = {k: str(v) for k, v in (customer.get("metadata") or {}).items()}
    to_set: dict[str, tuple[str | None, str]] = {}
    removed: dict[str, str] = {}
    for raw_key, value in changes.items():
        key = raw_key.strip() if isinstance(raw_key, str) else raw_key
        if not isinstance(key, str) or not key:
            raise ActionRefused(_("A metadata key can't be empty."), code="key")
        if len(key) > METADATA_KEY_MAX:
            raise ActionRefused(_("Metadata key %(key)s… is too long (%(length)s characters; Stripe allows %(limit)s).")
                                % {"key": key[:20], "length": len(key), "limit": METADATA_KEY_MAX}, code="key")
        if "[" in key or "]" in key:
            raise ActionRefused(_("Metadata key %(key)r can't contain square brackets.") % {"key": key}, code="key")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ActionRefused(_("The value of %(key)s must be text.") % {"key": key}, code="value")
        value = value.strip()
        if len(value) > METADATA_VALUE_MAX:
            raise ActionRefused(_("The value of %(key)s is too long (%(length)s characters; Stripe allows %(limit)s).")
                                % {"key": key, "length": len(value), "limit": METADATA_VALUE_MAX}, code="value")
        if value == "":
            if current.get(key, "") != "":
                removed[key] = current[key]
        elif current.get(key) != value:
            to_set[key] = (current.get(key), value)
    remaining = {k for k, v in current.items() if v != ""} - set(removed) | set(to_set)
    if len(remaining) > METADATA_MAX_KEYS:
        raise ActionRefused(_("Stripe allows at most %(limit)s metadata keys; this would make %(count)s.")
                            % {"limit": METADATA_MAX_KEYS, "count": len(remaining)}, code="too_many")
    if not to_set and not removed:
        raise ActionRefused(_("Nothing to change: the customer's metadata already says that."), code="no_change")
    params = {k: v for k, (_, v) in to_set.items()} | {k: "" for k in removed}  # "" deletes a key at Stripe
    return MetadataPlan(customer["id"], customer.get("name") or "", to_set, removed, params)


def plan_metadata_update(customer_id: str, changes: dict, *, actor) -> MetadataPlan:
    require(actor, "payments.update_customer_metadata", pgettext_lazy("permission", "change customer metadata"))
    customer = fetch("customers", customer_id, _read_customer(customer_id))
    if customer.get("deleted"):
        raise ActionRefused(_("Customer %(customer)s was deleted at Stripe.") % {"customer": customer_id}, code="deleted")
    return build_metadata_plan(customer, changes)


@dataclass(frozen=True)
class MetadataResult:
    customer: dict
    plan: MetadataPlan | None  # None when this confirmation had already made the change (replayed)
    replayed: bool = False
    changed: dict[str, str] = field(default_factory=dict)  # key: new value ("" removed)

    @property
    def message(self) -> str:
        what = ""
        for k, v in sorted(self.changed.items()):
            part = f"{k}={v}" if v else _("%(key)s removed") % {"key": k}
            what = pgettext("list of metadata changes", "%(first)s, %(second)s") % {
                "first": what, "second": part} if what else part
        facts = {"customer": self.customer["id"], "changes": what}
        if self.replayed:
            return _("This confirmation already updated the metadata of %(customer)s (%(changes)s); nothing was sent "
                     "again.") % facts
        return _("Metadata of %(customer)s updated: %(changes)s.") % facts


def _requested(changes: dict) -> dict[str, str]:
    """The change asked for, as build_metadata_plan reads it: key → value ("" removes)."""
    if not isinstance(changes, dict):
        return {}
    return {(k.strip() if isinstance(k, str) else k): (v.strip() if isinstance(v, str) else v or "") for k, v in changes.items()}


def update_customer_metadata(
    customer_id: str, changes: dict, *, actor, ticket_ref: str | None = None, idempotency_key: str | None = None
) -> MetadataResult:
    """Set keys (e.g. {"Tier": "VIP"}) and remove keys (an empty value) on a Stripe customer.

    With `idempotency_key` (the confirmation's token), the same confirmation sent again returns
    what the first did (`replayed`) and sends nothing: the audit log's row for its key says so."""
    ticket_ref = text(ticket_ref, 100, _("ticket reference"))
    key = confirmation_key("metadata", customer_id, idempotency_key) if idempotency_key else ""
    with single_flight(key) if key else contextlib.nullcontext():
        done = recorded(AuditAction.CUSTOMER_UPDATE_METADATA, customer_id, key) if key else None
        if done is not None:
            require(actor, "payments.update_customer_metadata", pgettext_lazy("permission", "change customer metadata"))
            made = dict(done.get("set") or {}) | {k: "" for k in done.get("removed") or ()}
            if any(k in made and made[k] != v for k, v in _requested(changes).items()):
                raise ActionRefused(_("This confirmation already made another change; this one needs a new confirmation."),
                                    code="token_reused")
            customer = Customer.objects.filter(pk=customer_id).values_list("data", flat=True).first()
            if not customer:
                customer = fetch("customers", customer_id, _read_customer(customer_id))
            return MetadataResult(customer, None, replayed=True, changed=made)
        plan = plan_metadata_update(customer_id, changes, actor=actor)
        with stripe_call(_("update the metadata of %(customer)s") % {"customer": customer_id}, writes=True):
            customer = stripe_api.to_dict(
                stripe_api.resource("customers").update(
                    customer_id, {"metadata": plan.params}, {"idempotency_key": key} if key else None
                )
            )
        with transaction.atomic():
            upsert_fetched([customer], stripe_api.now_seconds())
            audit(
                actor, AuditAction.CUSTOMER_UPDATE_METADATA, customer_id,
                set={k: new for k, (_, new) in plan.set.items()},
                previous={k: old for k, (old, _) in plan.set.items() if old is not None} | plan.removed,
                removed=sorted(plan.removed), ticket=ticket_ref, description=in_english(plan.describe),
                **({"idempotency_key": key} if key else {}),
            )
    return MetadataResult(customer, plan, changed=dict(plan.params))


# --- billing portal ------------------------------------------------------------------------


def portal_locale(value: str | None) -> str:
    """The portal locale Stripe supports closest to a contact's (ja_JP → ja, pt_BR → pt-BR)."""
    if not value:
        return "auto"
    tag = value.strip().replace("_", "-")
    if not tag:
        return "auto"
    parts = tag.split("-")
    candidates = [tag, f"{parts[0].lower()}-{parts[1].upper()}" if len(parts) > 1 else "", parts[0].lower()]
    if parts[0].lower() == "zh" and len(parts) > 1:
        region = parts[-1].upper()
        candidates.insert(0, "zh-TW" if region in ("TW", "HANT") else "zh-HK" if region in ("HK", "MO") else "zh")
    if parts[0].lower() == "es" and len(parts) > 1 and parts[1].upper() != "ES":
        candidates.insert(1, "es-419")  # Latin American Spanish
    for candidate in candidates:
        if candidate in PORTAL_LOCALES:
            return candidate
    return "auto"


def _locale_name(tag: str) -> str:
    """A portal locale as the reader calls it: "Japanese" / 「日本語」."""
    if tag == "auto":
        return _("the customer's own language")
    try:
        return Locale.parse(tag, sep="-").get_display_name(babel_locale()) or tag
    except (ValueError, UnknownLocaleError):
        return tag


@dataclass(frozen=True)
class PortalPlan:
    customer_id: str
    customer_name: str
    flow: str | None
    subscription_id: str
    coupon: str
    locale: str
    params: dict = field(repr=False)

    def describe(self) -> str:
        """The preview, in the reader's language (the link itself opens in the customer's)."""
        if self.customer_name:
            who = pgettext("customer name and id", "%(name)s (%(customer)s)") % {
                "name": self.customer_name, "customer": self.customer_id}
        else:
            who = self.customer_id
        sub = {"subscription": self.subscription_id}
        if self.flow == "payment_method_update":
            opens = _("straight on updating their payment method")
        elif self.flow == "subscription_cancel":
            opens = _("straight on canceling subscription %(subscription)s") % sub
        elif self.flow == "subscription_update":
            opens = _("straight on changing the plan of subscription %(subscription)s") % sub
        else:
            opens = _("on the portal's home page")
        facts = {"who": who, "opens": opens, "language": _locale_name(self.locale), "coupon": self.coupon}
        if self.coupon:
            text = _("Create a billing-portal link for %(who)s that opens %(opens)s, in %(language)s, offering coupon "
                     "%(coupon)s before they cancel.") % facts
        else:
            text = _("Create a billing-portal link for %(who)s that opens %(opens)s, in %(language)s.") % facts
        return sentences(text, _("Unopened, the link expires after 5 minutes; once opened it lasts an hour of activity."))


@dataclass(frozen=True)
class PortalResult:
    session: dict
    plan: PortalPlan
    replayed: bool = False  # this confirmation had already created it: Stripe answered with the same session

    @property
    def url(self) -> str:
        return self.session.get("url") or ""


def plan_portal_session(
    customer_id: str,
    *,
    actor,
    flow: str | None = None,
    subscription_id: str | None = None,
    retention_coupon: str | None = None,
    locale: str | None = None,
    return_url: str | None = None,
) -> PortalPlan:
    require(actor, "payments.create_portal_session", pgettext_lazy("permission", "create billing-portal links"))
    if not customer_id:
        raise ActionRefused(_("Say which Stripe customer the link is for."), code="customer")
    flow = flow or None
    if flow is not None and flow not in PORTAL_FLOWS:
        raise ActionRefused(_("Unknown portal flow %(flow)r.") % {"flow": flow}, code="flow")
    subscription_id = (subscription_id or "").strip()
    coupon = (retention_coupon or "").strip()
    if flow in ("subscription_cancel", "subscription_update") and not subscription_id:
        raise ActionRefused(_("Pick the subscription the link is about."), code="subscription")
    if flow not in ("subscription_cancel", "subscription_update") and subscription_id:
        raise ActionRefused(_("Only the cancel and update links are about one subscription."), code="subscription")
    if coupon and flow != "subscription_cancel":
        raise ActionRefused(_("A retention coupon can only be offered on the cancel link."), code="coupon")
    if subscription_id:
        mirrored = Subscription.objects.filter(pk=subscription_id).values("customer", "status").first()
        if mirrored and mirrored["customer"] and mirrored["customer"] != customer_id:
            raise ActionRefused(_("Subscription %(subscription)s belongs to another customer.")
                                % {"subscription": subscription_id}, code="subscription")
        if mirrored and mirrored["status"] in ENDED_SUBSCRIPTION:
            raise ActionRefused(_("Subscription %(subscription)s is already canceled.")
                                % {"subscription": subscription_id}, code="already_canceled")
    if return_url:
        parsed = urlparse(return_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ActionRefused(_("The return address must be an http(s) URL."), code="return_url")
    tag = portal_locale(locale)
    params: dict = {"customer": customer_id, "locale": tag}
    if return_url:
        params["return_url"] = return_url
    if flow:
        flow_data: dict = {"type": flow}
        if flow == "subscription_cancel":
            flow_data["subscription_cancel"] = {"subscription": subscription_id}
            if coupon:
                flow_data["subscription_cancel"]["retention"] = {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}}
        elif flow == "subscription_update":
            flow_data["subscription_update"] = {"subscription": subscription_id}
        # After the one task, back to the shop if we know where; else Stripe's confirmation page.
        if return_url:
            flow_data["after_completion"] = {"type": "redirect", "redirect": {"return_url": return_url}}
        else:
            flow_data["after_completion"] = {"type": "hosted_confirmation"}
        params["flow_data"] = flow_data
    return PortalPlan(customer_id, customer_name(customer_id), flow, subscription_id, coupon, tag, params)


def create_portal_session(
    customer_id: str,
    *,
    actor,
    flow: str | None = None,
    subscription_id: str | None = None,
    retention_coupon: str | None = None,
    locale: str | None = None,
    return_url: str | None = None,
    ticket_ref: str | None = None,
    idempotency_key: str | None = None,
) -> PortalResult:
    """A billing-portal session, optionally deep-linked to one flow. The URL is a credential
    for the customer's billing: it is returned to the caller and never audited or logged.

    With `idempotency_key` (the confirmation's token), the same confirmation sent again is
    audited once (`replayed`). The URL is kept nowhere, so the request is sent again with the
    same key: Stripe answers it with the same session for 24 hours instead of creating one."""
    ticket_ref = text(ticket_ref, 100, _("ticket reference"))
    key = confirmation_key("portal", customer_id, idempotency_key) if idempotency_key else ""
    with single_flight(key) if key else contextlib.nullcontext():
        done = recorded(AuditAction.PORTAL_SESSION_CREATE, customer_id, key) if key else None
        plan = plan_portal_session(
            customer_id, actor=actor, flow=flow, subscription_id=subscription_id,
            retention_coupon=retention_coupon, locale=locale, return_url=return_url,
        )
        with stripe_call(_("create a billing-portal session for %(customer)s") % {"customer": customer_id}, writes=True):
            session = stripe_api.to_dict(stripe_api.client().v1.billing_portal.sessions.create(
                plan.params, {"idempotency_key": key} if key else None))
        if done is not None:
            return PortalResult(session, plan, replayed=True)
        with transaction.atomic():
            audit(
                actor, AuditAction.PORTAL_SESSION_CREATE, customer_id,
                session=session.get("id"), flow=plan.flow or "", subscription=plan.subscription_id,
                coupon=plan.coupon, locale=plan.locale, ticket=ticket_ref, description=in_english(plan.describe),
                **({"idempotency_key": key} if key else {}),
            )
    return PortalResult(session, plan)
