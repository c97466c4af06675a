"""The demo: seeding through localstripe and the webhook, the demo users, the support tickets,
and `manage.py demo` itself.

The seeding tests serve the app with pytest-django's live server (on the test database),
point localstripe's webhook at it, and check that what the shop did arrives in the mirror
through the webhook only, and that the shoppers' tickets arrive through the inbound email and
LINE webhooks. The command test runs `manage.py demo --no-serve` for real, on a throwaway
SQLite file: over the leftovers of an earlier run (it starts afresh), then with --keep.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core import mail
from django.core.management.base import CommandError
from django.utils import timezone

from console.demo import seed as demo_seed
from console.models import UserPreference
from console.demo import tickets as demo_tickets
from console.demo.line_api import LineApiStandIn
from console.celery import app as celery_app
from audit.models import AuditEntry
from console.models import TimelineEntry
from payments.models import (
    Charge, Customer, Dispute, EarlyFraudWarning, Invoice, PaymentIntent, Price, Product, Refund, Subscription,
    WebhookEvent,
)
from tests.conftest import ROOT, WEBHOOK_SECRET
from tickets.models import ContactMerge, Identity, LineEvent, Message, MessageTriage, Team, Ticket

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
    # localstripe delivers asynchronously: let what it queued before the silence arrive now,
    # not in the next test (the live server outlives this test; a late customer.created would
    # land in the next test's mirror).
    _until_quiet()


def _until_quiet(quiet: float = 0.5, limit: float = 10.0) -> None:
    started = last_change = time.monotonic()
    seen = -1
    while time.monotonic() - started < limit:
        count = WebhookEvent.objects.count()
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        time.sleep(0.1)


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
    # A shop with a past: one-off orders spread over the last months, each refund after its order.
    orders = charges.filter(invoice="")
    oldest, newest = min(c.created for c in orders), max(c.created for c in orders)
    assert newest - oldest > dt.timedelta(days=30) and newest <= timezone.now()
    for refund in refunds:
        charge = Charge.objects.get(pk=refund.charge)
        assert charge.amount_refunded >= refund.amount
        assert charge.created < refund.created <= timezone.now()
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


@pytest.mark.django_db(transaction=True)
def test_the_stand_in_answers_disputes_files_warnings_and_portal_links(localstripe, demo_webhook, finance, agent):
    """What localstripe lacks, the demo's stand-in answers: the console's dispute and portal
    actions work in the demo against the seeded shop."""
    from payments.actions import customers, disputes

    demo_seed.seed(localstripe.client(), localstripe.url, demo_webhook, WEBHOOK_SECRET,
                   webhook_id=WEBHOOK_ID, size=4, seed=3, timeout=60)
    dispute = Dispute.objects.get()
    token = "demo-dispute-token-0001"
    saved = disputes.update_dispute_evidence(dispute.id, {"customer_name": "佐藤 美咲"}, actor=finance, submit=False,
                                             idempotency_key=token)
    assert saved.dispute["evidence"]["customer_name"] == "佐藤 美咲"
    upload = disputes.upload_dispute_file(b"%PDF-1.4\n%%EOF\n", "receipt.pdf", actor=finance,
                                          idempotency_key="demo-file-token-0001", dispute_id=dispute.id)
    submitted = disputes.update_dispute_evidence(dispute.id, {"receipt": upload.id}, actor=finance, submit=True,
                                                 idempotency_key="demo-submit-token-0001")
    assert submitted.dispute["status"] == "under_review"
    assert Dispute.objects.get(pk=dispute.id).status == "under_review"
    warning = EarlyFraudWarning.objects.first()
    if warning is not None:
        client = localstripe.client()
        assert client.v1.radar.early_fraud_warnings.retrieve(warning.id).charge == warning.data["charge"]

    customer = Customer.objects.first()
    link = customers.create_portal_session(customer.id, actor=agent, idempotency_key="demo-portal-token-0001")
    assert link.url.startswith("https://billing.stripe.com/p/session/")


@pytest.fixture
def demo_channels(settings, tmp_path):
    """The live server's channels configured as the demo configures its server, and the LINE
    API stand-in the demo runs."""
    channel_secrets = demo_tickets.ChannelSecrets.generate()
    stand_in = LineApiStandIn(channel_secrets.line_access_token, tmp_path / "line.log").start()
    env = channel_secrets.server_env(stand_in.url)
    settings.LINE_CHANNEL_SECRET = env["LINE_CHANNEL_SECRET"]
    settings.LINE_CHANNEL_ACCESS_TOKEN = env["LINE_CHANNEL_ACCESS_TOKEN"]
    settings.LINE_API_BASE = env["LINE_API_BASE"]
    settings.TICKETS_INBOUND_EMAIL_ESPS = env["TICKETS_INBOUND_EMAIL_ESPS"].split(",")
    settings.ANYMAIL = {"WEBHOOK_SECRET": env["ANYMAIL_WEBHOOK_SECRET"]}
    settings.TICKETS_API_TOKEN = env["TICKETS_API_TOKEN"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; not under test
    yield channel_secrets, stand_in
    stand_in.close()


@pytest.mark.django_db(transaction=True)
def test_tickets_arrive_through_the_channels_and_match_the_shoppers_stripe_data(
        localstripe, demo_webhook, demo_channels, live_server, capsys):
    channel_secrets, stand_in = demo_channels
    demo_seed.seed(localstripe.client(), localstripe.url, demo_webhook, WEBHOOK_SECRET,
                   webhook_id=WEBHOOK_ID, size=8, seed=3, timeout=60)
    demo_seed.ensure_demo_users("demo-pass-123")

    report = demo_tickets.seed(live_server.url, channel_secrets, stand_in.url)

    tickets = Ticket.objects.select_related("requester")
    assert len(report.stories) == tickets.count() - 1 >= 5  # the both-channels story is two tickets
    assert {t.channel for t in tickets} == {"email", "line"}
    assert {"open", "pending", "solved"} <= {t.status for t in tickets}
    # Customers' messages came in by the channels' webhooks only: LINE events stored and processed,
    # email carrying the shopper's own Message-ID.
    assert set(LineEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert not Message.objects.filter(kind="inbound", channel="email", channel_message_id="").exists()

    # Every email ticket's requester is the Stripe customer who has that email, through the
    # mirror's link: the panel beside the ticket shows their payments.
    for ticket in tickets.filter(channel="email"):
        idents = dict(Identity.objects.filter(contact=ticket.requester).values_list("kind", "value"))
        assert Customer.objects.get(pk=idents["stripe_customer"]).email == idents["email"]

    # The stories are the shoppers' own: a refund story from a shopper with a refund, a dispute
    # story from one with a dispute.
    for line in report.stories:
        story, email = line.split(": ")
        customer = Customer.objects.get(email=email)
        charges = Charge.objects.filter(customer=customer.pk).values("pk")
        if "refund" in story or story in ("charged_twice", "damaged_item", "ja_damaged"):
            assert Refund.objects.filter(charge__in=charges).exists(), story
        if "dispute" in story:
            assert Dispute.objects.filter(charge__in=charges).exists(), story
        if "cancel" in story or story in ("update_my_card", "last_box"):
            assert Subscription.objects.filter(customer=customer.pk).exists(), story
        if story == "lost_parcel":  # over the agent's limit: handed to finance, waiting in /approvals/
            from console.models import RefundApproval

            [asked] = RefundApproval.objects.filter(status="open")
            assert asked.charge_id in {c["pk"] for c in charges} and asked.requested_by.username == "agent"

    # Seed 003: the first shopper wrote by LINE before connecting it and by email; connecting
    # merged the LINE-only contact into hers, so both tickets are one contact's.
    misaki = Identity.objects.get(kind="email", value="misaki.sato@example.jp").contact
    kinds = set(misaki.identities.values_list("kind", flat=True))
    assert kinds == {"email", "line", "stripe_customer"}
    assert set(misaki.tickets.values_list("channel", flat=True)) == {"email", "line"}
    assert ContactMerge.objects.filter(survivor=misaki, undone_at=None).exists()

    # Agents worked them through tickets.actions, as the demo users: threads, teams, assignment.
    assert set(Team.objects.values_list("slug", flat=True)) == {"finance", "japan", "billing"}
    # Each customer message was read (assist) and has its draft unless it was answered.
    assert MessageTriage.objects.count() == Message.objects.filter(kind="inbound").count()
    assert tickets.filter(assignee__username="agent").exists() and tickets.filter(assignee=None).exists()
    assert tickets.filter(assignee__username="agent_ja", channel="line").exists()  # the Tokyo team's LINE tickets
    assert AuditEntry.objects.filter(action="ticket.reply", actor__username="agent").exists()
    threads = [list(t.messages.exclude(kind="note").values_list("kind", flat=True)) for t in tickets]
    assert ["inbound", "outbound", "inbound"] in threads
    # Every reply was delivered, to nowhere real: email to locmem, LINE to the stand-in.
    outbound = Message.objects.filter(kind="outbound")
    assert set(outbound.values_list("delivery_status", flat=True)) == {"sent"}
    assert len(mail.outbox) == outbound.filter(channel="email").count() >= 1
    pushes = (stand_in.log).read_text().splitlines()
    assert len(pushes) == outbound.filter(channel="line").count() >= 1

    # The customer timeline has every ticket and every customer message.
    assert TimelineEntry.objects.filter(kind="ticket").count() == tickets.count()
    assert TimelineEntry.objects.filter(kind="message", data__message_kind="inbound").count() == \
        Message.objects.filter(kind="inbound").count()

    # No channel secret is printed or logged.
    out = capsys.readouterr()
    for secret in (channel_secrets.line_channel_secret, channel_secrets.line_access_token,
                   channel_secrets.inbound_auth, channel_secrets.api_token):
        assert secret not in out.out + out.err + "\n".join(pushes)


def test_stories_go_to_shoppers_they_fit():
    """Each shopper tells at most two stories (by email, on different topics), the first one
    writes on both channels, and a story goes only to a shopper whose Stripe data fits it."""
    refund = Refund(pk="re_1", charge="ch_1", amount=500, currency="usd", reason="duplicate", data={})
    paid = Charge(pk="ch_1", status="succeeded", amount=500, currency="usd", data={})
    first = demo_tickets.ShopperFile(index=0, customer="cus_a", name="佐藤 美咲", email="a@example.jp", japanese=True)
    duplicate = demo_tickets.ShopperFile(index=1, customer="cus_b", name="Zoe M", email="b@example.com",
                                         japanese=False, charges=[paid], refunds=[refund])
    nothing = demo_tickets.ShopperFile(index=2, customer="cus_c", name="Leo A", email="c@example.com", japanese=False)

    casting = [(story.key, s.customer) for story, s in demo_tickets.cast([first, duplicate, nothing])]

    assert casting[0] == ("both_channels", "cus_a")
    assert ("charged_twice", "cus_b") in casting
    assert not any(customer == "cus_c" for _, customer in casting)  # no payments: nothing to write about
    assert sum(customer == "cus_b" for _, customer in casting) == 2  # a second email, on another topic
    assert demo_tickets.cast([]) == []


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
    assert demo_seed.ensure_demo_users("first-pass-123") == ["agent", "finance", "admin", "agent_ja"]
    demo_seed.ensure_demo_users("second-pass-456")
    users = {u.username: u for u in get_user_model().objects.all()}
    assert set(users) == {"agent", "finance", "admin", "agent_ja"}
    for name, user in users.items():
        assert list(user.groups.values_list("name", flat=True)) == [name.removesuffix("_ja")]
        assert user.check_password("second-pass-456") and not user.check_password("first-pass-123")
        assert user.is_staff == (name == "admin") and not user.is_superuser
    assert users["finance"].has_perm("payments.submit_dispute_evidence")
    assert not users["agent"].has_perm("payments.view_webhookevent")
    # The Japanese-speaking agent works in Japanese, on Japan time; the others follow their browser.
    prefs = {p.user.username: (p.language, p.time_zone) for p in UserPreference.objects.select_related("user")}
    assert prefs["agent_ja"] == ("ja", "Asia/Tokyo") and prefs.get("agent", ("", ""))[0] == ""


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
    assert "log in as agent / finance / admin (English) or agent_ja (support, 日本語), password: " in first.stdout
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

    # Support tickets came in by email and LINE, and the demo's active auto-ticket workflows
    # opened the others (web) from the shop's Stripe events; the summary says so.
    channels = dict(_rows(tmp_path, "select channel, count(*) from tickets_ticket group by channel"))
    assert set(channels) <= {"email", "line", "web"} and {"email", "line"} <= set(channels)
    web = channels.get("web", 0)
    assert f"Tickets: {sum(channels.values())} ({channels['email']} email, {channels['line']} LINE" in first.stdout
    assert _rows(tmp_path, "select count(*) from workflows_workflow where status = 'active'") == [(5,)]
    # The triage workflow routed the customers' messages by what assist read in them.
    routed = dict(_rows(tmp_path, """select g.name, count(*) from tickets_ticket_tags tt
                                     join tickets_tag g on g.id = tt.tag_id group by g.name"""))
    assert routed.get("line-ja") and (routed.get("refund") or routed.get("billing") or routed.get("dispute-threat"))
    assert _rows(tmp_path, """select count(*) from tickets_ticket t where t.channel = 'web' and exists (
        select 1 from workflows_workflowrun r where r.ticket_id = t.id and r.status = 'succeeded')""") == [(web,)]
    # An email ticket's requester is the Stripe customer with that email.
    linked = _rows(tmp_path, """
        select count(*) from tickets_ticket t
        join tickets_identity e on e.contact_id = t.requester_id and e.kind = 'email'
        join tickets_identity s on s.contact_id = t.requester_id and s.kind = 'stripe_customer'
        join payments_customer c on c.id = s.value and c.email = e.value
        where t.channel = 'email'""")
    assert linked == [(channels["email"],)]
    # The shopper who wrote on both channels is one contact with both identities and both tickets.
    (misaki,) = _rows(tmp_path, "select contact_id from tickets_identity where value = 'misaki.sato@example.jp'")
    assert {k for (k,) in _rows(tmp_path, f"select kind from tickets_identity where contact_id = {misaki[0]}")} == {
        "email", "line", "stripe_customer"}
    assert {c for (c,) in _rows(tmp_path, f"select channel from tickets_ticket where requester_id = {misaki[0]}")} >= {
        "email", "line"}
    # The customer timeline has the tickets and the customers' messages.
    entries = dict(_rows(tmp_path, "select kind, count(*) from console_timelineentry group by kind"))
    assert entries["ticket"] == sum(channels.values()) and entries["message"] >= entries["ticket"]
    # Replies were delivered to nowhere real; the LINE ones to the stand-in's log.
    assert _rows(tmp_path, "select distinct delivery_status from tickets_message where kind = 'outbound'") == [("sent",)]
    assert "LINE push to U" in (tmp_path / "state" / "line.log").read_text()
    tickets = _rows(tmp_path, "select id, status from tickets_ticket order by id")

    # localstripe saved its (new) state when the demo stopped it.
    assert b"not a pickle" != (tmp_path / "state" / "localstripe.pickle").read_bytes()[:12]

    # --keep reuses both: nothing seeded, the same customers, the users get a new password.
    kept = _run_demo(tmp_path, "--keep", "--size", "2")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "nothing seeded" in kept.stdout
    assert _rows(tmp_path, "select id from payments_customer order by id") == customers
    assert _rows(tmp_path, "select id, status from tickets_ticket order by id") == tickets
    assert f"Tickets: {len(tickets)} " in kept.stdout
    hashes = dict(_rows(tmp_path, "select username, password from auth_user"))
    assert set(hashes) == {"agent", "finance", "admin", "agent_ja", "workflows"}
    assert hashes["workflows"].startswith("!")  # the workflows' service user can't log in
    assert check_password(_password(kept.stdout), hashes["finance"])
    assert not check_password(_password(first.stdout), hashes["finance"])
