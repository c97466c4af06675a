from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """Every action the audit log knows. The label is what a person reads (the timeline's
    title for an agent action, the admin's filter)."""

    # payments: the mirror
    STRIPE_EVENT_REPLAY = "stripe_event.replay", _("Stripe event replayed")
    STRIPE_OBJECT_RESYNC = "stripe_object.resync", _("Re-synced from Stripe")
    STRIPE_EVENT_REANNOUNCE = "stripe_event.reannounce", _("Follow-up of a Stripe event retried")
    # payments: changes made at Stripe
    CHARGE_REFUND = "charge.refund", _("Refund issued")
    SUBSCRIPTION_CANCEL = "subscription.cancel", _("Cancellation")
    CUSTOMER_UPDATE_METADATA = "customer.update_metadata", _("Customer metadata changed")
    PORTAL_SESSION_CREATE = "billing_portal.session.create", _("Billing-portal link created")
    DISPUTE_EVIDENCE_SAVE = "dispute.evidence_save", _("Dispute evidence saved")
    DISPUTE_EVIDENCE_SUBMIT = "dispute.evidence_submit", _("Dispute evidence submitted")
    DISPUTE_CLOSE = "dispute.close", _("Dispute accepted")
    DISPUTE_FILE_UPLOAD = "dispute.file_upload", _("Evidence file uploaded")
    # tickets: contacts and identities
    CONTACT_CREATE = "contact.create", _("Contact created")
    CONTACT_UPDATE = "contact.update", _("Contact edited")
    CONTACT_MERGE = "contact.merge", _("Contacts merged")
    CONTACT_MERGE_UNDO = "contact.merge_undo", _("Merge undone")
    IDENTITY_LINK = "identity.link", _("Identity linked")
    IDENTITY_UNLINK = "identity.unlink", _("Identity unlinked")
    IDENTITY_LINK_SKIPPED = "identity.link_skipped", _("Stripe customer not linked")
    IDENTITY_LINE_FOLLOW = "identity.line_follow", _("Followed on LINE")
    IDENTITY_LINE_UNFOLLOW = "identity.line_unfollow", _("Unfollowed on LINE")
    # tickets: tickets and messages
    TICKET_CREATE = "ticket.create", _("Ticket created")
    TICKET_REPLY = "ticket.reply", _("Reply sent")
    TICKET_NOTE = "ticket.note", _("Internal note")
    TICKET_STATUS = "ticket.status", _("Ticket status changed")
    TICKET_PRIORITY = "ticket.priority", _("Ticket priority changed")
    TICKET_SUBJECT = "ticket.subject", _("Ticket subject changed")
    TICKET_ASSIGN = "ticket.assign", _("Ticket assigned")
    TICKET_TAGS = "ticket.tags", _("Ticket tags changed")
    TICKET_MACRO = "ticket.macro", _("Macro applied")
    TICKET_MERGE = "ticket.merge", _("Tickets merged")
    TICKET_MERGE_UNDO = "ticket.merge_undo", _("Ticket merge undone")
    MESSAGE_RECEIVE = "message.receive", _("Message received")
    MESSAGE_DELIVERED = "message.delivered", _("Message delivered")
    MESSAGE_DELIVERY_FAILED = "message.delivery_failed", _("Message not delivered")
    MESSAGE_RETRY = "message.retry", _("Delivery retried")
    INBOUND_EMAIL_REPROCESS = "inbound_email.reprocess", _("Inbound email processed again")
    # tickets: the team's setup
    TEAM_CREATE = "team.create", _("Team created")
    TEAM_UPDATE = "team.update", _("Team edited")
    TEAM_DELETE = "team.delete", _("Team deleted")
    MACRO_CREATE = "macro.create", _("Macro created")
    MACRO_UPDATE = "macro.update", _("Macro edited")
    MACRO_DELETE = "macro.delete", _("Macro deleted")
    # console
    USER_TIME_ZONE = "user.time_zone", _("Time zone changed")
    LOGIN_UNLOCK = "login.unlock", _("Login unlocked")
    USER_LANGUAGE = "user.language", _("Language changed")
    USER_AFTER_SOLVE = "user.after_solve", _("After-solving setting changed")
    NOTIFY = "notify", _("People notified")
    NOTIFICATIONS_READ = "notifications.read", _("Notifications marked read")
    # workflows
    WORKFLOW_SAVE = "workflow.save", _("Workflow saved")
    WORKFLOW_ACTIVATE = "workflow.activate", _("Workflow activated")
    WORKFLOW_DEACTIVATE = "workflow.deactivate", _("Workflow deactivated")
    WORKFLOW_IMPORT = "workflow.import", _("Workflow imported")
    WORKFLOW_RUN_RETRY = "workflow.run_retry", _("Workflow run retried")
    REFUND_APPROVAL_REQUESTED = "refund.approval_requested", _("Refund handed to finance")
    REFUND_APPROVAL_CLOSED = "refund.approval_closed", _("Refund approval closed")
    # disputes (console/disputes): who works a dispute, and the ticket it is worked on
    DISPUTE_ASSIGN = "dispute.assign", _("Dispute assigned")
    DISPUTE_LINK_TICKET = "dispute.link_ticket", _("Ticket linked to a dispute")
    # people (console/people): who works in the console, in which role and teams
    PERSON_CREATE = "person.create", _("Person added")
    PERSON_UPDATE = "person.update", _("Person changed")
    PERSON_DEACTIVATE = "person.deactivate", _("Person deactivated")
    PERSON_REACTIVATE = "person.reactivate", _("Person reactivated")
    PERSON_PASSWORD_LINK = "person.password_link", _("Password link sent")
    PERSON_SSO_SIGN_IN = "person.sso_sign_in", _("Signed in with the company's identity provider")
    # assist (console/assist): what Paydesk understood of a message, and the drafts it wrote
    MESSAGE_TRIAGE = "message.triage", _("Message understood")
    REPLY_DRAFT = "ticket.draft", _("Reply drafted")
    REPLY_DRAFT_DISCARD = "ticket.draft_discard", _("Draft discarded")


class AuditEntry(models.Model):
    """Who did what to which object. Written in the same transaction as the change.

    `actor` is null when Paydesk itself acted (an inbound channel, the mirror, a task);
    `target` names the object (a Stripe id, `ticket:1042`, `contact:7`); `details` is the
    JSON-safe rest, including the idempotency key of a confirmation."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("actor"))
    # An AuditAction value, checked by record(); no `choices`, so a new action needs no migration.
    action = models.CharField(_("action"), max_length=128, db_index=True)
    target = models.CharField(_("target"), max_length=255, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    created = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        permissions = [("view_audit", "Can read the audit log")]
        indexes = [models.Index(fields=["target", "action"], name="audit_target_action")]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action} {self.target}"
