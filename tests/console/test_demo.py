"""The demo: seeding through localstripe and the webhook, the demo users, and `manage.py demo` itself.

The seeding test serves the app with pytest-django's live server (on the test database),
points localstripe's webhook at it, and checks that what the shop did arrives in the mirror
through the webhook only. The command test runs `manage.py demo --no-serve` for real, on a
throwaway SQLite file: over the leftovers of an earlier run (it starts afresh), then with --keep.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from console import demo_seed
from console.celery import app as celery_app
from payments.models import (
    Charge, Customer, Dispute, EarlyFraudWarning, Invoice, PaymentIntent, Price, Product, Refund, Subscription,
    WebhookEvent,
)
from tests.conftest import ROOT, WEBHOOK_SECRET

WEBHOOK_ID = "paydesk-demo-test"


@pytest.fixture
def eager_tasks():
    """The live server applies events in its request, as the demo's server does."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def demo_webhook(localstripe, live_server, eager_tasks):
    """The live server's webhook URL. Seeding registers it with localstripe, which keeps
    registrations for the whole session and cannot delete one: silence it afterwards."""
    url = f"{live_server.url}/stripe/webhook/"
    yield url
    demo_seed.register_webhook(localstripe.url, WEBHOOK_ID, url, WEBHOOK_SECRET, events=[])


@pytest.mark.django_db(transaction=True)
def test_seeding_fills_the_mirror_through_the_webhook(localstripe, demo_webhook, capsys):
    report = demo_seed.seed(localstripe.client(), localstripe.url, demo_webhook, WEBHOOK_SECRET,
                            webhook_id=WEBHOOK_ID, size=8, seed=3, timeout=60)
    event_ids, statuses = report.expected_events, report.statuses

    # Every event localstripe sent and every one we posted arrived by the webhook and applied.
    assert set(+statuses) == {"applied", "ignored"}, statuses
    assert statuses["applied"] + statuses["ignored"] == len(event_ids) > 100
    stored = WebhookEvent.objects.filter(id__in=event_ids)
    assert stored.count() == len(event_ids)
    assert set(stored.values_list("source", flat=True)) == {WebhookEvent.Source.WEBHOOK}
    types = set(stored.values_list("type", flat=True))
    # Only what the mirror has no model for is ignored: localstripe's plan.created.
    assert set(stored.filter(status="ignored").values_list("type", flat=True)) == {"plan.created"}
    assert {"customer.created", "payment_intent.succeeded", "customer.subscription.created", "invoice.created",
            "customer.subscription.deleted"} <= types  # localstripe's own
    assert {"charge.succeeded", "charge.failed", "charge.refunded", "refund.created", "charge.refund.updated",
            "charge.dispute.created", "radar.early_fraud_warning.created", "price.created"} <= types  # ours

    # The shop, as the mirror holds it.
    assert Customer.objects.count() == 8
    first = Customer.objects.get(email="misaki.sato@example.jp")
    assert first.name == "佐藤 美咲"
    assert Customer.objects.exclude(email__endswith=".jp").exists()
    assert Product.objects.count() == len({g.name for g in demo_seed.GOODS} | {p.product for p in demo_seed.PLANS})
    assert Price.objects.count() == len(demo_seed.GOODS) + len(demo_seed.PLANS)
    assert Price.objects.get(nickname="抹茶 定期便 — 毎月").unit_amount == 3200
    assert Price.objects.get(nickname="Coffee subscription — monthly").unit_amount == 1800

    charges = Charge.objects.all()
    assert charges.count() == report.created["payments_succeeded"] + report.created["payments_failed"]
    assert {c.currency for c in charges} == {"usd", "jpy"}
    assert Counter(c.status for c in charges) == {
        "succeeded": report.created["payments_succeeded"], "failed": report.created["payments_failed"]}
    assert all(c.failure_code == "card_declined" for c in charges.filter(status="failed"))
    names = dict(Customer.objects.values_list("id", "email"))
    assert all(c.billing_email == names[c.customer] for c in charges)  # each charge is its shopper's
    assert PaymentIntent.objects.count() == charges.count()

    refunds = Refund.objects.all()
    assert refunds.count() == report.created["refunds_full"] + report.created["refunds_partial"] >= 2
    amounts = {c.id: c.amount for c in charges}
    assert any(r.amount < amounts[r.charge] for r in refunds) and any(r.amount == amounts[r.charge] for r in refunds)
    for refund in refunds:
        charge = Charge.objects.get(pk=refund.charge)
        assert charge.amount_refunded >= refund.amount
        assert refund.data["destination_details"]["card"]["reference_status"] == "available"

    dispute = Dispute.objects.get()
    assert dispute.status == "needs_response" and dispute.due_by > timezone.now()
    assert Charge.objects.get(pk=dispute.charge).disputed
    assert EarlyFraudWarning.objects.filter(actionable=True).exists()

    subs = Subscription.objects.all()
    assert {s.status for s in subs} == {"active", "canceled", "incomplete"}
    assert subs.filter(status="active", cancel_at_period_end=True).exists()
    # Why they left, as Stripe says it (localstripe cannot): on the canceled one and the one
    # that ends at the period's end.
    for sub in (subs.get(status="canceled"), subs.get(cancel_at_period_end=True)):
        details = sub.data["cancellation_details"]
        assert details["reason"] == "cancellation_requested"
        assert (details["feedback"], details["comment"]) in demo_seed.CANCELLATIONS
        assert sub.canceled_at is not None
    # One deleted event per canceled subscription: ours; localstripe's was held back.
    assert stored.filter(type="customer.subscription.deleted").count() == 1
    assert {"paid", "open", "draft"} <= set(Invoice.objects.values_list("status", flat=True))

    # Seeding prints nothing, and the webhook secret appears nowhere it could leak from.
    out = capsys.readouterr()
    assert WEBHOOK_SECRET not in out.out + out.err
    assert not any(WEBHOOK_SECRET in str(p) for p in WebhookEvent.objects.values_list("payload", flat=True))


def test_shoppers_mix_english_and_japanese_and_are_deterministic():
    import random

    shoppers = demo_seed.make_shoppers(40, random.Random(7))
    again = demo_seed.make_shoppers(40, random.Random(7))
    assert [s.email for s in shoppers] == [s.email for s in again]
    assert (shoppers[0].name, shoppers[0].email) == ("佐藤 美咲", "misaki.sato@example.jp")
    assert len({s.email for s in shoppers}) == 40
    by_country = Counter(s.country for s in shoppers)
    assert by_country["JP"] >= 10 and by_country["US"] >= 10
    assert all(s.currency == ("jpy" if s.country == "JP" else "usd") for s in shoppers)
    assert all(s.email.endswith(("@example.jp", "@example.com", "@example.org", "@example.net")) for s in shoppers)


def test_orders_are_priced_in_minor_units_with_shipping():
    import random

    rng = random.Random(1)
    for n in range(50):
        order = demo_seed.make_order(10000 + n, "jpy" if n % 2 else "usd", rng)
        subtotal = sum(g.amount * q for g, q in order.lines)
        free_from, fee = demo_seed.SHIPPING[order.currency]
        assert order.amount == subtotal + (0 if subtotal >= free_from else fee)
        assert all(g.currency == order.currency for g, _ in order.lines)
        assert order.description.startswith(f"Order KR-{10000 + n}: ")


@pytest.mark.django_db
def test_demo_users_one_per_role_and_rerun_changes_the_password(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; the hasher is not under test
    assert demo_seed.ensure_demo_users("first-pass-123") == ["agent", "finance", "admin"]
    demo_seed.ensure_demo_users("second-pass-456")
    users = {u.username: u for u in get_user_model().objects.all()}
    assert set(users) == {"agent", "finance", "admin"}
    for name, user in users.items():
        assert list(user.groups.values_list("name", flat=True)) == [name]
        assert user.check_password("second-pass-456") and not user.check_password("first-pass-123")
        assert user.is_staff == (name == "admin") and not user.is_superuser
    assert users["finance"].has_perm("payments.submit_dispute_evidence")
    assert not users["agent"].has_perm("payments.view_webhookevent")


@pytest.mark.django_db
def test_demo_refuses_a_database_that_is_not_its_sqlite_file():
    """It resets its database on every run: never one that DATABASE_URL points elsewhere."""
    with pytest.raises(CommandError, match="DATABASE_URL"):
        call_command("demo", "--no-serve")


# --- the command, for real --------------------------------------------------------------------


def _run_demo(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS")}
    env.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    return subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve", "--state-dir", str(tmp_path / "state"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )


def _rows(tmp_path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "demo.sqlite3") as db:
        return db.execute(sql).fetchall()


def _password(output: str) -> str:
    return output.rsplit("password: ", 1)[1].split()[0]


@pytest.mark.e2e
def test_make_demo_seeds_afresh_and_keeps_on_request(tmp_path, settings):
    # The demo hashes with Django's default (PBKDF2); the suite's fast MD5 alone can't check it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    # What an earlier run left behind: a database and a localstripe state to be replaced.
    with sqlite3.connect(tmp_path / "demo.sqlite3") as db:
        db.execute("create table left_from_last_run (x)")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "localstripe.pickle").write_bytes(b"not a pickle")

    first = _run_demo(tmp_path, "--size", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "log in as agent / finance / admin, password: " in first.stdout
    assert "did not apply" not in first.stdout
    log = (tmp_path / "state" / "server.log").read_text()
    for text in (first.stdout, first.stderr, log):
        # The API key and webhook secret are generated per run and never printed or logged.
        assert "whsec_" not in text and "sk_test" not in text
    assert _rows(tmp_path, "select name from sqlite_master where name = 'left_from_last_run'") == []
    assert _rows(tmp_path, "select count(*) from payments_customer") == [(2,)]
    applied = _rows(tmp_path, "select count(*) from payments_webhookevent where source = 'webhook' and status = 'applied'")
    assert applied[0][0] > 50
    customers = _rows(tmp_path, "select id from payments_customer order by id")
    # localstripe saved its (new) state when the demo stopped it.
    assert b"not a pickle" != (tmp_path / "state" / "localstripe.pickle").read_bytes()[:12]

    # --keep reuses both: nothing seeded, the same customers, the users get a new password.
    kept = _run_demo(tmp_path, "--keep", "--size", "2")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "nothing seeded" in kept.stdout
    assert _rows(tmp_path, "select id from payments_customer order by id") == customers
    hashes = dict(_rows(tmp_path, "select username, password from auth_user"))
    assert set(hashes) == {"agent", "finance", "admin"}
    assert check_password(_password(kept.stdout), hashes["finance"])
    assert not check_password(_password(first.stdout), hashes["finance"])
