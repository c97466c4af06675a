"""tickets.actions.intake: what the channels deliver is stored once and queued once; a claim
is a compare-and-swap that only holds inside the transaction recording the outcome; failed
attempts keep a row pending until the last; processing again is a person's audited action."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEntry
from tests import factories
from tests.helpers import committed, tasks_run
from tickets import actions, line
from tickets.models import InboundEmail, LineEvent

from .conftest import eml

pytestmark = pytest.mark.django_db


def test_the_same_email_stored_twice_is_one_row_queued_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        first, stored = actions.store_inbound_email(eml("09-no-to.eml"), esp="postmark",
                                                    envelope_recipient="support@paydesk.test")
        again, stored_again = actions.store_inbound_email(eml("09-no-to.eml"), esp="postmark")

    assert (stored, stored_again, again.pk) == (True, False, first.pk)
    assert len(queued) == 1
    row = InboundEmail.objects.get()
    assert (row.status, row.size, row.envelope_recipient) == ("pending", len(eml("09-no-to.eml")), "support@paydesk.test")


def test_a_claimed_email_is_not_claimed_again():
    email, _ = actions.store_inbound_email(eml("05-utf-8.eml"), esp="file", enqueue=False)

    with transaction.atomic():
        claimed = actions.claim_inbound_email(email.pk)
        actions.finish_inbound_email(email.pk, "processed")
    with transaction.atomic():
        assert actions.claim_inbound_email(email.pk) is None

    assert bytes(claimed.raw) == eml("05-utf-8.eml")
    assert InboundEmail.objects.get().attempts == 1


def test_failed_attempts_keep_the_row_pending_until_the_last_and_never_touch_a_done_one():
    email, _ = actions.store_inbound_email(eml("05-utf-8.eml"), esp="file", enqueue=False)
    done, _ = actions.store_inbound_email(eml("01-plain.eml"), esp="file", enqueue=False)
    with transaction.atomic():
        actions.claim_inbound_email(done.pk)
        actions.finish_inbound_email(done.pk, "processed")

    actions.record_inbound_email_failure(email.pk, "OperationalError: the database system is starting up",
                                         final=False)
    pending = InboundEmail.objects.get(pk=email.pk)
    actions.record_inbound_email_failure(email.pk, "OperationalError: still starting\x00", final=True)
    actions.record_inbound_email_failure(done.pk, "KeyError: 'x'", final=True)

    failed = InboundEmail.objects.get(pk=email.pk)
    assert (pending.status, pending.attempts) == ("pending", 1)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "OperationalError: still starting")
    assert InboundEmail.objects.get(pk=done.pk).status == "processed"


def test_processing_again_is_queued_and_refused_once_it_became_a_message(admin_user):
    failed, _ = actions.store_inbound_email(eml("05-utf-8.eml"), esp="file", enqueue=False)
    actions.record_inbound_email_failure(failed.pk, "KeyError: 'x'", final=True)
    done, _ = actions.store_inbound_email(eml("01-plain.eml"), esp="file", enqueue=False)
    with transaction.atomic():
        actions.claim_inbound_email(done.pk)
        actions.finish_inbound_email(done.pk, "processed")

    with tasks_run() as ran, committed():
        again = actions.reprocess_inbound_email(actor=admin_user, email=failed.pk)
    with pytest.raises(actions.ActionError, match="already became message"):
        actions.reprocess_inbound_email(actor=admin_user, email=done)
    with pytest.raises(actions.ActionError, match="No inbound email"):
        actions.reprocess_inbound_email(actor=admin_user, email=999999)

    assert again.status == "pending" and "tickets.tasks.process_inbound_email_task" in ran
    assert InboundEmail.objects.get(pk=failed.pk).status == "processed"
    assert AuditEntry.objects.get(action="inbound_email.reprocess").details == {
        "status": "failed", "reason": "KeyError: 'x'"}


def test_line_events_redelivered_are_stored_once_and_unusable_ones_are_not_queued(django_capture_on_commit_callbacks):
    usable = factories.line_event(text="届きました")
    postback = factories.line_event("postback")
    body = factories.line_payload(usable, postback)

    with django_capture_on_commit_callbacks() as queued:
        new = actions.store_line_events(line.split_events(body))
        again = actions.store_line_events(line.split_events(body))

    assert len(new) == 1 and again == [] and len(queued) == 1
    assert dict(LineEvent.objects.values_list("type", "status")) == {"message": "pending", "postback": "ignored"}


@pytest.mark.django_db(transaction=True)
def test_a_claim_outside_a_transaction_is_refused():
    (pk,) = actions.store_line_events(line.split_events(factories.line_payload(factories.line_event())))

    with pytest.raises(actions.TicketsError, match="only be claimed inside a transaction"):
        actions.claim_line_event(pk)
    assert LineEvent.objects.get().attempts == 0
