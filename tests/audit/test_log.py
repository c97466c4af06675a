"""audit.log.record and audit.selectors: one row per action, inside the action's transaction,
announced only once it commits; action names come from the enum."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from audit import selectors
from audit.log import record
from audit.models import AuditAction, AuditEntry
from audit.signals import audit_recorded
from tests.helpers import committed

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    calls = []

    def listener(sender, entry_id, action, **kwargs):
        calls.append((entry_id, action))

    audit_recorded.connect(listener, dispatch_uid="test_audit.heard")
    yield calls
    audit_recorded.disconnect(dispatch_uid="test_audit.heard")


def test_a_row_is_written_in_the_callers_transaction_and_announced_after_commit(agent, heard):
    with committed():
        with transaction.atomic():
            entry = record(actor=agent, action=AuditAction.CHARGE_REFUND, target="ch_1", amount=500, currency="jpy",
                           idempotency_key="paydesk:refund:ch_1:abc")
            assert heard == []  # nothing hears of it inside the transaction
    assert heard == [(entry.pk, "charge.refund")]
    row = AuditEntry.objects.get()
    assert (row.actor, row.action, row.target) == (agent, "charge.refund", "ch_1")
    assert row.details == {"amount": 500, "currency": "jpy", "idempotency_key": "paydesk:refund:ch_1:abc"}


def test_a_rolled_back_action_leaves_no_row_and_no_announcement(agent, heard):
    with committed(), pytest.raises(RuntimeError):
        with transaction.atomic():
            record(actor=agent, action=AuditAction.TICKET_NOTE, target="ticket:7")
            raise RuntimeError("the action failed after recording")
    assert not AuditEntry.objects.exists() and heard == []


def test_the_system_and_anonymous_users_are_recorded_without_an_actor():
    assert record(actor=None, action="message.delivered", target="message:1").actor is None
    assert record(actor=AnonymousUser(), action=AuditAction.MESSAGE_RECEIVE, target="ticket:1").actor is None


def test_an_action_outside_the_enum_is_refused():
    with pytest.raises(ValueError):
        record(actor=None, action="refund.create", target="ch_1")
    assert not AuditEntry.objects.exists()


def test_a_long_target_is_cut_to_the_column_and_found_again():
    target = "x" * 400
    record(actor=None, action=AuditAction.STRIPE_OBJECT_RESYNC, target=target, object="charge")
    assert selectors.details_of(AuditAction.STRIPE_OBJECT_RESYNC, target) == [{"object": "charge"}]


def test_selectors_find_what_a_confirmation_did(agent):
    record(actor=agent, action=AuditAction.SUBSCRIPTION_CANCEL, target="sub_1", idempotency_key="k1", at_period_end=True)
    record(actor=agent, action=AuditAction.SUBSCRIPTION_CANCEL, target="sub_1", idempotency_key="k2")
    record(actor=agent, action=AuditAction.CHARGE_REFUND, target="sub_1", idempotency_key="k3")
    assert [d["idempotency_key"] for d in selectors.details_of(AuditAction.SUBSCRIPTION_CANCEL, "sub_1")] == ["k1", "k2"]
    assert selectors.recorded(AuditAction.SUBSCRIPTION_CANCEL, "sub_1", idempotency_key="k1")["at_period_end"] is True
    assert selectors.recorded(AuditAction.SUBSCRIPTION_CANCEL, "sub_1", idempotency_key="k3") is None
    assert selectors.recorded(AuditAction.SUBSCRIPTION_CANCEL, "sub_2", idempotency_key="k1") is None


def test_one_rule_for_who_may_act(agent, no_role):
    from django.core.exceptions import PermissionDenied

    from audit.actors import require

    require(agent, "payments.refund_charge", doing="refund charges")
    require(None, "payments.refund_charge", doing="link customers", system=True)
    with pytest.raises(PermissionDenied, match="Your role can't refund charges"):
        require(no_role, "payments.refund_charge", doing="refund charges")
    with pytest.raises(PermissionDenied, match="on its own"):
        require(None, "payments.refund_charge", doing="refund charges")
    with pytest.raises(PermissionDenied, match="Sign in"):
        require(AnonymousUser(), "payments.refund_charge", doing="refund charges")
    no_role.is_active = False
    with pytest.raises(PermissionDenied, match="Sign in"):
        require(no_role, doing="do anything")
