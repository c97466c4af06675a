"""payments.actions.disputes over real HTTP: save and submit evidence, accept, upload a file.

The SDK talks to the recording gateway of test_stripe_actions, which passes disputes and files
on to the Stripe stand-in beside localstripe (console/demo/localstripe_server.py: Stripe-shaped
from payments/samples.json). A test tells the stand-in its dispute as the demo's seed does
(`POST /_paydesk/objects`); the gateway records what the SDK sent — the nested `evidence[...]`
form fields, `submit`, the multipart upload, the Idempotency-Key — and can hold an answer back
past the client's timeout.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
import stripe
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from payments import errors, samples
from payments.actions import disputes
from payments.actions.stripe_calls import stripe_call
from payments.models import Dispute
from tests.payments.test_stripe_actions import audit, gateway_server, gw, token  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

DAY = 86400
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def tell(localstripe, **fields) -> dict:
    """A dispute the stand-in knows (as if Stripe had opened it), due in 5 days by default."""
    dispute = samples.sample("dispute", id=samples.new_id("dp"), status="needs_response", reason="fraudulent",
                             amount=3200, currency="jpy", charge=samples.new_id("ch"), payment_intent=None,
                             created=int(time.time()) - DAY)
    dispute["evidence_details"] = {**dispute["evidence_details"], "due_by": int(time.time()) + 5 * DAY}
    for key, value in fields.items():
        if key in ("due_by", "submission_count"):
            dispute["evidence_details"][key] = value
        elif key == "evidence":
            dispute["evidence"] = {**dispute["evidence"], **value}
        else:
            dispute[key] = value
    requests.post(f"{localstripe.url}/_paydesk/objects", json=dispute, timeout=5).raise_for_status()
    return dispute


def writes(gw) -> list[dict]:
    return [r for r in gw.requests if r["method"] == "POST"]


# --- the fields ----------------------------------------------------------------------------------


def test_evidence_fields_are_the_sdks_text_and_file_fields():
    assert disputes.EVIDENCE_FIELDS["customer_name"] == "text"
    assert disputes.EVIDENCE_FIELDS["uncategorized_text"] == "text"
    assert {"customer_communication", "receipt", "shipping_documentation", "uncategorized_file",
            "cancellation_policy", "refund_policy"} <= set(disputes.FILE_FIELDS)
    # Nested objects (appeal, enhanced evidence) are not form fields.
    assert "appeal" not in disputes.EVIDENCE_FIELDS and "enhanced_evidence" not in disputes.EVIDENCE_FIELDS
    assert set(stripe.Dispute.Evidence.__annotations__) - set(disputes.EVIDENCE_FIELDS) == {"appeal", "enhanced_evidence"}
    assert disputes.fields_for("fraudulent") == (
        "customer_name", "customer_email_address", "billing_address", "customer_purchase_ip", "access_activity_log",
        "product_description", "receipt", "customer_communication")
    assert disputes.fields_for("unrecognized") == disputes.fields_for("general")
    assert disputes.field_label("customer_purchase_ip") == "Purchase IP address"


# --- save and submit -----------------------------------------------------------------------------


def test_save_draft_sends_nested_evidence_mirrors_and_audits(gw, localstripe, finance):
    dispute = tell(localstripe)
    evidence = {"customer_name": " Misaki Sato ", "customer_email_address": "misaki.sato@example.jp",
                "receipt": "file_1MoS6qLgUG5tbmjcWnnbymCW", "billing_address": ""}
    plan = disputes.plan_dispute_evidence(dispute["id"], evidence, actor=finance, submit=False)
    said = plan.describe()
    assert said.startswith(f"Save the evidence for dispute {dispute['id']} (¥3,200, fraudulent) as a draft: "
                           "Customer email, Customer name, Receipt (file_1MoS6qLgUG5tbmjcWnnbymCW).")
    assert "Nothing is submitted" in said and "Final" not in said
    t = token()
    result = disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=False, idempotency_key=t)
    assert not result.replayed and result.dispute["status"] == "needs_response"

    [sent] = writes(gw)
    assert sent["path"] == f"/v1/disputes/{dispute['id']}"
    assert sent["idempotency_key"] == f"paydesk:dispute_evidence:{dispute['id']}:{t}"
    assert sent["params"] == {"evidence[customer_name]": "Misaki Sato",
                              "evidence[customer_email_address]": "misaki.sato@example.jp",
                              "evidence[receipt]": "file_1MoS6qLgUG5tbmjcWnnbymCW", "submit": "false"}
    mirrored = Dispute.objects.get(pk=dispute["id"])
    assert mirrored.data["evidence"]["customer_name"] == "Misaki Sato"
    [entry] = audit("dispute.evidence_save")
    assert entry.actor == finance and entry.target == dispute["id"]
    assert entry.details["fields"] == ["customer_email_address", "customer_name", "receipt"]
    assert entry.details["description"].startswith("Save the evidence")
    assert result.message == f"Evidence for dispute {dispute['id']} saved as a draft at Stripe."


def test_submit_is_final_sent_once_and_a_second_submit_is_refused(gw, localstripe, finance, admin_user):
    dispute = tell(localstripe, evidence={"customer_name": "Misaki Sato"})
    evidence = {"uncategorized_text": "Delivered; the customer thanked us by email.", "customer_name": ""}
    plan = disputes.plan_dispute_evidence(dispute["id"], evidence, actor=finance, submit=True)
    assert plan.describe().endswith("Emptied: Customer name. Final: Stripe accepts one submission, and the evidence "
                                    "can't be changed afterwards.")
    t = token()
    result = disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=True, idempotency_key=t)
    key = f"paydesk:dispute_submit:{dispute['id']}:{t}"
    [sent] = writes(gw)
    assert sent["params"]["submit"] == "true" and sent["idempotency_key"] == key
    assert sent["params"]["evidence[customer_name]"] == ""  # emptied at Stripe
    assert sent["params"]["metadata[paydesk_submission]"] == key
    assert result.dispute["status"] == "under_review"
    assert Dispute.objects.get(pk=dispute["id"]).status == "under_review"

    # The same confirmation again (a double click): nothing is sent.
    again = disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=True, idempotency_key=t)
    assert again.replayed and "nothing was submitted again" in again.message
    # Another confirmation: Stripe accepts one submission.
    with pytest.raises(errors.ActionRefused, match="was already submitted") as caught:
        disputes.update_dispute_evidence(dispute["id"], evidence, actor=admin_user, submit=True, idempotency_key=token())
    assert caught.value.code == "already_submitted"
    assert len(writes(gw)) == 1 and len(audit("dispute.evidence_submit")) == 1


def test_timeout_after_the_submit_reached_stripe_a_retry_does_not_submit_again(gw, localstripe, finance, settings):
    settings.STRIPE_API_TIMEOUT = 0.5
    dispute = tell(localstripe)
    evidence = {"customer_name": "Misaki Sato"}
    t = token()
    reached = gw.fault("POST", f"/v1/disputes/{dispute['id']}", delay=1.5)
    with pytest.raises(errors.StripeActionFailed) as caught:
        disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=True, idempotency_key=t)
    assert caught.value.transient and "trying again with the same confirmation is safe" in caught.value.message
    assert reached.wait(10)  # the submission reached Stripe after all
    assert AuditEntry.objects.count() == 0

    result = disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=True, idempotency_key=t)
    assert result.replayed and result.recovered and result.dispute["status"] == "under_review"
    assert len(writes(gw)) == 1  # submitted once
    [entry] = audit("dispute.evidence_submit")
    assert entry.details["recovered"] is True
    assert Dispute.objects.get(pk=dispute["id"]).status == "under_review"


def test_a_submission_made_elsewhere_refuses_a_retry(gw, localstripe, finance):
    dispute = tell(localstripe, status="under_review", submission_count=1)
    with pytest.raises(errors.ActionRefused, match=re.escape(f"Evidence for dispute {dispute['id']} was already "
                                                             "submitted (under review)")):
        disputes.update_dispute_evidence(dispute["id"], {"customer_name": "x"}, actor=finance, submit=True,
                                         idempotency_key=token())
    assert writes(gw) == [] and AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "evidence", "code", "message"),
    [
        ({"due_by": int(time.time()) - 60}, {"customer_name": "x"}, "past_due", "The deadline to answer dispute"),
        ({"submission_count": 1}, {"customer_name": "x"}, "already_submitted", "Stripe accepts one submission"),
        ({"status": "lost"}, {"customer_name": "x"}, "closed", "is closed (lost): Stripe takes no more evidence"),
        ({}, {"access_activity_log": "a" * 100_000, "uncategorized_text": "b" * 50_001}, "too_long",
         "The evidence has 150,001 characters of text; Stripe takes at most 150,000 in all."),
        ({}, {"customer_nickname": "x"}, "unknown_field", "Stripe has no evidence field customer_nickname."),
        ({}, {"receipt": "receipt.pdf"}, "file_field", "Receipt must be an uploaded file (an id starting file_)"),
        ({}, {"customer_name": ""}, "empty", "There is no evidence to submit"),
    ],
)
def test_bad_evidence_is_refused_and_nothing_is_sent(gw, localstripe, finance, fields, evidence, code, message):
    dispute = tell(localstripe, **fields)
    for submit in (True, False) if code != "empty" else (True,):
        with pytest.raises(errors.ActionRefused, match=re.escape(message)) as caught:
            disputes.update_dispute_evidence(dispute["id"], evidence, actor=finance, submit=submit,
                                             idempotency_key=token())
        assert caught.value.code == code
    assert writes(gw) == [] and AuditEntry.objects.count() == 0 and not Dispute.objects.exists()


def test_agents_may_not_answer_disputes(gw, localstripe, agent):
    dispute = tell(localstripe)
    for attempt in (
        lambda: disputes.plan_dispute_evidence(dispute["id"], {}, actor=agent, submit=False),
        lambda: disputes.update_dispute_evidence(dispute["id"], {"customer_name": "x"}, actor=agent, submit=True,
                                                 idempotency_key=token()),
        lambda: disputes.close_dispute(dispute["id"], actor=agent, idempotency_key=token()),
        lambda: disputes.upload_dispute_file(PDF, "a.pdf", actor=agent, idempotency_key=token()),
    ):
        with pytest.raises(PermissionDenied, match="can't answer disputes"):
            attempt()
    assert gw.requests == [] and AuditEntry.objects.count() == 0


def test_an_unknown_dispute_is_not_found_not_an_internal_error(gw, localstripe, finance):
    with pytest.raises(errors.StripeActionFailed) as caught:
        disputes.update_dispute_evidence("dp_doesnotexist", {"customer_name": "x"}, actor=finance, submit=False,
                                         idempotency_key=token())
    assert caught.value.message == "Stripe has no dispute dp_doesnotexist (not found)."
    assert caught.value.code == "resource_missing" and caught.value.http_status == 404 and not caught.value.transient
    assert writes(gw) == []


def test_a_404_without_stripes_error_body_is_not_found_too():
    # A server without the route (localstripe before the stand-in's portal route) answers a
    # plain-text 404, which the SDK reports as an API error.
    with pytest.raises(errors.StripeActionFailed) as caught:
        with stripe_call("create a billing-portal session for cus_1", writes=True):
            raise stripe.APIError("Invalid response body from API: 404: Not Found", http_status=404)
    assert caught.value.message == "Stripe couldn't create a billing-portal session for cus_1: not found."
    assert "internal error" not in caught.value.message and not caught.value.transient


# --- accept ----------------------------------------------------------------------------------------


def test_accept_closes_once_and_a_closed_dispute_is_refused(gw, localstripe, finance):
    dispute = tell(localstripe)
    plan = disputes.plan_close_dispute(dispute["id"], actor=finance)
    assert plan.describe() == (f"Accept dispute {dispute['id']} (¥3,200, fraudulent): the customer keeps ¥3,200 and "
                               "the dispute is lost. Final: an accepted dispute can't be answered afterwards.")
    t = token()
    result = disputes.close_dispute(dispute["id"], actor=finance, idempotency_key=t)
    assert result.dispute["status"] == "lost" and not result.replayed
    [sent] = writes(gw)
    assert sent["path"] == f"/v1/disputes/{dispute['id']}/close"
    assert sent["idempotency_key"] == f"paydesk:dispute_close:{dispute['id']}:{t}"
    assert Dispute.objects.get(pk=dispute["id"]).status == "lost"
    [entry] = audit("dispute.close")
    assert entry.actor == finance and entry.details["status"] == "lost"

    assert disputes.close_dispute(dispute["id"], actor=finance, idempotency_key=t).replayed
    with pytest.raises(errors.ActionRefused, match=re.escape(f"Dispute {dispute['id']} is already closed (lost).")):
        disputes.close_dispute(dispute["id"], actor=finance, idempotency_key=token())
    assert len(writes(gw)) == 1 and len(audit("dispute.close")) == 1


@pytest.mark.parametrize("status", ["won", "warning_closed", "under_review"])
def test_accepting_a_closed_or_reviewed_dispute_sends_nothing(gw, localstripe, finance, status):
    dispute = tell(localstripe, status=status)
    with pytest.raises(errors.ActionRefused) as caught:
        disputes.close_dispute(dispute["id"], actor=finance, idempotency_key=token())
    assert caught.value.code == ("status" if status == "under_review" else "closed")
    assert writes(gw) == [] and AuditEntry.objects.count() == 0


def test_an_inquiry_is_accepted_as_an_inquiry(gw, localstripe, finance):
    dispute = tell(localstripe, status="warning_needs_response", reason="general")
    assert disputes.plan_close_dispute(dispute["id"], actor=finance).describe().startswith(
        f"Accept inquiry {dispute['id']} (¥3,200, general) without answering it.")
    assert disputes.close_dispute(dispute["id"], actor=finance, idempotency_key=token()).dispute["status"] == "warning_closed"


# --- files -------------------------------------------------------------------------------------


def test_upload_is_multipart_with_purpose_dispute_evidence_once_per_confirmation(gw, localstripe, finance):
    dispute = tell(localstripe)
    t = token()
    result = disputes.upload_dispute_file(PDF, "会話の記録", actor=finance, idempotency_key=t, dispute_id=dispute["id"])
    assert result.id.startswith("file_") and result.file["purpose"] == "dispute_evidence"
    [sent] = writes(gw)
    assert sent["path"] == "/v1/files" and sent["content_type"].startswith("multipart/form-data; boundary=")
    assert sent["params"] == {"purpose": "dispute_evidence"}
    assert sent["files"]["file"]["content"] == PDF and sent["files"]["file"]["filename"] == "会話の記録.pdf"
    assert sent["idempotency_key"].startswith("paydesk:dispute_file:") and sent["idempotency_key"].endswith(t)
    [entry] = audit("dispute.file_upload")
    assert entry.target == dispute["id"] and entry.details["file"] == result.id and entry.details["type"] == "pdf"

    again = disputes.upload_dispute_file(PDF, "会話の記録", actor=finance, idempotency_key=t, dispute_id=dispute["id"])
    assert again.replayed and again.id == result.id and len(writes(gw)) == 1
    # The id goes into a file field of the evidence.
    disputes.update_dispute_evidence(dispute["id"], {"customer_communication": result.id}, actor=finance,
                                     submit=False, idempotency_key=token())
    assert writes(gw)[-1]["params"]["evidence[customer_communication]"] == result.id


@pytest.mark.parametrize(
    ("content", "name", "code", "message"),
    [
        (b"Dear shop, ...", "letter.pdf", "file_type", "letter.pdf is not a PDF, JPEG or PNG file"),
        (b"GIF89a....", "photo.png", "file_type", "photo.png is not a PDF, JPEG or PNG file"),
        (PDF + b"0" * (5 * 1024 * 1024), "big.pdf", "file_too_big", "big.pdf is 5.0 MB; Stripe takes evidence files up to 5 MB."),
        (b"", "empty.pdf", "empty_file", "The file is empty."),
    ],
)
def test_a_wrong_or_too_big_file_is_refused_and_nothing_is_sent(gw, localstripe, finance, content, name, code, message):
    with pytest.raises(errors.ActionRefused, match=re.escape(message)) as caught:
        disputes.upload_dispute_file(content, name, actor=finance, idempotency_key=token())
    assert caught.value.code == code
    assert gw.requests == [] and AuditEntry.objects.count() == 0


def test_png_and_jpeg_are_known_by_their_bytes():
    assert disputes.file_type(b"\x89PNG\r\n\x1a\n....") == "png"
    assert disputes.file_type(b"\xff\xd8\xff\xe0....") == "jpg"
    assert disputes.file_type(PDF) == "pdf"
    assert disputes.file_type(b"<html>") is None
