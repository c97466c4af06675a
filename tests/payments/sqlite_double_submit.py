"""Run by test_sqlite_double_submit.py in its own process, on the demo's database engine
(SQLite, a file), against localstripe, which ignores idempotency keys: the same confirmation
sent from two threads at once, and two confirmations that together pass a limit. Prints what
happened as JSON."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid

import django


def main(localstripe_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from payments.actions import refunds
    from payments.errors import ActionError
    from payments.mirror import upsert_fetched
    from tests import factories

    assert connection.vendor == "sqlite"
    call_command("migrate", verbosity=0)
    settings.STRIPE_API_KEY, settings.STRIPE_API_BASE = "sk_test_paydesk_localstripe", localstripe_url
    settings.PAYMENTS_REFUND_LIMITS = {"agent": {"jpy": 10_000}}
    agent = factories.UserFactory(username="agent", role="agent")
    import stripe

    ls = stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses={"api": localstripe_url},
                             stripe_version="2017-08-15", max_network_retries=0)
    customer = ls.v1.customers.create({"name": "Misaki Sato"})
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    method = ls.v1.payment_methods.create({"type": "card", "card": card})
    ls.v1.payment_methods.attach(method.id, {"customer": customer.id})
    customer = ls.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}}).to_dict()
    charge = ls.v1.charges.create({"amount": 20_000, "currency": "jpy", "customer": customer["id"]}).to_dict()
    upsert_fetched([customer, charge], int(time.time()))

    def at_once(tokens: list[str], amount: int) -> list[str]:
        start, outcomes = threading.Barrier(len(tokens)), []

        def run(token: str) -> None:
            start.wait()
            try:
                result = refunds.refund_charge(charge["id"], actor=agent, amount=amount, currency="jpy",
                                               idempotency_key=token)
                outcomes.append("replayed" if result.replayed else "refunded")
            except ActionError as exc:
                outcomes.append(exc.__class__.__name__)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return sorted(outcomes)

    token = uuid.uuid4().hex
    double_click = at_once([token, token], 1000)
    two_tabs = at_once([uuid.uuid4().hex, uuid.uuid4().hex], 6000)
    refunded = [r.amount for r in ls.v1.refunds.list({"charge": charge["id"]}).data]
    print(json.dumps({"double_click": double_click, "two_tabs": two_tabs, "refunds": sorted(refunded)}))


if __name__ == "__main__":
    main(sys.argv[1])
