"""The ready-made workflows (console/workflows/templates.py): each is a valid definition, named
in the reader's language, and plans what it promises on a matching event."""

import pytest
from django.utils import translation

from console.workflows.definition import validate_definition
from console.workflows.engine import plan_run, stripe_context
from console.workflows.templates import TAG_VIP_CUSTOMERS, TEMPLATES
from tests import factories


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_every_template_is_a_valid_definition(slug):
    assert validate_definition(TEMPLATES[slug][1]) == []


def test_templates_are_named_in_the_readers_language():
    with translation.override("ja"):
        assert str(TEMPLATES["chargeback-ticket"][0]) == "チャージバック：経理向けのチケットを作成"


@pytest.mark.parametrize("amount, metadata", [(90000, False), (150000, False), (250000, True)])
def test_vip_marks_only_orders_over_2000_usd(amount, metadata):
    intent = factories.PaymentIntentFactory(amount=amount, currency="usd")
    plan = plan_run(TAG_VIP_CUSTOMERS, stripe_context(factories.event("payment_intent.succeeded", intent)))
    actions = [s.detail["action"] for s in plan.actions]
    assert plan.matched == (amount > 100000)
    assert ("update_customer_metadata" in actions) == metadata
