"""Disputes: the evidence Stripe takes, what matters for each reason, and the changes finance
confirms at Stripe — save evidence as a draft, submit it (final), accept the dispute (close,
also final), and upload a file for evidence — each a `plan_*` that says what will be sent and
the action itself, in the refunds' shape: who may, once per confirmation, audited.

Stripe's evidence fields come from the SDK's typed class (`stripe.Dispute.Evidence`, generated
from Stripe's API spec): a field typed as a File is a file field (a `file_…` id from an
upload with purpose `dispute_evidence`), a plain string one is text. A field Stripe adds is
known as soon as the SDK has it.

Stripe accepts one submission: a confirmed submit is sent once, whatever happens to its answer.
Its key travels in the dispute's own metadata (`paydesk_submission`), so a retry after a
timeout finds the submission it made at Stripe and records it instead of sending it again, and
a submission made elsewhere is never mistaken for ours.
"""

from __future__ import annotations

import hashlib
import io
import re
import types
import typing
from dataclasses import dataclass, field

import stripe
from django.db import transaction
from django.utils.translation import gettext as _, gettext_lazy, pgettext_lazy

from audit.models import AuditAction

from .. import stripe_api, stripe_words
from ..errors import ActionRefused
from ..mirror import upsert_fetched
from ..models import Dispute
from ..stripe_objects import ref
from .stripe_calls import (
    audit, confirmation_key, fetch, in_english, mark_sent, money, recorded, require, sentences,
    single_flight, stripe_call, text, was_sent, when,
)

PERMISSION = "payments.submit_dispute_evidence"
SUBMISSION_FIELD = "paydesk_submission"  # in the dispute's Stripe metadata: the key of our submission
TEXT_LIMIT = 150_000  # Stripe: all text evidence together
FILE_MAX_BYTES = 5 * 1024 * 1024  # Stripe: a dispute evidence file
FILE_TYPES = {"pdf": "application/pdf", "jpg": "image/jpeg", "png": "image/png"}
ANSWERABLE = ("needs_response", "warning_needs_response")
UNDER_REVIEW = ("under_review", "warning_under_review")
CLOSED = ("won", "lost", "warning_closed", "prevented")
_FILE_ID = re.compile(r"^file_[A-Za-z0-9]{1,250}$")


def _doing():
    return pgettext_lazy("permission", "answer disputes")


# --- Stripe's evidence fields ------------------------------------------------------------------


def _kind(annotation) -> str | None:
    """"file" for a field typed as a File (an id, or the File when expanded), "text" for a
    string, None for the nested objects (appeal, enhanced evidence) this form does not send."""
    args = set(typing.get_args(annotation)) - {types.NoneType}
    if not args or str not in args:
        return None
    rest = args - {str}
    if not rest:
        return "text"
    if all(getattr(a, "__forward_arg__", getattr(a, "__name__", "")) == "File" for a in rest):
        return "file"
    return None


def _evidence_fields() -> dict[str, str]:
    fields = {}
    for name, annotation in stripe.Dispute.Evidence.__annotations__.items():
        kind = _kind(annotation)
        if kind:
            fields[name] = kind
    return fields


# name → "text" | "file", in the SDK's order.
EVIDENCE_FIELDS: dict[str, str] = _evidence_fields()
TEXT_FIELDS = tuple(name for name, kind in EVIDENCE_FIELDS.items() if kind == "text")
FILE_FIELDS = tuple(name for name, kind in EVIDENCE_FIELDS.items() if kind == "file")

# What matters for each reason (Stripe's guidance per reason); every reason also wants these.
COMMON_FIELDS = ("product_description", "receipt", "customer_communication")
REASON_FIELDS: dict[str, tuple[str, ...]] = {
    "fraudulent": ("customer_name", "customer_email_address", "billing_address", "customer_purchase_ip",
                   "access_activity_log"),
    "product_not_received": ("shipping_carrier", "shipping_tracking_number", "shipping_date", "shipping_address",
                             "shipping_documentation"),
    "subscription_canceled": ("cancellation_policy", "cancellation_policy_disclosure", "cancellation_rebuttal"),
    "duplicate": ("duplicate_charge_id", "duplicate_charge_explanation", "duplicate_charge_documentation"),
    "credit_not_processed": ("refund_policy", "refund_policy_disclosure", "refund_refusal_explanation"),
    "general": ("uncategorized_text", "uncategorized_file"),
}
assert all(f in EVIDENCE_FIELDS for fs in (*REASON_FIELDS.values(), COMMON_FIELDS) for f in fs), \
    "a reason names an evidence field the stripe SDK doesn't know"


def fields_for(reason: str) -> tuple[str, ...]:
    """The fields that matter for a dispute of `reason` (another reason: the general ones)."""
    return REASON_FIELDS.get(reason, REASON_FIELDS["general"]) + COMMON_FIELDS


# What a person reads for each field; a field without words here reads as Stripe names it.
EVIDENCE_LABELS = {
    "access_activity_log": gettext_lazy("Access activity log"),
    "billing_address": gettext_lazy("Billing address"),
    "cancellation_policy": gettext_lazy("Cancellation policy"),
    "cancellation_policy_disclosure": gettext_lazy("How the cancellation policy was shown"),
    "cancellation_rebuttal": gettext_lazy("Why the subscription was not canceled"),
    "customer_communication": gettext_lazy("Communication with the customer"),
    "customer_email_address": gettext_lazy("Customer email"),
    "customer_name": gettext_lazy("Customer name"),
    "customer_purchase_ip": gettext_lazy("Purchase IP address"),
    "customer_signature": gettext_lazy("Customer signature"),
    "duplicate_charge_documentation": gettext_lazy("Documentation of the other payment"),
    "duplicate_charge_explanation": gettext_lazy("How the two payments differ"),
    "duplicate_charge_id": gettext_lazy("The other payment"),
    "product_description": gettext_lazy("Product description"),
    "receipt": gettext_lazy("Receipt"),
    "refund_policy": gettext_lazy("Refund policy"),
    "refund_policy_disclosure": gettext_lazy("How the refund policy was shown"),
    "refund_refusal_explanation": gettext_lazy("Why no refund is due"),
    "service_date": gettext_lazy("Service date"),
    "service_documentation": gettext_lazy("Service documentation"),
    "shipping_address": gettext_lazy("Shipping address"),
    "shipping_carrier": gettext_lazy("Carrier"),
    "shipping_date": gettext_lazy("Shipping date"),
    "shipping_documentation": gettext_lazy("Shipping documentation"),
    "shipping_tracking_number": gettext_lazy("Tracking number"),
    "uncategorized_file": gettext_lazy("Other file"),
    "uncategorized_text": gettext_lazy("Other evidence"),
}


def field_label(name: str) -> str:
    return str(EVIDENCE_LABELS.get(name) or name.replace("_", " "))


# --- reading the dispute -----------------------------------------------------------------------


def _what(dispute_id: str) -> str:
    return _("read dispute %(dispute)s") % {"dispute": dispute_id}


def _missing(dispute_id: str) -> str:
    return _("dispute %(dispute)s") % {"dispute": dispute_id}


def read_dispute(dispute_id: str) -> dict:
    """The dispute as Stripe has it now (the mirror may lag)."""
    if not isinstance(dispute_id, str) or not dispute_id.strip():
        raise ActionRefused(_("Say which dispute."), code="dispute")
    return fetch("disputes", dispute_id.strip(), _what(dispute_id), missing=_missing(dispute_id))


def _details(dispute: dict) -> dict:
    return dispute.get("evidence_details") or {}


def submissions(dispute: dict) -> int:
    return int(_details(dispute).get("submission_count") or 0)


def _status_word(status: str) -> str:
    return str(stripe_words.label("dispute.status", status)).lower()


def _check_open(dispute: dict, *, now: int) -> None:
    """Whether Stripe takes evidence for the dispute now: its status, its deadline, one submission."""
    facts = {"dispute": dispute["id"], "status": _status_word(dispute.get("status") or "")}
    status = dispute.get("status") or ""
    if status in CLOSED:
        raise ActionRefused(_("Dispute %(dispute)s is closed (%(status)s): Stripe takes no more evidence.") % facts,
                            code="closed")
    if submissions(dispute) > 0 or status in UNDER_REVIEW:
        raise ActionRefused(
            _("Evidence for dispute %(dispute)s was already submitted (%(status)s); Stripe accepts one submission.")
            % facts, code="already_submitted")
    if status not in ANSWERABLE:
        raise ActionRefused(_("Dispute %(dispute)s is %(status)s: it takes no evidence.") % facts, code="status")
    due = _details(dispute).get("due_by")
    if _details(dispute).get("past_due") or (due and int(due) <= now):
        raise ActionRefused(
            _("The deadline to answer dispute %(dispute)s passed on %(due)s: Stripe no longer takes evidence.")
            % {**facts, "due": when(due)}, code="past_due")


def _clean(evidence, dispute: dict) -> tuple[dict[str, str], tuple[str, ...], int]:
    """The evidence to send (name → value), the fields to clear (blank here, set at Stripe),
    and the text's length. Refuses unknown names, a file field that is no file id, too much text."""
    if not isinstance(evidence, dict):
        raise ActionRefused(_("The evidence must be a set of fields."), code="evidence")
    unknown = sorted(str(k) for k in evidence if k not in EVIDENCE_FIELDS)
    if unknown:
        raise ActionRefused(_("Stripe has no evidence field %(fields)s.") % {"fields": ", ".join(unknown)},
                            code="unknown_field")
    current = dispute.get("evidence") or {}
    send: dict[str, str] = {}
    cleared = []
    for name in EVIDENCE_FIELDS:  # Stripe's order
        if name not in evidence:
            continue
        value = evidence[name]
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ActionRefused(_("%(field)s must be text.") % {"field": field_label(name)}, code="evidence")
        value = value.strip()
        if not value:
            if ref(current.get(name)):
                cleared.append(name)
            continue
        if EVIDENCE_FIELDS[name] == "file" and not _FILE_ID.match(value):
            raise ActionRefused(
                _("%(field)s must be an uploaded file (an id starting file_), not %(value)s.")
                % {"field": field_label(name), "value": value[:40]}, code="file_field")
        send[name] = value
    length = sum(len(v) for k, v in send.items() if EVIDENCE_FIELDS[k] == "text")
    if length > TEXT_LIMIT:
        raise ActionRefused(
            _("The evidence has %(length)s characters of text; Stripe takes at most %(limit)s in all.")
            % {"length": f"{length:,}", "limit": f"{TEXT_LIMIT:,}"}, code="too_long")
    return send, tuple(cleared), length


# --- evidence: save or submit --------------------------------------------------------------------


@dataclass(frozen=True)
class EvidencePlan:
    dispute_id: str
    amount: int
    currency: str
    reason: str
    due_by: int | None
    submit: bool
    evidence: dict  # name → value, as sent
    cleared: tuple  # names emptied at Stripe
    text_length: int
    dispute: dict = field(repr=False, compare=False)

    @property
    def params(self) -> dict:
        evidence = dict(self.evidence) | {name: "" for name in self.cleared}
        params: dict = {"evidence": evidence, "submit": self.submit}
        return params

    def describe(self) -> str:
        """The preview, in the reader's language: what goes to Stripe, and whether it is final."""
        names = [field_label(n) + (f" ({v})" if EVIDENCE_FIELDS[n] == "file" else "") for n, v in self.evidence.items()]
        facts = {
            "dispute": self.dispute_id, "amount": money(self.amount, self.currency),
            "reason": str(stripe_words.label("dispute.reason", self.reason)).lower(),
            "fields": ", ".join(names) or _("no fields"), "cleared": ", ".join(field_label(n) for n in self.cleared),
            "count": len(self.evidence), "due": when(self.due_by),
        }
        if self.submit:
            said = _("Submit the evidence for dispute %(dispute)s (%(amount)s, %(reason)s): %(fields)s.") % facts
        else:
            said = _("Save the evidence for dispute %(dispute)s (%(amount)s, %(reason)s) as a draft: %(fields)s.") % facts
        cleared = _("Emptied: %(cleared)s.") % facts if self.cleared else ""
        if self.submit:
            after = _("Final: Stripe accepts one submission, and the evidence can't be changed afterwards.")
        else:
            after = _("Nothing is submitted: the evidence can be changed until %(due)s.") % facts
        return sentences(said, cleared, after)


def build_evidence_plan(dispute: dict, evidence, *, submit: bool) -> EvidencePlan:
    """Check `evidence` against the dispute as Stripe just returned it."""
    _check_open(dispute, now=stripe_api.now_seconds())
    send, cleared, length = _clean(evidence, dispute)
    if submit and not send and not any(ref(v) for k, v in (dispute.get("evidence") or {}).items()
                                       if k in EVIDENCE_FIELDS and k not in cleared):
        raise ActionRefused(_("There is no evidence to submit; fill in at least one field."), code="empty")
    return EvidencePlan(
        dispute_id=dispute["id"], amount=int(dispute.get("amount") or 0), currency=dispute.get("currency") or "",
        reason=dispute.get("reason") or "", due_by=_details(dispute).get("due_by"), submit=submit,
        evidence=send, cleared=cleared, text_length=length, dispute=dispute,
    )


def plan_dispute_evidence(dispute_id: str, evidence, *, actor, submit: bool) -> EvidencePlan:
    """Check evidence for the dispute as Stripe has it now; `describe()` it for the confirmation."""
    require(actor, PERMISSION, _doing())
    return build_evidence_plan(read_dispute(dispute_id), evidence, submit=bool(submit))


@dataclass(frozen=True)
class DisputeResult:
    dispute: dict
    plan: EvidencePlan | None
    action: AuditAction
    replayed: bool = False  # this confirmation had already done it: nothing new was sent
    recovered: bool = False  # Stripe had it from an attempt whose answer was lost: recorded now

    @property
    def message(self) -> str:
        facts = {"dispute": self.dispute["id"]}
        if self.action == AuditAction.DISPUTE_CLOSE:
            if self.replayed:
                return _("This confirmation already accepted dispute %(dispute)s; nothing was sent again.") % facts
            return _("Dispute %(dispute)s accepted: it is closed at Stripe.") % facts
        if self.action == AuditAction.DISPUTE_EVIDENCE_SUBMIT:
            if self.replayed:
                return _("This confirmation already submitted the evidence for dispute %(dispute)s; nothing was "
                         "submitted again.") % facts
            return _("Evidence for dispute %(dispute)s submitted to Stripe.") % facts
        if self.replayed:
            return _("This confirmation already saved the evidence for dispute %(dispute)s; nothing was sent again.") % facts
        return _("Evidence for dispute %(dispute)s saved as a draft at Stripe.") % facts


def _mirrored_or_fetched(dispute_id: str) -> dict:
    mirrored = Dispute.objects.filter(pk=dispute_id).values_list("data", flat=True).first()
    return mirrored or read_dispute(dispute_id)


def _record(dispute: dict, action: AuditAction, *, actor, key: str, **details) -> None:
    """Mirror Stripe's answer and audit the action, in one transaction."""
    with transaction.atomic():
        upsert_fetched([dispute], stripe_api.now_seconds())
        audit(actor, action, dispute["id"], idempotency_key=key, status=dispute.get("status") or "",
              charge=ref(dispute.get("charge")), **details)


def update_dispute_evidence(dispute_id: str, evidence, *, actor, submit: bool, idempotency_key: str) -> DisputeResult:
    """Save the evidence as a draft (`submit=False`) or submit it (`submit=True`, final).

    `idempotency_key` is the confirmation form's token. The same confirmation sent again (a
    double click, a retry after a timeout) never submits twice: its audit row, or its key in
    the dispute's metadata at Stripe, says it was done; a submission someone else made refuses it."""
    require(actor, PERMISSION, _doing())
    submit = bool(submit)
    action = AuditAction.DISPUTE_EVIDENCE_SUBMIT if submit else AuditAction.DISPUTE_EVIDENCE_SAVE
    key = confirmation_key("dispute_submit" if submit else "dispute_evidence", dispute_id, idempotency_key)
    with single_flight(key):
        if recorded(action, dispute_id, key) is not None:
            return DisputeResult(_mirrored_or_fetched(dispute_id), None, action, replayed=True)
        dispute = read_dispute(dispute_id)
        if submit and submissions(dispute) > 0 and (dispute.get("metadata") or {}).get(SUBMISSION_FIELD) == key:
            # This confirmation's submission reached Stripe, its answer didn't reach us: record it.
            _record(dispute, action, actor=actor, key=key, recovered=True, fields=[])
            return DisputeResult(dispute, None, action, replayed=True, recovered=True)
        plan = build_evidence_plan(dispute, evidence, submit=submit)
        params = plan.params
        if submit:
            params["metadata"] = {SUBMISSION_FIELD: key}
        mark_sent(key)
        doing = (_("submit the evidence for dispute %(dispute)s") if submit
                 else _("save the evidence for dispute %(dispute)s")) % {"dispute": dispute_id}
        with stripe_call(doing, writes=True, missing=_missing(dispute_id)):
            dispute = stripe_api.to_dict(
                stripe_api.resource("disputes").update(dispute_id, params, {"idempotency_key": key}))
        _record(dispute, action, actor=actor, key=key, fields=sorted(plan.evidence), cleared=list(plan.cleared),
                text_length=plan.text_length, description=in_english(plan.describe))
    return DisputeResult(dispute, plan, action)


# --- accept (close) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosePlan:
    dispute_id: str
    amount: int
    currency: str
    reason: str
    inquiry: bool
    dispute: dict = field(repr=False, compare=False)

    def describe(self) -> str:
        facts = {"dispute": self.dispute_id, "amount": money(self.amount, self.currency),
                 "reason": str(stripe_words.label("dispute.reason", self.reason)).lower()}
        if self.inquiry:
            said = _("Accept inquiry %(dispute)s (%(amount)s, %(reason)s) without answering it.") % facts
        else:
            said = _("Accept dispute %(dispute)s (%(amount)s, %(reason)s): the customer keeps %(amount)s and the "
                     "dispute is lost.") % facts
        return sentences(said, _("Final: an accepted dispute can't be answered afterwards."))


def build_close_plan(dispute: dict) -> ClosePlan:
    status = dispute.get("status") or ""
    facts = {"dispute": dispute["id"], "status": _status_word(status)}
    if status in CLOSED:
        raise ActionRefused(_("Dispute %(dispute)s is already closed (%(status)s).") % facts, code="closed")
    if status not in ANSWERABLE:
        raise ActionRefused(
            _("Dispute %(dispute)s is %(status)s: its evidence is with the card network, so it can no longer be "
              "accepted.") % facts, code="status")
    return ClosePlan(dispute["id"], int(dispute.get("amount") or 0), dispute.get("currency") or "",
                     dispute.get("reason") or "", status.startswith("warning_"), dispute)


def plan_close_dispute(dispute_id: str, *, actor) -> ClosePlan:
    require(actor, PERMISSION, _doing())
    return build_close_plan(read_dispute(dispute_id))


def close_dispute(dispute_id: str, *, actor, idempotency_key: str) -> DisputeResult:
    """Accept the dispute (Stripe's close): final. Once per confirmation."""
    require(actor, PERMISSION, _doing())
    action = AuditAction.DISPUTE_CLOSE
    key = confirmation_key("dispute_close", dispute_id, idempotency_key)
    with single_flight(key):
        if recorded(action, dispute_id, key) is not None:
            return DisputeResult(_mirrored_or_fetched(dispute_id), None, action, replayed=True)
        dispute = read_dispute(dispute_id)
        if (dispute.get("status") in ("lost", "warning_closed")) and was_sent(key):
            # Closed by this confirmation, whose answer was lost (close takes no metadata; the
            # cache's mark says it was sent): record it rather than refuse it.
            _record(dispute, action, actor=actor, key=key, recovered=True)
            return DisputeResult(dispute, None, action, replayed=True, recovered=True)
        plan = build_close_plan(dispute)
        mark_sent(key)
        with stripe_call(_("accept dispute %(dispute)s") % {"dispute": dispute_id}, writes=True,
                         missing=_missing(dispute_id)):
            dispute = stripe_api.to_dict(stripe_api.resource("disputes").close(dispute_id, None, {"idempotency_key": key}))
        _record(dispute, action, actor=actor, key=key, description=in_english(plan.describe))
    return DisputeResult(dispute, None, action)


# --- files ---------------------------------------------------------------------------------------


def file_type(content: bytes) -> str | None:
    """What the bytes are (pdf, jpg, png), by their magic numbers, whatever the name says."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


@dataclass(frozen=True)
class UploadResult:
    file: dict
    replayed: bool = False

    @property
    def id(self) -> str:
        return self.file["id"]


def check_dispute_file(content: bytes, filename: str) -> str:
    """The file's type, or why Stripe won't take it as dispute evidence."""
    if not isinstance(content, (bytes, bytearray)) or not content:
        raise ActionRefused(_("The file is empty."), code="empty_file")
    if len(content) > FILE_MAX_BYTES:
        raise ActionRefused(
            _("%(name)s is %(size)s MB; Stripe takes evidence files up to %(limit)s MB.")
            % {"name": filename or _("The file"), "size": f"{len(content) / 1024 / 1024:.1f}",
               "limit": FILE_MAX_BYTES // 1024 // 1024}, code="file_too_big")
    kind = file_type(bytes(content[:16]))
    if kind is None:
        raise ActionRefused(_("%(name)s is not a PDF, JPEG or PNG file: Stripe takes only those as evidence.")
                            % {"name": filename or _("The file")}, code="file_type")
    return kind


def _filename(filename: str, kind: str) -> str:
    name = re.sub(r"[^\w.\- ]+", "_", (filename or "").strip())[:100].strip() or "evidence"
    if not name.lower().endswith(("." + kind, ".jpeg") if kind == "jpg" else ("." + kind,)):
        name = f"{name}.{kind}"
    return name


def upload_dispute_file(content: bytes, filename: str, *, actor, idempotency_key: str, dispute_id: str = "") -> UploadResult:
    """Upload a PDF, JPEG or PNG (at most 5 MB) to Stripe with purpose `dispute_evidence`;
    its `file_…` id goes into a file field of the evidence. `dispute_id`: the dispute it is
    for, where the audit row shows. Once per confirmation (and per content)."""
    require(actor, PERMISSION, _doing())
    filename = text(filename, 200, _("file name"))
    kind = check_dispute_file(content, filename)
    digest = hashlib.sha256(content).hexdigest()
    target = dispute_id or "stripe_files"
    key = confirmation_key("dispute_file", digest[:32], idempotency_key)
    with single_flight(key):
        done = recorded(AuditAction.DISPUTE_FILE_UPLOAD, target, key)
        if done is not None:
            return UploadResult({"id": done.get("file"), "object": "file", "purpose": "dispute_evidence",
                                 "size": done.get("size"), "type": done.get("type"), "filename": done.get("filename")},
                                replayed=True)
        upload = io.BytesIO(bytes(content))
        upload.name = _filename(filename, kind)
        mark_sent(key)
        # Sent again with the same key after a lost answer, Stripe answers with the same file.
        with stripe_call(_("upload %(name)s") % {"name": upload.name}, writes=True):
            created = stripe_api.to_dict(stripe_api.client().v1.files.create(
                {"purpose": "dispute_evidence", "file": upload}, {"idempotency_key": key}))
        with transaction.atomic():
            audit(actor, AuditAction.DISPUTE_FILE_UPLOAD, target, file=created.get("id"), filename=upload.name,
                  size=len(content), type=kind, sha256=digest, idempotency_key=key,
                  **({"dispute": dispute_id} if dispute_id else {}))
    return UploadResult(created)
