"""Workflows and their versions. Saving makes a new version; a workflow runs the version it was
activated with, so editing an active workflow never changes what it does until it is activated
again (and never a run in flight: runs will point to their version)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Workflow(models.Model):
    class Status(models.TextChoices):
        INACTIVE = "inactive", _("Inactive")
        ACTIVE = "active", _("Active")

    name = models.CharField(verbose_name=_("name"), max_length=200)
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=Status.choices, default=Status.INACTIVE)
    active_version = models.ForeignKey("WorkflowVersion", verbose_name=_("active version"), null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    # The active version's trigger ("stripe:charge.dispute.created"), blank while inactive: the
    # index by which an event finds the workflows to run, without scanning them.
    trigger = models.CharField(verbose_name=_("trigger"), max_length=200, blank=True, default="", db_index=True)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    updated = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class WorkflowVersion(models.Model):
    workflow = models.ForeignKey(Workflow, verbose_name=_("workflow"), on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(verbose_name=_("version"))
    definition = models.JSONField(verbose_name=_("definition"))
    trigger = models.CharField(verbose_name=_("trigger"), max_length=200)
    created = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("workflow version")
        verbose_name_plural = _("workflow versions")
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_number")]
        ordering = ["workflow", "-number"]

    def __str__(self):
        return f"{self.workflow_id} v{self.number}"
