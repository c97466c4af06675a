"""The Stripe mirror: one model per Stripe object type, plus the webhook event log.

Each mirrored row keeps the whole Stripe object as JSON (`data`) and the indexed columns
that lists and search need. References to other Stripe objects are plain ids, never
foreign keys: Stripe delivers events in any order, so a refund may arrive before its charge.

The watermark (`version_ts`, `version_rank`, `version_source`) records which Stripe state
was applied last, so an older event never overwrites a newer state (see payments.mirror).
"""

from django.db import models
from django.utils.translation import pgettext_lazy


class StripeObject(models.Model):
    id = models.CharField(primary_key=True, max_length=255)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(null=True, blank=True, db_index=True)
    data = models.JSONField(default=dict)
    deleted = models.BooleanField(default=False)
    # Watermark: seconds of the Stripe state applied (event.created, or the time we
    # fetched the object), a lifecycle rank for same-second ties, and its source
    # (an event id, or "api" for a fetched object).
    version_ts = models.BigIntegerField(default=0)
    version_rank = models.BigIntegerField(default=0)
    version_source = models.CharField(max_length=255, blank=True, default="")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created"]

    def __str__(self):
        return self.id


class Customer(StripeObject):
    email = models.CharField(max_length=512, blank=True, default="", db_index=True)
    name = models.CharField(max_length=512, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3, blank=True, default="")
    delinquent = models.BooleanField(default=False)

    class Meta(StripeObject.Meta):
        permissions = [
            ("update_customer_metadata", "Can update a Stripe customer's metadata"),
            ("create_portal_session", "Can create a billing-portal session for a customer"),
        ]


class Product(StripeObject):
    name = models.CharField(max_length=512, blank=True, default="")
    active = models.BooleanField(default=True)


class Price(StripeObject):
    product = models.CharField(max_length=255, blank=True, default="", db_index=True)
    nickname = models.CharField(max_length=512, blank=True, default="")
    unit_amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    recurring_interval = models.CharField(max_length=16, blank=True, default="")
    active = models.BooleanField(default=True)


class PaymentIntent(StripeObject):
    customer = models.CharField(max_length=255, blank=True, default="", db_index=True)
    status = models.CharField(max_length=32, blank=True, default="", db_index=True)
    amount = models.BigIntegerField(default=0)
    amount_received = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    latest_charge = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=1024, blank=True, default="")


class Charge(StripeObject):
    customer = models.CharField(max_length=255, blank=True, default="", db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True, default="", db_index=True)
    invoice = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="", db_index=True)
    paid = models.BooleanField(default=False)
    amount = models.BigIntegerField(default=0)
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    refunded = models.BooleanField(default=False)
    disputed = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, blank=True, default="")
    billing_email = models.CharField(max_length=512, blank=True, default="", db_index=True)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=1024, blank=True, default="")

    class Meta(StripeObject.Meta):
        permissions = [("refund_charge", "Can refund a charge")]


class Refund(StripeObject):
    charge = models.CharField(max_length=255, blank=True, default="", db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="")
    reason = models.CharField(max_length=64, blank=True, default="")


class Dispute(StripeObject):
    charge = models.CharField(max_length=255, blank=True, default="", db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="", db_index=True)
    reason = models.CharField(max_length=64, blank=True, default="")
    due_by = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta(StripeObject.Meta):
        permissions = [("submit_dispute_evidence", "Can submit dispute evidence")]
        # The dispute queue (console.disputes.selectors): each group in its own order, read by a
        # partial index with a LIMIT; the amount at risk counted from an index alone.
        indexes = [
            # due_by ascending: PostgreSQL puts NULLs last by default, as the queue orders
            # (an index can't say NULLS LAST on SQLite, the demo's database).
            # Covering: the header's counts and amounts under a "due within" filter read the index alone.
            models.Index(fields=["due_by", "id"], name="dispute_respond_due", include=["status", "currency", "amount"],
                         condition=models.Q(status__in=["needs_response", "warning_needs_response"])),
            models.Index(models.F("created").desc(), models.F("id").desc(), name="dispute_review_created",
                         condition=models.Q(status__in=["under_review", "warning_under_review"])),
            models.Index(models.F("created").desc(), models.F("id").desc(), name="dispute_closed_created",
                         condition=models.Q(status__in=["won", "lost", "prevented", "warning_closed"])),
            # reason included: the header's sums under a reason filter read the index alone.
            models.Index(fields=["status", "currency"], include=["amount", "reason"], name="dispute_at_risk",
                         condition=models.Q(status__in=["needs_response", "warning_needs_response", "under_review",
                                                        "warning_under_review"])),
        ]


class Subscription(StripeObject):
    customer = models.CharField(max_length=255, blank=True, default="", db_index=True)
    status = models.CharField(max_length=32, blank=True, default="", db_index=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta(StripeObject.Meta):
        permissions = [("cancel_subscription", "Can cancel a subscription")]


class Invoice(StripeObject):
    customer = models.CharField(max_length=255, blank=True, default="", db_index=True)
    subscription = models.CharField(max_length=255, blank=True, default="", db_index=True)
    charge = models.CharField(max_length=255, blank=True, default="")
    number = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="", db_index=True)
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    due_date = models.DateTimeField(null=True, blank=True)


class EarlyFraudWarning(StripeObject):
    charge = models.CharField(max_length=255, blank=True, default="", db_index=True)
    payment_intent = models.CharField(max_length=255, blank=True, default="")
    fraud_type = models.CharField(max_length=64, blank=True, default="")
    actionable = models.BooleanField(default=True)


class WebhookEvent(models.Model):
    """Every Stripe event, stored once: the webhook, reconciliation and replay all write here."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("event status", "Pending")
        APPLIED = "applied", pgettext_lazy("event status", "Applied")
        IGNORED = "ignored", pgettext_lazy("event status", "Ignored")
        FAILED = "failed", pgettext_lazy("event status", "Failed")

    class Source(models.TextChoices):
        # As the event pages say it: "by webhook", "by reconcile".
        WEBHOOK = "webhook", pgettext_lazy("event source", "webhook")
        RECONCILE = "reconcile", pgettext_lazy("event source", "reconcile")

    id = models.CharField(primary_key=True, max_length=255)
    type = models.CharField(max_length=128, db_index=True)
    created = models.DateTimeField(db_index=True)
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField(default=False)
    object_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    payload = models.JSONField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="event_status_received"),
            models.Index(fields=["object_id", "created"], name="event_object_created"),
        ]
        permissions = [
            ("view_sync_health", "Can see the Stripe sync health page"),
            ("replay_event", "Can replay Stripe events"),
            ("resync_object", "Can re-sync mirrored objects from Stripe"),
        ]

    def __str__(self):
        return f"{self.id} {self.type}"


class PendingAnnouncement(models.Model):
    """An applied event that its listeners (console's timeline and contact linking) have not
    all taken yet (payments.signals.stripe_event_applied). Written in the transaction that first
    applies the event, deleted in the one where every listener took it; a listener's error waits
    here for its retry and is shown on the sync page. Narrow on purpose: the event's own wide,
    much-indexed row is never rewritten for it."""

    event = models.OneToOneField(WebhookEvent, primary_key=True, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["created"]

    def __str__(self):
        return str(self.event_id)


class SyncCursor(models.Model):
    """Checkpoint of a backfill or reconciliation run, so an interrupted run resumes."""

    name = models.CharField(primary_key=True, max_length=128)  # "backfill:charge", "reconcile"
    cursor = models.CharField(max_length=255, blank=True, default="")  # last id listed
    since = models.BigIntegerField(null=True, blank=True)  # created[gte] of the run
    count = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class ActionLock(models.Model):
    """A named lock held while an action talks to Stripe (one confirmation being sent, one
    charge being refunded), on every database the console runs on: a unique row inserted
    before the call and deleted after it (payments.actions.stripe_calls.hold). A holder that
    died leaves a row older than its lease, which the next one takes over."""

    name = models.CharField(primary_key=True, max_length=255)
    holder = models.CharField(max_length=64)
    acquired_at = models.DateTimeField()

    def __str__(self):
        return self.name
