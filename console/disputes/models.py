"""What Paydesk adds to a Stripe dispute: who works it, the ticket it is worked on, and when
the deadline reminder went out. The dispute itself stays in the mirror (payments.Dispute),
referred to by its Stripe id (never a foreign key: the mirror row may arrive later)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DisputeCase(models.Model):
    dispute_id = models.CharField(_("dispute"), max_length=255, unique=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("assignee"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="dispute_cases")
    ticket = models.ForeignKey("tickets.Ticket", verbose_name=_("ticket"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="dispute_cases")
    # Set once, by the claim of the deadline reminder (console.disputes.reminders): a second
    # beat or a concurrent one finds it set and does nothing.
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("dispute case")
        verbose_name_plural = _("dispute cases")

    def __str__(self):
        return self.dispute_id
