from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    """Every action the audit log knows. The label is what a person reads (the timeline's
    title for an agent action, the admin's filter)."""

    # payments: the mirror
    STRIPE_EVENT_REPLAY = "stripe_event.replay", "Stripe event replayed"
    STRIPE_OBJECT_RESYNC = "stripe_object.resync", "Re-synced from Stripe"
    STRIPE_EVENT_REANNOUNCE = "stripe_event.reannounce", "Follow-up of a Stripe event retried"
    # payments: changes made at Stripe
    CHARGE_REFUND = "charge.refund", "Refund issued"
    SUBSCRIPTION_CANCEL = "subscription.cancel", "Cancellation"
    CUSTOMER_UPDATE_METADATA = "customer.update_metadata", "Customer metadata changed"
    PORTAL_SESSION_CREATE = "billing_portal.session.create", "Billing-portal link created"
    # tickets: contacts and identities
    CONTACT_CREATE = "contact.create", "Contact created"
    CONTACT_UPDATE = "contact.update", "Contact edited"
    CONTACT_MERGE = "contact.merge", "Contacts merged"
    CONTACT_MERGE_UNDO = "contact.merge_undo", "Merge undone"
    IDENTITY_LINK = "identity.link", "Identity linked"
    IDENTITY_UNLINK = "identity.unlink", "Identity unlinked"
    IDENTITY_LINK_SKIPPED = "identity.link_skipped", "Stripe customer not linked"
    IDENTITY_LINE_FOLLOW = "identity.line_follow", "Followed on LINE"
    IDENTITY_LINE_UNFOLLOW = "identity.line_unfollow", "Unfollowed on LINE"
    # tickets: tickets and messages
    TICKET_CREATE = "ticket.create", "Ticket created"
    TICKET_REPLY = "ticket.reply", "Reply sent"
    TICKET_NOTE = "ticket.note", "Internal note"
    TICKET_STATUS = "ticket.status", "Ticket status changed"
    TICKET_PRIORITY = "ticket.priority", "Ticket priority changed"
    TICKET_SUBJECT = "ticket.subject", "Ticket subject changed"
    TICKET_ASSIGN = "ticket.assign", "Ticket assigned"
    TICKET_TAGS = "ticket.tags", "Ticket tags changed"
    TICKET_MACRO = "ticket.macro", "Macro applied"
    MESSAGE_RECEIVE = "message.receive", "Message received"
    MESSAGE_DELIVERED = "message.delivered", "Message delivered"
    MESSAGE_DELIVERY_FAILED = "message.delivery_failed", "Message not delivered"
    MESSAGE_RETRY = "message.retry", "Delivery retried"
    INBOUND_EMAIL_REPROCESS = "inbound_email.reprocess", "Inbound email processed again"
    # tickets: the team's setup
    TEAM_CREATE = "team.create", "Team created"
    TEAM_UPDATE = "team.update", "Team edited"
    TEAM_DELETE = "team.delete", "Team deleted"
    MACRO_CREATE = "macro.create", "Macro created"
    MACRO_UPDATE = "macro.update", "Macro edited"
    MACRO_DELETE = "macro.delete", "Macro deleted"
    # console
    USER_TIME_ZONE = "user.time_zone", "Time zone changed"
    LOGIN_UNLOCK = "login.unlock", "Login unlocked"
    USER_LANGUAGE = "user.language", "Language changed"
    REFUND_APPROVAL_REQUESTED = "refund.approval_requested", "Refund handed to finance"


class AuditEntry(models.Model):
    """Who did what to which object. Written in the same transaction as the change.

    `actor` is null when Paydesk itself acted (an inbound channel, the mirror, a task);
    `target` names the object (a Stripe id, `ticket:1042`, `contact:7`); `details` is the
    JSON-safe rest, including the idempotency key of a confirmation."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    # An AuditAction value, checked by record(); no `choices`, so a new action needs no migration.
    action = models.CharField(max_length=128, db_index=True)
    target = models.CharField(max_length=255, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "audit entries"
        permissions = [("view_audit", "Can read the audit log")]
        indexes = [models.Index(fields=["target", "action"], name="audit_target_action")]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action} {self.target}"
