"""Support tickets: contacts and their identities, tickets, messages, macros.

A Contact is one person; an Identity is one way to reach them (an email address, a LINE
user id, a phone number, a Stripe customer id), unique per kind and value, so an inbound
message always resolves to exactly one contact. Merging two contacts moves everything to
the survivor and records what moved (ContactMerge) so it can be undone.

Rows are written only by tickets.actions.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    LINE = "line", "LINE"
    WEB = "web", "Web"
    PHONE = "phone", "Phone"


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="ticket_teams")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Contact(models.Model):
    name = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # Bumped by every action that changes the contact (name, identities, merges): a merge
    # can be undone only while the survivor's version is the one the merge left.
    version = models.PositiveIntegerField(default=0)
    # Set on the contact a merge absorbed; it stays so the merge can be undone.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [
            ("link_identity", "Can link and unlink a contact's identities"),
            ("merge_contacts", "Can merge contacts and undo merges"),
        ]

    def __str__(self):
        return self.name or f"Contact {self.pk}"


class Identity(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        LINE = "line", "LINE user"
        PHONE = "phone", "Phone"
        STRIPE_CUSTOMER = "stripe_customer", "Stripe customer"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Normalised (tickets.identity.normalise): lowercased email, E.164-ish phone, ids as given.
    value = models.CharField(max_length=320)
    # LINE: False after an unfollow (pushes to them would fail).
    reachable = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_unique_kind_value")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.value}"


class Tag(models.Model):
    name = models.SlugField(max_length=64, unique=True, allow_unicode=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        SOLVED = "solved", "Solved"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    ACTIVE_STATUSES = (Status.OPEN, Status.PENDING)

    # The number people quote ("#1042"); equals the id unless imported from another helpdesk.
    number = models.PositiveBigIntegerField(unique=True, null=True, blank=True, editable=False)
    subject = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    requester = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # Bumped by every action on the ticket, so a page can tell the ticket changed under it.
    version = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    # The next SLA deadline (first response, then resolution; null once solved): the inbox
    # sorts on this one indexed column.
    sla_due = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [
            ("reply_ticket", "Can reply to a customer on a ticket"),
            ("note_ticket", "Can add an internal note to a ticket"),
            ("assign_ticket", "Can assign tickets to agents and teams"),
        ]
        indexes = [
            models.Index(fields=["status", "sla_due", "id"], name="ticket_status_due"),
            models.Index(fields=["assignee", "status", "sla_due", "id"], name="ticket_assignee_status_due"),
            models.Index(fields=["team", "status", "sla_due", "id"], name="ticket_team_status_due"),
            models.Index(
                fields=["status", "sla_due", "id"], condition=Q(assignee__isnull=True), name="ticket_unassigned_due"
            ),
            models.Index(fields=["status", "-updated", "-id"], name="ticket_status_updated"),
            models.Index(fields=["requester", "-created"], name="ticket_requester_created"),
            models.Index(fields=["channel", "status"], name="ticket_channel_status"),
        ]

    def __str__(self):
        return f"#{self.number} {self.subject}"

    @property
    def token(self) -> str:
        """The subject token that threads an email reply when its headers are lost."""
        return f"[#{self.number}]"


class Message(models.Model):
    class Kind(models.TextChoices):
        INBOUND = "inbound", "From the customer"
        OUTBOUND = "outbound", "Reply to the customer"
        NOTE = "note", "Internal note"

    class Delivery(models.TextChoices):
        NONE = "", "—"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # Inbound: the contact who wrote and the identity they wrote from (kept as text too,
    # since an identity can be unlinked later). Outbound and notes: the agent.
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket_messages"
    )
    sender = models.CharField(max_length=320, blank=True, default="")
    recipient = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    body_text = models.TextField(blank=True, default="")
    body_html = models.TextField(blank=True, default="")  # cleaned with nh3 before it is stored
    # Email Message-ID (without <>), LINE message id, or the webhook event id of a LINE
    # event without a message: unique per channel, it threads replies and drops redeliveries.
    channel_message_id = models.CharField(max_length=998, blank=True, default="")
    # Email threading headers as received or sent: {"in_reply_to": "...", "references": [...]}.
    headers = models.JSONField(default=dict, blank=True)
    delivery_status = models.CharField(max_length=10, choices=Delivery.choices, blank=True, default="")
    delivery_error = models.TextField(blank=True, default="")
    delivery_attempts = models.PositiveIntegerField(default=0)
    delivery_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created", "id"]
        permissions = [("retry_delivery", "Can retry a failed outbound message")]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_message_id"],
                condition=~Q(channel_message_id=""),
                name="message_unique_channel_id",
            )
        ]
        indexes = [
            models.Index(fields=["ticket", "created", "id"], name="message_ticket_created"),
            models.Index(
                fields=["delivery_status", "created"],
                condition=Q(delivery_status__in=["queued", "sending", "failed"]),
                name="message_undelivered",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on #{self.ticket_id}"


def attachment_path(instance: "Attachment", filename: str) -> str:
    # A random directory keeps customers' file names (which may collide) without guessing.
    return f"tickets/attachments/{uuid.uuid4().hex}/{filename[-120:]}"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=255, blank=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField(default=0)
    content_id = models.CharField(max_length=255, blank=True, default="")
    # Over TICKETS_ATTACHMENT_MAX_BYTES: only the name and size are kept, and a note says so.
    refused = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.filename


class Macro(models.Model):
    """A canned reply. Placeholders: {{ contact.name }}, {{ ticket.number }}, {{ ticket.subject }},
    {{ agent.name }}. Optional changes applied with it: status, team, assignee, tags."""

    name = models.CharField(max_length=100, unique=True)
    body = models.TextField(blank=True, default="")
    set_status = models.CharField(max_length=10, choices=Ticket.Status.choices, blank=True, default="")
    set_priority = models.CharField(max_length=10, choices=Ticket.Priority.choices, blank=True, default="")
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    set_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Tag names added to the ticket.
    add_tags = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ContactMerge(models.Model):
    """What a merge moved from `merged` to `survivor`, so it can be undone."""

    survivor = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="merges_absorbed")
    merged = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="merges_into")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=255, blank=True, default="")
    # {"tickets": [ids], "messages": [ids], "identities": [ids], "name": "<merged's name>"}
    moved = models.JSONField(default=dict)
    # The survivor's version right after the merge: undo is refused once it moved on.
    survivor_version = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"{self.merged} → {self.survivor}"


class LineEvent(models.Model):
    """One LINE webhook event, stored once per webhookEventId, then processed by a task."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    webhook_event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"{self.type} {self.webhook_event_id}"


class InboundEmail(models.Model):
    """One inbound email exactly as it arrived (raw MIME), stored before anything reads it,
    then made into a message by a task. The same bytes delivered again are stored once."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    # SHA-256 of raw: an ESP's retry, or the same .eml imported twice, is the same row.
    digest = models.CharField(max_length=64, unique=True)
    # The anymail ESP that posted it ("postmark" ...), or "file" for manage.py tickets_import_eml.
    esp = models.CharField(max_length=32, blank=True, default="")
    # The address the ESP delivered it to, when it says (a BCC'd message names nobody in To).
    envelope_recipient = models.CharField(max_length=998, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Why it was ignored, or the error it failed with.
    last_error = models.TextField(blank=True, default="")
    # From and Subject as the headers read, filled when it is processed (for the admin).
    mail_from = models.CharField(max_length=998, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="inbound_emails")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("process_inboundemail", "Can process an inbound email again")]
        indexes = [models.Index(fields=["status", "received_at"], name="inboundemail_status_received")]

    def __str__(self):
        return f"{self.mail_from or 'email'} ({self.get_status_display().lower()})"
