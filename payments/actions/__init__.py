"""Every write payments makes, one function per action, by kind of write:

- events: the mirror's writes from Stripe's events (apply, announce once committed, replay,
  re-sync, fetch a referenced object);
- stripe_calls: what every change at Stripe shares (who may, the confirmation's idempotency key,
  one attempt at a time, the SDK's errors in words);
- refunds, subscriptions, customers, disputes: the changes a person confirms at Stripe.

Callers import the module they need (`from payments.actions import refunds`).
"""
