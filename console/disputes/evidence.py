"""Assemble a dispute's evidence from what Paydesk knows: the customer and the charge from the
mirror, the conversations with support (as a PDF for `customer_communication`), the charge's
receipt (a PDF for `receipt`), refunds and the subscription's cancellation, and the shop's
policies from settings. Every field says where it came from; nothing is sent here — a person
reviews and edits the draft first.

    draft = assemble("dp_…")
    draft.fields["customer_email_address"].value, draft.fields[...].source
    draft.files["customer_communication"].content   # PDF bytes, uploaded when the person saves
    draft.files["receipt"].content                  # the charge's receipt, likewise
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from payments.models import Charge, Customer, Dispute, Refund, Subscription
from payments.money import format_money
from payments.stripe_objects import card_label, ref, ts
from tickets.models import Identity, Message

from . import conversation_pdf
from .selectors import ORDER_KEYS

MAX_TEXT_TOTAL = 150_000  # Stripe's limit for all of a dispute's text evidence together
MAX_MESSAGES = 500  # the newest; a conversation longer than that is rarely what a reviewer reads


@dataclass
class Assembled:
    value: str
    source: str  # in the reader's language: where the value came from


@dataclass
class AssembledFile:
    filename: str
    content: bytes
    source: str


@dataclass
class Draft:
    dispute_id: str
    reason: str
    fields: dict[str, Assembled] = field(default_factory=dict)
    files: dict[str, AssembledFile] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be assembled, and why

    @property
    def text_total(self) -> int:
        return sum(len(f.value) for f in self.fields.values())


def _address(address) -> str:
    if not isinstance(address, dict):
        return ""
    parts = [address.get(k) for k in ("line1", "line2", "city", "state", "postal_code", "country")]
    return ", ".join(str(p) for p in parts if p)


def _when(seconds) -> str:
    moment = ts(seconds)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def assemble(dispute_id: str) -> Draft | None:
    """The draft for a mirrored dispute, or None when the mirror has no such dispute."""
    dispute = Dispute.objects.filter(pk=dispute_id).first()
    if dispute is None:
        return None
    data = dispute.data or {}
    draft = Draft(dispute_id, dispute.reason)
    charge_row = Charge.objects.filter(pk=dispute.charge).first()
    charge = (charge_row.data or {}) if charge_row else {}
    if not charge:
        draft.notes.append(_("The charge %(charge)s is not in the mirror: nothing about it could be assembled.")
                           % {"charge": dispute.charge or "—"})
    customer_id = ref(charge.get("customer")) or ""
    customer = (Customer.objects.filter(pk=customer_id).values_list("data", flat=True).first() or {}) if customer_id else {}
    billing = charge.get("billing_details") or {}
    from_mirror = _("From the mirror: customer %(customer)s") % {"customer": customer_id or "—"}
    from_charge = _("From the mirror: charge %(charge)s") % {"charge": dispute.charge}

    name = customer.get("name") or billing.get("name") or ""
    if name:
        draft.fields["customer_name"] = Assembled(name, from_mirror if customer.get("name") else from_charge)
    email = customer.get("email") or billing.get("email") or charge.get("receipt_email") or ""
    if email:
        draft.fields["customer_email_address"] = Assembled(email, from_mirror if customer.get("email") else from_charge)
    billing_address = _address(billing.get("address"))
    if billing_address:
        draft.fields["billing_address"] = Assembled(billing_address, from_charge)
    if charge.get("description"):
        draft.fields["product_description"] = Assembled(charge["description"], from_charge)
    metadata = charge.get("metadata") or {}
    if metadata.get("ip") or metadata.get("customer_ip"):
        draft.fields["customer_purchase_ip"] = Assembled(metadata.get("ip") or metadata["customer_ip"],
                                                         _("From the charge's metadata"))
    shipping = charge.get("shipping") or {}
    if shipping.get("address"):
        draft.fields["shipping_address"] = Assembled(_address(shipping["address"]), from_charge)
    if shipping.get("carrier"):
        draft.fields["shipping_carrier"] = Assembled(shipping["carrier"], from_charge)
    if shipping.get("tracking_number"):
        draft.fields["shipping_tracking_number"] = Assembled(shipping["tracking_number"], from_charge)

    _receipt(draft, dispute, charge, customer)
    _refunds(draft, dispute, charge)
    _subscription(draft, charge)
    _duplicate(draft, dispute, charge, customer_id)
    _policies(draft)
    _conversation(draft, data, dispute, charge, customer_id, name or email)
    if draft.text_total > MAX_TEXT_TOTAL:
        draft.notes.append(_("The assembled texts are longer than Stripe's 150,000 characters; shorten them before "
                             "saving."))
    return draft


def _receipt(draft: Draft, dispute: Dispute, charge: dict, customer: dict) -> None:
    """The charge's receipt as a PDF for the `receipt` field: what was paid, when, with which
    card, by whom, and what was refunded — in English, as the network reads it."""
    if not charge:
        return
    billing = charge.get("billing_details") or {}
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), dict) else {}
    currency = charge.get("currency") or ""
    with translation.override("en"):
        facts = [("Receipt number", charge.get("receipt_number") or "—"),
                 ("Date", _when(charge.get("created")) or "—"),
                 ("Amount", format_money(charge.get("amount") or 0, currency)),
                 ("Description", charge.get("description") or "—"),
                 *[(f"Order ({key})", str(value)) for key, value in metadata.items() if key in ORDER_KEYS],
                 ("Paid with", card_label(charge) or str(((charge.get("payment_method_details") or {})
                                                          .get("type") or "—"))),
                 ("Statement descriptor", charge.get("calculated_statement_descriptor")
                  or charge.get("statement_descriptor") or "—"),
                 ("Billed to", ", ".join(p for p in (billing.get("name") or customer.get("name") or "",
                                                     billing.get("email") or customer.get("email")
                                                     or charge.get("receipt_email") or "",
                                                     _address(billing.get("address"))) if p) or "—"),
                 ("Refunded", format_money(charge.get("amount_refunded") or 0, currency)
                  if charge.get("amount_refunded") else "nothing"),
                 ("Stripe charge", dispute.charge)]
    try:
        content = conversation_pdf.render(title="Receipt", facts=facts, lines=[])
    except conversation_pdf.PdfUnavailable as exc:
        if str(exc) not in draft.notes:
            draft.notes.append(str(exc))
        return
    draft.files["receipt"] = AssembledFile(f"receipt-{dispute.charge}.pdf", content,
                                           _("The charge's receipt from the mirror, as a PDF"))


def _refunds(draft: Draft, dispute: Dispute, charge: dict) -> None:
    refunds = list(Refund.objects.filter(charge=dispute.charge).exclude(status__in=["failed", "canceled"])
                   .order_by("created"))
    if not refunds:
        return
    with translation.override("en"):  # evidence is read by the card network: in English, whoever assembles it
        lines = [_("%(amount)s refunded on %(date)s (%(refund)s)") % {
            "amount": format_money(r.amount, r.currency), "date": r.created.strftime("%Y-%m-%d") if r.created else "—",
            "refund": r.id} for r in refunds]
    text = "\n".join(lines)
    source = _("From the mirror: the charge's refunds")
    if dispute.reason in ("credit_not_processed", "product_unacceptable", "general"):
        draft.fields["refund_refusal_explanation"] = Assembled(text, source)
    else:
        draft.fields["uncategorized_text"] = Assembled(text, source)


def _subscription(draft: Draft, charge: dict) -> None:
    from payments.models import Invoice

    invoice_id = ref(charge.get("invoice"))
    if not invoice_id:
        return
    invoice = Invoice.objects.filter(pk=invoice_id).values_list("data", flat=True).first() or {}
    subscription_id = ref(invoice.get("subscription")) or ref(
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription"))
    subscription = Subscription.objects.filter(pk=subscription_id).first() if subscription_id else None
    if subscription is None:
        return
    sub = subscription.data or {}
    details = sub.get("cancellation_details") or {}
    canceled = sub.get("canceled_at")
    with translation.override("en"):  # evidence: in English
        text = _subscription_text(subscription, sub, details, canceled, charge)
    draft.fields["cancellation_rebuttal"] = Assembled(text.strip(), _("From the mirror: subscription %(subscription)s")
                                                      % {"subscription": subscription.id})


def _subscription_text(subscription, sub: dict, details: dict, canceled, charge: dict) -> str:
    if not canceled and not details.get("feedback"):
        text = _("Subscription %(subscription)s was active when this charge was made; it was not cancelled.") % {
            "subscription": subscription.id}
    else:
        text = _("Subscription %(subscription)s was cancelled on %(date)s; the charge was made on %(charged)s. "
                 "Reason: %(reason)s. Feedback: %(feedback)s %(comment)s") % {
            "subscription": subscription.id, "date": _when(canceled) or "—", "charged": _when(charge.get("created")),
            "reason": details.get("reason") or "—", "feedback": details.get("feedback") or "—",
            "comment": details.get("comment") or ""}
    return text


def _duplicate(draft: Draft, dispute: Dispute, charge: dict, customer_id: str) -> None:
    if dispute.reason != "duplicate" or not customer_id or not charge.get("created"):
        return
    created = ts(charge["created"])
    other = (Charge.objects.filter(customer=customer_id, amount=charge.get("amount"), currency=charge.get("currency"),
                                   status="succeeded", created__gte=created - dt.timedelta(days=2),
                                   created__lte=created + dt.timedelta(days=2))
             .exclude(pk=dispute.charge).order_by("created").first())
    if other is not None:
        draft.fields["duplicate_charge_id"] = Assembled(other.id, _("From the mirror: the customer's other charge of "
                                                                    "the same amount within two days"))


def _policies(draft: Draft) -> None:
    source = _("From the shop's settings")
    for setting, name in (("DISPUTES_REFUND_POLICY", "refund_policy_disclosure"),
                          ("DISPUTES_CANCELLATION_POLICY", "cancellation_policy_disclosure")):
        text = getattr(settings, setting, "") or ""
        if text:
            draft.fields[name] = Assembled(text, source)


def _conversation(draft: Draft, data: dict, dispute: Dispute, charge: dict, customer_id: str, who: str) -> None:
    contact_id = (Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id)
                  .values_list("contact_id", flat=True).first()) if customer_id else None
    if contact_id is None:
        draft.notes.append(_("No conversation with support is linked to this customer."))
        return
    messages = list(Message.objects.select_related("ticket", "author")
                    .filter(ticket__requester_id=contact_id)
                    .exclude(kind=Message.Kind.NOTE)  # internal notes are the team's, never evidence
                    .order_by("-created", "-id")[:MAX_MESSAGES])
    if not messages:
        draft.notes.append(_("The customer has not written to support."))
        return
    messages.reverse()
    lines = [conversation_pdf.Line(
        at=m.created, channel="LINE" if m.channel == "line" else str(m.channel),
        who="Customer" if m.kind == Message.Kind.INBOUND else (
            f"Support ({m.author.get_full_name() or m.author.get_username()})" if m.author_id else "Support"),
        subject=f"#{m.ticket.number} {m.ticket.subject}"[:120], text=m.body_text or "") for m in messages]
    facts = [("Dispute", f"{dispute.id} ({dispute.reason or '—'})"),
             ("Charge", f"{dispute.charge} · {format_money(charge.get('amount') or 0, charge.get('currency') or '')} · "
                        f"{_when(charge.get('created'))}" if charge else dispute.charge),
             ("Customer", f"{who or '—'} ({customer_id})")]
    try:
        content, kept = _fitting(facts, lines)
    except conversation_pdf.PdfUnavailable as exc:
        if str(exc) not in draft.notes:
            draft.notes.append(str(exc))
        return
    draft.files["customer_communication"] = AssembledFile(
        f"conversation-{dispute.id}.pdf", content,
        _("The customer's %(n)s messages with support (email and LINE), as a PDF") % {"n": kept})
    if kept < len(lines):
        draft.notes.append(_("Only the newest %(kept)s of %(n)s messages fit in Stripe's 5 MB file limit.")
                           % {"kept": kept, "n": len(lines)})


def _fitting(facts, lines) -> tuple[bytes, int]:
    """The PDF with as many of the newest messages as fit under Stripe's file limit, and how many."""
    total = len(lines)
    while True:
        count = f"{len(lines)}" if len(lines) == total else f"the newest {len(lines)} of {total}"
        try:
            return conversation_pdf.render(title="Correspondence with the customer",
                                           facts=[*facts, ("Messages", count)], lines=lines), len(lines)
        except ValueError:
            if len(lines) <= 1:
                raise
            lines = lines[len(lines) // 2:]
