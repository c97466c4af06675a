from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who did what to which object. Written in the same transaction as the change."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=128, db_index=True)
    target = models.CharField(max_length=255, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "audit entries"
        permissions = [("view_audit", "Can read the audit log")]

    def __str__(self):
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action} {self.target}"
