"""The dispute page: the facts (dispute, charge, card, customer, refunds, the network's reason
code in words), the evidence form with the fields that matter for the reason, "Assemble" (a
draft from what Paydesk knows, each field saying where it came from), and two confirmed
actions: send the evidence (save as a draft, or submit — final) and accept the dispute (final).
Finance and admins act; agents read."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _, gettext_lazy
from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from common.parsing import parse_int
from tickets.models import Ticket

from payments.actions import disputes as dispute_actions
from payments.errors import ActionRefused
from payments.models import Charge, Dispute, Refund
from payments.money import format_money
from payments.stripe_objects import payment_facts, refundable
from payments.stripe_words import label

from ..confirm import ConfirmFlow, ConfirmForm, Outcome
from ..selectors import activity_around
from . import evidence as assembly
from .actions import link_dispute_ticket
from .models import DisputeCase
from .reason_codes import explain

PAGE_TEMPLATE = "disputes/dispute.html"
FLOW_TEMPLATE = "disputes/evidence_flow.html"
PERMISSION = "payments.submit_dispute_evidence"


def _dispute(dispute_id: str) -> Dispute:
    dispute = Dispute.objects.filter(pk=str(dispute_id)[:255]).first()
    if dispute is None:
        raise Http404(_("No such dispute"))
    return dispute


def _facts(dispute: Dispute) -> dict:
    data = dispute.data or {}
    charge = Charge.objects.filter(pk=dispute.charge).first()
    charge_data = (charge.data or {}) if charge else {}
    card = ((data.get("payment_method_details") or {}).get("card") or {})
    details = data.get("evidence_details") or {}
    from ..payment_selectors import contact_of_customer

    contact = contact_of_customer(charge.customer) if charge and charge.customer else None
    return {
        "dispute": dispute, "data": data, "charge": charge, "facts": payment_facts(charge_data) if charge else None,
        "amount": format_money(dispute.amount, dispute.currency),
        "reason_label": label("dispute.reason", dispute.reason), "status_label": label("dispute.status", dispute.status),
        "network_code": card.get("network_reason_code") or "",
        "network_words": explain(card.get("brand") or "", card.get("network_reason_code") or ""),
        "contact": contact, "due_by": dispute.due_by,
        "submissions": details.get("submission_count") or 0, "has_evidence": bool(details.get("has_evidence")),
        "refunds": list(Refund.objects.filter(charge=dispute.charge).order_by("created")),
        "refundable": format_money(refundable(charge), charge.currency) if charge and refundable(charge) else "",
        "charge_refundable": bool(data.get("is_charge_refundable")),
        "answerable": dispute.status in dispute_actions.ANSWERABLE,
        "around": activity_around(contact.pk, charge.created) if contact is not None and charge and charge.created
        else [],
    }


# Fields people write sentences in (a textarea); the others are a line (a name, an address).
_LONG = ("_log", "_explanation", "_rebuttal", "_disclosure", "_text", "_description", "_policy")


def evidence_fields(reason: str) -> list[str]:
    """The fields the form shows for a reason: the reason's own, then those every reason takes."""
    return [name for name in dispute_actions.fields_for(reason) if name in dispute_actions.EVIDENCE_FIELDS]


def _assembled(request, dispute: Dispute):
    """The assembled draft, once per request (the form's values and its sources read it)."""
    if not hasattr(request, "_paydesk_draft"):
        request._paydesk_draft = assembly.assemble(dispute.pk)
    return request._paydesk_draft


# Assembled PDFs a person may attach: the evidence field → the form's checkbox.
ATTACHMENTS = {"customer_communication": "include_conversation", "receipt": "include_receipt"}


class EvidenceForm(ConfirmForm):
    """Text fields for the reason (file fields take an uploaded file's id, or the assembled PDF)."""

    submit = forms.BooleanField(required=False, label=gettext_lazy("Submit now (final: Stripe takes one submission)"))
    include_conversation = forms.BooleanField(
        required=False, label=gettext_lazy("Attach the customer's conversations with support (PDF)"))
    include_receipt = forms.BooleanField(required=False, label=gettext_lazy("Attach the charge's receipt (PDF)"))

    def __init__(self, *args, reason: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name in evidence_fields(reason):
            kind = dispute_actions.EVIDENCE_FIELDS[name]
            if kind != "text":
                widget = forms.TextInput(attrs={"placeholder": "file_…", "class": "mono"})
            elif name.endswith(_LONG):
                widget = forms.Textarea(attrs={"rows": 3})
            else:
                widget = forms.TextInput()
            self.fields[name] = forms.CharField(
                required=False, label=dispute_actions.field_label(name),
                max_length=dispute_actions.TEXT_LIMIT if kind == "text" else 255, widget=widget)

    def evidence(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items()
                if name in dispute_actions.EVIDENCE_FIELDS and value}


class EvidenceFlow(ConfirmFlow):
    name = "dispute_evidence"
    template = FLOW_TEMPLATE
    form_class = EvidenceForm
    permission = PERMISSION

    def target(self, request, contact_id=None, dispute_id=""):
        return _dispute(dispute_id)

    def form_kwargs(self, request, dispute):
        return {"reason": dispute.reason}

    def initial(self, request, dispute):
        current = ((dispute.data or {}).get("evidence") or {})
        initial = {k: v for k, v in current.items() if isinstance(v, str) and v}
        if request.GET.get("assemble"):
            draft = _assembled(request, dispute)
            if draft is not None:
                initial.update({name: field.value for name, field in draft.fields.items()})
                for name, box in ATTACHMENTS.items():
                    initial[box] = name in draft.files
        return initial

    def context(self, request, dispute):
        draft = _assembled(request, dispute) if request.GET.get("assemble") else None
        return {"dispute": dispute, "draft": draft,
                "sources": {name: f.source for name, f in draft.fields.items()} if draft else {}}

    def plan(self, request, dispute, data, ticket):
        # Blank fields go too: one set at Stripe and emptied here is cleared (and the preview says so).
        evidence = {name: value for name, value in data.items() if name in dispute_actions.EVIDENCE_FIELDS}
        attached = {}
        wanted = [name for name, box in ATTACHMENTS.items() if data.get(box)]
        draft = assembly.assemble(dispute.pk) if wanted else None
        for name in wanted:
            pdf = draft.files.get(name) if draft else None
            if pdf is None:
                nothing = (_("There is no conversation to attach.") if name == "customer_communication"
                           else _("There is no receipt to attach."))
                raise ActionRefused(" ".join(draft.notes) if draft and draft.notes else nothing, code="no_file")
            # Uploaded now, so the confirmation names the very file it sends (an upload alone
            # changes nothing at the dispute).
            uploaded = dispute_actions.upload_dispute_file(
                pdf.content, pdf.filename, actor=request.user, idempotency_key=f"{data['token']}-{name}",
                dispute_id=dispute.pk)
            evidence[name] = attached[name] = uploaded.id
        plan = dispute_actions.plan_dispute_evidence(dispute.pk, evidence, actor=request.user,
                                                     submit=bool(data.get("submit")))
        # The preview lists these values; the confirmation sends exactly them.
        return plan.describe(), {"evidence": plan.evidence, "cleared": list(plan.cleared),
                                 "submit": plan.submit, "attached": attached}

    def execute(self, request, dispute, params, ticket, token):
        evidence = {**params["evidence"], **{name: "" for name in params.get("cleared", [])}}
        result = dispute_actions.update_dispute_evidence(dispute.pk, evidence, actor=request.user,
                                                         submit=params["submit"], idempotency_key=token)
        return Outcome(message=result.message, refresh=False)


class AcceptFlow(ConfirmFlow):
    name = "dispute_accept"
    template = "disputes/accept_flow.html"
    form_class = ConfirmForm
    permission = PERMISSION

    def target(self, request, contact_id=None, dispute_id=""):
        return _dispute(dispute_id)

    def context(self, request, dispute):
        return {"dispute": dispute}

    def plan(self, request, dispute, data, ticket):
        return dispute_actions.plan_close_dispute(dispute.pk, actor=request.user).describe(), {}

    def execute(self, request, dispute, params, ticket, token):
        result = dispute_actions.close_dispute(dispute.pk, actor=request.user, idempotency_key=token)
        return Outcome(message=result.message, refresh=False)


evidence_flow = EvidenceFlow()
accept_flow = AcceptFlow()


@require_GET
@permission_required("payments.view_dispute", raise_exception=True)
def dispute_page(request: HttpRequest, dispute_id: str) -> HttpResponse:
    dispute = _dispute(dispute_id)
    case = DisputeCase.objects.select_related("ticket", "assignee").filter(dispute_id=dispute.pk).first()
    context = {**_facts(dispute), "nav": "disputes", "can_act": request.user.has_perm(PERMISSION), "case": case,
               "can_link": request.user.has_perm("disputes.change_disputecase")}
    return render(request, PAGE_TEMPLATE, context)


@require_POST
@permission_required("disputes.change_disputecase", raise_exception=True)
def dispute_ticket(request: HttpRequest, dispute_id: str) -> HttpResponse:
    """Link the ticket the dispute is worked on, by its number (blank: unlink)."""
    dispute = _dispute(dispute_id)
    raw = request.POST.get("ticket", "").strip().lstrip("#")
    ticket = None
    if raw:
        number = parse_int(raw, minimum=1)
        ticket = Ticket.objects.filter(number=number).first() if number is not None else None
        if ticket is None:
            messages.error(request, _("There is no ticket #%(number)s.") % {"number": raw[:20]})
            return redirect("dispute", dispute.pk)
    link_dispute_ticket(actor=request.user, dispute_id=dispute.pk, ticket=ticket)
    if ticket is None:
        messages.success(request, _("The ticket is no longer linked to this dispute."))
    else:
        messages.success(request, _("Ticket #%(number)s is linked to this dispute.") % {"number": ticket.number})
    return redirect("dispute", dispute.pk)
