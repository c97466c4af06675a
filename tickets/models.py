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
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .identity import contact_display_name


class Channel(models.TextChoices):
    EMAIL = "email", pgettext_lazy("channel", "Email")
    LINE = "line", pgettext_lazy("channel", "LINE")
    WEB = "web", pgettext_lazy("channel", "Web")
    PHONE = "phone", pgettext_lazy("channel", "Phone")


class Team(models.Model):
    name = models.CharField(verbose_name=_("name"), max_length=100, unique=True)
    slug = models.SlugField(verbose_name=_("slug"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="ticket_teams",
    )
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Contact(models.Model):
    name = models.CharField(verbose_name=_("name"), max_length=255, blank=True, default="")
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    # Bumped by every action that changes the contact (name, identities, merges): a merge
    # can be undone only while the survivor's version is the one the merge left.
    version = models.PositiveIntegerField(verbose_name=_("version"), default=0)
    # Set on the contact a merge absorbed; it stays so the merge can be undone.
    merged_into = models.ForeignKey("self", verbose_name=_("merged into"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    # The language the customer reads ("ja", "en": a primary language subtag), blank while
    # unknown. Set by what the channels say (the LINE profile, an email's Content-Language,
    # the Stripe customer's preferred locale) or guessed from their first message; a guess
    # never replaces a known language. What Paydesk writes to them is in this language
    # (tickets.selectors.customer_language), whatever the agent's own.
    language = models.CharField(
        verbose_name=_("language"), max_length=16, blank=True, default="", db_default="",  # bulk loads (COPY) too
        help_text=_("The language replies to this customer are written in, such as “ja” or “en”. "
                    "Blank: not known yet."),
    )

    # What the customer's LINE profile says (tickets.line_profile), kept so lists show a
    # face and a name without asking LINE; refetched on a message once older than
    # TICKETS_LINE_PROFILE_MAX_AGE. Blank for contacts who never wrote by LINE.
    line_name = models.CharField(verbose_name=_("LINE display name"), max_length=255, blank=True, default="",
                                 db_default="")
    line_picture_url = models.URLField(verbose_name=_("LINE picture"), max_length=1000, blank=True, default="",
                                       db_default="")
    line_profile_at = models.DateTimeField(verbose_name=_("LINE profile fetched"), null=True, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-created", "-id"]
        permissions = [
            ("link_identity", "Can link and unlink a contact's identities"),
            ("merge_contacts", "Can merge contacts and undo merges"),
        ]

    def __str__(self):
        if self.name or self.line_name or self.pk is None:
            return contact_display_name(self.name, self.line_name, [])
        return contact_display_name("", "", self.identities.values_list("kind", "value"))


class Identity(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", pgettext_lazy("identity kind", "Email")
        LINE = "line", pgettext_lazy("identity kind", "LINE user")
        PHONE = "phone", pgettext_lazy("identity kind", "Phone")
        STRIPE_CUSTOMER = "stripe_customer", pgettext_lazy("identity kind", "Stripe customer")

    contact = models.ForeignKey(Contact, verbose_name=_("contact"), on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=Kind.choices)
    # Normalised (tickets.identity.normalise): lowercased email, E.164-ish phone, ids as given.
    value = models.CharField(verbose_name=_("value"), max_length=320)
    # LINE: False after an unfollow (pushes to them would fail).
    reachable = models.BooleanField(verbose_name=_("reachable"), default=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_unique_kind_value")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.value}"


class Tag(models.Model):
    name = models.SlugField(verbose_name=_("name"), max_length=64, unique=True, allow_unicode=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("ticket status", "Open")
        PENDING = "pending", pgettext_lazy("ticket status", "Pending")
        SOLVED = "solved", pgettext_lazy("ticket status", "Solved")
        CLOSED = "closed", pgettext_lazy("ticket status", "Closed")

    class Priority(models.TextChoices):
        LOW = "low", pgettext_lazy("ticket priority", "Low")
        NORMAL = "normal", pgettext_lazy("ticket priority", "Normal")
        HIGH = "high", pgettext_lazy("ticket priority", "High")
        URGENT = "urgent", pgettext_lazy("ticket priority", "Urgent")

    ACTIVE_STATUSES = (Status.OPEN, Status.PENDING)

    # The number people quote ("#1042"); equals the id unless imported from another helpdesk.
    number = models.PositiveBigIntegerField(
        verbose_name=_("number"), unique=True, null=True, blank=True, editable=False,
    )
    subject = models.CharField(verbose_name=_("subject"), max_length=255)
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(
        verbose_name=_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL,
    )
    channel = models.CharField(verbose_name=_("channel"), max_length=10, choices=Channel.choices, default=Channel.WEB)
    requester = models.ForeignKey(
        Contact, verbose_name=_("requester"), on_delete=models.PROTECT, related_name="tickets",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assignee"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets",
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="tickets")
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    # Bumped by every action on the ticket, so a page can tell the ticket changed under it.
    version = models.PositiveIntegerField(verbose_name=_("version"), default=0)
    last_message_at = models.DateTimeField(verbose_name=_("last message"), null=True, blank=True)
    first_response_due = models.DateTimeField(verbose_name=_("first response due"), null=True, blank=True)
    resolution_due = models.DateTimeField(verbose_name=_("resolution due"), null=True, blank=True)
    first_responded_at = models.DateTimeField(verbose_name=_("first responded"), null=True, blank=True)
    solved_at = models.DateTimeField(verbose_name=_("solved"), null=True, blank=True)
    # The next SLA deadline (first response, then resolution; null once solved): the inbox
    # sorts on this one indexed column.
    sla_due = models.DateTimeField(verbose_name=_("next due"), null=True, blank=True)
    # Set while this ticket is merged into another (a TicketMerge says what moved); its page
    # then points at the survivor.
    merged_into = models.ForeignKey(
        "self", verbose_name=_("merged into"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="merged_tickets",
    )

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
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
        INBOUND = "inbound", _("From the customer")
        OUTBOUND = "outbound", _("Reply to the customer")
        NOTE = "note", _("Internal note")

    class Delivery(models.TextChoices):
        NONE = "", "—"
        QUEUED = "queued", pgettext_lazy("delivery status", "Queued")
        SENDING = "sending", pgettext_lazy("delivery status", "Sending")
        SENT = "sent", pgettext_lazy("delivery status", "Sent")
        FAILED = "failed", pgettext_lazy("delivery status", "Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=Kind.choices)
    channel = models.CharField(verbose_name=_("channel"), max_length=10, choices=Channel.choices)
    # Inbound: the contact who wrote and the identity they wrote from (kept as text too,
    # since an identity can be unlinked later). Outbound and notes: the agent.
    contact = models.ForeignKey(
        Contact, verbose_name=_("contact"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="messages",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="ticket_messages",
    )
    sender = models.CharField(verbose_name=_("sender"), max_length=320, blank=True, default="")
    recipient = models.CharField(verbose_name=_("recipient"), max_length=320, blank=True, default="")
    subject = models.CharField(verbose_name=_("subject"), max_length=998, blank=True, default="")
    body_text = models.TextField(verbose_name=_("text"), blank=True, default="")
    # Cleaned with nh3 before it is stored.
    body_html = models.TextField(verbose_name=_("HTML"), blank=True, default="")
    # Email Message-ID (without <>), LINE message id, or the webhook event id of a LINE
    # event without a message: unique per channel, it threads replies and drops redeliveries.
    channel_message_id = models.CharField(verbose_name=_("channel message ID"), max_length=998, blank=True, default="")
    # Email threading headers as received or sent: {"in_reply_to": "...", "references": [...]}.
    headers = models.JSONField(verbose_name=_("headers"), default=dict, blank=True)
    delivery_status = models.CharField(
        verbose_name=_("delivery"), max_length=10, choices=Delivery.choices, blank=True, default="",
    )
    delivery_error = models.TextField(verbose_name=_("delivery error"), blank=True, default="")
    delivery_attempts = models.PositiveIntegerField(verbose_name=_("delivery attempts"), default=0)
    delivery_started_at = models.DateTimeField(verbose_name=_("delivery started"), null=True, blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent"), null=True, blank=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
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
        return _("%(kind)s on #%(ticket)s") % {"kind": self.get_kind_display(), "ticket": self.ticket_id}


class MessageTriage(models.Model):
    """What Paydesk understood of one customer message (console/assist): its intent with a
    confidence and the runner-up, the entities in it, and the Stripe objects it is most likely
    about, each with the reason. Written by tickets.actions.record_triage; one per message (a
    later reading replaces it)."""

    message = models.OneToOneField(Message, verbose_name=_("message"), on_delete=models.CASCADE,
                                   related_name="triage")
    intent = models.CharField(verbose_name=_("intent"), max_length=40, db_index=True)
    confidence = models.FloatField(verbose_name=_("confidence"), default=0.0)
    runner_up = models.CharField(verbose_name=_("runner-up"), max_length=40, blank=True, default="")
    runner_up_confidence = models.FloatField(verbose_name=_("runner-up confidence"), default=0.0)
    below_threshold = models.BooleanField(verbose_name=_("below the threshold"), default=False)
    language = models.CharField(verbose_name=_("language"), max_length=10, blank=True, default="")
    # [{"kind", "text", "start", "end", "value": {...}}]
    entities = models.JSONField(verbose_name=_("entities"), default=list, blank=True)
    # [{"object": "charge", "id": "ch_…", "score": 0.9, "reason": {"code": "…", …}}], likeliest first
    links = models.JSONField(verbose_name=_("linked objects"), default=list, blank=True)
    source = models.CharField(verbose_name=_("source"), max_length=20, default="builtin")
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message triage")
        verbose_name_plural = _("message triage")

    def __str__(self):
        return f"{self.intent} ({self.confidence:.2f}) on message {self.message_id}"

    @property
    def linked(self) -> dict[str, str]:
        """The likeliest object of each kind: {"charge": "ch_…", "subscription": "sub_…"}."""
        out: dict[str, str] = {}
        for link in self.links or []:
            if isinstance(link, dict) and link.get("object") and link.get("id"):
                out.setdefault(str(link["object"]), str(link["id"]))
        return out


class ReplyDraft(models.Model):
    """A reply Paydesk drafted for a ticket's latest customer message, in the customer's
    language and grounded in the mirror: `facts` are what it states, each naming its object;
    `missing` what it looked for and could not find; `suggestions` the actions offered beside
    it. An agent edits and sends it, or discards it; it is never sent by itself."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("reply draft", "Open")
        SENT = "sent", pgettext_lazy("reply draft", "Sent")
        DISCARDED = "discarded", pgettext_lazy("reply draft", "Discarded")
        REPLACED = "replaced", pgettext_lazy("reply draft", "Replaced")

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="drafts")
    message = models.ForeignKey(Message, verbose_name=_("message"), on_delete=models.CASCADE,
                                related_name="drafts")
    intent = models.CharField(verbose_name=_("intent"), max_length=40, blank=True, default="")
    language = models.CharField(verbose_name=_("language"), max_length=10, blank=True, default="")
    body = models.TextField(verbose_name=_("text"))
    facts = models.JSONField(verbose_name=_("facts"), default=list, blank=True)
    missing = models.JSONField(verbose_name=_("not found"), default=list, blank=True)
    suggestions = models.JSONField(verbose_name=_("suggested actions"), default=list, blank=True)
    source = models.CharField(verbose_name=_("source"), max_length=20, default="builtin")
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("closed by"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("reply draft")
        verbose_name_plural = _("reply drafts")
        ordering = ["-created", "-id"]
        constraints = [
            # One open draft per ticket: a newer one replaces it.
            models.UniqueConstraint(fields=["ticket"], condition=Q(status="open"), name="replydraft_one_open"),
        ]

    def __str__(self):
        return f"draft for #{self.ticket_id} ({self.status})"


def attachment_path(instance: "Attachment", filename: str) -> str:
    # A random directory keeps customers' file names (which may collide) without guessing.
    return f"tickets/attachments/{uuid.uuid4().hex}/{filename[-120:]}"


class Attachment(models.Model):
    message = models.ForeignKey(
        Message, verbose_name=_("message"), on_delete=models.CASCADE, related_name="attachments",
    )
    file = models.FileField(verbose_name=_("file"), upload_to=attachment_path, max_length=255, blank=True)
    filename = models.CharField(verbose_name=_("file name"), max_length=255)
    content_type = models.CharField(verbose_name=_("content type"), max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField(verbose_name=_("size"), default=0)
    content_id = models.CharField(verbose_name=_("content ID"), max_length=255, blank=True, default="")
    # Over TICKETS_ATTACHMENT_MAX_BYTES: only the name and size are kept, and a note says so.
    refused = models.BooleanField(verbose_name=_("refused"), default=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["id"]

    def __str__(self):
        return self.filename


class Macro(models.Model):
    """A canned reply. Placeholders: {{ contact.name }}, {{ ticket.number }}, {{ ticket.subject }},
    {{ agent.name }}. Optional changes applied with it: status, team, assignee, tags. A body per
    language (translations); a ticket gets the one in its customer's language, else `body`."""

    name = models.CharField(verbose_name=_("name"), max_length=100, unique=True)
    body = models.TextField(verbose_name=_("body"), blank=True, default="")
    # The body in other languages, by language code: {"ja": "...", "en": "..."}. A ticket gets
    # the one in its customer's language, else `body`.
    translations = models.JSONField(
        verbose_name=_("translations"), default=dict, blank=True,
        help_text=_("The body in each customer language, for example {\"ja\": \"…\", \"en\": \"…\"}. "
                    "A customer whose language has none gets the body above."),
    )
    set_status = models.CharField(
        verbose_name=_("set status"), max_length=10, choices=Ticket.Status.choices, blank=True, default="",
    )
    set_priority = models.CharField(
        verbose_name=_("set priority"), max_length=10, choices=Ticket.Priority.choices, blank=True, default="",
    )
    set_team = models.ForeignKey(
        Team, verbose_name=_("set team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    set_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("set assignee"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # Tag names added to the ticket.
    add_tags = models.JSONField(verbose_name=_("add tags"), default=list, blank=True)
    active = models.BooleanField(verbose_name=_("active"), default=True)
    # Empty: every team sees it. Otherwise only members of these teams (and admins).
    teams = models.ManyToManyField(Team, verbose_name=_("teams"), blank=True, related_name="macros")
    use_count = models.PositiveIntegerField(verbose_name=_("uses"), default=0, db_default=0)
    last_used_at = models.DateTimeField(verbose_name=_("last used"), null=True, blank=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("macro")
        verbose_name_plural = _("macros")
        ordering = ["name"]

    def __str__(self):
        return self.name


class MergeRecord(models.Model):
    """What a merge (of contacts, of tickets) moved, who did it and why, and its undo."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.CharField(verbose_name=_("reason"), max_length=255, blank=True, default="")
    # What moved, so an undo can put exactly that back (each merge says its own keys).
    moved = models.JSONField(verbose_name=_("moved"), default=dict)
    # The survivor's version right after the merge: undo is refused once it moved on.
    survivor_version = models.PositiveIntegerField(verbose_name=_("survivor version"))
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    undone_at = models.DateTimeField(verbose_name=_("undone"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("undone by"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        abstract = True
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"{self.merged} → {self.survivor}"


class ContactMerge(MergeRecord):
    """What a merge moved from `merged` to `survivor`, so it can be undone."""

    survivor = models.ForeignKey(
        Contact, verbose_name=_("survivor"), on_delete=models.CASCADE, related_name="merges_absorbed",
    )
    merged = models.ForeignKey(Contact, verbose_name=_("merged"), on_delete=models.CASCADE, related_name="merges_into")
    # moved: {"tickets": [ids], "messages": [ids], "identities": [ids], "name": "<merged's name>"}

    class Meta(MergeRecord.Meta):
        verbose_name = _("contact merge")
        verbose_name_plural = _("contact merges")


class TicketMerge(MergeRecord):
    """What merging `merged` into `survivor` moved and changed, so it can be undone."""

    survivor = models.ForeignKey(
        Ticket, verbose_name=_("survivor"), on_delete=models.CASCADE, related_name="merges_absorbed",
    )
    merged = models.ForeignKey(Ticket, verbose_name=_("merged"), on_delete=models.CASCADE, related_name="merges_into")
    # moved: {"messages": [ids], "tags": [names added to the survivor], "status": "<merged's status>", ...}

    class Meta(MergeRecord.Meta):
        verbose_name = _("ticket merge")
        verbose_name_plural = _("ticket merges")


class LineEvent(models.Model):
    """One LINE webhook event, stored once per webhookEventId, then processed by a task."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("intake status", "Pending")
        PROCESSED = "processed", pgettext_lazy("intake status", "Processed")
        IGNORED = "ignored", pgettext_lazy("intake status", "Ignored")
        FAILED = "failed", pgettext_lazy("intake status", "Failed")

    webhook_event_id = models.CharField(verbose_name=_("webhook event ID"), max_length=64, unique=True)
    type = models.CharField(verbose_name=_("type"), max_length=32)
    payload = models.JSONField(verbose_name=_("payload"))
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(verbose_name=_("attempts"), default=0)
    last_error = models.TextField(verbose_name=_("last error"), blank=True, default="")
    received_at = models.DateTimeField(verbose_name=_("received"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(verbose_name=_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("LINE event")
        verbose_name_plural = _("LINE events")
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"{self.type} {self.webhook_event_id}"


class InboundEmail(models.Model):
    """One inbound email exactly as it arrived (raw MIME), stored before anything reads it,
    then made into a message by a task. The same bytes delivered again are stored once."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("intake status", "Pending")
        PROCESSED = "processed", pgettext_lazy("intake status", "Processed")
        IGNORED = "ignored", pgettext_lazy("intake status", "Ignored")
        FAILED = "failed", pgettext_lazy("intake status", "Failed")

    raw = models.BinaryField(verbose_name=_("raw message"))
    size = models.PositiveIntegerField(verbose_name=_("size"), default=0)
    # SHA-256 of raw: an ESP's retry, or the same .eml imported twice, is the same row.
    digest = models.CharField(verbose_name=_("digest"), max_length=64, unique=True)
    # The anymail ESP that posted it ("postmark" ...), or "file" for manage.py tickets_import_eml.
    esp = models.CharField(verbose_name=_("ESP"), max_length=32, blank=True, default="")
    # The address the ESP delivered it to, when it says (a BCC'd message names nobody in To).
    envelope_recipient = models.CharField(verbose_name=_("envelope recipient"), max_length=998, blank=True, default="")
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(verbose_name=_("attempts"), default=0)
    # Why it was ignored, or the error it failed with.
    last_error = models.TextField(verbose_name=_("last error"), blank=True, default="")
    # From and Subject as the headers read, filled when it is processed (for the admin).
    mail_from = models.CharField(verbose_name=_("from"), max_length=998, blank=True, default="")
    subject = models.CharField(verbose_name=_("subject"), max_length=998, blank=True, default="")
    message = models.ForeignKey(Message, verbose_name=_("message"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="inbound_emails")
    received_at = models.DateTimeField(verbose_name=_("received"), auto_now_add=True)
    processed_at = models.DateTimeField(verbose_name=_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbound email")
        verbose_name_plural = _("inbound emails")
        ordering = ["-received_at", "-id"]
        permissions = [("process_inboundemail", "Can process an inbound email again")]
        indexes = [models.Index(fields=["status", "received_at"], name="inboundemail_status_received")]

    def __str__(self):
        return f"{self.mail_from or 'email'} ({self.get_status_display().lower()})"
