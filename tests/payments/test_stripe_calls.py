"""payments.actions.stripe_calls.hold: a named lock as a unique row, on every database —
exclusive across connections, waited for, released on error, taken over after a holder died."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.utils import timezone

from payments.actions.stripe_calls import hold
from payments.errors import ActionInProgress
from payments.models import ActionLock
from tests.helpers import in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_holder_at_a_time_across_connections():
    inside, most, lock = [], [], threading.Lock()

    def work(i):
        with hold("refund-charge:ch_1", wait=10, busy="busy"):
            with lock:
                inside.append(i)
                most.append(len(inside))
            time.sleep(0.05)
            with lock:
                inside.remove(i)
        return i

    assert sorted(in_threads(4, work)) == [0, 1, 2, 3]
    assert max(most) == 1 and not ActionLock.objects.exists()


def test_a_busy_lock_is_refused_without_waiting_and_released_after_an_error():
    with hold("confirmation:k", busy="already being sent"):
        with pytest.raises(ActionInProgress, match="already being sent"):
            with hold("confirmation:k", busy="already being sent"):
                pass
    with pytest.raises(RuntimeError):
        with hold("confirmation:k", busy="busy"):
            raise RuntimeError("Stripe answered 500")
    assert not ActionLock.objects.exists()  # the next attempt may go


def test_a_dead_holders_lock_is_taken_over_after_its_lease():
    ActionLock.objects.create(name="confirmation:dead", holder="gone", acquired_at=timezone.now() - dt.timedelta(hours=1))
    with hold("confirmation:dead", busy="busy"):
        assert ActionLock.objects.get(name="confirmation:dead").holder != "gone"
    assert not ActionLock.objects.exists()
