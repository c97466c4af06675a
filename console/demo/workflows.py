"""The demo's workflows: the auto-ticket rules support teams set up between Stripe and their
helpdesk (templates.py, seed 000), installed and active before the shop's events arrive, so
the demo's disputes, failed subscription payments, refunds and cancellations come in as
routed tickets."""

from __future__ import annotations

AUTO_TICKET_RULES = ("chargeback-ticket", "failed-subscription-payment-ticket", "refund-processed-note",
                     "subscription-cancelled-ticket", "triage-by-intent")


def install_auto_ticket_rules(actor) -> list[int]:
    """Install and activate each rule once (a kept demo database keeps its own)."""
    from django.utils import translation

    from console.workflows.actions import activate_workflow, install_template
    from console.workflows.models import Workflow
    from console.workflows.templates import TEMPLATES

    ids = []
    with translation.override("en"):
        for slug in AUTO_TICKET_RULES:
            workflow = Workflow.objects.filter(name=str(TEMPLATES[slug][0])).first()
            if workflow is None:
                workflow = install_template(actor=actor, slug=slug).workflow
            activate_workflow(actor=actor, workflow=workflow)
            ids.append(workflow.pk)
    return ids
