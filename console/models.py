from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _, pgettext_lazy


class TimelineEntry(models.Model):
    """One thing that happened to a customer, materialised for the customer page.

    Filled by console.receivers (Stripe events as applied, tickets, messages, the audit
    log) and by `manage.py timeline_rebuild`. `source` + `kind` is the idempotency key: a
    Stripe object (or event, for repeatable kinds), a ticket, a message or an audit entry.
    `customer` keeps the Stripe customer the entry came through, so a contact merge or a
    late identity link re-points Stripe entries without reading the mirror again.
    """

    class Kind(models.TextChoices):
        PAYMENT_SUCCEEDED = "payment_succeeded", pgettext_lazy("timeline", "Payment")
        PAYMENT_FAILED = "payment_failed", _("Failed payment")
        REFUND = "refund", pgettext_lazy("timeline", "Refund")
        DISPUTE_OPENED = "dispute_opened", _("Dispute opened")
        DISPUTE_UPDATED = "dispute_updated", _("Dispute updated")
        DISPUTE_CLOSED = "dispute_closed", _("Dispute closed")
        FRAUD_WARNING = "fraud_warning", _("Early fraud warning")
        SUBSCRIPTION_STARTED = "subscription_started", _("Subscription started")
        SUBSCRIPTION_CHANGED = "subscription_changed", _("Subscription changed")
        SUBSCRIPTION_CANCELLED = "subscription_cancelled", _("Subscription cancelled")
        INVOICE_PAID = "invoice_paid", _("Invoice paid")
        INVOICE_FAILED = "invoice_failed", _("Invoice payment failed")
        TICKET = "ticket", pgettext_lazy("timeline", "Ticket")
        MESSAGE = "message", pgettext_lazy("timeline", "Message")
        ACTION = "action", _("Agent action")
        WORKFLOW_RUN = "workflow_run", _("Workflow run")

    # Null while a Stripe customer is not linked to any contact yet (linking fills it).
    contact = models.ForeignKey(
        "tickets.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    source = models.CharField(max_length=255)
    object_id = models.CharField(max_length=255, blank=True, default="")
    customer = models.CharField(max_length=255, blank=True, default="")
    ticket_id = models.BigIntegerField(null=True, blank=True)
    title = models.CharField(max_length=255)
    summary = models.CharField(max_length=500, blank=True, default="")
    amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    agent_purchase = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
        constraints = [models.UniqueConstraint(fields=["source", "kind"], name="timeline_source_kind")]
        indexes = [
            models.Index(fields=["contact", "-occurred_at", "-id"], name="timeline_contact_time"),
            models.Index(fields=["contact", "kind", "-occurred_at", "-id"], name="timeline_contact_kind_time"),
            models.Index(
                fields=["contact", "-occurred_at", "-id"], condition=models.Q(agent_purchase=True),
                name="timeline_contact_agent",
            ),
            models.Index(fields=["customer"], condition=~models.Q(customer=""), name="timeline_customer"),
            models.Index(fields=["ticket_id"], condition=models.Q(ticket_id__isnull=False), name="timeline_ticket"),
        ]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.kind} {self.object_id}"


class SharedPaymentToken(models.Model):
    """A Stripe shared payment token granted to this account by an AI agent
    (`shared_payment.granted_token`), kept as recorded JSON: the mirror has no model for it
    and localstripe does not serve it. Read for its usage limits and expiry."""

    id = models.CharField(primary_key=True, max_length=255)
    data = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.id


class UserPreference(models.Model):
    """Per-agent settings: the time zone dates are shown in and the console's language."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_preference")
    time_zone = models.CharField(max_length=64, blank=True, default="")
    # A code of settings.LANGUAGES; blank follows the browser (Accept-Language).
    language = models.CharField(max_length=8, blank=True, default="")

    class AfterSolve(models.TextChoices):
        NEXT = "next", _("Go to the next ticket in the view")
        STAY = "stay", _("Stay on the ticket")

    # What "Solve" (and its shortcut e) does next on the ticket page.
    after_solve = models.CharField(max_length=8, choices=AfterSolve.choices, default=AfterSolve.NEXT)

    def __str__(self):
        return f"{self.user} {self.time_zone}"


class Notification(models.Model):
    """Something a person should know, shown under the bell in the top bar (and emailed to
    them): written by console.actions.notify_people (a workflow's "notify" step), in the
    recipient's language. `link` is a console path; `source` says what sent it."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
                                  verbose_name=_("recipient"), db_index=False)  # the indexes below start with it
    text = models.TextField(_("text"))
    link = models.CharField(_("link"), max_length=500, blank=True, default="")
    source = models.CharField(_("source"), max_length=255, blank=True, default="")
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("time read"), null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            # The bell's count: a person's unread ones.
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            # The page: a person's, newest first (keyset pages).
            models.Index(fields=["recipient", "-created", "-id"], name="notification_recipient_time"),
        ]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M} {self.recipient_id} {self.text[:40]}"


class RefundApproval(models.Model):
    """A refund an agent over their limit handed to finance ("Ask finance" on a refused refund),
    written by console.actions.request_refund_approval and closed by close_refund_approval.
    Kept as a row (not only the audit entry and the ticket's tag) so finance has a queue with
    what was asked, and the close is a compare-and-swap on `status`: it happens once."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("approval", "Open")
        APPROVED = "approved", pgettext_lazy("approval", "Approved")
        DECLINED = "declined", pgettext_lazy("approval", "Declined")

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+", verbose_name=_("ticket"))
    charge_id = models.CharField(_("charge"), max_length=255)
    amount = models.BigIntegerField(_("amount"))  # minor units
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=32)
    note = models.TextField(_("note"), blank=True, default="")
    refusal = models.TextField(_("refusal"), blank=True, default="")  # why the agent's own refund was refused
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                                     verbose_name=_("requested by"))
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    # The ticket's team before it went to finance, where it goes back to.
    previous_team = models.ForeignKey("tickets.Team", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    token = models.CharField(max_length=64, unique=True)  # the asking form's: a double click asks once
    # The refund's idempotency key: however many previews finance opens, one refund is made.
    refund_token = models.CharField(max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    refund_id = models.CharField(_("refund"), max_length=255, blank=True, default="")
    refunded = models.BigIntegerField(null=True, blank=True)  # what finance refunded (may differ from `amount`)
    decline_reason = models.TextField(_("reason declined"), blank=True, default="")

    class Meta:
        ordering = ["requested_at", "id"]
        verbose_name = _("refund approval")
        verbose_name_plural = _("refund approvals")
        indexes = [
            # Finance's queue and the nav's count: the open ones, oldest first.
            models.Index(fields=["requested_at", "id"], condition=models.Q(status="open"),
                         name="refund_approval_open"),
        ]

    def __str__(self):
        return f"{self.charge_id} {self.amount} {self.currency} {self.status}"
