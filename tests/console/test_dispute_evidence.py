"""Evidence assembled from what Paydesk knows (console/disputes/evidence.py): each field from the
mirror or the settings, saying where it came from; the customer's conversations (email and
LINE, Japanese included, internal notes never) as a PDF for customer_communication, and the
charge's receipt as a PDF for receipt."""

from __future__ import annotations

import io
import time

import pytest
from pypdf import PdfReader

from console.disputes import evidence
from tests import factories
from tickets.actions import add_note, receive_message

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    # pypdf reads the embedded font's two-byte codes with a NUL between characters: drop them.
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).replace("\x00", "")


@pytest.fixture
def disputed(agent):
    """Misaki's 42 USD order, disputed as fraudulent; she wrote to support by email and LINE."""
    customer = factories.CustomerFactory(name="Misaki Sato", email="misaki.sato@example.jp")
    charge = factories.ChargeFactory(
        customer=customer["id"], amount=4200, description="Order KR-10538: Uji matcha 30g ×2",
        billing_details={"name": "Misaki Sato", "email": "misaki.sato@example.jp", "phone": None,
                         "address": {"line1": "1-2-3 Jingumae", "line2": None, "city": "Shibuya-ku",
                                     "state": "Tokyo", "postal_code": "150-0001", "country": "JP"}})
    dispute = factories.DisputeFactory(charge=charge["id"], amount=4200, reason="fraudulent")
    factories.mirror(customer, charge, dispute)
    email = receive_message(channel="email", sender="misaki.sato@example.jp", subject="Crushed tin",
                            body_text="One tin arrived crushed. 缶がつぶれて届きました。").message
    factories.IdentityFactory(contact=email.ticket.requester, kind="stripe_customer", value=customer["id"])
    add_note(actor=agent, ticket=email.ticket, body="Internal: she sounds upset, offer 10% off")
    return {"customer": customer, "charge": charge, "dispute": dispute, "ticket": email.ticket}


def test_a_fraud_dispute_gets_the_customer_the_charge_and_the_conversation(disputed):
    draft = evidence.assemble(disputed["dispute"]["id"])
    assert draft.fields["customer_name"].value == "Misaki Sato"
    assert draft.fields["customer_email_address"].value == "misaki.sato@example.jp"
    assert draft.fields["billing_address"].value == "1-2-3 Jingumae, Shibuya-ku, Tokyo, 150-0001, JP"
    assert draft.fields["product_description"].value == "Order KR-10538: Uji matcha 30g ×2"
    assert draft.fields["customer_name"].source == f"From the mirror: customer {disputed['customer']['id']}"
    assert draft.fields["billing_address"].source == f"From the mirror: charge {disputed['charge']['id']}"
    pdf = draft.files["customer_communication"]
    assert pdf.filename == f"conversation-{disputed['dispute']['id']}.pdf" and pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    assert "缶がつぶれて届きました" in text and "One tin arrived crushed" in text
    assert "Internal" not in text and "10% off" not in text  # the team's notes are never evidence
    assert pdf.source == "The customer's 1 messages with support (email and LINE), as a PDF"


def test_the_receipt_is_the_charge_as_the_mirror_has_it_as_a_pdf(disputed):
    draft = evidence.assemble(disputed["dispute"]["id"])
    receipt = draft.files["receipt"]
    assert receipt.filename == f"receipt-{disputed['charge']['id']}.pdf"
    assert receipt.source == "The charge's receipt from the mirror, as a PDF"
    text = pdf_text(receipt.content)
    for fact in ("Receipt", "$42.00", "Order KR-10538: Uji matcha 30g ×2", "Misaki Sato", "misaki.sato@example.jp",
                 "1-2-3 Jingumae, Shibuya-ku", disputed["charge"]["id"], "Visa ending"):
        assert fact in text, fact


def test_refunds_policies_and_a_cancellation_are_explained(disputed, settings):
    settings.DISPUTES_REFUND_POLICY = "Refunds within 30 days of delivery."
    invoice = factories.InvoiceFactory(customer=disputed["customer"]["id"], subscription="sub_kept")
    subscription = factories.SubscriptionFactory(
        id="sub_kept", customer=disputed["customer"]["id"], status="canceled", canceled_at=int(time.time()) - 86400,
        cancellation_details={"reason": "cancellation_requested", "feedback": "too_expensive", "comment": None})
    charge = factories.ChargeFactory(customer=disputed["customer"]["id"], invoice=invoice["id"], amount=2900)
    refund = factories.RefundFactory(charge=charge["id"], amount=900, currency="usd")
    dispute = factories.DisputeFactory(charge=charge["id"], reason="credit_not_processed")
    factories.mirror(invoice, subscription, charge, refund, dispute)
    draft = evidence.assemble(dispute["id"])
    assert draft.fields["refund_policy_disclosure"].value == "Refunds within 30 days of delivery."
    assert draft.fields["refund_policy_disclosure"].source == "From the shop's settings"
    assert draft.fields["refund_refusal_explanation"].value.startswith(f"$9.00 refunded on ")
    rebuttal = draft.fields["cancellation_rebuttal"].value
    assert rebuttal.startswith("Subscription sub_kept was cancelled on ") and "too_expensive" in rebuttal


def test_a_duplicate_dispute_finds_the_other_charge(disputed):
    first = disputed["charge"]
    second = factories.ChargeFactory(customer=first["customer"], amount=first["amount"], created=first["created"] + 60)
    dispute = factories.DisputeFactory(charge=second["id"], reason="duplicate")
    factories.mirror(second, dispute)
    assert evidence.assemble(dispute["id"]).fields["duplicate_charge_id"].value == first["id"]


def test_without_a_japanese_font_the_rest_is_assembled_and_the_note_says_how_to_fix_it(disputed, settings):
    settings.DISPUTES_PDF_FONT = "/nonexistent/font.ttc"
    draft = evidence.assemble(disputed["dispute"]["id"])
    assert "customer_communication" not in draft.files and "customer_name" in draft.fields
    assert any("fonts-noto-cjk" in note for note in draft.notes)


def test_an_unknown_dispute_or_a_charge_the_mirror_lacks(db):
    assert evidence.assemble("dp_nope") is None
    dispute = factories.mirror(factories.DisputeFactory(charge="ch_not_mirrored"))[0]
    draft = evidence.assemble(dispute["id"])
    assert draft.fields == {} and any("ch_not_mirrored is not in the mirror" in n for n in draft.notes)


def test_a_long_conversation_keeps_the_newest_messages_under_stripes_file_limit(disputed, monkeypatch):
    monkeypatch.setattr(evidence.conversation_pdf, "MAX_BYTES", 30_000)
    for n in range(40):
        receive_message(channel="email", sender="misaki.sato@example.jp", subject="Crushed tin",
                        body_text=f"Message {n}: " + "お問い合わせ " * 200)
    draft = evidence.assemble(disputed["dispute"]["id"])
    pdf = draft.files["customer_communication"]
    assert len(pdf.content) <= 30_000
    text = pdf_text(pdf.content)
    words = " ".join(text.split())  # pypdf spaces the text runs its own way
    assert "Message 39:" in words and "Message 0:" not in words and "Messages: the newest 21 of 41" in words
    assert "Only the newest 21 of 41 messages fit in Stripe's 5 MB file limit." in draft.notes
